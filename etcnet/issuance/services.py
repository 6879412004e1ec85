"""Issuance services: every state change of an application, customer or vehicle.

Each top-level service is one durable transaction that locks the application
row it changes, writes its audit events inside that transaction, and defers
file clean-up to `on_commit`. Refused input raises an `InvalidInput` before
anything is written, so a bad request leaves no row, no file and no event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.sms import count_code, send_sms
from etcnet.core.validators import check_mobile, gettext_noop
from etcnet.issuance import domain, images, selectors
from etcnet.issuance.errors import (
    NotEditable,
    PhoneNotVerified,
    StepIncomplete,
)
from etcnet.issuance.models import (
    LIVE_VEHICLE,
    Application,
    ApplicationDocument,
    ApplicationStatus,
    Customer,
    DocumentKind,
    OutletMembership,
    PhoneVerification,
    Vehicle,
    VehicleStatus,
)

CUSTOMER_FIELDS = (
    "customer_type",
    "name",
    "id_type",
    "id_number",
    "address",
    "department",
    "agent_name",
    "agent_id_type",
    "agent_id_number",
)
VEHICLE_FIELDS = (
    "plate",
    "plate_color",
    "category",
    "toll_class",
    "user_type",
    "use_nature",
    "brand_model",
    "vin",
    "vin_imported",
    "engine_no",
    "register_date",
    "issue_date",
    "owner_name",
    "seats",
    "length_mm",
    "width_mm",
    "height_mm",
    "total_mass_kg",
    "curb_mass_kg",
    "approved_load_kg",
    "axles",
    "wheels",
    "contact_name",
    "contact_phone",
)


def _require_clerk(actor: Any) -> None:
    if not has_role(actor, Role.ISSUANCE_CLERK):
        raise Forbidden()


def _lock(application_id: int, actor: Any) -> Application:
    """The application row, locked — only for a clerk of the outlet that holds it."""
    try:
        # Lock the application row only, not the joined outlet rows.
        return Application.objects.select_for_update(of=("self",)).get(
            pk=application_id, outlet__members__user=actor
        )
    except Application.DoesNotExist:
        raise NotFound(gettext_noop("Application not found.")) from None


def _lock_editable(application_id: int, actor: Any) -> Application:
    application = _lock(application_id, actor)
    if not application.is_editable:
        raise NotEditable()
    return application


def _snapshot(application: Application, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(application, name) for name in fields}


def _reopen(application: Application) -> None:
    """Editing a refused application puts it back in progress; its reasons stay
    visible in the audit trail but no longer stand."""
    if application.status == ApplicationStatus.REFUSED:
        application.status = ApplicationStatus.DRAFT
        application.refusal_reasons = []


def _save_step(
    application: Application,
    fields: tuple[str, ...],
    values: Mapping[str, Any],
    *,
    action: str,
    actor: Any,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Writes a step's values into the (locked) application and audits what changed."""
    tracked = (*fields, "status")
    before = _snapshot(application, tracked)
    for name, value in values.items():
        setattr(application, name, value)
    _reopen(application)
    application.save()
    old, new = audit.changes(before, _snapshot(application, tracked))
    audit.record(
        actor=actor, action=action, subject=application, before=old, after={**new, **(extra or {})}
    )


def _code_digest(application_id: int, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{application_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _send_code(application: Application, now: dt.datetime) -> None:
    # One limit per mobile number for every application's codes (plates too).
    count_code(application.phone, now=now)
    code = f"{secrets.randbelow(1_000_000):06d}"
    ttl = settings.ETCNET_SMS_CODE_TTL_SECONDS
    PhoneVerification.objects.create(
        application=application,
        phone=application.phone,
        code_digest=_code_digest(application.pk, code),
        sent_at=now,
        expires_at=now + dt.timedelta(seconds=ttl),
    )
    text = gettext(
        "ETC application {number}: your verification code is {code}, valid {minutes} minutes."
    ).format(number=application.number, code=code, minutes=ttl // 60)
    phone = application.phone
    # The message leaves only once the code is safely stored.
    transaction.on_commit(lambda: send_sms(phone, text))


def start_application(*, phone: str, actor: Any) -> Application:
    """Step 1a: open an application for the customer's phone and text it a code.

    Precondition: the actor is an issuance clerk assigned to an outlet.
    Audits `issuance.application_started`.
    """
    _require_clerk(actor)
    checked = check_mobile(phone or "")
    if not checked.valid:
        raise InvalidInput(
            issues=[FieldIssue.from_issue("phone", issue) for issue in checked.errors]
        )
    membership = OutletMembership.objects.filter(user=actor).select_related("outlet").first()
    if membership is None or not membership.outlet.is_active:
        raise Forbidden(
            gettext_noop("You are not assigned to an active service outlet."), code="no_outlet"
        )
    with transaction.atomic(durable=True):
        now = timezone.now()
        application = Application.objects.create(
            outlet=membership.outlet, created_by=actor, phone=checked.normalized or phone
        )
        _send_code(application, now)
        audit.record(
            actor=actor,
            action="issuance.application_started",
            subject=application,
            after={"phone": application.phone, "outlet": membership.outlet.code},
        )
    return application


def resend_phone_code(application_id: int, *, actor: Any) -> None:
    """Step 1a again: a new code, once the resend interval has passed.

    Audits `issuance.phone_code_sent`.
    """
    _require_clerk(actor)
    with transaction.atomic(durable=True):
        application = _lock_editable(application_id, actor)
        if application.phone_verified_at:
            raise Conflict(gettext_noop("The phone is already verified."), code="phone_verified")
        now = timezone.now()
        last = application.phone_verifications.first()
        wait = settings.ETCNET_SMS_RESEND_SECONDS
        if last and (now - last.sent_at).total_seconds() < wait:
            raise Conflict(
                gettext_noop("Wait {seconds} seconds before sending another code."),
                code="resend_too_soon",
                params={"seconds": wait - int((now - last.sent_at).total_seconds())},
            )
        _send_code(application, now)
        audit.record(
            actor=actor,
            action="issuance.phone_code_sent",
            subject=application,
            after={"phone": application.phone},
        )


def verify_phone(application_id: int, *, code: str, actor: Any) -> Application:
    """Step 1b: check the SMS code (valid for the configured minutes, a limited
    number of tries).

    A wrong code only counts the try: nothing else changes and nothing is
    audited. Audits `issuance.phone_verified` on success.
    """
    _require_clerk(actor)
    code = (code or "").strip()
    failure: InvalidInput | None = None
    with transaction.atomic(durable=True):
        application = _lock_editable(application_id, actor)
        if application.phone_verified_at:
            return application
        verification = application.phone_verifications.select_for_update().first()
        now = timezone.now()
        if not code:
            raise InvalidInput(issues=[FieldIssue("code", "required", domain.REQUIRED)])
        if verification is None or verification.expires_at <= now:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "code",
                        "code_expired",
                        gettext_noop("The code has expired; send a new one."),
                    )
                ]
            )
        if verification.attempts >= settings.ETCNET_SMS_CODE_MAX_TRIES:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "code",
                        "code_tries_exhausted",
                        gettext_noop("Too many wrong codes; send a new one."),
                    )
                ]
            )
        if not hmac.compare_digest(verification.code_digest, _code_digest(application.pk, code)):
            verification.attempts += 1
            verification.save(update_fields=["attempts"])
            left = settings.ETCNET_SMS_CODE_MAX_TRIES - verification.attempts
            failure = InvalidInput(
                issues=[
                    FieldIssue(
                        "code",
                        "code_wrong",
                        gettext_noop("The code is wrong; {left} tries left."),
                        {"left": left},
                    )
                ]
            )
        else:
            verification.verified_at = now
            verification.save(update_fields=["verified_at"])
            application.phone_verified_at = now
            application.save(update_fields=["phone_verified_at", "updated_at"])
            audit.record(
                actor=actor,
                action="issuance.phone_verified",
                subject=application,
                after={"phone": application.phone},
            )
    # Raised after the commit so the counted try survives.
    if failure is not None:
        raise failure
    return application


def _require_phone(application: Application) -> None:
    if not application.phone_verified_at:
        raise PhoneNotVerified()


def save_customer(application_id: int, *, data: Mapping[str, Any], actor: Any) -> Application:
    """Step 2: the customer (personal or organization).

    The system, not the clerk, tells a new customer from an existing one: the
    document number is looked up and the application remembers the match.
    Audits `issuance.customer_step_saved` with the changed fields.
    """
    _require_clerk(actor)
    customer, issues = domain.parse_customer(data)
    if customer is None:
        raise InvalidInput(issues=issues)
    with transaction.atomic(durable=True):
        application = _lock_editable(application_id, actor)
        _require_phone(application)
        application.existing_customer = Customer.objects.filter(
            id_type=customer.id_type, id_number=customer.id_number
        ).first()
        application.customer_saved_at = timezone.now()
        _save_step(
            application,
            CUSTOMER_FIELDS,
            customer.as_fields(),
            action="issuance.customer_step_saved",
            actor=actor,
            extra={"existing_customer": application.existing_customer_id},
        )
    return application


def _plate_bound_elsewhere(plate: str, color: int, application: Application) -> bool:
    live = Vehicle.objects.filter(LIVE_VEHICLE, plate=plate, plate_color=color)
    if application.vehicle_id:
        live = live.exclude(pk=application.vehicle_id)
    return live.exists()


def save_vehicle(application_id: int, *, data: Mapping[str, Any], actor: Any) -> Application:
    """Step 4: the vehicle.

    A plate + colour that already has a live binding is refused here, early.
    An imported vehicle's VIN with a wrong check digit is accepted only when the
    clerk marked it imported, and that waiver is audited
    (`issuance.vin_check_digit_waived`). Audits `issuance.vehicle_step_saved`.
    """
    _require_clerk(actor)
    vehicle, issues = domain.parse_vehicle(data, today=timezone.localdate())
    if vehicle is None:
        raise InvalidInput(issues=issues)
    with transaction.atomic(durable=True):
        application = _lock_editable(application_id, actor)
        _require_phone(application)
        if _plate_bound_elsewhere(vehicle.plate, int(vehicle.plate_color), application):
            raise InvalidInput(issues=[domain.plate_bound_issue()])
        application.vehicle_saved_at = timezone.now()
        _save_step(
            application,
            VEHICLE_FIELDS,
            vehicle.as_fields(),
            action="issuance.vehicle_step_saved",
            actor=actor,
        )
        if vehicle.vin_check_digit_waived:
            audit.record(
                actor=actor,
                action="issuance.vin_check_digit_waived",
                subject=application,
                after={"vin": vehicle.vin, "imported": True},
            )
    return application


def upload_documents(
    application_id: int, *, files: Mapping[str, UploadedFile], actor: Any
) -> list[ApplicationDocument]:
    """Steps 3 and 5: photos. Every file is checked before any is stored, so one
    bad file in a batch stores none. A new photo of a kind replaces the old one;
    the old files are removed only after the commit.

    Audits `issuance.document_uploaded` per photo.
    """
    _require_clerk(actor)
    if not files:
        raise InvalidInput(
            issues=[FieldIssue("file", "required", gettext_noop("Choose a photo to upload."))]
        )
    issues = []
    prepared: dict[str, images.PreparedImage] = {}
    valid_kinds = set(DocumentKind.values)
    for kind, upload in files.items():
        if kind not in valid_kinds:
            issues.append(FieldIssue(kind, "invalid_choice", domain.NOT_A_CHOICE))
            continue
        result = images.prepare(upload)
        if isinstance(result, FieldIssue):
            issues.append(FieldIssue(kind, result.code, result.template, result.params))
        else:
            prepared[kind] = result
    if issues:
        raise InvalidInput(issues=issues)

    stored: list[str] = []
    try:
        with transaction.atomic(durable=True):
            application = _lock_editable(application_id, actor)
            _require_phone(application)
            documents = []
            now = timezone.now()
            for kind, image in prepared.items():
                document = ApplicationDocument.objects.filter(
                    application=application, kind=kind
                ).first()
                old_files = [document.file.name, document.thumbnail.name] if document else []
                if document is None:
                    document = ApplicationDocument(application=application, kind=kind)
                token = secrets.token_hex(8)
                document.file.save(f"{kind}-{token}.{image.extension}", image.content, save=False)
                document.thumbnail.save(
                    f"{kind}-{token}-thumb.{image.extension}", image.thumbnail, save=False
                )
                stored += [document.file.name, document.thumbnail.name]
                document.content_type = image.content_type
                document.size_bytes = image.size
                document.width, document.height = image.width, image.height
                document.sha256 = image.sha256
                document.original_name = image.original_name
                document.uploaded_by = actor
                document.uploaded_at = now
                document.save()
                documents.append(document)
                if old_files:
                    transaction.on_commit(partial(images.delete_files, old_files))
                audit.record(
                    actor=actor,
                    action="issuance.document_uploaded",
                    subject=application,
                    after={
                        "kind": kind,
                        "sha256": image.sha256,
                        "size": image.size,
                        "replaced": bool(old_files),
                    },
                )
            _reopen(application)
            application.save(update_fields=["status", "refusal_reasons", "updated_at"])
    except BaseException:
        # Nothing of a failed upload may stay behind, not even its files.
        images.delete_files(stored)
        raise
    return documents


def reveal_document(
    application_id: int, *, kind: str, reason: str, actor: Any
) -> ApplicationDocument:
    """An auditor's explicit look at one document photo, which his role otherwise
    sees masked (refused). The reason is required. Audits
    `issuance.document_revealed`: who (the actor), what (application, kind, the
    photo's sha256) and why (the reason). Changes nothing else."""
    if not has_role(actor, Role.AUDITOR):
        raise Forbidden()
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "reason",
                    "required",
                    gettext_noop("Give the reason for revealing the photo; it is recorded."),
                )
            ]
        )
    if len(reason) > 200:
        raise InvalidInput(issues=[FieldIssue("reason", "too_long", domain.TOO_LONG, {"max": 200})])
    with transaction.atomic(durable=True):
        application = selectors.get_application(application_id, viewer=actor)
        document = application.documents.filter(kind=kind).first()
        if document is None:
            raise NotFound(gettext_noop("Document not found."))
        audit.record(
            actor=actor,
            action="issuance.document_revealed",
            subject=application,
            after={"kind": kind, "sha256": document.sha256, "reason": reason},
        )
    return document


class PlateTaken(Exception):
    """The live-plate unique index refused the vehicle: another approval won."""


class NeedsReview(Exception):
    """A concurrent approval created the customer with another name or phone."""

    def __init__(self, customer: Customer, changes: dict[str, list[str]]) -> None:
        super().__init__(customer.pk)
        self.customer, self.changes = customer, changes


@dataclass(frozen=True)
class Decision:
    application: Application
    approved: bool


def submit_application(application_id: int, *, actor: Any) -> Decision:
    """Step 6: submit, and let automatic approval decide at once.

    Preconditions: phone verified, customer and vehicle steps saved (otherwise
    `step_incomplete` and nothing changes). Approval creates or updates the
    customer recognised by document type and number, registers the vehicle as
    awaiting issuance, and audits `issuance.application_approved`,
    `issuance.customer_created` or `issuance.customer_updated`, and
    `issuance.vehicle_registered`. A refusal stores every reason and audits
    `issuance.application_refused`. Submitting an approved application again
    returns it unchanged.

    An existing customer's name or phone is never changed silently: when the
    application carries another name or phone, it waits in REVIEW for a clerk
    of the customer's outlet (`review_customer_change`) and audits
    `issuance.customer_change_requested` with the old and new values; nothing
    else changes. Submitting it again while it waits returns it unchanged.
    """
    _require_clerk(actor)
    with transaction.atomic(durable=True):
        application = _lock(application_id, actor)
        if application.status == ApplicationStatus.APPROVED:
            return Decision(application, True)
        if application.status == ApplicationStatus.REVIEW:
            return Decision(application, False)
        missing = [
            step
            for step, done in (
                ("phone", application.phone_verified_at),
                ("customer", application.customer_saved_at),
                ("vehicle", application.vehicle_saved_at),
            )
            if not done
        ]
        if missing:
            raise StepIncomplete(missing=missing)
        documents = set(application.documents.values_list("kind", flat=True))
        absent = [
            k for k in domain.required_documents(application.customer_type) if k not in documents
        ]
        if absent:
            raise InvalidInput(
                gettext_noop("Required photos are missing; upload them before submitting."),
                code="documents_missing",
                issues=[domain.document_missing_issue(kind) for kind in absent],
            )
        now = timezone.now()
        application.submitted_at = now
        application.decided_at = now
        customer_raw = _snapshot(application, CUSTOMER_FIELDS)
        vehicle_raw = {
            **_snapshot(application, VEHICLE_FIELDS),
            "register_date": application.register_date.isoformat()
            if application.register_date
            else "",
            "issue_date": application.issue_date.isoformat() if application.issue_date else "",
        }
        issues = domain.approval_issues(
            customer_raw=customer_raw,
            vehicle_raw=vehicle_raw,
            phone_verified=bool(application.phone_verified_at),
            documents=documents,
            plate_bound_elsewhere=_plate_bound_elsewhere(
                application.plate, application.plate_color or 0, application
            ),
            today=timezone.localdate(),
        )
        if not issues:
            found, changes = _customer_changes(application)
            if found is not None and changes:
                _hold_for_review(application, found, changes, actor)
                return Decision(application, False)
        if not issues:
            try:
                with transaction.atomic():
                    _approve(application, actor)
            except PlateTaken:
                # Another clerk's approval took this plate between our check and
                # our insert; the partial unique index decided.
                issues = [domain.plate_bound_issue()]
            except NeedsReview as review:
                _hold_for_review(application, review.customer, review.changes, actor)
                return Decision(application, False)
        if issues:
            application.status = ApplicationStatus.REFUSED
            application.refusal_reasons = [issue.as_record() for issue in issues]
            application.save()
            audit.record(
                actor=actor,
                action="issuance.application_refused",
                subject=application,
                after={"reasons": [issue.code for issue in issues]},
            )
            return Decision(application, False)
    return Decision(application, True)


# The customer's values that another outlet's application may not change
# without a review at the customer's outlet.
REVIEWED_FIELDS = ("name", "phone")


def _customer_changes(
    application: Application,
) -> tuple[Customer | None, dict[str, list[str]]]:
    """The existing customer with this document, and its reviewed values that the
    application would change: `{"name": [old, new], ...}`."""
    customer = (
        Customer.objects.select_for_update(of=("self",))
        .select_related("outlet")
        .filter(id_type=int(application.id_type or 0), id_number=application.id_number)
        .first()
    )
    if customer is None:
        return None, {}
    changes = {
        name: [getattr(customer, name), getattr(application, name)]
        for name in REVIEWED_FIELDS
        if getattr(customer, name) != getattr(application, name)
    }
    return customer, changes


def _hold_for_review(
    application: Application, customer: Customer, changes: dict[str, list[str]], actor: Any
) -> None:
    outlet = selectors.review_outlet(customer, application)
    application.status = ApplicationStatus.REVIEW
    application.existing_customer = customer
    application.customer_changes = changes
    application.refusal_reasons = []
    application.decided_at = None
    application.reviewed_by, application.reviewed_at, application.review_note = None, None, ""
    application.save()
    audit.record(
        actor=actor,
        action="issuance.customer_change_requested",
        subject=application,
        before={name: old for name, (old, _new) in changes.items()},
        after={
            **{name: new for name, (_old, new) in changes.items()},
            "customer": customer.pk,
            "review_outlet": outlet.code,
        },
    )


CHANGE_REFUSED = gettext_noop(
    "The customer's outlet did not accept the change of name or phone: {note}"
)


def review_customer_change(
    application_id: int, *, accept: bool, note: str = "", actor: Any
) -> Decision:
    """A clerk of the customer's outlet reviews the name or phone change that an
    application (of any outlet) asks for.

    Preconditions: the application waits in REVIEW; the actor is an issuance
    clerk of the customer's outlet and did not take the application (four eyes);
    a refusal gives its reason in `note`. Accepting runs the approval (the
    customer's values are applied and `issuance.customer_updated` audits the old
    and new ones; a plate taken meanwhile refuses the application). Refusing
    puts the application back to the clerk, refused with the reviewer's reason.
    Audits `issuance.customer_change_accepted` or `issuance.customer_change_refused`
    with the old and new values and the note.
    """
    _require_clerk(actor)
    note = (note or "").strip()
    if not accept and not note:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "note",
                    "required",
                    gettext_noop("Give the reason for refusing the change."),
                )
            ]
        )
    if len(note) > 200:
        raise InvalidInput(issues=[FieldIssue("note", "too_long", domain.TOO_LONG, {"max": 200})])
    with transaction.atomic(durable=True):
        application = (
            Application.objects.select_for_update(of=("self",))
            .select_related("existing_customer__outlet", "outlet")
            .filter(pk=application_id, status=ApplicationStatus.REVIEW)
            .first()
        )
        customer = application.existing_customer if application else None
        if application is None or customer is None:
            raise NotFound(gettext_noop("Application not found."))
        outlet = selectors.review_outlet(customer, application)
        if not outlet.members.filter(user=actor).exists():
            if application.outlet.members.filter(user=actor).exists():
                raise Forbidden(
                    gettext_noop("Only a clerk of the customer's outlet reviews this change."),
                    code="not_reviewer",
                )
            raise NotFound(gettext_noop("Application not found."))
        if application.created_by_id == actor.pk:
            raise Forbidden(
                gettext_noop(
                    "Another clerk of the customer's outlet reviews the changes "
                    "your own application asks for."
                ),
                code="own_application",
            )
        changes = application.customer_changes
        now = timezone.now()
        application.reviewed_by, application.reviewed_at = actor, now
        application.review_note = note
        audit.record(
            actor=actor,
            action="issuance.customer_change_accepted"
            if accept
            else "issuance.customer_change_refused",
            subject=application,
            before={name: old for name, (old, _new) in changes.items()},
            after={
                **{name: new for name, (_old, new) in changes.items()},
                "customer": customer.pk,
                "note": note,
            },
        )
        if accept:
            application.decided_at = now
            try:
                with transaction.atomic():
                    _approve(application, actor)
                return Decision(application, True)
            except PlateTaken:
                issues = [domain.plate_bound_issue()]
        else:
            field = next(iter(changes), "name")
            issues = [FieldIssue(field, "customer_change_refused", CHANGE_REFUSED, {"note": note})]
        application.status = ApplicationStatus.REFUSED
        application.decided_at = now
        application.refusal_reasons = [issue.as_record() for issue in issues]
        application.save()
        if accept:  # accepted, but the plate went to another vehicle meanwhile
            audit.record(
                actor=actor,
                action="issuance.application_refused",
                subject=application,
                after={"reasons": [issue.code for issue in issues]},
            )
    return Decision(application, False)


def _approve(application: Application, actor: Any) -> None:
    # Approval runs only after the customer step was parsed and saved.
    id_type = int(application.id_type or 0)
    customer_values = {
        "customer_type": application.customer_type,
        "name": application.name,
        "phone": application.phone,
        "address": application.address,
        "department": application.department,
        "agent_name": application.agent_name,
        "agent_id_type": application.agent_id_type,
        "agent_id_number": application.agent_id_number,
    }
    customer = (
        Customer.objects.select_for_update()
        .filter(id_type=id_type, id_number=application.id_number)
        .first()
    )
    created = False
    if customer is None:
        try:
            with transaction.atomic():
                customer = Customer.objects.create(
                    id_type=id_type,
                    id_number=application.id_number,
                    outlet=application.outlet,
                    **customer_values,
                )
                created = True
        except IntegrityError:
            # A concurrent approval created the same customer first: use it.
            customer = Customer.objects.select_for_update().get(
                id_type=id_type, id_number=application.id_number
            )
    if not created and application.status != ApplicationStatus.REVIEW:
        # The customer may have been created after submit_application looked
        # (another approval committed in between): its name or phone is still
        # never changed without a review.
        changes = {
            name: [getattr(customer, name), customer_values[name]]
            for name in REVIEWED_FIELDS
            if getattr(customer, name) != customer_values[name]
        }
        if changes:
            raise NeedsReview(customer, changes)
    if created:
        audit.record(
            actor=actor,
            action="issuance.customer_created",
            subject=customer,
            after={"id_type": customer.id_type, "id_number": customer.id_number, **customer_values},
        )
    else:
        before = {name: getattr(customer, name) for name in customer_values}
        for name, value in customer_values.items():
            setattr(customer, name, value)
        customer.save()
        old, new = audit.changes(before, customer_values)
        if new:
            audit.record(
                actor=actor,
                action="issuance.customer_updated",
                subject=customer,
                before=old,
                after=new,
            )
    vehicle_values = {name: getattr(application, name) for name in VEHICLE_FIELDS}
    try:
        with transaction.atomic():
            vehicle = Vehicle.objects.create(
                customer=customer, status=VehicleStatus.AWAITING_ISSUANCE, **vehicle_values
            )
    except IntegrityError as error:
        raise PlateTaken() from error
    audit.record(
        actor=actor,
        action="issuance.vehicle_registered",
        subject=vehicle,
        after={"customer": customer.pk, "status": vehicle.status, **vehicle_values},
    )
    application.customer = customer
    application.vehicle = vehicle
    application.status = ApplicationStatus.APPROVED
    application.refusal_reasons = []
    application.save()
    audit.record(
        actor=actor,
        action="issuance.application_approved",
        subject=application,
        after={"customer": customer.pk, "vehicle": vehicle.pk},
    )
