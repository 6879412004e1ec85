"""The terminal's outbox on its own: what is committed is kept until the center
answers it, retries reuse the batch's key, failures back off."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from etcnet.terminal.outbox import CenterUnavailable, Outbox, backoff_seconds

T0 = dt.datetime(2026, 11, 21, 2, 30, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


class Center:
    """A center that answers each record once by seq, remembers upload keys like
    the real one, and can be switched off."""

    def __init__(self, clock: Clock, *, skew_s: float = 0.0) -> None:
        self.clock = clock
        self.skew = dt.timedelta(seconds=skew_s)
        self.down = False
        self.lose_answer = False
        self.stored: dict[int, Mapping[str, Any]] = {}
        self.uploads: dict[str, Any] = {}
        self.calls: list[str] = []

    def upload(self, upload_key: str, records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        self.calls.append(upload_key)
        if self.down:
            raise CenterUnavailable("connection refused")
        if upload_key in self.uploads:
            assert self.uploads[upload_key][0] == list(records)
            return self.uploads[upload_key][1]
        results = []
        for record in records:
            seq = int(record["seq"])
            if seq in self.stored:
                results.append({"seq": seq, "result": "duplicate"})
            else:
                self.stored[seq] = record
                verdict = "rejected" if record.get("bad") else "accepted"
                code = 1 if record.get("bad") else 0
                results.append({"seq": seq, "result": verdict, "code": code})
        answer = {
            "upload_key": upload_key,
            "results": results,
            "server_time": (self.clock() + self.skew).isoformat(),
        }
        self.uploads[upload_key] = (list(records), answer)
        if self.lose_answer:
            self.lose_answer = False
            raise CenterUnavailable("read timed out")
        return answer


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Any) -> Outbox:
    return Outbox(tmp_path / "terminal.sqlite3", terminal_id="HH-0001")


def commit(outbox: Outbox, clock: Clock, **fields: Any) -> int:
    return outbox.commit(lambda seq: {"lane": 3, "fee_fen": 100 * seq, **fields}, now=clock())


def test_commit_numbers_records_and_keeps_them_across_a_restart(tmp_path, clock):
    first = Outbox(tmp_path / "t.sqlite3", terminal_id="HH-0001")
    assert [commit(first, clock), commit(first, clock)] == [1, 2]
    first.close()  # the process stops; the file is all there is
    again = Outbox(tmp_path / "t.sqlite3", terminal_id="HH-0001")
    assert commit(again, clock) == 3
    assert again.record(2) == {"seq": 2, "lane": 3, "fee_fen": 200}
    assert again.status().waiting == 3


def test_a_failing_build_stores_nothing_and_uses_no_seq(outbox, clock):
    def broken(seq: int) -> dict[str, Any]:
        raise ValueError("card pulled out")

    with pytest.raises(ValueError, match="card pulled out"):
        outbox.commit(broken, now=clock())
    assert commit(outbox, clock) == 1


def test_sync_stores_each_answer_and_the_last_sync(outbox, clock):
    center = Center(clock)
    commit(outbox, clock)
    commit(outbox, clock, bad=True)
    report = outbox.sync_once(center, now=clock)
    assert report.answered == {"accepted": 1, "rejected": 1}
    assert outbox.state(1)[0] == "accepted"
    assert outbox.state(2) == ("rejected", {"seq": 2, "result": "rejected", "code": 1})
    status = outbox.status()
    assert (status.waiting, status.last_sync_utc, status.last_error) == (0, T0, "")
    assert outbox.sync_once(center, now=clock).sent == 0  # answered records are not resent


def test_center_down_keeps_records_waiting_with_backoff(outbox, clock):
    center = Center(clock)
    center.down = True
    commit(outbox, clock)
    report = outbox.sync_once(center, now=clock)
    assert report.error == "connection refused"
    assert outbox.status().waiting == 1
    assert outbox.status().last_error == "connection refused"
    # Not due again at once …
    assert outbox.sync_once(center, now=clock).sent == 0
    # … but after the backoff, and then it goes through.
    center.down = False
    clock.now += dt.timedelta(seconds=3)
    assert outbox.sync_once(center, now=clock).answered == {"accepted": 1}
    assert outbox.status().waiting == 0


def test_a_lost_answer_is_retried_with_the_same_key_and_nothing_doubles(outbox, clock):
    center = Center(clock)
    commit(outbox, clock)
    commit(outbox, clock)
    center.lose_answer = True
    assert outbox.sync_once(center, now=clock).error == "read timed out"
    clock.now += dt.timedelta(seconds=10)
    report = outbox.sync_once(center, now=clock)
    assert center.calls[0] == center.calls[1]  # the same batch, the same key
    assert report.answered == {"accepted": 2}  # the first answer, not "duplicate"
    assert len(center.stored) == 2


def test_a_grown_batch_gets_a_new_key_and_per_record_duplicates(outbox, clock):
    center = Center(clock)
    commit(outbox, clock)
    center.lose_answer = True
    outbox.sync_once(center, now=clock)
    commit(outbox, clock)
    clock.now += dt.timedelta(seconds=10)
    report = outbox.sync_once(center, now=clock)
    assert center.calls[0] != center.calls[1]
    assert report.answered == {"duplicate": 1, "accepted": 1}
    assert outbox.state(1)[0] == "duplicate"


def test_records_the_center_does_not_answer_stay_waiting(outbox, clock):
    class Forgetful(Center):
        def upload(self, upload_key, records):
            answer = dict(super().upload(upload_key, records))
            answer["results"] = answer["results"][:1]
            return answer

    commit(outbox, clock)
    commit(outbox, clock)
    outbox.sync_once(Forgetful(clock), now=clock)
    assert outbox.state(1)[0] == "accepted"
    assert outbox.state(2)[0] == "waiting"


def test_an_unreadable_answer_is_an_error_not_a_loss(outbox, clock):
    class Garbled(Center):
        def upload(self, upload_key, records):
            return {"oops": True}

    commit(outbox, clock)
    report = outbox.sync_once(Garbled(clock), now=clock)
    assert "unreadable answer" in report.error
    assert outbox.status().waiting == 1


def test_sync_all_sends_in_batches_in_seq_order(outbox, clock):
    center = Center(clock)
    for _ in range(5):
        commit(outbox, clock)
    reports = outbox.sync_all(center, now=clock, limit=2)
    assert [r.sent for r in reports] == [2, 2, 1]
    assert [k.split("-")[2:4] for k in center.calls] == [["1", "2"], ["3", "4"], ["5", "5"]]


def test_the_clock_offset_is_measured_at_the_round_trips_midpoint(outbox, clock):
    center = Center(clock, skew_s=-95.5)
    commit(outbox, clock)
    assert outbox.sync_once(center, now=clock).clock_offset_ms == -95_500
    assert outbox.status().clock_offset_ms == -95_500


def test_backoff_doubles_is_capped_and_jittered():
    no_jitter = [backoff_seconds(n, rand=lambda: 0.0) for n in (1, 2, 3, 4, 20)]
    assert no_jitter == [2.0, 4.0, 8.0, 16.0, 300.0]
    assert backoff_seconds(1, rand=lambda: 0.999) < 2.4


def test_times_without_an_offset_are_refused(outbox):
    with pytest.raises(ValueError, match="offset"):
        outbox.commit(lambda seq: {}, now=dt.datetime(2026, 11, 21, 10, 30))
