"""State changes: a reading of the time source, stored."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from etcnet.clock import selectors, sntp
from etcnet.clock.models import KEEP_DAYS, TimeReading

__all__ = ["NotConfigured", "check_source", "record_reading"]


class NotConfigured(Exception):
    """ETCNET_TIME_SOURCE is empty: there is no time source to read."""


def record_reading(
    *,
    source: str,
    at: dt.datetime,
    measurement: sntp.Measurement | None = None,
    error: str = "",
) -> TimeReading:
    """Stores one reading — an offset, or the error that stood for one — and
    removes this source's readings older than ``KEEP_DAYS``. One transaction;
    no audit event (a measurement, not a business state change: the row is the
    record). This process's cached offset is dropped, so the next `server_time`
    already carries the new one."""
    if (measurement is None) == (not error):
        raise ValueError("a reading has either a measurement or an error")
    with transaction.atomic(durable=True):
        row = TimeReading.objects.create(
            at=at,
            source=source[:200],
            offset_ms=measurement.offset_ms if measurement else None,
            delay_us=measurement.delay_us if measurement else None,
            stratum=measurement.stratum if measurement else None,
            error=error[:300],
        )
        TimeReading.objects.filter(
            source=row.source, at__lt=at - dt.timedelta(days=KEEP_DAYS)
        ).delete()
    selectors.forget()
    return row


def check_source(*, timeout_s: float = 2.0) -> TimeReading:
    """Reads the configured source once and stores what it said (a failed
    reading too: the panel tells since when the source has been silent).
    Raises ``NotConfigured`` when no source is set."""
    source = settings.ETCNET_TIME_SOURCE
    if not source:
        raise NotConfigured("ETCNET_TIME_SOURCE is not set: there is no time source to read")
    try:
        measured = sntp.query(source, timeout_s=timeout_s)
    except sntp.SourceError as failure:
        return record_reading(source=source, at=timezone.now(), error=str(failure))
    return record_reading(source=source, at=timezone.now(), measurement=measured)
