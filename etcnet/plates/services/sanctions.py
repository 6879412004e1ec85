"""Sanctions and holdings, used inside other services' transactions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from etcnet.core import audit
from etcnet.plates import selectors
from etcnet.plates.models import (
    Blacklist,
    BlacklistReason,
    NumberStatus,
    PlateAccount,
    PoolNumber,
    Selection,
    SelectionStatus,
)


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
