"""What the center's clock panel says, from the readings of the time source.

Pure: plain dataclasses, no Django.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["ClockStatus", "Good", "assess"]


@dataclass(frozen=True, slots=True)
class Good:
    """The last reading that gave an offset."""

    at: dt.datetime
    offset_ms: int
    delay_us: int
    stratum: int


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """The center's clock against its time source.

    ``applied_ms`` is what the center adds to its system clock for the time it
    gives terminals (``server_time``): the last good offset of the configured
    source, 0 when there is none. The warnings: ``unconfigured`` (no source:
    the system clock stands alone), ``never_read`` (no good reading yet),
    ``beyond`` (the offset is past ``max_ms``: the center corrects by it, but its
    system clock, which stamps everything else, wants setting), ``stale`` (no
    good reading for more than ``stale_s``: the last offset still applies, the
    source or the network wants looking at). ``last_error`` is the newest
    reading's error when it failed."""

    source: str
    good: Good | None
    last_error: str
    last_error_at: dt.datetime | None
    max_ms: int
    stale_s: int
    unconfigured: bool
    never_read: bool
    beyond: bool
    stale: bool
    #: Seconds since the last good reading, as of the assessment.
    silent_s: int | None

    @property
    def applied_ms(self) -> int:
        return self.good.offset_ms if self.good is not None else 0

    @property
    def warn(self) -> bool:
        return self.unconfigured or self.never_read or self.beyond or self.stale


def assess(
    *,
    source: str,
    good: Good | None,
    last_error: str = "",
    last_error_at: dt.datetime | None = None,
    now: dt.datetime,
    max_ms: int,
    stale_s: int,
) -> ClockStatus:
    """The status of the configured ``source`` at ``now`` (the center's system
    clock) from its last good reading and its newest failed one, if that came
    after the good one."""
    if good is not None and last_error_at is not None and last_error_at <= good.at:
        last_error, last_error_at = "", None
    silent = None if good is None else max(0, int((now - good.at).total_seconds()))
    return ClockStatus(
        source=source,
        good=good,
        last_error=last_error,
        last_error_at=last_error_at,
        max_ms=max_ms,
        stale_s=stale_s,
        unconfigured=not source,
        never_read=bool(source) and good is None,
        beyond=good is not None and abs(good.offset_ms) > max_ms,
        stale=silent is not None and silent > stale_s,
        silent_s=silent,
    )
