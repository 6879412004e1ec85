"""The clearing day's run on PostgreSQL at a province's size: 2 million trips, about
20 million interval rows, from the store to the results in the store.

    python -m benchmarks.clearing [--trips N] [--cards N] [--seed N] [--keep]
                                  [--database-url URL]

Works in a scratch database of its own (``bench_clearing_<pid>``, created on the
server that ``--database-url`` names and dropped at the end unless ``--keep``; the
named database itself is never touched), migrated from scratch, with a temporary
``ETCNET_DATA_DIR`` (under ``$ETCNET_DATA_DIR`` when it is set; kept with ``--keep``,
the run's extracted files in it).

Preparation (not timed in the run): ``etcnet.clearing.generate.generate_day`` writes
yesterday's province day into the real store — ``--trips`` exits (default 2,000,000)
over a network of 12 owners and 104 + 4 stations, ``--cards`` of our cards
(default 100,000), other issuers' cards, cash and mobile payments, duplicates,
intake disputes, lanes with a clock off, expired cards — by DuckDB into CSV and one
``COPY ... FROM STDIN`` into the day's partition; then ``VACUUM ANALYZE`` (what
autovacuum would have done by the time the day is cleared).

Then it times ``etcnet.clearing.run.run_day(date)`` end to end — extract (COPY out
of PostgreSQL), compute (DuckDB), write (COPY in, one transaction) — its steps
from the run's progress messages, and beside it two ways of summing the same
interval rows' fees by road owner:

- the floor: DuckDB reading the run's extracted ``records.csv`` (routes inside)
  and ``interval_fees.csv`` and a bare ``GROUP BY`` owner (read and query timed apart);
- the naive path: one PostgreSQL statement over the day's partition exploding
  ``intervals`` with ``jsonb_array_elements`` and summing the lanes' fees by owner
  (open-road exits carry no intervals: only the floor routes them).

Afterwards it checks the run against what the generator predicts: records, cleared,
held and sent, Σ splits = Σ cleared payable, positions netting to zero, the day's
journal entry balanced (exit 1 when any differs). The issue's target is printed
beside the run: <= 60 s end to end. Exits 2 when PostgreSQL does not answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from benchmarks.ingest import (
    DEFAULT_URL,
    Scratch,
    ServerUnreachable,
    _admin,
    _database_url,
    _drop,
    _setup_django,
    _show,
)

TRIPS = 2_000_000
CARDS = 100_000
SEED = 15
TARGET_S = 60.0
SETTINGS = ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather")

#: The naive path: the day's interval rows summed by owner in PostgreSQL alone.
NAIVE = """
SELECT o.owner_id, count(*), sum((e.v ->> 'fee_fen')::bigint)
FROM tolling_tolltransaction t
CROSS JOIN LATERAL jsonb_array_elements(t.intervals) e(v)
JOIN network_tariffversion v ON v.number = t.tariff_version
JOIN network_interval i ON i.version_id = v.id AND i.interval_id = e.v ->> 'interval_id'
JOIN network_owner o ON o.id = i.owner_id
WHERE t.exit_time >= %s AND t.exit_time < %s AND t.direction = 'exit'
GROUP BY o.owner_id
"""

#: The floor: the extracted route rows priced by class and summed by owner in DuckDB.
FLOOR = """
SELECT f.owner_id, count(*), sum(f.fee_fen)
FROM trip_routes r
JOIN records t ON t.trip_id = r.trip_id
JOIN interval_fees f ON f.tariff_version = t.tariff_version
    AND f.interval_id = r.interval_id AND f.vehicle_class = t.vehicle_class
GROUP BY f.owner_id
"""


@dataclass(frozen=True)
class Row:
    label: str
    seconds: float
    rows: int | None = None
    note: str = ""

    def line(self) -> str:
        rows = f"{self.rows:>12,}" if self.rows is not None else f"{'':>12}"
        rate = f"{self.rows / self.seconds:>12,.0f}" if self.rows and self.seconds else f"{'':>12}"
        return f"  {self.label:<58} {self.seconds:>8.1f} {rows} {rate}  {self.note}".rstrip()


@contextmanager
def _database(server_url: str, keep: bool) -> Iterator[Scratch]:
    """``bench_clearing_<pid>`` on the server and a data directory, dropped and
    removed afterwards unless `keep` (``benchmarks.ingest.scratch_database``
    always drops its own)."""
    try:
        admin = _admin(server_url)
    except psycopg.OperationalError as error:
        raise ServerUnreachable(f"PostgreSQL does not answer at {server_url}: {error}") from None
    name = f"bench_clearing_{os.getpid()}"
    with admin, ExitStack() as cleanup:  # the clean-up first, then the connection closed
        data_dir = tempfile.mkdtemp(prefix="bench-clearing-", dir=os.environ.get("ETCNET_DATA_DIR"))
        if not keep:
            cleanup.callback(shutil.rmtree, data_dir, ignore_errors=True)
        settings = ", ".join(f"{setting} {_show(admin, setting)}" for setting in SETTINGS)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if not keep:
            cleanup.callback(_drop, admin, name)
        yield Scratch(_database_url(server_url, name), name, settings, data_dir)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clearing", description=__doc__)
    parser.add_argument("--trips", type=int, default=TRIPS, help=f"trips of the day ({TRIPS:,})")
    parser.add_argument("--cards", type=int, default=CARDS, help=f"our cards ({CARDS:,})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"the day's seed ({SEED})")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the data directory"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a PostgreSQL server to create the scratch database on (default {DEFAULT_URL})",
    )
    args = parser.parse_args(argv)
    if args.trips < 1 or args.cards < 10:
        parser.error("--trips must be positive and --cards at least 10")
    try:
        with _database(args.database_url, args.keep) as scratch:
            code = _run(args, scratch, out)
            if args.keep:
                out.write(f"kept: database {scratch.url}, data directory {scratch.data_dir}\n")
            return code
    except ServerUnreachable as error:
        out.write(f"{error}\n")
        return 2


def _run(args: argparse.Namespace, scratch: Scratch, out: TextIO) -> int:
    server = urlsplit(scratch.url)
    out.write(
        f"etcnet clearing benchmark: PostgreSQL at {server.hostname}:{server.port or 5432}"
        f" ({scratch.version}), scratch database {scratch.name}\n"
    )
    out.flush()
    began = time.perf_counter()
    _setup_django(scratch.url, scratch.data_dir)  # the environment names the scratch database
    from django.core.management import call_command

    from etcnet.clearing import generate, run
    from etcnet.tolling import partitions

    call_command("migrate", verbosity=0, interactive=False)
    migrated = time.perf_counter() - began
    date = partitions.local_today() - dt.timedelta(days=1)
    began = time.perf_counter()
    day = generate.generate_day(date, trips=args.trips, seed=args.seed, cards=args.cards)
    generated = time.perf_counter() - began
    began = time.perf_counter()
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    vacuumed = time.perf_counter() - began
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(day.kinds.items()))
    out.write(
        f"preparation (not timed below): migrate {migrated:.1f} s; generated {date}:"
        f" {day.records:,} records, {day.interval_rows:,} interval rows"
        f" ({day.route_rows:,} route rows with the open-road exits'), {args.cards:,} cards"
        f" in {generated:.1f} s ("
        + ", ".join(f"{step} {s:.1f} s" for step, s in day.seconds.items())
        + f"); VACUUM ANALYZE {vacuumed:.1f} s\n  {kinds}\n"
    )
    out.flush()

    marks: list[tuple[str, float]] = []

    def progress(message: str) -> None:
        marks.append((message, time.perf_counter()))
        out.write(f"  [{marks[-1][1] - start:7.1f} s] {message}\n")
        out.flush()

    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    out.write(f"\nrun_day({date}), the machine's load average {load}:\n")
    start = time.perf_counter()
    job = run.run_day(date, actor="benchmark", progress=progress)
    ended = time.perf_counter()
    at = dict(marks)
    steps = [
        ("extract", "compute", "extract: COPY out (records, route rows exploded, fees)"),
        ("compute", "write", "compute: DuckDB (checks, split, figures, positions)"),
        ("write", None, "write: entries COPYed in, results, journal, the day closed"),
    ]
    counts = job.counts
    rows = [Row(f"run_day end to end ({job.status})", ended - start, counts.get("records"))]
    step_rows = {"extract": counts.get("trip_routes"), "compute": counts.get("trip_routes"),
                 "write": counts.get("records")}  # fmt: skip
    for name, following, label in steps:
        if name in at:
            until = at[following] if following and following in at else ended
            rows.append(Row("  " + label, until - at[name], step_rows[name]))
    folder = Path(scratch.data_dir) / "clearing" / date.isoformat() / f"run-{job.pk}"
    floor_read, floor_query, floor = _floor(folder)
    rows.append(Row("floor: DuckDB reads the extracted CSV files", floor_read, floor[1]))
    rows.append(Row("floor: DuckDB GROUP BY owner over them", floor_query, floor[1]))
    naive_s, naive = _naive(scratch.url, *run.day_window(date))
    rows.append(
        Row("naive: PostgreSQL jsonb_array_elements GROUP BY owner", naive_s, naive[1],
            "path exits only")
    )  # fmt: skip
    out.write(f"\n  {'':<58} {'seconds':>8} {'rows':>12} {'rows/s':>12}\n")
    for row in rows:
        out.write(row.line() + "\n")
    out.write(
        f"\n  fees by owner: floor {floor[2]:,} fen over {floor[0]} owners, naive {naive[2]:,}"
        f" fen over {naive[0]} owners (the difference: open-road exits)\n"
    )
    verdict = "met" if ended - start <= TARGET_S else "NOT met"
    out.write(
        f"  target: run_day <= {TARGET_S:.0f} s end to end: {ended - start:.1f} s, {verdict}\n"
    )
    problems = _check(day, date)
    if problems:
        out.write("CHECK FAILED:\n" + "".join(f"  {p}\n" for p in problems))
        return 1
    expected = day.expected
    out.write(
        f"  checked: {expected.records:,} records, {expected.cleared:,} cleared,"
        f" {expected.held:,} held, {expected.sent:,} sent as the generator predicts;"
        f" Σ splits = Σ cleared payable = {expected.cleared_payable_fen:,} fen;"
        " positions net to zero; the journal entry balances\n"
    )
    return 0


def _floor(folder: Path) -> tuple[float, float, tuple[int, int, int]]:
    """(read seconds, query seconds, (owners, rows, Σ fee)) of the floor."""
    from etcnet.clearing import embedded

    began = time.perf_counter()
    con = embedded.connect()
    embedded.load_extracted(con, folder)  # as the run's compute step reads them
    read = time.perf_counter() - began
    began = time.perf_counter()
    result = con.execute(FLOOR).fetchall()
    query = time.perf_counter() - began
    con.close()
    return read, query, _totals(result)


def _naive(url: str, start: dt.datetime, end: dt.datetime) -> tuple[float, tuple[int, int, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        began = time.perf_counter()
        result = conn.execute(NAIVE, [start, end]).fetchall()
        return time.perf_counter() - began, _totals(result)


def _totals(result: Sequence[tuple[Any, ...]]) -> tuple[int, int, int]:
    return len(result), sum(int(r[1]) for r in result), sum(int(r[2]) for r in result)


def _check(day: Any, date: dt.date) -> list[str]:
    """What the run must have done, by the generator's prediction."""
    from django.db.models import Sum

    from etcnet.cards.models import Posting
    from etcnet.clearing.models import ClearingDay, ClearingEntry, OwnerShare, Position

    expected = day.expected
    closed = ClearingDay.objects.get(date=date)
    problems = []
    totals = closed.totals
    wanted = {
        "records": expected.records, "cleared": expected.cleared, "held": expected.held,
        "sent": expected.sent, "payable_fen": expected.cleared_payable_fen,
        "split_fen": expected.cleared_payable_fen,
    }  # fmt: skip
    for key, value in wanted.items():
        if totals.get(key) != value:
            problems.append(f"{key}: the run {totals.get(key)}, the generator {value}")
    held = dict(
        ClearingEntry.objects.filter(day=closed, state="held").values_list(
            "transaction_id", "hold_code"
        )
    )
    if held != day.held:
        wrong = len(set(held.items()) ^ set(day.held.items()))
        problems.append(f"held entries: {wrong} differ from the generator's")
    shares = OwnerShare.objects.filter(day=closed).aggregate(s=Sum("amount_fen"))["s"]
    if shares != expected.cleared_payable_fen:
        problems.append(f"Σ splits {shares} != Σ cleared payable {expected.cleared_payable_fen}")
    positions = Position.objects.filter(day=closed)
    if positions.aggregate(s=Sum("net_fen"))["s"] != 0:
        problems.append("the positions do not net to zero")
    owed = {(p.kind, p.counterparty_id): p.receivable_fen for p in positions if p.kind != "owner"}
    if owed != expected.receivable:
        problems.append("the payers' positions are not the generator's")
    balance = Posting.objects.filter(entry_id=closed.journal_entry_id).aggregate(
        s=Sum("amount_fen")
    )["s"]
    if closed.journal_entry_id is None or balance != 0:
        problems.append(f"the day's journal entry ({closed.journal_entry_id}) sums to {balance}")
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
