"""Rate limits kept in the database, shared by every center process."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
from django.db import connections

from etcnet.core import ratelimit
from etcnet.core.models import RateCounter

pytestmark = pytest.mark.django_db

# 10:00:30 Asia/Shanghai: inside the minute window 10:00:00–10:01:00.
NOW = dt.datetime(2026, 11, 23, 2, 0, 30, tzinfo=dt.UTC)


def test_the_count_goes_through_then_429_names_when_to_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for _ in range(3):
        ratelimit.hit("test.scope", "13900000001", (3, 60), now=NOW, shown_key="139****0001")
    with (
        caplog.at_level(logging.WARNING, "etcnet.ratelimit"),
        pytest.raises(ratelimit.RateLimited) as refused,
    ):
        ratelimit.hit("test.scope", "13900000001", (3, 60), now=NOW, shown_key="139****0001")
    assert refused.value.status == 429
    assert refused.value.params["retry_at"] == "2026-11-23 10:01:00"
    assert refused.value.retry_after == 30
    assert "139****0001" in caplog.text
    assert "13900000001" not in caplog.text
    # The count is 3: the refused hit did not count.
    assert list(RateCounter.objects.values_list("hits", flat=True)) == [3]
    # Other keys and other scopes have their own counts.
    ratelimit.hit("test.scope", "13900000002", (3, 60), now=NOW)
    ratelimit.hit("other.scope", "13900000001", (3, 60), now=NOW)


def test_the_next_window_starts_again_and_drops_the_old_row() -> None:
    for _ in range(2):
        ratelimit.hit("test.scope", "k", (2, 60), now=NOW)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit("test.scope", "k", (2, 60), now=NOW + dt.timedelta(seconds=29))
    ratelimit.hit("test.scope", "k", (2, 60), now=NOW + dt.timedelta(seconds=30))
    assert RateCounter.objects.count() == 1
    assert ratelimit.purge(now=NOW + dt.timedelta(minutes=2)) == 1


def test_a_count_of_zero_or_an_empty_key_is_not_limited() -> None:
    for _ in range(5):
        ratelimit.hit("test.scope", "k", (0, 60), now=NOW)
        ratelimit.hit("test.scope", "", (1, 60), now=NOW)
    assert RateCounter.objects.count() == 0


def test_the_key_is_not_stored_in_the_clear() -> None:
    ratelimit.hit("test.scope", "13900000001", (3, 60), now=NOW)
    assert "13900000001" not in RateCounter.objects.get().key


@pytest.mark.django_db(transaction=True)
def test_concurrent_hits_pass_exactly_the_count() -> None:
    """Twenty processes' requests at one moment (threads with their own
    connections, real commits): the compare-and-set lets exactly five pass."""
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            barrier.wait()
            ratelimit.hit("test.race", "13900000001", (5, 60), now=NOW)
            outcomes.append("passed")
        except ratelimit.RateLimited:
            outcomes.append("limited")
        except Exception as exc:  # reported in the assertion below
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["limited"] * 15 + ["passed"] * 5, outcomes
    assert RateCounter.objects.get().hits == 5
