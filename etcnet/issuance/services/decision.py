"""Submission and its decision: automatic approval or refusal with every
reason, and the review at the customer's outlet of a changed name or phone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.errors import FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.validators import gettext_noop
from etcnet.issuance import domain, selectors
from etcnet.issuance.errors import (
    StepIncomplete,
)
from etcnet.issuance.models import (
    Application,
    ApplicationStatus,
    Customer,
    Vehicle,
    VehicleStatus,
)
from etcnet.issuance.services._common import (
    CUSTOMER_FIELDS,
    VEHICLE_FIELDS,
    _lock,
    _require_clerk,
    _snapshot,
)
from etcnet.issuance.services.steps import _plate_bound_elsewhere


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
