"""Plate pre-selection services outside the six steps: accounts, settings and
the calendar, pools, the vehicle office's registration, the expiry job.

Each top-level service is one durable transaction that locks what it changes
and audits it (actions ``plates.*``). The six steps are in ``flow``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from etcnet.core import audit
from etcnet.core.codes import IdDocType
from etcnet.core.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import (
    Issue,
    check_document,
    check_mobile,
    check_vin,
    gettext_noop,
)
from etcnet.plates import domain, selectors
from etcnet.plates.models import (
    HOLDING,
    AccountStatus,
    Blacklist,
    BlacklistReason,
    CalendarDay,
    LocalRecord,
    MaintenanceWindow,
    NumberPool,
    NumberStatus,
    PlateAccount,
    PlateSettings,
    PoolNumber,
    PoolStatus,
    RecordKind,
    RegistrationBan,
    Selection,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
    UserType,
    VehicleOffice,
)

REQUIRED = gettext_noop("This field is required.")
POOL_LIMIT = 1_000_000


# --- Accounts ---------------------------------------------------------------------------


def _normal_name(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value or "").split())


def register_account(
    *,
    user_type: str,
    id_type: int | str,
    id_number: str,
    name: str,
    phone: str,
    city: str,
    password: str,
    password_again: str,
    agreed: bool,
    now: dt.datetime | None = None,
) -> PlateAccount:
    """Registers an internet user (seed 004: ID type and number, name, mobile
    number, city, password, the service agreement, one of the four user types).

    Refused, changing nothing, when a field is invalid, an active account already
    has the ID or the mobile number, a cancelled new-vehicle owner's ban still
    holds for this ID and number, or the local records do not fit the type.
    Audits ``plates.account_registered``.
    """
    issues: list[FieldIssue] = []
    if user_type not in UserType.values:
        issues.append(FieldIssue("user_type", "required", gettext_noop("Choose a user type.")))
    try:
        doc_type = int(id_type)
        IdDocType.from_code(doc_type)
    except (TypeError, ValueError):
        doc_type = 0
        issues.append(FieldIssue("id_type", "required", gettext_noop("Choose an ID type.")))
    id_value = ""
    if doc_type:
        checked = check_document(doc_type, id_number or "")
        if checked.valid:
            id_value = checked.normalized or ""
        else:
            issues += [FieldIssue.from_issue("id_number", i) for i in checked.errors]
    person = _normal_name(name)
    if not 2 <= len(person) <= 40:
        issues.append(
            FieldIssue(
                "name", "name", gettext_noop("Give the name on the ID (2 to 40 characters).")
            )
        )
    mobile = check_mobile(phone or "")
    if not mobile.valid:
        issues += [FieldIssue.from_issue("phone", i) for i in mobile.errors]
    city = (city or "").strip()
    if not city:
        issues.append(FieldIssue("city", "required", REQUIRED))
    issues += [FieldIssue.from_issue("password", i) for i in domain.password_issues(password or "")]
    if password != password_again:
        issues.append(
            FieldIssue("password_again", "mismatch", gettext_noop("The two passwords differ."))
        )
    if not agreed:
        issues.append(
            FieldIssue(
                "agreed", "required", gettext_noop("Accept the service agreement to register.")
            )
        )
    if not issues:
        try:
            validate_password(password)
        except ValidationError as exc:
            issues += [FieldIssue("password", "weak", str(m)) for m in exc.messages]
    if issues:
        raise InvalidInput(issues=issues)

    now = now or timezone.now()
    phone_value = mobile.normalized or ""
    with transaction.atomic(durable=True):
        active = PlateAccount.objects.filter(status=AccountStatus.ACTIVE)
        if active.filter(id_type=doc_type, id_number=id_value).exists():
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "id_number",
                        "registered",
                        gettext_noop("An account with this ID number already exists."),
                    )
                ]
            )
        if active.filter(phone=phone_value).exists():
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "phone",
                        "registered",
                        gettext_noop("An account with this mobile number already exists."),
                    )
                ]
            )
        _check_type_allowed(user_type, doc_type, id_value, phone_value, now)
        user = get_user_model().objects.create_user(
            username=f"plates-{get_random_string(12).lower()}",
            password=password,
            first_name=person[:150],
        )
        config = selectors.plate_settings()
        account = PlateAccount.objects.create(
            user=user,
            user_type=user_type,
            id_type=doc_type,
            id_number=id_value,
            name=person,
            phone=phone_value,
            city=city,
            registered_at=now,
            agreement_version=config.agreement_version,
        )
        audit.record(
            actor=user,
            action="plates.account_registered",
            subject=account,
            after={
                "user_type": user_type,
                "id_type": doc_type,
                "id_number": id_value,
                "name": person,
                "phone": phone_value,
                "city": city,
                "agreement_version": config.agreement_version,
            },
        )
    return account


def _check_type_allowed(
    user_type: str, doc_type: int, id_value: str, phone: str, now: dt.datetime
) -> None:
    records = LocalRecord.objects.filter(id_type=doc_type, id_number=id_value)
    if user_type == UserType.NEW_VEHICLE_OWNER:
        ban = (
            RegistrationBan.objects.filter(
                id_type=doc_type, id_number=id_value, phone=phone, until__gt=now
            )
            .order_by("-until")
            .first()
        )
        if ban is not None:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "id_number",
                        "registration_banned",
                        gettext_noop(
                            "A new-vehicle owner account of this ID number and mobile number "
                            "was cancelled; it may register again after {until}."
                        ),
                        {"until": selectors.local_now(ban.until).strftime("%Y-%m-%d")},
                    )
                ]
            )
        if records.filter(kind__in=[RecordKind.VEHICLE, RecordKind.LICENCE]).exists():
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "user_type",
                        "has_records",
                        gettext_noop(
                            "You already hold a vehicle or a driving licence here: "
                            "register as a vehicle owner or a driver."
                        ),
                    )
                ]
            )
        return
    needed = domain.REQUIRED_RECORD[domain.UserType(user_type)]
    if not records.filter(kind=needed, phone=phone).exists():
        templates = {
            "vehicle": gettext_noop(
                "No vehicle is registered here to this ID with this mobile number."
            ),
            "licence": gettext_noop(
                "No driving licence is held here by this ID with this mobile number."
            ),
            "learner": gettext_noop(
                "No first licence application was made here by this ID with this mobile number."
            ),
        }
        raise InvalidInput(
            issues=[FieldIssue("user_type", "no_local_record", templates[str(needed)])]
        )


def cancel_account(account: PlateAccount, *, reason: str, now: dt.datetime, actor: Any) -> None:
    """Inside a transaction, with ``account`` locked: cancels the account, ends its
    session and returns a held number. A new-vehicle owner's ID and mobile number
    may not register that type again for the configured period."""
    config = selectors.plate_settings()
    for selection in Selection.objects.select_for_update().filter(
        account=account, status__in=HOLDING
    ):
        end_selection(selection, status=SelectionStatus.VOIDED, reason=reason, now=now, actor=actor)
    SelectionSession.objects.filter(account=account, status=SessionStatus.ACTIVE).update(
        status=SessionStatus.ABANDONED, ended_at=now, end_reason=reason
    )
    account.status = AccountStatus.CANCELLED
    account.cancelled_at = now
    account.cancel_reason = reason
    account.save(update_fields=["status", "cancelled_at", "cancel_reason"])
    user = account.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    ban_until = None
    if account.user_type == UserType.NEW_VEHICLE_OWNER:
        ban_until = now + dt.timedelta(days=config.cancel_ban_days)
        RegistrationBan.objects.create(
            id_type=account.id_type,
            id_number=account.id_number,
            phone=account.phone,
            until=ban_until,
            reason=reason,
            account=account,
            created_at=now,
        )
    audit.record(
        actor=actor,
        action="plates.account_cancelled",
        subject=account,
        before={"status": AccountStatus.ACTIVE},
        after={"status": AccountStatus.CANCELLED, "reason": reason, "ban_until": ban_until},
    )


# --- Sanctions and holdings (used inside other services' transactions) ---------------------


def blacklist(
    account: PlateAccount,
    *,
    reason: BlacklistReason,
    now: dt.datetime,
    actor: Any,
    selection: Selection | None = None,
) -> Blacklist:
    config = selectors.plate_settings()
    entry = Blacklist.objects.create(
        account=account,
        id_type=account.id_type,
        id_number=account.id_number,
        reason=reason,
        starts_at=now,
        ends_at=now + dt.timedelta(days=config.blacklist_days),
        selection=selection,
    )
    audit.record(
        actor=actor,
        action="plates.blacklisted",
        subject=account,
        after={"reason": reason, "until": entry.ends_at, "selection": selection},
    )
    return entry


def end_selection(
    selection: Selection, *, status: SelectionStatus, reason: str, now: dt.datetime, actor: Any
) -> None:
    """Ends a held selection (locked) and returns its number to the pool."""
    before = selection.status
    selection.status = status
    selection.ended_at = now
    selection.end_reason = reason
    selection.save(update_fields=["status", "ended_at", "end_reason"])
    PoolNumber.objects.filter(pk=selection.pool_number_id).update(status=NumberStatus.AVAILABLE)
    audit.record(
        actor=actor,
        action=f"plates.selection_{status}",
        subject=selection,
        before={"status": before},
        after={"status": status, "reason": reason, "plate": selection.plate},
    )


# --- Settings, calendar, maintenance ----------------------------------------------------

SETTING_FIELDS = (
    "opens",
    "closes",
    "verifications_per_day",
    "locks_per_day",
    "draws_per_vehicle",
    "numbers_per_draw",
    "window_seconds",
    "window_grace_seconds",
    "sms_code_minutes",
    "sms_code_tries",
    "session_idle_minutes",
    "registration_working_days",
    "new_owner_select_hours",
    "blacklist_days",
    "cancel_ban_days",
    "agreement_version",
)
_POSITIVE = {
    "window_seconds",
    "sms_code_minutes",
    "sms_code_tries",
    "session_idle_minutes",
    "registration_working_days",
    "new_owner_select_hours",
    "numbers_per_draw",
}


def _require_operator(actor: Any) -> None:
    if not has_role(actor, Role.CENTER_OPERATOR):
        raise Forbidden()


def update_settings(*, changes: Mapping[str, Any], actor: Any) -> PlateSettings:
    """Changes periods and limits. Every value is checked before any is saved;
    audits ``plates.settings_changed`` with the old and new values."""
    _require_operator(actor)
    issues = []
    for name, value in changes.items():
        if name not in SETTING_FIELDS:
            issues.append(FieldIssue(name, "unknown", gettext_noop("Not a setting.")))
        elif name in _POSITIVE and (not isinstance(value, int) or value < 1):
            issues.append(
                FieldIssue(name, "positive", gettext_noop("Give a whole number of 1 or more."))
            )
        elif isinstance(value, int) and value < 0:
            issues.append(
                FieldIssue(name, "negative", gettext_noop("Give a whole number of 0 or more."))
            )
    if issues:
        raise InvalidInput(issues=issues)
    with transaction.atomic(durable=True):
        config, _ = PlateSettings.objects.select_for_update().get_or_create(pk=1)
        before = {name: getattr(config, name) for name in SETTING_FIELDS}
        for name, value in changes.items():
            setattr(config, name, value)
        if config.opens >= config.closes:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "closes",
                        "hours",
                        gettext_noop("Closing time must come after opening time."),
                    )
                ]
            )
        config.updated_at = timezone.now()
        config.save()
        old, new = audit.changes(before, {name: getattr(config, name) for name in SETTING_FIELDS})
        if new:
            audit.record(
                actor=actor, action="plates.settings_changed", subject=config, before=old, after=new
            )
    return config


def set_calendar_day(*, day: dt.date, working: bool, note: str, actor: Any) -> CalendarDay:
    """Marks a holiday (working false) or a weekend working day; audited."""
    _require_operator(actor)
    with transaction.atomic(durable=True):
        entry, created = CalendarDay.objects.select_for_update().get_or_create(
            day=day, defaults={"working": working, "note": note}
        )
        before = None if created else {"working": entry.working, "note": entry.note}
        entry.working, entry.note = working, note
        entry.save()
        audit.record(
            actor=actor,
            action="plates.calendar_day_set",
            subject=("plates.calendarday", day),
            before=before,
            after={"working": working, "note": note},
        )
    return entry


def remove_calendar_day(*, day: dt.date, actor: Any) -> None:
    _require_operator(actor)
    with transaction.atomic(durable=True):
        entry = CalendarDay.objects.select_for_update().filter(day=day).first()
        if entry is None:
            raise NotFound()
        before = {"working": entry.working, "note": entry.note}
        entry.delete()
        audit.record(
            actor=actor,
            action="plates.calendar_day_removed",
            subject=("plates.calendarday", day),
            before=before,
        )


def add_maintenance(
    *, starts_at: dt.datetime, ends_at: dt.datetime, note: str, actor: Any
) -> MaintenanceWindow:
    _require_operator(actor)
    if starts_at >= ends_at:
        raise InvalidInput(
            issues=[
                FieldIssue("ends_at", "order", gettext_noop("The end must come after the start."))
            ]
        )
    with transaction.atomic(durable=True):
        window = MaintenanceWindow.objects.create(starts_at=starts_at, ends_at=ends_at, note=note)
        audit.record(
            actor=actor,
            action="plates.maintenance_added",
            subject=window,
            after={"starts_at": starts_at, "ends_at": ends_at, "note": note},
        )
    return window


def remove_maintenance(window_id: int, *, actor: Any) -> None:
    _require_operator(actor)
    with transaction.atomic(durable=True):
        window = MaintenanceWindow.objects.select_for_update().filter(pk=window_id).first()
        if window is None:
            raise NotFound()
        before = {"starts_at": window.starts_at, "ends_at": window.ends_at, "note": window.note}
        audit.record(
            actor=actor, action="plates.maintenance_removed", subject=window, before=before
        )
        window.delete()


# --- Pools ------------------------------------------------------------------------------


def create_pool(
    *,
    office_code: str,
    kind: str,
    title: str,
    patterns: list[str],
    reserved: list[str],
    forbidden: list[str],
    announcement: str,
    actor: Any,
) -> NumberPool:
    """A draft pool: the patterns are checked (and the pool's size) now; the
    numbers are made when it is released. Audits ``plates.pool_created``."""
    _require_operator(actor)
    issues = []
    office = VehicleOffice.objects.filter(code=office_code, is_active=True).first()
    if office is None:
        issues.append(FieldIssue("office", "unknown", gettext_noop("No such vehicle office.")))
    if kind not in domain.PlateKind.__members__.values():
        issues.append(FieldIssue("kind", "required", gettext_noop("Choose a plate kind.")))
    if not (title or "").strip():
        issues.append(FieldIssue("title", "required", REQUIRED))
    if not issues:
        try:
            if not patterns:
                raise domain.PoolError(
                    "patterns",
                    Issue("pool.no_patterns", gettext_noop("Give at least one pattern.")),
                )
            plate_kind = domain.PlateKind(kind)
            size = sum(domain.pattern_size(domain.parse_pattern(plate_kind, p)) for p in patterns)
            domain.compile_rules("reserved", reserved)
            domain.compile_rules("forbidden", forbidden)
        except domain.PoolError as exc:
            issues.append(FieldIssue.from_issue(exc.field, exc.issue))
        else:
            if size > POOL_LIMIT:
                issues.append(
                    FieldIssue(
                        "patterns",
                        "pool.too_large",
                        gettext_noop("The patterns make {size} numbers; at most {limit} per pool."),
                        {"size": size, "limit": POOL_LIMIT},
                    )
                )
    if issues:
        raise InvalidInput(issues=issues)
    assert office is not None
    with transaction.atomic(durable=True):
        pool = NumberPool.objects.create(
            office=office,
            kind=kind,
            title=title.strip(),
            patterns=list(patterns),
            reserved=list(reserved),
            forbidden=list(forbidden),
            announcement=announcement.strip(),
            created_at=timezone.now(),
        )
        audit.record(
            actor=actor,
            action="plates.pool_created",
            subject=pool,
            after={
                "office": office.code,
                "kind": kind,
                "patterns": patterns,
                "reserved": reserved,
                "forbidden": forbidden,
            },
        )
    return pool


def release_pool(pool_id: int, *, actor: Any, now: dt.datetime | None = None) -> NumberPool:
    """Makes the pool's numbers and publishes its announcement. A serial that an
    earlier pool of the same prefix already holds stays with that pool. Audits
    ``plates.pool_released`` with the counts."""
    _require_operator(actor)
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        pool = NumberPool.objects.select_for_update().select_related("office").get(pk=pool_id)
        if pool.status != PoolStatus.DRAFT:
            raise Conflict(gettext_noop("This pool is already released."), code="released")
        made = domain.generate_pool(
            domain.PlateKind(pool.kind),
            pool.patterns,
            reserved=pool.reserved,
            forbidden=pool.forbidden,
            limit=POOL_LIMIT,
        )
        prefix = pool.office.prefix
        taken = set(
            PoolNumber.objects.filter(prefix=prefix).values_list("serial", flat=True).iterator()
        )
        rows = [
            PoolNumber(
                pool=pool, office=pool.office, kind=pool.kind, prefix=prefix, serial=s, status=st
            )
            for serials, st in (
                (made.available, NumberStatus.AVAILABLE),
                (made.reserved, NumberStatus.RESERVED),
            )
            for s in serials
            if s not in taken
        ]
        PoolNumber.objects.bulk_create(rows, batch_size=5000)
        pool.available_count = sum(1 for r in rows if r.status == NumberStatus.AVAILABLE)
        pool.reserved_count = len(rows) - pool.available_count
        pool.forbidden_count = made.forbidden_count
        pool.status = PoolStatus.RELEASED
        pool.released_at = now
        pool.save()
        audit.record(
            actor=actor,
            action="plates.pool_released",
            subject=pool,
            before={"status": PoolStatus.DRAFT},
            after={
                "status": PoolStatus.RELEASED,
                "available": pool.available_count,
                "reserved": pool.reserved_count,
                "forbidden": pool.forbidden_count,
                "already_in_other_pools": len(made.available) + len(made.reserved) - len(rows),
            },
        )
    return pool


# --- The vehicle office -----------------------------------------------------------------


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
        if _normal_name(invoice_name) != _normal_name(selection.account.name):
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
        selection.invoice_name = _normal_name(invoice_name)
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


# --- Expiry -----------------------------------------------------------------------------


@dataclass
class ExpiryReport:
    lapsed_locks: int = 0
    expired: int = 0
    cancelled_accounts: int = 0
    abandoned_sessions: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def expire(*, now: dt.datetime | None = None) -> ExpiryReport:
    """The periodic job (``etcnet plates expire``), safe to run any number of times:

    - a number locked at step 4 whose SMS code was not confirmed in time returns;
    - a pre-selected number not registered by its deadline (working days) returns
      to the pool and its user is blacklisted; a new-vehicle owner's account is
      cancelled too;
    - a new-vehicle owner who has not pre-selected within the configured hours of
      registering is cancelled (and may not register again for the ban period);
    - sessions idle past the configured minutes are abandoned.

    Each item is its own transaction, so one failure does not hold up the rest.
    """
    now = now or timezone.now()
    config = selectors.plate_settings()
    report = ExpiryReport()
    today = selectors.local_now(now).date()
    for pk in Selection.objects.filter(
        status=SelectionStatus.LOCKED, hold_until__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            selection = (
                Selection.objects.select_for_update()
                .filter(pk=pk, status=SelectionStatus.LOCKED, hold_until__lte=now)
                .first()
            )
            if selection is not None:
                end_selection(
                    selection,
                    status=SelectionStatus.LAPSED,
                    reason="sms_not_confirmed",
                    now=now,
                    actor="plates-expiry",
                )
                SelectionSession.objects.filter(pk=selection.session_id, status="active").update(
                    status=SessionStatus.ABANDONED, ended_at=now, end_reason="sms_not_confirmed"
                )
                report.lapsed_locks += 1
    for pk in Selection.objects.filter(
        status=SelectionStatus.PRESELECTED, deadline__lt=today
    ).values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            selection = (
                Selection.objects.select_for_update()
                .select_related("account")
                .filter(pk=pk, status=SelectionStatus.PRESELECTED, deadline__lt=today)
                .first()
            )
            if selection is None:
                continue
            account = PlateAccount.objects.select_for_update().get(pk=selection.account_id)
            end_selection(
                selection,
                status=SelectionStatus.EXPIRED,
                reason="registration_overdue",
                now=now,
                actor="plates-expiry",
            )
            blacklist(
                account,
                reason=BlacklistReason.REGISTRATION_OVERDUE,
                now=now,
                actor="plates-expiry",
                selection=selection,
            )
            report.expired += 1
            if account.user_type == UserType.NEW_VEHICLE_OWNER and account.status == "active":
                cancel_account(
                    account, reason="registration_overdue", now=now, actor="plates-expiry"
                )
                report.cancelled_accounts += 1
    cutoff = now - dt.timedelta(hours=config.new_owner_select_hours)
    late = PlateAccount.objects.filter(
        status=AccountStatus.ACTIVE,
        user_type=UserType.NEW_VEHICLE_OWNER,
        registered_at__lte=cutoff,
    ).exclude(selections__status__in=[SelectionStatus.PRESELECTED, SelectionStatus.REGISTERED])
    for pk in late.values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            account = PlateAccount.objects.select_for_update().get(pk=pk)
            if (
                account.status != AccountStatus.ACTIVE
                or account.selections.filter(
                    status__in=[SelectionStatus.PRESELECTED, SelectionStatus.REGISTERED]
                ).exists()
            ):
                continue
            cancel_account(account, reason="no_preselection", now=now, actor="plates-expiry")
            report.cancelled_accounts += 1
    idle = now - dt.timedelta(minutes=config.session_idle_minutes)
    with transaction.atomic(durable=True):
        report.abandoned_sessions = SelectionSession.objects.filter(
            status=SessionStatus.ACTIVE, last_seen_at__lt=idle, selection__isnull=True
        ).update(status=SessionStatus.ABANDONED, ended_at=now, end_reason="idle")
    return report


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
