"""Rate limits shared by every center process.

A limit is a count per window of seconds for one key (an address, a mobile
number, a login name) within one scope ("plates.login.ip", "sms.mobile"...).
Windows are fixed (they start at multiples of their length since the epoch), so
a refusal can name the moment the next request will go through.

The counters live in the database (``core.RateCounter``), not in a process's
memory: a center runs as several stateless processes behind one address, and a
per-process count would let a client multiply its allowance by the number of
processes. A hit is ``get_or_create`` of the window's row (its unique
constraint settles two first hits at once) and then a compare-and-set
``UPDATE … SET hits = hits + 1 WHERE hits < limit``: of any number of
concurrent hits exactly ``limit`` succeed, on SQLite and PostgreSQL alike.

A hit made inside a service's transaction is undone with it, so a refused
request (for instance an SMS code that was never stored) does not count; a view
that must count every attempt hits before it calls the service.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from etcnet.core.errors import DomainError
from etcnet.core.models import RateCounter

log = logging.getLogger("etcnet.ratelimit")
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True)
class Rate:
    """At most ``count`` hits per ``seconds``; a count of 0 means no limit."""

    count: int
    seconds: int

    @classmethod
    def of(cls, value: Rate | tuple[int, int]) -> Rate:
        return value if isinstance(value, Rate) else cls(int(value[0]), int(value[1]))


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    template = "Too many attempts; try again after {retry_at}."

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window ends (the Retry-After header)."""
        seconds = self.params.get("retry_after", 1)
        return seconds if isinstance(seconds, int) else 1


def _digest(scope: str, key: str) -> str:
    secret = settings.SECRET_KEY.encode()
    return hmac.new(secret, f"{scope}:{key}".encode(), hashlib.sha256).hexdigest()[:40]


def _window(now: dt.datetime, seconds: int) -> tuple[dt.datetime, dt.datetime]:
    epoch = int(now.timestamp())
    start = epoch - epoch % seconds
    begins = dt.datetime.fromtimestamp(start, tz=dt.UTC)
    return begins, begins + dt.timedelta(seconds=seconds)


def hit(
    scope: str,
    key: str,
    rate: Rate | tuple[int, int],
    *,
    now: dt.datetime | None = None,
    shown_key: str = "",
) -> None:
    """Counts one request of ``key`` in ``scope``; raises ``RateLimited`` (429,
    naming when to retry) and logs the refusal when the window's count is
    spent. An empty key is not limited. ``shown_key`` is what the log may show
    (masked personal data)."""
    limit = Rate.of(rate)
    if limit.count == 0 or not key:
        return
    now = now or timezone.now()
    begins, ends = _window(now, limit.seconds)
    digest = _digest(scope, key)
    with transaction.atomic():
        counter, created = RateCounter.objects.get_or_create(
            scope=scope, key=digest, window_start=begins, defaults={"expires_at": ends}
        )
        if created:
            # The key's earlier windows are over: they count for nothing any more.
            RateCounter.objects.filter(scope=scope, key=digest, expires_at__lte=now).delete()
        won = RateCounter.objects.filter(pk=counter.pk, hits__lt=limit.count).update(
            hits=F("hits") + 1
        )
    if won:
        return
    log.warning(
        "rate limit %s (%d per %ds) refused %s until %s",
        scope,
        limit.count,
        limit.seconds,
        shown_key or "a key",
        ends.isoformat(),
    )
    raise RateLimited(
        params={
            "retry_at": ends.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
            "retry_after": max(1, int((ends - now).total_seconds() + 0.999)),
        }
    )


def purge(*, now: dt.datetime | None = None) -> int:
    """Deletes the counters of windows that are over; returns how many."""
    deleted, _ = RateCounter.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
