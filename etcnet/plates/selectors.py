"""Reads for plate pre-selection: settings, the calendar, what remains of a
user's limits, the keyboard's enabled keys, announcements and a user's holdings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import QuerySet, Subquery
from django.utils import timezone

from etcnet.plates import domain
from etcnet.plates.models import (
    HOLDING,
    Attempt,
    AttemptKind,
    Blacklist,
    CalendarDay,
    MaintenanceWindow,
    NumberPool,
    NumberStatus,
    PlateAccount,
    PlateSettings,
    PoolNumber,
    PoolStatus,
    Selection,
    SelectionSession,
    VehicleOffice,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def plate_settings() -> PlateSettings:
    found = PlateSettings.objects.filter(pk=1).first()
    return found if found is not None else PlateSettings(pk=1)


def local_now(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()).astimezone(SHANGHAI)


def calendar_overrides() -> dict[dt.date, bool]:
    return dict(CalendarDay.objects.values_list("day", "working"))


def closed_reason(now: dt.datetime, config: PlateSettings) -> domain.Closed | None:
    windows = [
        (w.starts_at.astimezone(SHANGHAI), w.ends_at.astimezone(SHANGHAI))
        for w in MaintenanceWindow.objects.filter(ends_at__gt=now, starts_at__lte=now)
    ]
    return domain.closed_reason(
        local_now(now), opens=config.opens, closes=config.closes, maintenance=windows
    )


def active_blacklist(account: PlateAccount, now: dt.datetime) -> Blacklist | None:
    return (
        Blacklist.objects.filter(
            id_type=account.id_type, id_number=account.id_number, ends_at__gt=now
        )
        .order_by("-ends_at")
        .first()
    )


@dataclass(frozen=True)
class Remaining:
    verifications: int
    locks: int
    draws: int | None  # None until the session has a VIN


def remaining(
    account: PlateAccount,
    *,
    vin: str,
    now: dt.datetime,
    config: PlateSettings,
) -> Remaining:
    day = local_now(now).date()
    counts = {
        kind: Attempt.objects.filter(account=account, kind=kind, day=day).count()
        for kind in (AttemptKind.VERIFY, AttemptKind.LOCK)
    }
    draws = None
    if vin:
        used = Attempt.objects.filter(vin=vin, kind=AttemptKind.DRAW).count()
        draws = max(0, config.draws_per_vehicle - used)
    return Remaining(
        verifications=max(0, config.verifications_per_day - counts[AttemptKind.VERIFY]),
        locks=max(0, config.locks_per_day - counts[AttemptKind.LOCK]),
        draws=draws,
    )


def available_numbers(session: SelectionSession) -> QuerySet[PoolNumber]:
    return PoolNumber.objects.filter(
        office=session.office_id, kind=session.kind, status=NumberStatus.AVAILABLE
    )


def serial_range(prefix: str) -> dict[str, str]:
    """ORM lookups for the serials that start with ``prefix``, as an index range."""
    lookups = {"serial__gte": prefix}
    upper = domain.prefix_successor(prefix)
    if upper is not None:
        lookups["serial__lt"] = upper
    return lookups


def next_characters(session: SelectionSession, prefix: str) -> frozenset[str]:
    """The characters that may follow ``prefix`` and still lead to an available
    number of this office and kind. One query: for each key of the position a
    probe of the keyboard index (office, kind, status, serial range) that stops at
    its first entry, so a key press costs the same on a pool of a hundred numbers
    or of a million."""
    kind = domain.PlateKind(session.kind)
    at = len(prefix)
    if at >= domain.serial_length(kind):
        return frozenset()
    alphabet = domain.POSITION_ALPHABETS[kind][at]
    available = available_numbers(session)
    # The first serial in index order rather than EXISTS: with EXISTS PostgreSQL
    # may bet on a sequential scan finding a row soon (a new-energy pool's D and F
    # rows make it guess wrong); ORDER BY serial LIMIT 1 walks the index.
    probes = {
        f"k{i}": Subquery(
            available.filter(**serial_range(prefix + char)).order_by("serial").values("serial")[:1]
        )
        for i, char in enumerate(alphabet)
    }
    row = VehicleOffice.objects.filter(pk=session.office_id).annotate(**probes).values(*probes)
    found = row.get()
    return frozenset(char for i, char in enumerate(alphabet) if found[f"k{i}"] is not None)


def keyboard(session: SelectionSession, prefix: str) -> list[dict[str, object]]:
    """The keys of the next position in this session's shuffled order, each with
    whether it may be pressed."""
    kind = domain.PlateKind(session.kind)
    position = len(prefix)
    if position >= domain.serial_length(kind):
        return []
    enabled = next_characters(session, prefix)
    order = domain.keyboard_order(session.keyboard_seed, kind, position)
    return [{"char": c, "enabled": c in enabled} for c in order]


def holding(account: PlateAccount) -> Selection | None:
    return Selection.objects.filter(account=account, status__in=HOLDING).first()


def announcements() -> QuerySet[NumberPool]:
    return NumberPool.objects.filter(status=PoolStatus.RELEASED).select_related("office")


def active_session(account: PlateAccount) -> SelectionSession | None:
    return SelectionSession.objects.filter(account=account, status="active").first()


def account_holding_id(id_number: str) -> PlateAccount | None:
    """The active account registered with this ID number (any ID type)."""
    text = (id_number or "").strip().upper()
    if not text:
        return None
    return (
        PlateAccount.objects.filter(status="active", id_number=text)
        .prefetch_related("selections")
        .first()
    )
