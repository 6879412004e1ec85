"""The center operator's settings, calendar, maintenance windows and pools."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from etcnet.core.errors import DomainError, InvalidInput
from etcnet.core.roles import Role, role_required
from etcnet.core.validators import gettext_noop
from etcnet.plates import selectors, services
from etcnet.plates.models import (
    CalendarDay,
    MaintenanceWindow,
    NumberPool,
    PlateKind,
    VehicleOffice,
)
from etcnet.plates.views.common import failed, page

# --- The center operator ----------------------------------------------------------------


SETTING_LABELS = {
    "opens": gettext_noop("Opens at (HH:MM)"),
    "closes": gettext_noop("Closes at (HH:MM)"),
    "verifications_per_day": gettext_noop(
        "Verifications of self-composed numbers per user per day"
    ),
    "locks_per_day": gettext_noop("Verify-and-lock attempts per user per day"),
    "draws_per_vehicle": gettext_noop("Random draws per vehicle"),
    "numbers_per_draw": gettext_noop("Numbers offered per random draw"),
    "window_seconds": gettext_noop("Self-composed window (seconds)"),
    "window_grace_seconds": gettext_noop("Grace for the window's submission (seconds)"),
    "sms_code_minutes": gettext_noop("A locked number waits for its SMS code (minutes)"),
    "sms_code_tries": gettext_noop("Tries per SMS code"),
    "session_idle_minutes": gettext_noop("An idle selection session ends after (minutes)"),
    "registration_working_days": gettext_noop("Working days to register the vehicle"),
    "new_owner_select_hours": gettext_noop("Hours a new-vehicle owner has to pre-select"),
    "blacklist_days": gettext_noop("Blacklist period (days)"),
    "cancel_ban_days": gettext_noop(
        "A cancelled new-vehicle owner may not register again for (days)"
    ),
    "agreement_version": gettext_noop("Service agreement version"),
}


def _setting_text(value: Any) -> str:
    return value.strftime("%H:%M") if isinstance(value, dt.time) else str(value)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@role_required(Role.CENTER_OPERATOR, Role.AUDITOR)
@require_http_methods(["GET", "POST"])
def manage(request: HttpRequest) -> HttpResponse:
    """Periods and limits, the holiday calendar, maintenance windows, pools."""
    config = selectors.plate_settings()
    context: dict[str, Any] = {
        "config": config,
        "settings_rows": [
            (name, _(SETTING_LABELS[name]), _setting_text(getattr(config, name)))
            for name in services.SETTING_FIELDS
        ],
        "days": CalendarDay.objects.filter(day__gte=timezone.localdate() - dt.timedelta(days=30)),
        "windows": MaintenanceWindow.objects.filter(ends_at__gte=timezone.now()),
        "pools": NumberPool.objects.select_related("office")[:30],
        "offices": VehicleOffice.objects.filter(is_active=True),
        "kinds": PlateKind.choices,
        "errors": {},
        "values": {},
    }
    if request.method != "POST":
        return page(request, "manage.html", context)
    action = request.POST.get("action", "")
    try:
        _manage_action(request, action)
    except DomainError as error:
        context["values"] = request.POST
        return failed(request, "manage.html", error, context)
    except ValueError:
        return failed(request, "manage.html", InvalidInput(), context)
    messages.success(request, _("Saved."))
    return redirect("plates:manage")


def _manage_action(request: HttpRequest, action: str) -> None:
    post = request.POST
    actor = request.user
    if action == "settings":
        changes: dict[str, Any] = {}
        for name in services.SETTING_FIELDS:
            raw = post.get(name, "").strip()
            if name in ("opens", "closes"):
                changes[name] = dt.time.fromisoformat(raw)
            elif name == "agreement_version":
                changes[name] = raw
            else:
                number = _int_or_none(raw)
                changes[name] = -1 if number is None else number
        services.update_settings(changes=changes, actor=actor)
    elif action == "day":
        services.set_calendar_day(
            day=dt.date.fromisoformat(post.get("day", "")),
            working=post.get("working") == "1",
            note=post.get("note", ""),
            actor=actor,
        )
    elif action == "remove_day":
        services.remove_calendar_day(day=dt.date.fromisoformat(post.get("day", "")), actor=actor)
    elif action == "maintenance":
        tz = selectors.SHANGHAI
        services.add_maintenance(
            starts_at=dt.datetime.fromisoformat(post.get("starts_at", "")).replace(tzinfo=tz),
            ends_at=dt.datetime.fromisoformat(post.get("ends_at", "")).replace(tzinfo=tz),
            note=post.get("note", ""),
            actor=actor,
        )
    elif action == "remove_maintenance":
        services.remove_maintenance(int(post.get("window", "0")), actor=actor)
    elif action == "pool":
        services.create_pool(
            office_code=post.get("office", ""),
            kind=post.get("kind", ""),
            title=post.get("title", ""),
            patterns=post.get("patterns", "").split(),
            reserved=post.get("reserved", "").split(),
            forbidden=post.get("forbidden", "").split(),
            announcement=post.get("announcement", ""),
            actor=actor,
        )
    elif action == "release":
        services.release_pool(int(post.get("pool", "0")), actor=actor)
    else:
        raise ValueError(action)
