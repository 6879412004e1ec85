"""Template filters of the issuance pages."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

# The audit actions an issuance page shows, in the reader's language.
ACTION_LABELS = {
    "issuance.application_started": _("Application started, code sent"),
    "issuance.phone_code_sent": _("New code sent"),
    "issuance.phone_verified": _("Phone verified"),
    "issuance.customer_step_saved": _("Customer information saved"),
    "issuance.vehicle_step_saved": _("Vehicle information saved"),
    "issuance.vin_check_digit_waived": _("Imported vehicle: VIN check digit waived"),
    "issuance.document_uploaded": _("Photo uploaded"),
    "issuance.application_refused": _("Refused by automatic approval"),
    "issuance.application_approved": _("Approved automatically"),
    "issuance.customer_created": _("Customer created"),
    "issuance.customer_updated": _("Customer updated"),
    "issuance.vehicle_registered": _("Vehicle registered"),
    "issuance.customer_change_requested": _("Customer's name or phone change sent for review"),
    "issuance.customer_change_accepted": _("Customer's change accepted by the customer's outlet"),
    "issuance.customer_change_refused": _("Customer's change refused by the customer's outlet"),
    "issuance.document_revealed": _("Photo revealed to an auditor, with a reason"),
}


@register.filter
def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))
