"""Operators' decisions on held records (遗留): a dispute resolved to pay makes the
record `resolved`, cleared — split and settled — by the first run after it; one
resolved not to pay is `written_off` (坏帐) and never paid. The disputes
platform (issue 17) calls these; every decision is audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from etcnet.clearing.models import ClearingEntry, EntryState
from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, InvalidInput, NotFound
from etcnet.core.validators import gettext_noop

__all__ = ["resolve_held"]


@transaction.atomic
def resolve_held(transaction_id: int, *, pay: bool, note: str, actor: Any) -> ClearingEntry:
    """Resolves the held record of store transaction `transaction_id`."""
    entry = ClearingEntry.objects.select_for_update().filter(transaction_id=transaction_id).first()
    if entry is None:
        raise NotFound(
            gettext_noop("Transaction {id} has not been taken by a clearing day."),
            params={"id": transaction_id},
        )
    if entry.state != EntryState.HELD:
        raise Conflict(
            gettext_noop("Transaction {id} is not held (it is {state})."),
            code="not_held",
            params={"id": transaction_id, "state": entry.state},
        )
    if not note.strip():
        raise InvalidInput(
            gettext_noop("A resolution needs a note saying why."),
            issues=[FieldIssue("note", "required", gettext_noop("Say why."))],
        )
    before = {"state": entry.state, "hold_code": entry.hold_code}
    entry.state = EntryState.RESOLVED if pay else EntryState.WRITTEN_OFF
    entry.save(update_fields=["state"])
    audit.record(
        actor=actor,
        action="clearing.held_resolved",
        subject=entry,
        before=before,
        after={"state": entry.state, "note": note.strip()[:500]},
    )
    return entry
