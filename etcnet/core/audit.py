"""Writing the audit trail. Call `record` inside the service's transaction."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from etcnet.core.middleware import current_request_id
from etcnet.core.models import ActorType, AuditEvent


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Model):
        return value.pk
    return value


def record(
    *,
    actor: Any,
    action: str,
    subject: Model | tuple[str, Any],
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Must run inside the transaction that makes the change."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must be called inside the service's transaction")
    if isinstance(subject, Model):
        subject_type = subject._meta.label_lower
        subject_id = str(subject.pk)
    else:
        subject_type, subject_id = subject[0], str(subject[1])
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        occurred_at=timezone.now(),
        actor_type=ActorType.USER if user else ActorType.SYSTEM,
        actor=user,
        actor_name=user.get_username() if user else str(actor or "system"),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        request_id=current_request_id(),
    )


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}
