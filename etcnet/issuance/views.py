"""Issuance pages: the application wizard (mobile first), the list and the detail.

Views stay thin: they read the form, call one service, and either move to the
next step or render the same step with the field errors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods, require_POST

from etcnet.core.codes import (
    CustomerType,
    IdDocType,
    PlateColor,
    UseNature,
    VehicleCategory,
    VehicleClass,
    VehicleUserType,
)
from etcnet.core.errors import DomainError, InvalidInput
from etcnet.core.masking import mask_name, mask_phone
from etcnet.core.roles import Role, may_see_personal_data, role_required
from etcnet.issuance import domain, selectors, services
from etcnet.issuance.models import (
    Application,
    ApplicationDocument,
    ApplicationStatus,
    Customer,
    DocumentKind,
)
from etcnet.issuance.services import CUSTOMER_FIELDS, VEHICLE_FIELDS

CLERK = (Role.ISSUANCE_CLERK,)
READERS = (Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR, Role.AUDITOR)
PAGE_SIZE = 25


def _errors(error: DomainError) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for issue in error.issues:
        by_field.setdefault(issue.field, []).append(issue.message)
    return by_field


def _step_page(
    request: HttpRequest,
    template: str,
    application: Application,
    step: str,
    *,
    status: int = 200,
    **context: Any,
) -> TemplateResponse:
    context.setdefault("errors", {})
    context.setdefault("error", None)
    return TemplateResponse(
        request,
        template,
        {
            "application": application,
            "step": step,
            "steps": selectors.step_state(application),
            **context,
        },
        status=status,
    )


def _load_editable(request: HttpRequest, application_id: int) -> Application:
    return selectors.get_application(application_id, viewer=request.user)


def _next_for(application: Application) -> str:
    """The first step not done yet: where a resumed application continues."""
    steps = selectors.step_state(application)
    names = {
        "phone": "issuance:phone",
        "customer": "issuance:customer",
        "id_photo": "issuance:id_photo",
        "vehicle": "issuance:vehicle",
        "vehicle_photos": "issuance:vehicle_photos",
    }
    for step, url_name in names.items():
        if not steps[step]:
            return url_name
    return "issuance:review"


@role_required(*CLERK)
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """Step 1a: the customer's phone (电话验证)."""
    phone = request.POST.get("phone", "")
    if request.method == "POST":
        try:
            application = services.start_application(phone=phone, actor=request.user)
        except DomainError as error:
            return TemplateResponse(
                request,
                "issuance/start.html",
                {"phone": phone, "errors": _errors(error), "error": error.message},
                status=error.status,
            )
        messages.info(request, _("A verification code was sent to the customer's phone."))
        return redirect("issuance:phone", application.pk)
    return TemplateResponse(request, "issuance/start.html", {"phone": "", "errors": {}})


@role_required(*CLERK)
@require_http_methods(["GET", "POST"])
def phone(request: HttpRequest, application_id: int) -> HttpResponse:
    """Step 1b: the SMS code."""
    application = _load_editable(request, application_id)
    if request.method == "POST":
        try:
            if "resend" in request.POST:
                services.resend_phone_code(application.pk, actor=request.user)
                messages.info(request, _("A new code was sent."))
                return redirect("issuance:phone", application.pk)
            services.verify_phone(
                application.pk, code=request.POST.get("code", ""), actor=request.user
            )
        except DomainError as error:
            application.refresh_from_db()
            return _step_page(
                request,
                "issuance/phone.html",
                application,
                "phone",
                errors=_errors(error),
                error=error.message,
                status=error.status,
            )
        return redirect("issuance:customer", application.pk)
    if application.phone_verified_at:
        return redirect(_next_for(application), application.pk)
    return _step_page(request, "issuance/phone.html", application, "phone")


def _choices(enum: Any, *, only: Any = None) -> list[tuple[str, str]]:
    english = (get_language() or "").startswith("en")
    return [
        (str(m.value), m.label_en if english else m.label) for m in enum if only is None or only(m)
    ]


def _form_choices() -> dict[str, Any]:
    return {
        "customer_types": _choices(CustomerType),
        "personal_doc_types": _choices(IdDocType, only=lambda m: not m.for_organization),
        "org_doc_types": _choices(IdDocType, only=lambda m: m.for_organization),
        "plate_colors": _choices(PlateColor),
        "categories": _choices(VehicleCategory),
        "toll_classes": _choices(VehicleClass),
        "user_types": _choices(VehicleUserType),
        "use_natures": _choices(UseNature),
    }


def _values(application: Application, fields: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for name in fields:
        value = getattr(application, name)
        if isinstance(value, dt.date):
            value = value.isoformat()
        values[name] = "" if value is None else str(value)
    return values


@role_required(*CLERK)
@require_http_methods(["GET", "POST"])
def customer(request: HttpRequest, application_id: int) -> HttpResponse:
    """Step 2: customer information, personal or organization (客户信息)."""
    application = _load_editable(request, application_id)
    if request.method == "POST":
        data = {name: request.POST.get(name, "") for name in CUSTOMER_FIELDS}
        try:
            services.save_customer(application.pk, data=data, actor=request.user)
        except DomainError as error:
            return _step_page(
                request,
                "issuance/customer.html",
                application,
                "customer",
                values=data,
                errors=_errors(error),
                error=error.message,
                status=error.status,
                **_form_choices(),
            )
        return redirect("issuance:id_photo", application.pk)
    values = _values(application, CUSTOMER_FIELDS)
    values["customer_type"] = values["customer_type"] or str(CustomerType.PERSONAL.value)
    return _step_page(
        request, "issuance/customer.html", application, "customer", values=values, **_form_choices()
    )


@role_required(*CLERK)
def customer_lookup(request: HttpRequest) -> HttpResponse:
    """htmx: tells the clerk whether the document number belongs to a customer
    already (the vehicle will be attached to that customer)."""
    id_type = request.GET.get("id_type", "")
    id_number = request.GET.get("id_number", "").strip().upper()
    found = None
    if id_type.isdigit() and id_number:
        found = Customer.objects.filter(id_type=int(id_type), id_number=id_number).first()
    return TemplateResponse(request, "issuance/_customer_lookup.html", {"found": found})


def _photo_step(
    request: HttpRequest, application_id: int, *, step: str, kinds: list[str], next_url: str
) -> HttpResponse:
    application = _load_editable(request, application_id)
    template = "issuance/photos.html"
    if request.method == "POST":
        files = {kind: upload for kind in kinds if (upload := request.FILES.get(kind)) is not None}
        try:
            if files:
                services.upload_documents(application.pk, files=files, actor=request.user)
            missing = [k for k in kinds if not application.documents.filter(kind=k).exists()]
            if missing:
                raise InvalidInput(issues=[domain.document_missing_issue(k) for k in missing])
        except DomainError as error:
            return _step_page(
                request,
                template,
                application,
                step,
                kinds=_kind_rows(application, kinds),
                errors=_errors(error),
                error=error.message,
                status=error.status,
            )
        return redirect(next_url, application.pk)
    return _step_page(request, template, application, step, kinds=_kind_rows(application, kinds))


def _kind_rows(application: Application, kinds: list[str]) -> list[dict[str, Any]]:
    existing = selectors.documents_by_kind(application)
    return [
        {"kind": kind, "label": DocumentKind(kind).label, "document": existing.get(kind)}
        for kind in kinds
    ]


@role_required(*CLERK)
@require_http_methods(["GET", "POST"])
def id_photo(request: HttpRequest, application_id: int) -> HttpResponse:
    """Step 3: the ID document photo (and the entrust letter for an organization)."""
    application = _load_editable(request, application_id)
    if not application.customer_saved_at:
        return redirect("issuance:customer", application.pk)
    kinds = ["id_photo"] + (["entrust_letter"] if application.is_organization else [])
    return _photo_step(
        request, application_id, step="id_photo", kinds=kinds, next_url="issuance:vehicle"
    )


@role_required(*CLERK)
@require_http_methods(["GET", "POST"])
def vehicle(request: HttpRequest, application_id: int) -> HttpResponse:
    """Step 4: vehicle information (车辆信息)."""
    application = _load_editable(request, application_id)
    if request.method == "POST":
        data: dict[str, Any] = {name: request.POST.get(name, "") for name in VEHICLE_FIELDS}
        data["vin_imported"] = request.POST.get("vin_imported") == "on"
        try:
            services.save_vehicle(application.pk, data=data, actor=request.user)
        except DomainError as error:
            return _step_page(
                request,
                "issuance/vehicle.html",
                application,
                "vehicle",
                values={
                    k: ("on" if v is True else "" if v is False else v) for k, v in data.items()
                },
                errors=_errors(error),
                error=error.message,
                status=error.status,
                **_form_choices(),
            )
        return redirect("issuance:vehicle_photos", application.pk)
    values = _values(application, VEHICLE_FIELDS)
    values["vin_imported"] = "on" if application.vin_imported else ""
    if not application.vehicle_saved_at:
        values["contact_phone"] = values["contact_phone"] or application.phone
        values["contact_name"] = values["contact_name"] or (
            application.agent_name if application.is_organization else application.name
        )
        values["owner_name"] = values["owner_name"] or application.name
        values["user_type"] = values["user_type"] or "0"
    return _step_page(
        request, "issuance/vehicle.html", application, "vehicle", values=values, **_form_choices()
    )


@role_required(*CLERK)
@require_http_methods(["GET", "POST"])
def vehicle_photos(request: HttpRequest, application_id: int) -> HttpResponse:
    """Step 5: driving licence main and supplementary pages, vehicle head photo."""
    return _photo_step(
        request,
        application_id,
        step="vehicle_photos",
        kinds=["licence_main", "licence_supplement", "vehicle_head"],
        next_url="issuance:review",
    )


@role_required(*CLERK)
@require_http_methods(["GET"])
def review(request: HttpRequest, application_id: int) -> HttpResponse:
    """Step 6: materials review (资料上传): read-only, with links back to each step."""
    application = _load_editable(request, application_id)
    if not application.is_editable:
        return redirect("issuance:detail", application.pk)
    return _step_page(
        request,
        "issuance/review.html",
        application,
        "review",
        documents=selectors.documents_by_kind(application),
        reasons=selectors.refusal_issues(application),
        show_personal=True,
    )


@role_required(*CLERK)
@require_POST
def submit(request: HttpRequest, application_id: int) -> HttpResponse:
    try:
        decision = services.submit_application(application_id, actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
        for issue in error.issues:
            messages.error(request, issue.message)
        return redirect("issuance:review", application_id)
    if decision.approved:
        messages.success(
            request, _("Approved automatically: the application waits for card and OBU issuance.")
        )
    elif decision.application.status == ApplicationStatus.REVIEW:
        messages.warning(
            request,
            _(
                "The customer's name or phone differs from the record: the application "
                "waits for a review at the customer's outlet."
            ),
        )
    else:
        messages.error(request, _("Refused: correct the reasons below and submit again."))
    return redirect("issuance:detail", application_id)


@role_required(*READERS)
def application_list(request: HttpRequest) -> HttpResponse:
    """Applications with filters (status, date, plate) and search; personal data masked."""
    get = request.GET
    issues: dict[str, str] = {}

    def date(name: str) -> dt.date | None:
        value = get.get(name, "").strip()
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            issues[name] = _("Enter a date as YYYY-MM-DD.")
            return None

    filters = selectors.ApplicationFilter(
        status=get.get("status", ""),
        plate=get.get("plate", ""),
        date_from=date("date_from"),
        date_to=date("date_to"),
        q=get.get("q", ""),
    )
    qs = selectors.application_list(filters, viewer=request.user)
    try:
        page = max(1, int(get.get("page", "1")))
    except ValueError:
        page = 1
    total = qs.count()
    rows = list(qs[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    query = get.copy()
    query.pop("page", None)
    htmx = getattr(request, "htmx", False)
    template = "issuance/_list_rows.html" if htmx else "issuance/list.html"
    return TemplateResponse(
        request,
        template,
        {
            "rows": rows,
            "filters": filters,
            "statuses": ApplicationStatus.choices,
            "errors": issues,
            "page": page,
            "total": total,
            "has_next": page * PAGE_SIZE < total,
            "query": query.urlencode(),
        },
    )


def _detail_page(
    request: HttpRequest, application: Application, *, status: int = 200, **context: Any
) -> TemplateResponse:
    show_personal = may_see_personal_data(request.user)
    masks = {"name": mask_name, "phone": mask_phone}
    changes = [
        {
            "field": name,
            "label": CHANGE_LABELS.get(name, name),
            "old": old if show_personal else masks[name](old),
            "new": new if show_personal else masks[name](new),
        }
        for name, (old, new) in (application.customer_changes or {}).items()
    ]
    customer = application.existing_customer
    context.setdefault("errors", {})
    return TemplateResponse(
        request,
        "issuance/detail.html",
        {
            "application": application,
            "documents": selectors.documents_by_kind(application),
            "reasons": selectors.refusal_issues(application),
            "history": selectors.audit_history(application),
            "show_personal": show_personal,
            "steps": selectors.step_state(application),
            "changes": changes,
            "review_outlet": selectors.review_outlet(customer, application) if customer else None,
            "can_review": selectors.may_review(application, request.user),
            **context,
        },
        status=status,
    )


CHANGE_LABELS = {"name": _lazy("Name"), "phone": _lazy("Phone")}


@role_required(*READERS)
def detail(request: HttpRequest, application_id: int) -> HttpResponse:
    """The application with its documents, decision and audit history (and, while
    it waits for a review of the customer's changes, the old and new values)."""
    application = selectors.get_application(application_id, viewer=request.user)
    return _detail_page(request, application)


@role_required(*CLERK)
@require_POST
def customer_change(request: HttpRequest, application_id: int) -> HttpResponse:
    """A clerk of the customer's outlet accepts or refuses the change of the
    customer's name or phone that the application asks for."""
    application = selectors.get_application(application_id, viewer=request.user)
    accept = request.POST.get("decision") == "accept"
    note = request.POST.get("note", "")
    try:
        decision = services.review_customer_change(
            application.pk, accept=accept, note=note, actor=request.user
        )
    except DomainError as error:
        if not error.issues:
            messages.error(request, error.message)
        return _detail_page(
            request,
            application,
            status=error.status,
            errors=_errors(error),
            note=note,
        )
    if decision.approved:
        messages.success(request, _("The change was accepted and the application approved."))
    else:
        messages.info(request, _("The change was refused; the application went back to its clerk."))
    # Decided, another outlet's application is no longer this clerk's to see.
    if selectors.visible_applications(request.user).filter(pk=application.pk).exists():
        return redirect("issuance:detail", application.pk)
    return redirect(f"{reverse('issuance:list')}?status={ApplicationStatus.REVIEW}")


def _file_response(document: ApplicationDocument, *, thumbnail: bool) -> HttpResponseBase:
    field = document.thumbnail if thumbnail else document.file
    response = FileResponse(field.open("rb"), content_type=document.content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _document_response(
    request: HttpRequest, application_id: int, kind: str, *, thumbnail: bool
) -> HttpResponseBase:
    # ID and licence photos are personal data in full: a role that sees it masked
    # (the auditor) gets them only through the audited reveal below.
    if not may_see_personal_data(request.user):
        return TemplateResponse(
            request,
            "core/forbidden.html",
            {
                "message": _(
                    "Document photos show personal data: reveal one with a reason, "
                    "which is recorded."
                )
            },
            status=403,
        )
    application = selectors.get_application(application_id, viewer=request.user)
    document = application.documents.filter(kind=kind).first()
    if document is None:
        raise Http404()
    return _file_response(document, thumbnail=thumbnail)


@role_required(*READERS)
def document(request: HttpRequest, application_id: int, kind: str) -> HttpResponseBase:
    """A document photo: personal data, so only for the roles that may see it."""
    return _document_response(request, application_id, kind, thumbnail=False)


@role_required(*READERS)
def document_thumbnail(request: HttpRequest, application_id: int, kind: str) -> HttpResponseBase:
    return _document_response(request, application_id, kind, thumbnail=True)


@role_required(Role.AUDITOR)
@require_POST
def document_reveal(request: HttpRequest, application_id: int, kind: str) -> HttpResponseBase:
    """An auditor's explicit, audited look at one document photo (with a reason)."""
    try:
        found = services.reveal_document(
            application_id, kind=kind, reason=request.POST.get("reason", ""), actor=request.user
        )
    except DomainError as error:
        messages.error(request, error.message)
        for issue in error.issues:
            messages.error(request, issue.message)
        if error.status == 404:
            raise Http404() from None
        return redirect("issuance:detail", application_id)
    return _file_response(found, thumbnail=False)
