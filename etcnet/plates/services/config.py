"""Periods and limits, the holiday calendar, maintenance windows (center operator)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.errors import FieldIssue, InvalidInput, NotFound
from etcnet.core.validators import gettext_noop
from etcnet.plates.models import CalendarDay, MaintenanceWindow, PlateSettings
from etcnet.plates.services.common import require_operator

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


def update_settings(*, changes: Mapping[str, Any], actor: Any) -> PlateSettings:
    """Changes periods and limits. Every value is checked before any is saved;
    audits ``plates.settings_changed`` with the old and new values."""
    require_operator(actor)
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
    require_operator(actor)
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
    require_operator(actor)
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
    require_operator(actor)
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
    require_operator(actor)
    with transaction.atomic(durable=True):
        window = MaintenanceWindow.objects.select_for_update().filter(pk=window_id).first()
        if window is None:
            raise NotFound()
        before = {"starts_at": window.starts_at, "ends_at": window.ends_at, "note": window.note}
        audit.record(
            actor=actor, action="plates.maintenance_removed", subject=window, before=before
        )
        window.delete()
