"""The lane's clock rules without a center (docs/clock.md): what is corrected, what
a record carries, when card work or any transaction is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings

from etcnet.terminal.lane import CLOCK_MAX_MS, LaneClock
from etcnet.terminal.outbox import Outbox

T = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)


def test_the_default_maximum_is_the_centers_clearing_limit():
    assert CLOCK_MAX_MS == settings.ETCNET_CLEARING_CLOCK_LIMIT_MS == 300_000


def test_the_time_recorded_is_the_machines_clock_plus_the_measured_offset():
    behind = LaneClock(offset_ms=90_000, measured_utc=T, max_ms=CLOCK_MAX_MS)  # center ahead
    assert behind.correct(T) == T + dt.timedelta(seconds=90)
    assert behind.record_offset_ms == -90_000  # a record says terminal minus center
    ahead = LaneClock(offset_ms=-1_250, measured_utc=T, max_ms=CLOCK_MAX_MS)
    assert ahead.correct(T) == T - dt.timedelta(milliseconds=1_250)
    assert ahead.record_offset_ms == 1_250


@pytest.mark.parametrize(
    ("offset_ms", "card", "refused"),
    [
        (300_000, True, None),  # at the maximum: allowed (clearing holds beyond its limit)
        (-300_000, True, None),
        (300_001, True, "clock_off"),
        (-300_001, True, "clock_off"),
        (300_001, False, None),  # cash and mobile payments go on
        (None, False, "clock_unknown"),  # never measured: nothing at all
        (None, True, "clock_unknown"),
    ],
)
def test_card_work_is_refused_beyond_the_maximum_and_everything_before_a_measurement(
    offset_ms, card, refused
):
    clock = LaneClock(offset_ms=offset_ms, measured_utc=T if offset_ms else None, max_ms=300_000)
    error = clock.refusal(card=card)
    assert (error.code if error else None) == refused


def test_the_refusal_names_the_offset_and_the_maximum_and_the_field():
    clock = LaneClock(offset_ms=-600_123, measured_utc=T, max_ms=300_000)
    at_exit = clock.refusal(card=True)
    at_entry = clock.refusal(card=True, entry=True)
    assert at_exit is not None
    assert at_entry is not None
    assert (at_exit.field, at_exit.params) == (
        "payment_type",
        {"offset_ms": 600_123, "max_ms": 300_000},
    )
    assert "Take cash or a mobile payment" in str(at_exit)
    assert at_entry.field == ""
    assert "no card can be written" in str(at_entry)
    assert LaneClock(None, None, 300_000).correct(T) == T


def test_the_outbox_keeps_the_offset_with_when_it_was_measured(tmp_path):
    outbox = Outbox(tmp_path / "t.sqlite3", terminal_id="HH-1")
    assert outbox.clock() == (None, None)
    outbox.note_clock(1_500, T)
    assert outbox.clock() == (1_500, T)
    outbox.mark_contact(T + dt.timedelta(seconds=10), clock_offset_ms=-20)
    status = outbox.status()
    assert (status.clock_offset_ms, status.clock_measured_utc) == (
        -20,
        T + dt.timedelta(seconds=10),
    )
    outbox.mark_contact(T + dt.timedelta(seconds=20))  # nothing measured: the offset stands
    assert outbox.clock() == (-20, T + dt.timedelta(seconds=10))
