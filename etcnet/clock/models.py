"""The readings of the center's time source (docs/clock.md).

The chain of seed 003: the Beidou receiver (an NTP server) → the center, which
reads its own offset from it (`etcnet clock check`, one row a reading) and adds
the last good offset to its system clock for the `server_time` it gives
terminals → the lanes and handhelds, which measure their offset from that and
correct the times they record by it.

A reading either has an offset (with its round trip and the source's stratum)
or says why it has none; the table keeps both, so the panel can say since when
the source has been silent. Readings are measurements, not business state: no
audit event (the rows are the record), and those older than `KEEP_DAYS` are
removed as new ones come.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

#: Readings are kept this long (one a minute is 43,200 rows for 30 days).
KEEP_DAYS = 30


class TimeReading(models.Model):
    at = models.DateTimeField()  # the center's system clock when the answer came
    source = models.CharField(max_length=200)  # ETCNET_TIME_SOURCE as read
    # The source's time minus the center's system clock (positive: the center is behind).
    offset_ms = models.IntegerField(null=True, blank=True)
    delay_us = models.IntegerField(null=True, blank=True)  # round trip
    stratum = models.SmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)  # empty: a good reading

    class Meta:
        ordering = ("-at", "-pk")
        indexes = [models.Index(fields=["source", "-at"], name="clock_reading_source_at")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(error="")
                    & Q(offset_ms__isnull=False)
                    & Q(delay_us__gte=0)
                    & Q(stratum__gte=1, stratum__lte=15)
                )
                | (~Q(error="") & Q(offset_ms__isnull=True)),
                name="clock_reading_good_or_failed",
            ),
        ]

    def __str__(self) -> str:
        told = self.error or f"{self.offset_ms:+d} ms"
        return f"{self.source} at {self.at:%Y-%m-%d %H:%M:%S}: {told}"

    @property
    def delay_ms(self) -> float | None:
        return None if self.delay_us is None else self.delay_us / 1000
