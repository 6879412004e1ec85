"""The clearing day's run (`etcnet clearing run --date YYYY-MM-DD`).

Three steps, each set-based, logged in the run's `JobRun` row:

1. **extract** — the day's records (and late and carried ones, see
   `extract.Selection`) leave the database in bulk as CSV files under
   `ETCNET_DATA_DIR/clearing/<date>/run-<id>/`, read in one snapshot;
2. **compute** — DuckDB runs the day's definitions (`definitions.DAY`): checks,
   splitting, the check that every cleared trip's splits add up to its payable
   amount, figures, owner shares, positions and the ledger lines;
3. **write** — in one database transaction: an entry per new record (COPY),
   the carried entries marked cleared, the figures, shares and positions, the
   day's balanced journal entry, the day closed, the run succeeded, an audit
   event. A crash before the commit leaves nothing of the run but its `JobRun`
   row; the next run marks it `crashed` and resumes from its extracted files.

A closed day is never rewritten: its run again changes nothing (`unchanged`).
Days close in order: a day runs when no earlier day is open and no later day
is closed.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import logging
import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model, Sum
from django.utils import timezone

from etcnet.cards import ledger
from etcnet.cards.models import EntryKind, LedgerAccount
from etcnet.clearing import definitions, embedded, exchange, extract
from etcnet.clearing.models import (
    ClearingDay,
    ClearingEntry,
    DayFigure,
    DayStatus,
    EntryState,
    JobRun,
    OwnerShare,
    Position,
    RunStatus,
    update_entries,
)
from etcnet.core import audit, bulk

log = logging.getLogger(__name__)

__all__ = ["ClearingError", "day_window", "run_day"]

LOCAL = ZoneInfo("Asia/Shanghai")
#: A record received this long before a closed day's cutoff may still have been
#: committed after the run read the store (an upload's transaction): the next
#: run looks that far back for late records (it takes each record once).
CUTOFF_MARGIN = dt.timedelta(hours=1)
_MANIFEST = "extracted.json"

Progress = Callable[[str], None]


class ClearingError(Exception):
    """A run that cannot go on; its message says why (for operators)."""


def day_window(date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the Asia/Shanghai day `date`, aware."""
    start = dt.datetime.combine(date, dt.time(0), tzinfo=LOCAL)
    return start, start + dt.timedelta(days=1)


@dataclass
class _Run:
    day: ClearingDay
    job: JobRun
    progress: Progress

    def step(self, name: str) -> None:
        self.job.step = name
        JobRun.objects.filter(pk=self.job.pk).update(step=name)
        self.progress(name)


def run_day(date: dt.date, *, actor: str = "", progress: Progress | None = None) -> JobRun:
    """Runs the clearing day `date`; returns its job-run row (succeeded, or
    unchanged for a closed day). Raises `ClearingError` (the row then `failed`)."""
    say = progress or (lambda message: None)
    day, _ = ClearingDay.objects.get_or_create(date=date)
    resumed = _mark_crashed(day)
    job = JobRun.objects.create(
        job="run",
        day=day,
        status=RunStatus.RUNNING,
        started_at=timezone.now(),
        host=socket.gethostname()[:100],
        pid=os.getpid(),
        actor=actor[:60],
    )
    run = _Run(day, job, say)
    if day.status == DayStatus.CLOSED:
        _finish(job, RunStatus.UNCHANGED, counts=day.totals)
        say(f"{date} is closed: nothing changed")
        return job
    try:
        _order(date)
        folder, cutoff = _extract(run, resumed)
        results = _compute(run, folder)
        _write(run, results, cutoff)
    except Exception as error:
        message = str(error) if isinstance(error, ClearingError) else traceback.format_exc()
        _finish(job, RunStatus.FAILED, error=message[-4000:])
        if isinstance(error, ClearingError):
            raise
        raise ClearingError(f"the run of {date} failed: {error}") from error
    return job


def _finish(
    job: JobRun, status: str, *, counts: dict[str, Any] | None = None, error: str = ""
) -> None:
    job.status, job.finished_at, job.error = status, timezone.now(), error
    if counts is not None:
        job.counts = counts
    job.save(update_fields=["status", "finished_at", "error", "counts"])


def _mark_crashed(day: ClearingDay) -> JobRun | None:
    """Runs of `day` still `running` whose process is gone are `crashed`; returns
    the latest of them (its extracted files may be reused)."""
    here = socket.gethostname()[:100]
    crashed = None
    for job in JobRun.objects.filter(day=day, status=RunStatus.RUNNING).order_by("started_at"):
        if job.host == here and job.pid and _alive(job.pid):
            raise ClearingError(f"a run of {day.date} is running (process {job.pid})")
        if job.host != here:
            raise ClearingError(
                f"a run of {day.date} is running on {job.host} (process {job.pid});"
                f" if it is gone, mark it with `etcnet clearing runs --crashed {job.pk}`"
            )
        job.status, job.finished_at = RunStatus.CRASHED, timezone.now()
        job.error = job.error or f"found running at step {job.step!r}, its process gone"
        job.save(update_fields=["status", "finished_at", "error"])
        crashed = job
    return crashed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process's own old row: it is not running it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _order(date: dt.date) -> None:
    earlier = (
        ClearingDay.objects.filter(date__lt=date, status=DayStatus.OPEN)
        .order_by("date")
        .values_list("date", flat=True)
        .first()
    )
    if earlier is not None:
        raise ClearingError(f"{earlier} is still open: days close in order, run it first")
    later = (
        ClearingDay.objects.filter(date__gt=date, status=DayStatus.CLOSED)
        .order_by("date")
        .values_list("date", flat=True)
        .first()
    )
    if later is not None:
        raise ClearingError(
            f"{later} is closed already: {date}'s records went into it as late records"
        )


def _folder(day: ClearingDay, job: JobRun) -> Path:
    return Path(settings.DATA_DIR) / "clearing" / day.date.isoformat() / f"run-{job.pk}"


def _extract(run: _Run, resumed: JobRun | None) -> tuple[Path, dt.datetime]:
    if resumed is not None:
        folder = _folder(run.day, resumed)
        manifest = folder / _MANIFEST
        if manifest.exists():
            saved = json.loads(manifest.read_text())
            run.progress(f"resuming from run {resumed.pk}'s extracted files ({folder})")
            run.job.counts = {"resumed_from": resumed.pk, **saved["rows"]}
            run.job.save(update_fields=["counts"])
            return folder, dt.datetime.fromisoformat(saved["cutoff"])
    run.step("extract")
    folder = _folder(run.day, run.job)
    if folder.exists():
        shutil.rmtree(folder)
    start, end = day_window(run.day.date)
    last = (
        ClearingDay.objects.filter(status=DayStatus.CLOSED, date__lt=run.day.date)
        .order_by("-date")
        .first()
    )
    selection = extract.Selection(
        start=start,
        end=end,
        late_from=start - dt.timedelta(days=settings.ETCNET_CLEARING_LATE_DAYS),
        since=last.cutoff_at - CUTOFF_MARGIN if last and last.cutoff_at else None,
        networks=list(settings.ETCNET_CARD_NETWORKS),
    )
    began = time.perf_counter()
    with _snapshot():
        cutoff = timezone.now()
        files = extract.write_run(folder, selection)
    (folder / _MANIFEST).write_text(json.dumps({"cutoff": cutoff.isoformat(), "rows": files.rows}))
    run.job.counts = dict(files.rows)
    run.job.save(update_fields=["counts"])
    run.progress(
        f"extracted {files.rows['records']:,} records with their routes"
        f" in {time.perf_counter() - began:.1f} s"
    )
    return folder, cutoff


@contextmanager
def _snapshot() -> Iterator[None]:
    """The extract's statements read one snapshot of the store (PostgreSQL). Inside
    a caller's transaction (a test's), that transaction's isolation holds."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                # The extract's plans cost enough to be JIT-compiled, which takes
                # seconds and saves nothing on statements that stream rows out.
                cursor.execute("SET LOCAL jit = off")
        yield


def _compute(run: _Run, folder: Path) -> duckdb.DuckDBPyConnection:
    run.step("compute")
    began = time.perf_counter()
    con = embedded.connect()
    routes = embedded.load_extracted(con, folder)
    run.job.counts = {**run.job.counts, "trip_routes": routes}
    run.job.save(update_fields=["counts"])
    con.execute(f"CREATE TABLE params ({definitions.ddl(definitions.PARAM_COLUMNS)})")
    con.execute("INSERT INTO params VALUES (?)", [settings.ETCNET_CLEARING_CLOCK_LIMIT_MS])
    embedded.run_day(con)
    bad = con.sql("SELECT * FROM missplit ORDER BY trip_id LIMIT 5").fetchall()
    if bad:
        raise ClearingError(
            "splits do not add up to the payable amount for trips (id, payable, split):"
            f" {bad}; nothing was written"
        )
    run.progress(f"computed in {time.perf_counter() - began:.1f} s")
    return con


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute(
        """
        SELECT COUNT(*),
            COUNT(*) FILTER (WHERE state = 'cleared'),
            COUNT(*) FILTER (WHERE state = 'held'),
            COUNT(*) FILTER (WHERE state = 'sent'),
            COUNT(*) FILTER (WHERE carried = 1),
            COUNT(*) FILTER (WHERE carried = 2),
            COALESCE(SUM(payable_fen) FILTER (WHERE state = 'cleared'), 0),
            (SELECT COALESCE(SUM(amount_fen), 0) FROM splits)
        FROM checked
        """
    ).fetchall()[0]
    names = ("records", "cleared", "held", "sent", "late", "carried", "payable_fen", "split_fen")
    return dict(zip(names, (int(v) for v in row), strict=True))


def _write(run: _Run, con: duckdb.DuckDBPyConnection, cutoff: dt.datetime) -> None:
    run.step("write")
    began = time.perf_counter()
    day = run.day
    counts = _counts(con)
    if counts["split_fen"] != counts["payable_fen"]:
        raise ClearingError(
            f"the splits ({counts['split_fen']} fen) do not add up to the cleared payable"
            f" amount ({counts['payable_fen']} fen); nothing was written"
        )
    folder = _folder(day, run.job)
    folder.mkdir(parents=True, exist_ok=True)
    entries = folder / "entries.csv"
    con.execute(
        f"""COPY (
            SELECT trip_id, exit_time, {day.pk}, flow, state, hold_code, state, hold_code,
                CAST(carried = 1 AS INT), payable_fen
            FROM checked WHERE carried < 2
            ORDER BY trip_id
        ) TO '{entries}' (FORMAT csv, HEADER false)"""
    )
    carried = {
        (str(state), code): [int(t) for t in trips]
        for state, code, trips in con.sql(
            "SELECT state, hold_code, list(trip_id) FROM checked WHERE carried = 2"
            " GROUP BY state, hold_code"
        ).fetchall()
    }
    figures = con.sql(
        "SELECT station_id, card_network, payment_type, vehicle_class, bank, flow, state,"
        " hold_code, carried, trips, fee_fen, discount_fen, payable_fen FROM figures"
    ).fetchall()
    shares = con.sql(
        "SELECT owner_id, station_id, payment_type, vehicle_class, flow, trips, fee_fen,"
        " amount_fen FROM shares"
    ).fetchall()
    positions = con.sql(
        "SELECT kind, counterparty_id, receivable_fen, payable_fen, net_fen FROM positions"
        " ORDER BY kind, counterparty_id"
    ).fetchall()
    postings = con.sql("SELECT account, amount_fen FROM postings ORDER BY account").fetchall()
    with transaction.atomic():
        locked = ClearingDay.objects.select_for_update().get(pk=day.pk)
        if locked.status == DayStatus.CLOSED:
            raise ClearingError(f"{day.date} was closed by another run meanwhile")
        _copy_in(
            ClearingEntry,
            ("transaction_id", "exit_time", "day_id", "flow", "state", "hold_code",
             "taken_state", "taken_code", "late", "payable_fen"),
            entries,
        )  # fmt: skip
        # Carried in: cleared today (or, a route no longer splittable, held again).
        for (state, code), trips in carried.items():
            update_entries(
                ClearingEntry.objects.all(), trips, state=state, hold_code=code,
                cleared_on=day if state == EntryState.CLEARED else None,
            )  # fmt: skip
        bulk.append_rows(
            DayFigure,
            ("day_id", "station_id", "card_network", "payment_type", "vehicle_class", "bank",
             "flow", "state", "hold_code", "late", "carried", "trips", "fee_fen",
             "discount_fen", "payable_fen"),
            [
                (day.pk, station, network, payment, klass, bank, flow, state, code or 0,
                 carried_ == 1, carried_ == 2, trips, fee, discount, payable)
                for (station, network, payment, klass, bank, flow, state, code, carried_,
                     trips, fee, discount, payable) in figures
            ],
        )  # fmt: skip
        bulk.append_rows(
            OwnerShare,
            ("day_id", "owner_id", "station_id", "payment_type", "vehicle_class", "flow",
             "trips", "fee_fen", "amount_fen"),
            [(day.pk, *row) for row in shares],
        )  # fmt: skip
        # Flow 3, our cards elsewhere: charged when their package was taken.
        netted: dict[tuple[str, str], list[int]] = {}
        for kind, party, receivable, payable, _ in positions:
            netted[(kind, party)] = [receivable, payable]
        for kind, party, receivable, payable in exchange.incoming_positions(locked):
            sums = netted.setdefault((kind, party), [0, 0])
            sums[0] += receivable
            sums[1] += payable
        bulk.append_rows(
            Position,
            ("day_id", "kind", "counterparty_id", "receivable_fen", "payable_fen", "net_fen"),
            [
                (day.pk, kind, party, receivable, payable, receivable - payable)
                for (kind, party), (receivable, payable) in sorted(netted.items())
            ],
        )
        entry_id = None
        if postings:
            (entry_id,) = ledger.post_many(
                [
                    ledger.Entry(
                        EntryKind.CLEARING,
                        tuple((str(account), int(amount)) for account, amount in postings),
                        memo=f"clearing day {day.date}",
                        idempotency_key=f"clearing:{day.date.isoformat()}",
                    )
                ]
            )
        # 预收通行费: what the purses hold as the day closes (their credit balances).
        held = LedgerAccount.objects.filter(code__startswith="purse:").aggregate(
            total=Sum("balance_fen")
        )["total"]
        counts["purses_fen"] = -int(held or 0)
        now = timezone.now()
        locked.status, locked.cutoff_at, locked.closed_at = DayStatus.CLOSED, cutoff, now
        locked.journal_entry_id, locked.totals = entry_id, counts
        locked.save()
        run.job.status, run.job.finished_at, run.job.counts = (
            RunStatus.SUCCEEDED,
            now,
            {
                **run.job.counts,
                **counts,
            },
        )
        run.job.save(update_fields=["status", "finished_at", "counts"])
        audit.record(
            actor=run.job.actor or "clearing",
            action="clearing.day_closed",
            subject=locked,
            before={"status": DayStatus.OPEN},
            after={"status": DayStatus.CLOSED, "run": run.job.pk, **counts},
        )
    day.refresh_from_db()
    run.progress(
        f"wrote {counts['records']:,} entries, closed {day.date}"
        f" in {time.perf_counter() - began:.1f} s"
    )


def _copy_in(model: type[Model], columns: tuple[str, ...], path: Path) -> None:
    """The CSV file at `path` into `model`'s table: one COPY on PostgreSQL (the
    file streamed, no row through Python), chunked inserts elsewhere."""
    table = model._meta.db_table
    column_of = {f.attname: f.column for f in model._meta.concrete_fields}
    names = ", ".join(column_of[c] for c in columns)
    if connection.vendor == "postgresql":
        with connection.cursor() as wrapper:
            cursor = wrapper.cursor
            with (
                path.open("rb") as source,
                cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)") as copy,
            ):
                while block := source.read(1 << 20):
                    copy.write(block)
        return
    marks = ", ".join("%s" for _ in columns)
    with path.open(newline="", encoding="utf-8") as source, connection.cursor() as cursor:
        reader = csv.reader(source)
        while chunk := [
            [value if value != "" else None for value in row]
            for row in itertools.islice(reader, 5000)
        ]:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", chunk)
