"""What both front servers' outboxes do alike (the national center's, etcnet.exchange.link,
and the banks', etcnet.exchange.banks.transport): write a file durably before the row
that names it, and claim the due pending rows with back-off."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

__all__ = ["claim", "write"]

M = TypeVar("M", bound=Model)


def write(path: Path, data: bytes) -> None:
    """``data`` at ``path``, on disk before the row that names it is committed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def claim(pending: QuerySet[M], limit: int, *order: str) -> list[M]:
    """The due rows of ``pending`` (``next_attempt_at`` unset or past), each given
    its next attempt time — ETCNET_EXCHANGE_RETRY_S doubling up to
    ETCNET_EXCHANGE_RETRY_MAX_S — so that another process does not send them at
    the same moment (``SKIP LOCKED`` on PostgreSQL)."""
    now = timezone.now()
    with transaction.atomic():
        rows = pending.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True)
        claimed = list(rows.order_by(*order)[:limit])
        for row in claimed:
            attempts = int(row.attempts) + 1  # type: ignore[attr-defined]
            wait = min(
                settings.ETCNET_EXCHANGE_RETRY_S * 2 ** (attempts - 1),
                settings.ETCNET_EXCHANGE_RETRY_MAX_S,
            )
            row.attempts = attempts  # type: ignore[attr-defined]
            row.sent_at = now  # type: ignore[attr-defined]
            row.next_attempt_at = now + dt.timedelta(seconds=wait)  # type: ignore[attr-defined]
        pending.model._default_manager.bulk_update(
            claimed, ["attempts", "sent_at", "next_attempt_at"]
        )
    return claimed
