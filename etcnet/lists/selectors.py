"""Reading the status list: a card's or OBU's history, the versions that carried
an entry (for a dispute: "the lane had an old list"), versions and imports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet

from etcnet.lists.models import ListEntry, ListEvent, ListType, ListVersion


def versions_carrying(entry: ListEntry) -> dict[str, list[ListVersion]]:
    """The increments that carried the entry's arrival and departure, and the
    full versions published while it was on the list (a lane holding any of
    those had it)."""
    increments = [v for v in (entry.added_in, entry.removed_in) if v is not None]
    if entry.added_in is None:
        return {"increments": increments, "full": []}
    full = ListVersion.objects.exclude(full_file="").filter(number__gte=entry.added_in.number)
    if entry.removed_in is not None:
        full = full.filter(number__lt=entry.removed_in.number)
    return {"increments": increments, "full": list(full.order_by("number"))}


def history(medium_id: str) -> dict[str, Any]:
    """Every entry and event of a card or OBU number, newest first."""
    entries: QuerySet[ListEntry] = (
        ListEntry.objects.filter(medium_id=medium_id)
        .select_related("added_in", "removed_in", "imported_in")
        .order_by("-since", "-id")
    )
    return {
        "entries": [(e, versions_carrying(e)) for e in entries],
        "events": list(ListEvent.objects.filter(medium_id=medium_id).order_by("-occurred_at")),
        "on_list": [
            ListType(t) for t in sorted({e.list_type for e in entries if e.left_at is None})
        ],
    }


def plan_for(held: str | None, *, now: Any, keep_days: int) -> dict[str, Any]:
    """What a terminal holding version ``held`` downloads next: the increments
    after it, or — when it holds nothing, a version the center does not know,
    or one older than the increments kept — the latest full version and the
    increments after that."""
    latest = ListVersion.objects.order_by("-number").first()
    full = ListVersion.objects.exclude(full_file="").order_by("-number").first()
    known = ListVersion.objects.filter(number=held).first() if held else None
    full_needed = (
        known is None or known.published_at < now - dt.timedelta(days=keep_days)
    ) and not (latest is not None and held == latest.number)
    start = (full.number if full else None) if full_needed else held
    increments = (
        ListVersion.objects.filter(number__gt=start).order_by("number")[:500]
        if start is not None
        else ListVersion.objects.none()
    )
    return {
        "latest": latest.number if latest else None,
        "full_needed": full_needed,
        "full": {"number": full.number, "sha256": full.full_sha256} if full else None,
        "increments": [
            {"number": v.number, "previous": v.previous or None, "sha256": v.sha256}
            for v in increments
        ],
    }
