"""Reads: the center's corrected time, the clock's status, the recent readings.

``center_now()`` is the time the center gives terminals (`server_time` in every
answer of the terminal API): its system clock plus the last good offset of the
configured time source. The offset is kept in this process for
``CACHE_SECONDS`` so the intake's hot path does not pay a query per upload;
`etcnet clock check` runs in its own process, so a new reading reaches the
center's processes within that time (in this process, at once: ``forget``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from django.conf import settings
from django.utils import timezone

from etcnet.clock.domain import ClockStatus, Good, assess
from etcnet.clock.models import TimeReading

__all__ = ["center_now", "center_offset_ms", "forget", "recent", "status"]

CACHE_SECONDS = 5.0

_lock = threading.Lock()
#: (source, offset_ms, valid until on the monotonic clock)
_cached: tuple[str, int, float] | None = None


def _good(source: str) -> TimeReading | None:
    return TimeReading.objects.filter(source=source, error="").order_by("-at", "-pk").first()


def center_offset_ms() -> int:
    """The offset the center applies: the configured source's last good reading
    (0 with no source configured or no good reading of it; a reading of another
    source, configured before, does not count)."""
    global _cached
    source = settings.ETCNET_TIME_SOURCE
    if not source:
        return 0
    now = time.monotonic()
    cached = _cached
    if cached is not None and cached[0] == source and now < cached[2]:
        return cached[1]
    reading = _good(source)
    offset = reading.offset_ms if reading is not None and reading.offset_ms is not None else 0
    with _lock:
        _cached = (source, offset, now + CACHE_SECONDS)
    return offset


def center_now() -> dt.datetime:
    """The center's time as it gives it to terminals: Beidou time, as near as the
    last reading knows it."""
    return timezone.now() + dt.timedelta(milliseconds=center_offset_ms())


def forget() -> None:
    """Drops this process's cached offset (a new reading was stored)."""
    global _cached
    with _lock:
        _cached = None


def status(now: dt.datetime | None = None) -> ClockStatus:
    """The panel's status of the configured source at ``now`` (the system clock)."""
    source = settings.ETCNET_TIME_SOURCE
    good_row = _good(source) if source else None
    failed = (
        TimeReading.objects.filter(source=source).exclude(error="").order_by("-at", "-pk").first()
        if source
        else None
    )
    good = (
        Good(
            at=good_row.at,
            offset_ms=good_row.offset_ms or 0,
            delay_us=good_row.delay_us or 0,
            stratum=good_row.stratum or 0,
        )
        if good_row is not None
        else None
    )
    return assess(
        source=source,
        good=good,
        last_error=failed.error if failed else "",
        last_error_at=failed.at if failed else None,
        now=now or timezone.now(),
        max_ms=settings.ETCNET_TIME_SOURCE_MAX_MS,
        stale_s=settings.ETCNET_TIME_SOURCE_STALE_S,
    )


def recent(limit: int = 50) -> list[TimeReading]:
    """The newest readings, of whatever source."""
    return list(TimeReading.objects.order_by("-at", "-pk")[:limit])
