"""Issuance endpoints: the wizard as JSON. Thin: parse, call a service, shape."""

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import File, Query, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.pagination import LimitOffsetPagination, paginate

from etcnet.core.codes import CustomerType
from etcnet.core.errors import Forbidden
from etcnet.core.masking import mask_id_number, mask_name, mask_phone
from etcnet.core.roles import Role, has_role, may_see_personal_data
from etcnet.core.schemas import errors
from etcnet.issuance import selectors, services
from etcnet.issuance.models import Application
from etcnet.issuance.schemas import (
    ApplicationOut,
    ApplicationSummaryOut,
    CodeIn,
    CustomerIn,
    DecisionOut,
    ReviewIn,
    StartIn,
    VehicleIn,
)
from etcnet.issuance.services import CUSTOMER_FIELDS, VEHICLE_FIELDS

router = Router()

READERS = (Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR, Role.AUDITOR)
# The error statuses of the reads and of the wizard steps (etcnet.core.schemas).
READ = errors(400, 401, 403, 404)
STEP = errors(400, 401, 403, 404, 409)
# The steps that text the customer a code: the SMS limits per mobile number answer 429.
SMS_STEP = errors(400, 401, 403, 404, 409, 429)


def _require_reader(request: HttpRequest) -> None:
    if not has_role(request.user, *READERS):
        raise Forbidden()


def application_payload(application: Application, user: Any) -> dict[str, Any]:
    """The full application; personal data masked unless the role may see it."""
    clear = may_see_personal_data(user)
    customer = {name: getattr(application, name) for name in CUSTOMER_FIELDS}
    vehicle = {name: getattr(application, name) for name in VEHICLE_FIELDS}
    for key in ("register_date", "issue_date"):
        vehicle[key] = vehicle[key].isoformat() if vehicle[key] else None
    phone = application.phone
    if not clear:
        customer["id_number"] = mask_id_number(customer["id_number"])
        customer["agent_id_number"] = mask_id_number(customer["agent_id_number"])
        if customer["customer_type"] != CustomerType.ORGANIZATION:
            customer["name"] = mask_name(customer["name"])
        customer["agent_name"] = mask_name(customer["agent_name"])
        vehicle["contact_phone"] = mask_phone(vehicle["contact_phone"])
        vehicle["contact_name"] = mask_name(vehicle["contact_name"])
        vehicle["owner_name"] = mask_name(vehicle["owner_name"])
        phone = mask_phone(phone)
    documents = [
        {
            "kind": doc.kind,
            "label": str(doc.get_kind_display()),
            "content_type": doc.content_type,
            "size_bytes": doc.size_bytes,
            "width": doc.width,
            "height": doc.height,
            "sha256": doc.sha256,
            "uploaded_at": doc.uploaded_at,
            # The photos are personal data in full: no link for a role that
            # sees it masked (the auditor reveals one on the page, audited).
            "url": reverse("issuance:document", args=[application.pk, doc.kind]) if clear else "",
            "thumbnail_url": reverse("issuance:document_thumbnail", args=[application.pk, doc.kind])
            if clear
            else "",
        }
        for doc in application.documents.all().order_by("id")
    ]
    changes = {
        name: values if clear else [MASKS[name](value) for value in values]
        for name, values in (application.customer_changes or {}).items()
    }
    return {
        "id": application.pk,
        "number": application.number,
        "status": application.status,
        "status_label": str(application.get_status_display()),
        "outlet": application.outlet.code,
        "phone": phone,
        "phone_verified": application.phone_verified_at is not None,
        "steps": selectors.step_state(application),
        "existing_customer_id": application.existing_customer_id,
        "customer": customer,
        "vehicle": vehicle,
        "documents": documents,
        "refusal_reasons": [i.as_dict() for i in selectors.refusal_issues(application)],
        "customer_id": application.customer_id,
        "vehicle_id": application.vehicle_id,
        "created_at": application.created_at,
        "submitted_at": application.submitted_at,
        "decided_at": application.decided_at,
        "customer_changes": changes,
    }


MASKS = {"name": mask_name, "phone": mask_phone}


def _fresh(request: HttpRequest, application_id: int) -> dict[str, Any]:
    return application_payload(
        selectors.get_application(application_id, viewer=request.user), request.user
    )


class ListFilters(Schema):
    status: str = ""
    plate: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str = ""


@router.get("/applications", response={200: list[ApplicationSummaryOut], **errors(400, 401, 403)})
@paginate(LimitOffsetPagination)
def list_applications(request: HttpRequest, filters: Query[ListFilters]) -> Any:
    """Applications, newest first; ID numbers, names and phones are always masked in lists."""
    _require_reader(request)
    qs = selectors.application_list(
        selectors.ApplicationFilter(**filters.dict()), viewer=request.user
    )
    return [
        {
            "id": a.pk,
            "number": a.number,
            "status": a.status,
            "status_label": str(a.get_status_display()),
            "outlet": a.outlet.code,
            "name": a.name if a.customer_type == CustomerType.ORGANIZATION else mask_name(a.name),
            "id_number": mask_id_number(a.id_number),
            "phone": mask_phone(a.phone),
            "plate": a.plate,
            "plate_color": a.plate_color,
            "created_at": a.created_at,
        }
        for a in qs
    ]


@router.post("/applications", response={201: ApplicationOut, **SMS_STEP})
def start_application(request: HttpRequest, payload: StartIn) -> Any:
    """Step 1a: open an application and text the customer's phone a code."""
    application = services.start_application(phone=payload.phone, actor=request.user)
    return Status(201, _fresh(request, application.pk))


@router.get("/applications/{application_id}", response={200: ApplicationOut, **READ})
def get_application(request: HttpRequest, application_id: int) -> Any:
    _require_reader(request)
    return _fresh(request, application_id)


@router.post("/applications/{application_id}/phone/resend", response={204: None, **SMS_STEP})
def resend_code(request: HttpRequest, application_id: int) -> Any:
    services.resend_phone_code(application_id, actor=request.user)
    return Status(204, None)


@router.post("/applications/{application_id}/phone/verify", response={200: ApplicationOut, **STEP})
def verify_phone(request: HttpRequest, application_id: int, payload: CodeIn) -> Any:
    services.verify_phone(application_id, code=payload.code, actor=request.user)
    return _fresh(request, application_id)


@router.put("/applications/{application_id}/customer", response={200: ApplicationOut, **STEP})
def save_customer(request: HttpRequest, application_id: int, payload: CustomerIn) -> Any:
    services.save_customer(application_id, data=payload.dict(), actor=request.user)
    return _fresh(request, application_id)


@router.put("/applications/{application_id}/vehicle", response={200: ApplicationOut, **STEP})
def save_vehicle(request: HttpRequest, application_id: int, payload: VehicleIn) -> Any:
    services.save_vehicle(application_id, data=payload.dict(), actor=request.user)
    return _fresh(request, application_id)


@router.post(
    "/applications/{application_id}/documents/{kind}", response={200: ApplicationOut, **STEP}
)
def upload_document(
    request: HttpRequest, application_id: int, kind: str, file: File[UploadedFile]
) -> Any:
    """Upload one photo (multipart field `file`): JPEG or PNG, EXIF removed."""
    services.upload_documents(application_id, files={kind: file}, actor=request.user)
    return _fresh(request, application_id)


@router.post("/applications/{application_id}/submit", response={200: DecisionOut, **STEP})
def submit(request: HttpRequest, application_id: int) -> Any:
    """Submit; automatic approval decides at once and lists every reason to refuse."""
    decision = services.submit_application(application_id, actor=request.user)
    return {"approved": decision.approved, "application": _fresh(request, application_id)}


@router.post("/applications/{application_id}/customer-change", response={200: DecisionOut, **STEP})
def review_customer_change(request: HttpRequest, application_id: int, payload: ReviewIn) -> Any:
    """A clerk of the customer's outlet accepts (`accept: true`: the application
    is approved) or refuses (`accept: false` with a `note`: the application goes
    back to its clerk, refused) the customer's name or phone change that an
    application in `review` asks for. The application's own clerk may not."""
    decision = services.review_customer_change(
        application_id, accept=payload.accept, note=payload.note, actor=request.user
    )
    # Decided, the application is the other outlet's again: answered as it stands.
    return {
        "approved": decision.approved,
        "application": application_payload(decision.application, request.user),
    }
