"""The terminal's store of transactions and its outbox to the center.

A transaction is committed here (SQLite, WAL, ``synchronous=FULL``) before the
collector's screen says success; from then on it is only ever answered, never
dropped. ``sync_once`` uploads what is due in ``seq`` order with an upload key
derived from the batch itself, so a retry after a lost answer sends the same key
and payload and gets the center's first answer back. The center's per-record
answers (accepted, duplicate, rejected, conflict, invalid) are final.

Two kinds of failure, two remedies. The center out of reach (or refusing the
terminal, 401) says nothing about the records: the batch waits with an
exponential backoff and the round stops. A batch the center fails on (a 5xx,
another refusal of the batch such as 400 or 413, an unreadable answer) may hold
one record it cannot take: ``sync_all`` sends it again at once in halves, and
halves of those, down to single records, so the records around a poisonous one
are answered while only that one backs off (and goes alone from then on) — the
queue never stalls behind it.

Pure: the standard library only, no Django, so the rules are unit-tested alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "FINAL_RESULTS",
    "BatchFailed",
    "CenterUnavailable",
    "Outbox",
    "OutboxStatus",
    "SyncReport",
    "Uploader",
    "backoff_seconds",
    "clock_offset_ms",
    "open_store",
    "private_file",
]

#: The center's per-record answers that end a record's stay in the outbox.
FINAL_RESULTS = frozenset({"accepted", "duplicate", "rejected", "conflict", "invalid"})

BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 300.0
#: Records in a row the center fails on when each is sent alone, after which a
#: round takes it as failing on everything (an outage, not a poisonous record).
FAILED_ALONE_IN_A_ROW = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    record TEXT NOT NULL,
    committed_utc TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting',
    answer TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_utc TEXT NOT NULL,
    answered_utc TEXT,
    alone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_utc);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class CenterUnavailable(Exception):
    """The center could not be reached or did not answer usefully; try later."""


class BatchFailed(CenterUnavailable):
    """The center was reached but failed on this batch (a 5xx, a refusal of the
    batch such as 400 or 413, or a body that is not its answer): something in
    the batch may be what it cannot take, so the outbox sends smaller batches."""


class Uploader(Protocol):
    def upload(self, upload_key: str, records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        """POST the records; the center's answer, or CenterUnavailable."""
        ...


@dataclass(frozen=True, slots=True)
class SyncReport:
    sent: int
    answered: dict[str, int]
    error: str = ""
    clock_offset_ms: int | None = None
    #: The center was reached but failed on the batch (``BatchFailed``, an
    #: unreadable answer): ``sync_all`` sends its records in smaller batches.
    batch_failed: bool = False


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    waiting: int
    needs_attention: int
    last_sync_utc: dt.datetime | None
    last_error: str
    #: Center clock minus terminal clock, measured on the last exchange that
    #: carried ``server_time`` (None: never measured), and when (terminal clock).
    clock_offset_ms: int | None
    #: Waiting records the center failed on when sent alone: they back off by
    #: themselves (the rest uploads) until the center takes them; the last
    #: such failure's message.
    held_back: int = 0
    held_back_error: str = ""
    clock_measured_utc: dt.datetime | None = None


def backoff_seconds(attempts: int, *, rand: Callable[[], float] = random.random) -> float:
    """The wait before attempt ``attempts + 1``: doubling from 2 s, capped at five
    minutes, with up to 20 % jitter so a station's terminals do not retry in step."""
    base: float = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** max(0, attempts - 1))
    return base * (1.0 + 0.2 * rand())


def private_file(path: str | Path) -> None:
    """Creates the file readable by its owner only (0600), or makes an existing
    one so, with its SQLite companions: the store holds card numbers, plates and
    the staff's password verifiers. SQLite creates the -wal and -shm files with
    the database file's own permissions, whatever the umask, so making the
    database file private first is enough for the ones still to come."""
    target = Path(path)
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (target, *(target.with_name(target.name + s) for s in ("-wal", "-shm"))):
        if name.exists():
            name.chmod(0o600)


def open_store(path: str | Path, schema: str) -> sqlite3.Connection:
    """The terminal's SQLite file, durable: WAL, every commit synced to disk,
    autocommit outside explicit ``BEGIN``; ``schema`` is created if missing.
    The file (and its -wal/-shm) is owner-only (0600)."""
    private_file(path)
    # check_same_thread off: the terminal's UI threads share one connection
    # under the runtime's lock (etcnet.terminal.web.runtime).
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("outbox times carry their offset")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


class Outbox:
    """One terminal's store. ``path`` is the SQLite file (created if missing)."""

    def __init__(self, path: str | Path, *, terminal_id: str) -> None:
        self.terminal_id = terminal_id
        self._db = open_store(path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "alone" not in columns:  # a store made before failed batches were split
            self._db.execute("ALTER TABLE outbox ADD COLUMN alone INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- committing ------------------------------------------------------------

    def commit(
        self,
        build: Callable[[int], Mapping[str, Any]],
        *,
        now: dt.datetime,
        also: Callable[[sqlite3.Connection, int], None] | None = None,
    ) -> int:
        """Allocates the next sequence number, builds the record with it and
        stores both in one transaction, with whatever ``also(db, seq)`` writes
        to the same file; returns the seq. When this returns, all of it is on disk."""
        with self._write() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
            seq = int(last) + 1
            record = dict(build(seq))
            record["seq"] = seq
            db.execute(
                "INSERT INTO outbox (seq, record, committed_utc, next_attempt_utc)"
                " VALUES (?, ?, ?, ?)",
                (seq, _dumps(record), _iso(now), _iso(now)),
            )
            if also is not None:
                also(db, seq)
        return seq

    def records_where(self, key: str, value: str) -> list[dict[str, Any]]:
        """The stored records whose ``key`` is ``value`` (a shift's, for its totals)."""
        rows = self._db.execute(
            "SELECT record FROM outbox WHERE json_extract(record, ?) = ? ORDER BY seq",
            (f"$.{key}", value),
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def recent(self, limit: int = 20) -> list[tuple[int, str, dict[str, Any]]]:
        """The newest records with their state, for the collector's list."""
        rows = self._db.execute(
            "SELECT seq, state, record FROM outbox ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

    def record(self, seq: int) -> dict[str, Any]:
        row = self._db.execute("SELECT record FROM outbox WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise KeyError(seq)
        loaded: dict[str, Any] = json.loads(row[0])
        return loaded

    def state(self, seq: int) -> tuple[str, dict[str, Any] | None]:
        row = self._db.execute("SELECT state, answer FROM outbox WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise KeyError(seq)
        return str(row[0]), (json.loads(row[1]) if row[1] else None)

    # -- syncing ---------------------------------------------------------------

    def due(
        self, *, now: dt.datetime, limit: int = 100, after_seq: int = 0
    ) -> list[dict[str, Any]]:
        """The next batch: the waiting records due by ``now`` after ``after_seq``,
        in seq order, at most ``limit``. A record the center failed on when it
        was sent alone (``alone``) goes in a batch of its own, so it never again
        takes the records around it down with it."""
        rows = self._db.execute(
            "SELECT record, alone FROM outbox WHERE state = 'waiting'"
            " AND next_attempt_utc <= ? AND seq > ? ORDER BY seq LIMIT ?",
            (_iso(now), after_seq, limit),
        ).fetchall()
        batch: list[dict[str, Any]] = []
        for record, alone in rows:
            if alone and batch:
                break
            batch.append(json.loads(record))
            if alone:
                break
        return batch

    def upload_key(self, records: Sequence[Mapping[str, Any]]) -> str:
        """Stable for the same batch: the terminal, the seq range and a digest of
        the payload, so a retried batch is recognised and a different one is not."""
        digest = hashlib.sha256(_dumps(list(records)).encode()).hexdigest()[:12]
        return f"{self.terminal_id}-{records[0]['seq']}-{records[-1]['seq']}-{digest}"[:64]

    def sync_once(
        self,
        center: Uploader,
        *,
        now: Callable[[], dt.datetime],
        limit: int = 100,
        after_seq: int = 0,
    ) -> SyncReport:
        """Uploads one batch of due records (after ``after_seq``) and stores the
        answers. Never raises for a network or server failure: the batch waits
        with a backoff (a record the center failed on alone is marked to go
        alone from then on). ``sync_all`` is the round that splits failed batches."""
        batch = self.due(now=now(), limit=limit, after_seq=after_seq)
        if not batch:
            return SyncReport(sent=0, answered={})
        report = self._send(center, batch, now=now)
        if report.error:
            alone = report.batch_failed and len(batch) == 1
            self._defer(_seqs(batch), now(), report.error, alone=alone)
        return report

    def sync_all(
        self, center: Uploader, *, now: Callable[[], dt.datetime], limit: int = 100
    ) -> list[SyncReport]:
        """One round over the queue in seq order, batch after batch, until nothing
        more is due. The round stops when the center is out of reach (the batch
        waits out its backoff). A batch the center fails on is split in halves,
        and halves of those, at once: the records it can take are answered, and
        only a record it fails on alone backs off — the records after it go on
        uploading. When ``FAILED_ALONE_IN_A_ROW`` records in a row fail alone the
        center is failing on everything: the rest of the batch waits out its
        backoff and the round stops, so an outage is not hammered."""
        reports: list[SyncReport] = []
        after = 0
        while True:
            batch = self.due(now=now(), limit=limit, after_seq=after)
            if not batch:
                return reports
            if not self._send_splitting(center, batch, now=now, reports=reports):
                return reports
            after = int(batch[-1]["seq"])

    def _send_splitting(
        self,
        center: Uploader,
        batch: list[dict[str, Any]],
        *,
        now: Callable[[], dt.datetime],
        reports: list[SyncReport],
    ) -> bool:
        """Sends ``batch``, splitting it while the center fails on it (see
        ``sync_all``); False when the round must stop."""
        parts = [batch]
        failed_alone = 0
        while parts:
            part = parts.pop()
            report = self._send(center, part, now=now)
            reports.append(report)
            if not report.error:
                failed_alone = 0
                continue
            if not report.batch_failed:  # out of reach: this part waits, the round stops
                self._defer(_seqs(part), now(), report.error)
                return False
            if len(part) > 1:
                half = (len(part) + 1) // 2
                parts += [part[half:], part[:half]]  # the first half goes first
                continue
            self._defer(_seqs(part), now(), report.error, alone=True)
            failed_alone += 1
            if failed_alone >= FAILED_ALONE_IN_A_ROW and parts:
                self._defer([seq for rest in parts for seq in _seqs(rest)], now(), report.error)
                return False
        return True

    def _send(
        self, center: Uploader, batch: list[dict[str, Any]], *, now: Callable[[], dt.datetime]
    ) -> SyncReport:
        """Uploads exactly ``batch`` and stores the center's answers; records it
        leaves out back off. A failure of the whole batch is only reported
        (``error``, ``batch_failed``): the caller decides what waits."""
        sent_at = now()
        try:
            answer = center.upload(self.upload_key(batch), batch)
            results = {int(item["seq"]): dict(item) for item in answer["results"]}
        except BatchFailed as error:
            return SyncReport(sent=len(batch), answered={}, error=str(error), batch_failed=True)
        except CenterUnavailable as error:
            return SyncReport(sent=len(batch), answered={}, error=str(error))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            message = f"unreadable answer from the center: {error}"
            return SyncReport(sent=len(batch), answered={}, error=message, batch_failed=True)
        received_at = now()
        offset = clock_offset_ms(answer.get("server_time"), sent_at, received_at)
        counts: dict[str, int] = {}
        missing = []
        with self._write() as db:
            for record in batch:
                seq = int(record["seq"])
                result = results.get(seq)
                verdict = str(result.get("result", "")) if result else ""
                if verdict not in FINAL_RESULTS:
                    missing.append(seq)
                    continue
                counts[verdict] = counts.get(verdict, 0) + 1
                db.execute(
                    "UPDATE outbox SET state = ?, answer = ?, answered_utc = ?,"
                    " attempts = attempts + 1 WHERE seq = ? AND state = 'waiting'",
                    (verdict, _dumps(result), _iso(received_at), seq),
                )
            self._set(db, "last_sync_utc", _iso(received_at))
            self._set(db, "last_error", "")
            if offset is not None:
                self._set_clock(db, offset, received_at)
        if missing:
            self._defer(missing, received_at, "the center did not answer for these records")
        return SyncReport(sent=len(batch), answered=counts, clock_offset_ms=offset)

    def _defer(
        self, seqs: Sequence[int], at: dt.datetime, error: str, *, alone: bool = False
    ) -> None:
        """The records wait out their backoff; with ``alone`` (the center failed
        on the record sent by itself) it is sent alone from then on, and the
        error is kept as the held-back records' (the center is not out of reach:
        ``last_error`` is not set)."""
        with self._write() as db:
            for seq in seqs:
                (attempts,) = db.execute(
                    "SELECT attempts FROM outbox WHERE seq = ?", (seq,)
                ).fetchone()
                wait = dt.timedelta(seconds=backoff_seconds(int(attempts) + 1))
                db.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_utc = ?,"
                    " alone = MAX(alone, ?) WHERE seq = ? AND state = 'waiting'",
                    (_iso(at + wait), int(alone), seq),
                )
            self._set(db, "held_back_error" if alone else "last_error", error[:500])

    def mark_contact(self, at: dt.datetime, *, clock_offset_ms: int | None = None) -> None:
        """The center answered (a download, nothing to upload): the last sync is
        now, and the clock offset measured on that exchange is kept."""
        with self._write() as db:
            self._set(db, "last_sync_utc", _iso(at))
            if clock_offset_ms is not None:
                self._set_clock(db, clock_offset_ms, at)
            if not self.due(now=at, limit=1):
                self._set(db, "last_error", "")

    def note_clock(self, offset_ms: int, at: dt.datetime) -> None:
        """Keeps the clock offset (center minus terminal) measured at ``at``
        (terminal clock), whatever else the exchange brought."""
        with self._write() as db:
            self._set_clock(db, offset_ms, at)

    def clock(self) -> tuple[int | None, dt.datetime | None]:
        """The last measured offset (center minus terminal, ms) and when it was
        measured (terminal clock); (None, None) when never measured. One read."""
        meta = dict(
            self._db.execute(
                "SELECT key, value FROM meta WHERE key IN ('clock_offset_ms', 'clock_offset_utc')"
            ).fetchall()
        )
        offset, measured = meta.get("clock_offset_ms"), meta.get("clock_offset_utc")
        return (
            int(offset) if offset is not None else None,
            dt.datetime.fromisoformat(measured) if measured else None,
        )

    def _set_clock(self, db: sqlite3.Connection, offset_ms: int, at: dt.datetime) -> None:
        self._set(db, "clock_offset_ms", str(offset_ms))
        self._set(db, "clock_offset_utc", _iso(at))

    # -- what the collector sees -------------------------------------------------

    def status(self) -> OutboxStatus:
        (waiting,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = 'waiting'"
        ).fetchone()
        (attention,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state IN ('conflict', 'invalid')"
        ).fetchone()
        (held_back,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = 'waiting' AND alone"
        ).fetchone()
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        last_sync = meta.get("last_sync_utc")
        offset = meta.get("clock_offset_ms")
        measured = meta.get("clock_offset_utc")
        return OutboxStatus(
            waiting=int(waiting),
            needs_attention=int(attention),
            last_sync_utc=dt.datetime.fromisoformat(last_sync) if last_sync else None,
            last_error=meta.get("last_error", ""),
            clock_offset_ms=int(offset) if offset is not None else None,
            held_back=int(held_back),
            held_back_error=meta.get("held_back_error", "") if held_back else "",
            clock_measured_utc=dt.datetime.fromisoformat(measured) if measured else None,
        )

    @staticmethod
    def _set(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _seqs(records: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(record["seq"]) for record in records]


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def clock_offset_ms(
    server_time: object, sent_at: dt.datetime, received_at: dt.datetime
) -> int | None:
    """Center clock minus terminal clock, taking the center's reading as made
    half-way through the round trip (NTP's simple estimate)."""
    if not isinstance(server_time, str):
        return None
    try:
        center = dt.datetime.fromisoformat(server_time)
    except ValueError:
        return None
    if center.tzinfo is None:
        return None
    midpoint = sent_at + (received_at - sent_at) / 2
    return round((center - midpoint).total_seconds() * 1000)
