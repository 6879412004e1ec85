"""The vehicle office: registration of pre-selected numbers, local records."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import check_document, check_mobile, check_vin, gettext_noop
from etcnet.plates import selectors
from etcnet.plates.models import (
    BlacklistReason,
    LocalRecord,
    NumberStatus,
    PoolNumber,
    RecordKind,
    Selection,
    SelectionStatus,
)
from etcnet.plates.services.common import REQUIRED, normal_name
from etcnet.plates.services.sanctions import blacklist, end_selection


def _office_selection(selection_id: int, actor: Any) -> Selection:
    if not has_role(actor, Role.VEHICLE_OFFICE_CLERK):
        raise Forbidden()
    selection = (
        Selection.objects.select_for_update()
        .select_related("account", "office")
        .filter(pk=selection_id)
        .first()
    )
    if selection is None:
        raise NotFound()
    if not selection.office.clerks.filter(pk=actor.pk).exists():
        raise Forbidden(
            gettext_noop("This selection belongs to another vehicle office."), code="other_office"
        )
    if selection.status != SelectionStatus.PRESELECTED:
        raise Conflict(
            gettext_noop("This number is not waiting for registration."), code="not_preselected"
        )
    return selection


def confirm_registration(
    selection_id: int, *, invoice_name: str, invoice_number: str, vin: str, actor: Any
) -> Selection:
    """The vehicle office registers the vehicle under the pre-selected number.

    The purchase invoice's name must be the user's name and the certificate's
    VIN the one given at step 2 (seed 004, rule 4). The number becomes
    registered and the office records the vehicle. Audits
    ``plates.selection_registered``.
    """
    now = timezone.now()
    with transaction.atomic(durable=True):
        selection = _office_selection(selection_id, actor)
        issues = []
        if not (invoice_number or "").strip():
            issues.append(FieldIssue("invoice_number", "required", REQUIRED))
        if normal_name(invoice_name) != normal_name(selection.account.name):
            issues.append(
                FieldIssue(
                    "invoice_name",
                    "mismatch",
                    gettext_noop("The invoice's name is not the name of the internet user."),
                )
            )
        checked = check_vin(vin or "")
        if (checked.normalized or vin) != selection.vin:
            issues.append(
                FieldIssue(
                    "vin", "mismatch", gettext_noop("This VIN is not the one given at selection.")
                )
            )
        if selection.deadline and selectors.local_now(now).date() > selection.deadline:
            raise Conflict(
                gettext_noop("The registration deadline has passed."), code="deadline_passed"
            )
        if issues:
            raise InvalidInput(issues=issues)
        selection.status = SelectionStatus.REGISTERED
        selection.registered_at = now
        selection.registered_by = actor
        selection.invoice_name = normal_name(invoice_name)
        selection.invoice_number = invoice_number.strip()
        selection.save()
        PoolNumber.objects.filter(pk=selection.pool_number_id).update(
            status=NumberStatus.REGISTERED
        )
        account = selection.account
        LocalRecord.objects.create(
            kind=RecordKind.VEHICLE,
            id_type=account.id_type,
            id_number=account.id_number,
            phone=account.phone,
            reference=selection.plate,
            created_at=now,
        )
        audit.record(
            actor=actor,
            action="plates.selection_registered",
            subject=selection,
            before={"status": SelectionStatus.PRESELECTED},
            after={
                "status": SelectionStatus.REGISTERED,
                "plate": selection.plate,
                "invoice_number": selection.invoice_number,
            },
        )
    return selection


def refuse_registration(
    selection_id: int, *, reason: str, blacklist_user: bool, actor: Any
) -> Selection:
    """The office refuses the registration (an unreadable invoice, a name that
    does not match): the number returns to the pool and, when the clerk says
    so, the user is blacklisted. Audits ``plates.selection_voided``."""
    if not (reason or "").strip():
        raise InvalidInput(issues=[FieldIssue("reason", "required", REQUIRED)])
    now = timezone.now()
    with transaction.atomic(durable=True):
        selection = _office_selection(selection_id, actor)
        end_selection(
            selection, status=SelectionStatus.VOIDED, reason=reason.strip(), now=now, actor=actor
        )
        if blacklist_user:
            blacklist(
                selection.account,
                reason=BlacklistReason.INVOICE_MISMATCH,
                now=now,
                actor=actor,
                selection=selection,
            )
    return selection


def add_local_record(
    *, kind: str, id_type: int, id_number: str, phone: str, reference: str, actor: Any
) -> LocalRecord:
    """Records what the office knows of a person (a vehicle, a licence, a first
    licence application) so owners, drivers and learners can register."""
    if kind not in RecordKind.values:
        raise InvalidInput(issues=[FieldIssue("kind", "required", REQUIRED)])
    checked = check_document(id_type, id_number)
    mobile = check_mobile(phone)
    issues = [FieldIssue.from_issue("id_number", i) for i in checked.errors]
    issues += [FieldIssue.from_issue("phone", i) for i in mobile.errors]
    if issues:
        raise InvalidInput(issues=issues)
    with transaction.atomic(durable=True):
        record = LocalRecord.objects.create(
            kind=kind,
            id_type=id_type,
            id_number=checked.normalized or id_number,
            phone=mobile.normalized or phone,
            reference=reference,
            created_at=timezone.now(),
        )
        audit.record(
            actor=actor,
            action="plates.local_record_added",
            subject=record,
            after={"kind": kind, "id_number": record.id_number, "reference": reference},
        )
    return record
