"""Issuance services: every state change of an application, customer or vehicle.

Each top-level service is one durable transaction that locks the application
row it changes, writes its audit events inside that transaction, and defers
file clean-up to `on_commit`. Refused input raises an `InvalidInput` before
anything is written, so a bad request leaves no row, no file and no event.

The package follows the wizard: `phone` (step 1, the SMS code), `steps` (the
customer, the vehicle, the documents), `decision` (submission, approval or
refusal, the review of a changed customer); `_common` holds what they share.
"""

from etcnet.issuance.services._common import CUSTOMER_FIELDS, VEHICLE_FIELDS
from etcnet.issuance.services.decision import (
    CHANGE_REFUSED,
    REVIEWED_FIELDS,
    Decision,
    NeedsReview,
    PlateTaken,
    review_customer_change,
    submit_application,
)
from etcnet.issuance.services.phone import resend_phone_code, start_application, verify_phone
from etcnet.issuance.services.steps import (
    reveal_document,
    save_customer,
    save_vehicle,
    upload_documents,
)

__all__ = [
    "CHANGE_REFUSED",
    "CUSTOMER_FIELDS",
    "REVIEWED_FIELDS",
    "VEHICLE_FIELDS",
    "Decision",
    "NeedsReview",
    "PlateTaken",
    "resend_phone_code",
    "reveal_document",
    "review_customer_change",
    "save_customer",
    "save_vehicle",
    "start_application",
    "submit_application",
    "upload_documents",
    "verify_phone",
]
