"""The terminal's outbox on its own: what is committed is kept until the center
answers it, retries reuse the batch's key, failures back off, and a batch the
center fails on is split so that only a poisonous record waits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest

from etcnet.terminal.center import HttpCenter
from etcnet.terminal.outbox import BatchFailed, CenterUnavailable, Outbox, backoff_seconds

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


# -- a batch the center fails on: split, and only the poisonous record backs off --


class Poisoned(Center):
    """A center that fails on any batch holding one of the ``poison`` seqs (as a
    500 would), optionally after storing the records before the failing one."""

    def __init__(self, clock: Clock, *, poison: set[int], store_first: bool = False) -> None:
        super().__init__(clock)
        self.poison = poison
        self.store_first = store_first

    def upload(self, upload_key: str, records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        bad = [r for r in records if int(r["seq"]) in self.poison]
        if bad:
            self.calls.append(upload_key)
            if self.store_first:
                for record in records:
                    if record is bad[0]:
                        break
                    self.stored.setdefault(int(record["seq"]), record)
            raise BatchFailed("center answered 500: Internal Server Error")
        return super().upload(upload_key, records)


def ranges(center: Center) -> list[str]:
    return ["-".join(key.split("-")[2:4]) for key in center.calls]


def test_a_poisonous_record_backs_off_alone_and_the_records_after_it_go_on(outbox, clock):
    for _ in range(10):
        commit(outbox, clock)
    center = Poisoned(clock, poison={4})

    reports = outbox.sync_all(center, now=clock, limit=10)

    # The failed batch is halved at once until the record is alone.
    assert ranges(center) == ["1-10", "1-5", "1-3", "4-5", "4-4", "5-5", "6-10"]
    assert [(r.sent, r.batch_failed) for r in reports] == [
        (10, True),
        (5, True),
        (3, False),
        (2, True),
        (1, True),
        (1, False),
        (5, False),
    ]
    assert [outbox.state(seq)[0] for seq in range(1, 11)] == ["accepted"] * 3 + ["waiting"] + [
        "accepted"
    ] * 6
    assert sorted(center.stored) == [1, 2, 3, 5, 6, 7, 8, 9, 10]  # each once
    status = outbox.status()
    assert (status.waiting, status.held_back, status.held_back_error, status.last_error) == (
        1,
        1,
        "center answered 500: Internal Server Error",
        "",  # the center is reachable: the terminal is not offline
    )
    assert outbox.sync_all(center, now=clock) == []  # only the poisonous one waits, backing off


def test_a_record_that_failed_alone_is_sent_alone_while_the_queue_flows(outbox, clock):
    for _ in range(3):
        commit(outbox, clock)
    center = Poisoned(clock, poison={2})
    outbox.sync_all(center, now=clock)
    for _ in range(2):
        commit(outbox, clock)  # 4 and 5 come while 2 backs off
    assert [r.answered for r in outbox.sync_all(center, now=clock)] == [{"accepted": 2}]

    clock.now += dt.timedelta(seconds=3)  # past 2's first backoff
    center.calls.clear()
    for _ in range(2):
        commit(outbox, clock)
    outbox.sync_all(center, now=clock)
    assert ranges(center) == ["2-2", "6-7"]  # alone, then the rest in one batch
    assert outbox.state(2)[0] == "waiting"
    clock.now += dt.timedelta(seconds=3)
    assert outbox.sync_all(center, now=clock) == []  # its backoff doubled: 4 s now

    center.poison.clear()  # the center is fixed
    clock.now += dt.timedelta(seconds=2)
    assert [r.answered for r in outbox.sync_all(center, now=clock)] == [{"accepted": 1}]
    status = outbox.status()
    assert (status.waiting, status.held_back, status.held_back_error) == (0, 0, "")


def test_records_the_center_stored_before_failing_come_back_duplicate_and_are_final(outbox, clock):
    for _ in range(4):
        commit(outbox, clock)
    center = Poisoned(clock, poison={3}, store_first=True)  # stores 1 and 2, then fails

    outbox.sync_all(center, now=clock)

    assert [outbox.state(seq)[0] for seq in (1, 2, 3, 4)] == [
        "duplicate",
        "duplicate",
        "waiting",
        "accepted",
    ]
    assert sorted(center.stored) == [1, 2, 4]  # nothing doubled
    center.poison.clear()
    clock.now += dt.timedelta(minutes=10)
    center.calls.clear()
    outbox.sync_all(center, now=clock)
    assert ranges(center) == ["3-3"]  # what was answered is never sent again
    assert outbox.state(1)[0] == "duplicate"


def test_a_center_failing_on_everything_is_not_hammered(outbox, clock):
    for _ in range(100):
        commit(outbox, clock)
    center = Poisoned(clock, poison=set(range(1, 101)))

    reports = outbox.sync_all(center, now=clock)

    # Halved down to one record, then three records in a row fail alone: an outage.
    assert ranges(center) == [
        "1-100", "1-50", "1-25", "1-13", "1-7", "1-4", "1-2", "1-1", "2-2", "3-4", "3-3",
    ]  # fmt: skip
    assert all(r.batch_failed for r in reports)
    status = outbox.status()
    assert (status.waiting, status.held_back, status.last_error) == (
        100,
        3,
        "center answered 500: Internal Server Error",
    )
    assert outbox.sync_all(center, now=clock) == []  # every record waits out its backoff
    clock.now += dt.timedelta(seconds=3)  # past the backoff; the center is back
    center.poison.clear()
    center.calls.clear()
    assert sum(r.answered["accepted"] for r in outbox.sync_all(center, now=clock)) == 100
    assert ranges(center) == ["1-1", "2-2", "3-3", "4-100"]  # those that failed alone, alone
    assert outbox.status().waiting == 0


def test_the_center_out_of_reach_stops_the_round_and_nothing_is_split(outbox, clock):
    for _ in range(5):
        commit(outbox, clock)
    center = Center(clock)
    center.down = True
    reports = outbox.sync_all(center, now=clock, limit=2)
    assert [(r.sent, r.batch_failed, r.error) for r in reports] == [
        (2, False, "connection refused")
    ]
    clock.now += dt.timedelta(seconds=3)
    center.down = False
    assert [r.sent for r in outbox.sync_all(center, now=clock, limit=2)] == [2, 2, 1]


def test_an_unreadable_answer_is_split_like_a_failed_batch(outbox, clock):
    class GarbledOnTwo(Center):
        def upload(self, upload_key, records):
            if any(r["seq"] == 2 for r in records):
                self.calls.append(upload_key)
                return {"results": "oops"}
            return super().upload(upload_key, records)

    for _ in range(3):
        commit(outbox, clock)
    center = GarbledOnTwo(clock)
    outbox.sync_all(center, now=clock)
    assert [outbox.state(seq)[0] for seq in (1, 2, 3)] == ["accepted", "waiting", "accepted"]


def test_a_store_made_before_batches_were_split_is_upgraded(tmp_path, clock):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, record TEXT NOT NULL,"
        " committed_utc TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'waiting', answer TEXT,"
        " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_utc TEXT NOT NULL,"
        " answered_utc TEXT);"
        f"INSERT INTO outbox (seq, record, committed_utc, next_attempt_utc)"
        f" VALUES (1, '{{\"seq\":1}}', '{T0.isoformat()}', '{T0.isoformat()}');"
    )
    old.commit()
    old.close()
    outbox = Outbox(path, terminal_id="HH-0001")
    assert outbox.sync_once(Center(clock), now=clock).answered == {"accepted": 1}


# -- the HTTP client: which answers are the center's failure on the batch ---------


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (500, "Internal Server Error", BatchFailed),
        (400, '{"code": "bad_request"}', BatchFailed),
        (413, "Request Entity Too Large", BatchFailed),
        (422, '{"detail": []}', BatchFailed),
        (200, "<html>proxy</html>", BatchFailed),
        (401, '{"code": "unauthorized"}', CenterUnavailable),
        (403, '{"code": "forbidden"}', CenterUnavailable),
        (429, "slow down", CenterUnavailable),
        (502, "Bad Gateway", CenterUnavailable),
        (503, "Service Unavailable", CenterUnavailable),
        (504, "Gateway Timeout", CenterUnavailable),
    ],
)
def test_http_center_tells_a_failed_batch_from_a_center_out_of_reach(status, body, raised):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=body)

    center = HttpCenter(
        "http://center", terminal_id="HH-0001", secret="s", transport=httpx.MockTransport(answer)
    )
    with pytest.raises(raised) as caught:
        center.upload("HH-0001-1-1-abc", [{"seq": 1}])
    assert (caught.type is BatchFailed) is (raised is BatchFailed)


def test_http_center_unreachable_is_not_a_failed_batch():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    center = HttpCenter(
        "http://center", terminal_id="HH-0001", secret="s", transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(CenterUnavailable) as caught:
        center.upload("HH-0001-1-1-abc", [{"seq": 1}])
    assert caught.type is CenterUnavailable
