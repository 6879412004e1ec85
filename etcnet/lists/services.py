"""Recording status-list events. Called inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from etcnet.lists.models import ListEvent, ListStatus, ListType, Medium


def record_event(
    *,
    medium: Medium,
    medium_id: str,
    list_type: ListType,
    status: ListStatus,
    reason: str,
    actor: Any,
    issuer_id: str = "",
) -> ListEvent:
    """A card or OBU enters (status 1) or leaves (status 2) the list for one type.

    Must run inside the transaction of the state change it reflects, so the list
    never disagrees with the card's state."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("list events are recorded inside the state change's transaction")
    return ListEvent.objects.create(
        medium=medium,
        medium_id=medium_id,
        list_type=list_type,
        status=status,
        reason=reason,
        issuer_id=issuer_id,
        occurred_at=timezone.now(),
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )
