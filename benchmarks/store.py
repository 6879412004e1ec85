"""The transaction store on PostgreSQL at 90 days of a province: a card's, a plate's
and a station-day's transactions out of ``--rows`` generated rows (default 100 million).

    python -m benchmarks.store [--rows N] [--days 90] [--stations 400] [--lookups 200]
                               [--database-url URL]

Works like ``benchmarks.ingest`` (whose scratch-database helpers it imports): in a
scratch database of its own (``etcnet_bench_<pid>``, created on the server that
``--database-url`` names and dropped at the end; the named database itself is never
touched), migrated from scratch, so ``tolling_tolltransaction`` is the partitioned
table of tolling/0005 (etcnet.tolling.partitions) with every index the models ask for
(tolling/0006 and later).

Preparation (not timed in the lookups), all set-based SQL through psycopg, no Python
loop per row: ``--stations`` stations with 4 terminals each; then for each of the
``--days`` Asia/Shanghai days before today a standalone table
``tolling_tolltransaction_pYYYYMMDD`` filled by one ``INSERT ... SELECT ... FROM
generate_series`` (rows / days each, exit times spread over the day, ``--cards``
cards each passing about every 4 to 5 days (default rows / 20: 20 trips each in 90 days),
one plate per card (about 2 cards per plate past 2.6 million cards), every row a
card payment with its TAC, 64-hex payload hash and a 3-interval path), then ``ALTER
TABLE ... ATTACH PARTITION``, which builds the day's indexes by sorting (faster than
keeping 15 indexes up to date row by row, and what an archive restore does), then
``VACUUM (ANALYZE)`` while the day is in memory (what autovacuum would do later).
Before loading it writes a 200,000-row sample with every index to learn the bytes
per row; when the data folder's disk cannot hold ``--rows`` with a margin (a tenth
of the free space, at least 8 GB, is left free) it loads the largest size that
fits and says so.

Then it times, each ``--lookups`` times with a random key (median, p95 and slowest ms,
measured at the client, planning included, rows returned):

1. a card's transactions: ``TollTransaction.objects.filter(card_no=...)
   .order_by("-exit_time")``, every row as model instances (no partition pruning:
   every day's card_no index is probed);
2. a plate's transactions: the same with ``plate=...``;
3. a station-day's first page: ``filter(station=..., exit_time in the day)
   .order_by("exit_time")[:50]`` (pruned to the day's partition);
4. a station-day's every row (as model instances, and as the day list's twelve
   columns in tuples, what a day report or an export reads), and its count and
   payable sum.

(The ingest's duplicate check does not read this table: it reads the record keys,
``tolling_recordkey``, one unique B-tree on (terminal, seq), timed by
``benchmarks.ingest``.)

(a) by the ORM on one kept connection, as the center runs them (every query planned
anew), (b) the same SQL as prepared statements (a generic plan reused) with other
keys, (c) 1 and 3 as the first query of a new connection, (d) (a) again with its
keys, now in memory; and the pages one lookup touches (EXPLAIN BUFFERS).

Exits 2 when PostgreSQL does not answer. Figures are printed, never asserted.
Time and disk: about 0.6 GB and 11 s per million rows on this 2-core machine
(``docs/tolling-store.md`` has the figures); ``--rows 1000000`` is a quick check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from benchmarks.ingest import DEFAULT_URL, ServerUnreachable, _setup_django, scratch_database

FULL_ROWS = 100_000_000
DAYS = 90
STATIONS = 400
TERMINALS_PER_STATION = 4
TRIPS_PER_CARD = 20
LOOKUPS = 200
PAGE = 50
NEW_CONNECTIONS = 20
SAMPLE_ROWS = 200_000
# A station-day's list (the station's day report, its export): what each row shows.
DAY_LIST_COLUMNS = (
    "pk",
    "exit_time",
    "lane_number",
    "entry_station",
    "plate",
    "plate_color",
    "vehicle_class",
    "card_no",
    "payment_type",
    "payable_fen",
    "status",
    "dispute_code",
)
# Left free on the data folder's disk: room for the WAL (max_wal_size, 1 GB by
# default), a day's index sorts and the machine's other work.
KEEP_FREE = 8 * 1024**3  # bytes, at least
KEEP_FREE_SHARE = 0.10  # ... or this share of the free space, whichever is more
TABLE = "tolling_tolltransaction"
CARD_PREFIX = "6101"  # our network's cards
PRIME = 1_000_003  # spreads a row's card (and so its plate) over the cards
NODE_BASE = 9_000_000  # the benchmark's node ids: S9000000, S9000001, ...


@dataclass(frozen=True)
class Reference:
    """Ids of the generated stations and terminals (first id, count)."""

    first_station: int
    first_terminal: int
    stations: int


@dataclass(frozen=True)
class Timing:
    label: str
    millis: list[float]
    rows: list[int]

    def line(self) -> str:
        ms = sorted(self.millis)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        rows = statistics.median(self.rows)
        return (
            f"  {self.label:<52} {statistics.median(ms):>8.2f} {p95:>8.2f} {ms[-1]:>8.2f}"
            f" {rows:>9,.0f}"
        )


# --- Preparation -----------------------------------------------------------------------


def _reference(conn: psycopg.Connection[tuple[Any, ...]], stations: int) -> Reference:
    """The stations (network_node) and their terminals, set-based."""
    conn.execute(
        "INSERT INTO network_node (node_id, name, kind, hex, network)"
        " SELECT 'S' || (%s + g), 'bench station ' || g, 'station', to_hex(%s + g), '6101'"
        " FROM generate_series(0, %s - 1) g",
        [NODE_BASE, NODE_BASE, stations],
    )
    conn.execute(
        "INSERT INTO tolling_terminal (terminal_id, psam_terminal_no, secret_digest, active,"
        " created_at, station_id)"
        " SELECT 'HH-B' || lpad(g::text, 6, '0'), lpad((%s + g)::text, 12, '0'),"
        " md5(g::text) || md5(g::text), true, now(), n.id"
        " FROM generate_series(0, %s - 1) g"
        " JOIN network_node n ON n.node_id = 'S' || (%s + g / %s) ORDER BY g",
        [NODE_BASE, stations * TERMINALS_PER_STATION, NODE_BASE, TERMINALS_PER_STATION],
    )
    row = conn.execute(
        "SELECT min(n.id), (SELECT min(t.id) FROM tolling_terminal t"
        "  WHERE t.terminal_id LIKE 'HH-B%%')"
        " FROM network_node n WHERE n.node_id LIKE 'S9%%' AND n.name LIKE 'bench station %%'"
    ).fetchone()
    assert row is not None
    conn.commit()
    return Reference(int(row[0]), int(row[1]), stations)


# One day's rows: g is the row's number over the whole load (1-based), n its number
# within the day (0-based); card c = g * PRIME mod cards spreads each card's trips
# evenly over the days. Station s and terminal t are hashed from g, so a station-day
# holds about rows / days / stations rows.
_ROWS = """
INSERT INTO {table} (
    id, seq, status, dispute_code, reason, lane_number, exit_time,
    clock_offset_ms, received_at, entry_station, entry_time, card_no, obu_no, plate,
    plate_color, vehicle_class, vehicle_kind, method, fee_fen, discount_fen, payable_fen,
    intervals, payment_type, amount_fen, trans_type, terminal_trans_seq, tac,
    tac_verified, collector, shift, authorised_by, station_id, terminal_id, axles,
    direction, overweight, photo, special_case, special_reason, total_weight_kg,
    weight_limit_kg, flag, balance_before_fen, card_network, findings, list_version,
    raw, tariff_version)
SELECT
    r.g, r.g, 'accepted', NULL, '', 1 + r.g %% 8,
    r.at, 0, r.at + interval '30 seconds', 'S' || (%(node_base)s + (r.g * 7) %% %(stations)s),
    r.at - interval '40 minutes',
    %(card_prefix)s || lpad(r.c::text, 16, '0'),
    (6101000000000000 + r.c)::text,
    '陕' || chr((65 + (r.c / 100000) %% 26)::int) || lpad((r.c %% 100000)::text, 5, '0'),
    0, 1 + r.c %% 4, 0, 'etc', 500 + r.g %% 9000, (500 + r.g %% 9000) / 20,
    500 + r.g %% 9000 - (500 + r.g %% 9000) / 20,
    '["G0030610010010", "G0030610010020", "G0030610010030"]'::jsonb, 22,
    500 + r.g %% 9000 - (500 + r.g %% 9000) / 20, 9, r.g, upper(substr(md5(r.g::text), 1, 8)),
    true, 'c' || r.g %% 500, to_char(r.at, 'YYYYMMDD') || '-' || (1 + r.g %% 3), '',
    %(first_station)s + r.s, %(first_terminal)s + r.s * %(per_station)s + r.g %% %(per_station)s,
    NULL, 'exit', false, '', '', '', NULL, NULL, '', 100000, %(card_prefix)s, '[]'::jsonb,
    '202611210001', NULL, '20261101001'
FROM (
    SELECT g, (g::bigint * %(prime)s) %% %(cards)s AS c, (g * 31) %% %(stations)s AS s,
           %(start)s::timestamptz
             + make_interval(secs => ((g - %(first)s) * 86399.0 / %(per_day)s)) AS at
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) g
) r
"""


def _fill(
    conn: psycopg.Connection[tuple[Any, ...]],
    table: str,
    *,
    first: int,
    count: int,
    start: dt.datetime,
    cards: int,
    ref: Reference,
) -> None:
    conn.execute(
        sql.SQL(_ROWS).format(table=sql.Identifier(table)),
        {
            "node_base": NODE_BASE,
            "stations": ref.stations,
            "card_prefix": CARD_PREFIX,
            "first_station": ref.first_station,
            "first_terminal": ref.first_terminal,
            "per_station": TERMINALS_PER_STATION,
            "prime": PRIME,
            "cards": cards,
            "start": start,
            "first": first,
            "last": first + count - 1,
            "per_day": max(count, 1),
        },
    )


def _bytes_per_row(
    conn: psycopg.Connection[tuple[Any, ...]], cards: int, ref: Reference, day: dt.date
) -> float:
    """A sample table LIKE the store with every index, filled and measured, dropped."""
    from etcnet.tolling import partitions

    conn.execute(f"CREATE TABLE bench_sample (LIKE {TABLE} INCLUDING ALL)")
    _fill(
        conn,
        "bench_sample",
        first=1,
        count=SAMPLE_ROWS,
        start=partitions.bounds(day)[0],
        cards=cards,
        ref=ref,
    )
    row = conn.execute("SELECT pg_total_relation_size('bench_sample')").fetchone()
    conn.execute("DROP TABLE bench_sample")
    conn.commit()
    return int(row[0]) / SAMPLE_ROWS if row else 0.0


def _free_bytes(conn: psycopg.Connection[tuple[Any, ...]]) -> int | None:
    """Free bytes on the disk of the server's data folder, when it is on this machine."""
    row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    folder = str(row[0]) if row else ""
    host = conn.info.host
    local = host in ("localhost", "127.0.0.1", "::1", "") or host.startswith("/")
    if not folder or not local:
        return None
    while folder:
        try:
            stat = os.statvfs(folder)
            return stat.f_bavail * stat.f_frsize
        except OSError:
            folder = os.path.dirname(folder.rstrip("/"))
    return None


def _load_day(
    conn: psycopg.Connection[tuple[Any, ...]],
    day: dt.date,
    *,
    first: int,
    count: int,
    cards: int,
    ref: Reference,
) -> tuple[float, float]:
    """One day: a standalone table filled, then attached (its indexes built), analyzed."""
    from etcnet.tolling import partitions

    name = partitions.partition_name(day)
    start, end = partitions.bounds(day)
    began = time.perf_counter()
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        ).format(sql.Identifier(name), sql.Identifier(TABLE))
    )
    _fill(conn, name, first=first, count=count, start=start, cards=cards, ref=ref)
    conn.commit()
    filled = time.perf_counter()
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(TABLE), sql.Identifier(name), sql.Literal(start), sql.Literal(end)
        )
    )
    conn.commit()
    # What autovacuum does to a loaded day, done now while its pages are in memory:
    # hint bits and the visibility map set, statistics for the planner.
    conn.autocommit = True
    try:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(name)))
    finally:
        conn.autocommit = False
    return filled - began, time.perf_counter() - filled


# --- Timing ----------------------------------------------------------------------------


def _timed(label: str, keys: Sequence[Any], run: Callable[[Any], int], warm: int = 1) -> Timing:
    for key in keys[:warm]:  # untimed: connection and catalogue caches, prepared plans
        run(key)
    millis, rows = [], []
    for key in keys:
        start = time.perf_counter()
        found = run(key)
        millis.append((time.perf_counter() - start) * 1000)
        rows.append(found)
    return Timing(label, millis, rows)


@dataclass(frozen=True)
class Lookup:
    label: str
    keys: list[Any]
    query: Callable[[Any], Any]  # key -> a QuerySet
    rows: Callable[[Any], int]  # the QuerySet evaluated as the center does
    counted: Callable[[list[Any]], int] = len  # rows of the same SQL's result


def _lookups(
    days: list[dt.date], cards: int, ref: Reference, per_day: int, lookups: int, seed: int
) -> list[Lookup]:
    from django.db.models import Count, Sum

    from etcnet.tolling import partitions
    from etcnet.tolling.models import TollTransaction

    rng = random.Random(seed)
    card_keys = [f"{CARD_PREFIX}{rng.randrange(cards):016d}" for _ in range(lookups)]
    plate_keys = []
    for _ in range(lookups):
        c = rng.randrange(cards)
        plate_keys.append(f"陕{chr(65 + (c // 100000) % 26)}{c % 100000:05d}")
    station_days = [
        (ref.first_station + rng.randrange(ref.stations), rng.choice(days)) for _ in range(lookups)
    ]
    store = TollTransaction.objects

    def station_day(key: tuple[int, dt.date]) -> Any:
        station, day = key
        start, end = partitions.bounds(day)
        return store.filter(station_id=station, exit_time__gte=start, exit_time__lt=end)

    return [
        Lookup(
            "a card's transactions (every row)",
            card_keys,
            lambda key: store.filter(card_no=key).order_by("-exit_time"),
            lambda qs: len(list(qs)),
        ),
        Lookup(
            "a plate's transactions (every row)",
            plate_keys,
            lambda key: store.filter(plate=key).order_by("-exit_time"),
            lambda qs: len(list(qs)),
        ),
        Lookup(
            f"a station-day, first page of {PAGE}",
            station_days,
            lambda key: station_day(key).order_by("exit_time")[:PAGE],
            lambda qs: len(list(qs)),
        ),
        Lookup(
            "a station-day, every row",
            station_days,
            lambda key: station_day(key).order_by("exit_time"),
            lambda qs: len(list(qs)),
        ),
        Lookup(
            # What a day list or export reads: its columns as tuples, no model instances.
            "a station-day, every row as the day list's columns",
            station_days,
            lambda key: station_day(key).order_by("exit_time").values_list(*DAY_LIST_COLUMNS),
            lambda qs: len(list(qs)),
        ),
        Lookup(
            "a station-day, count and payable sum",
            station_days,
            lambda key: (
                station_day(key)
                .values("station_id")
                .annotate(n=Count("pk"), payable=Sum("payable_fen"))
            ),
            lambda qs: sum(row["n"] for row in qs),
            lambda rows: sum(row[1] for row in rows),
        ),
    ]


def _orm(lookup: Lookup) -> Timing:
    """As the center runs it: the ORM on one kept connection, every query planned anew."""
    return _timed(lookup.label, lookup.keys, lambda key: lookup.rows(lookup.query(key)))


def _prepared(lookup: Lookup, url: str) -> Timing:
    """The ORM's SQL as a server-side prepared statement (psycopg `prepare=True`):
    PostgreSQL plans it once per connection and then reuses its generic plan."""
    with psycopg.connect(url, autocommit=True) as conn:

        def run(key: Any) -> int:
            query, params = lookup.query(key).query.sql_with_params()
            return lookup.counted(conn.execute(query, params, prepare=True).fetchall())

        return _timed(lookup.label, lookup.keys, run, warm=6)


def _pages(conn: psycopg.Connection[tuple[Any, ...]], lookup: Lookup) -> int:
    query, params = lookup.query(lookup.keys[0]).query.sql_with_params()
    row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, params).fetchone()
    plan = row[0][0]["Plan"] if row else {}
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


def _new_connection(lookup: Lookup, count: int) -> Timing:
    """The first query of a new connection (DATABASE_CONN_MAX_AGE=0): the
    catalogue caches of every partition and index are read again."""
    from django.db import connection

    def run(key: Any) -> int:
        connection.close()
        return lookup.rows(lookup.query(key))

    return _timed(lookup.label, lookup.keys[:count], run)


# --- Main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store", description=__doc__)
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help=f"rows to load ({FULL_ROWS:,})")
    parser.add_argument("--days", type=int, default=DAYS, help=f"days they span ({DAYS})")
    parser.add_argument("--stations", type=int, default=STATIONS, help=f"({STATIONS})")
    parser.add_argument("--cards", type=int, help=f"cards (rows / {TRIPS_PER_CARD})")
    parser.add_argument("--lookups", type=int, default=LOOKUPS, help=f"per kind ({LOOKUPS})")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a PostgreSQL server to create the scratch database on (default {DEFAULT_URL})",
    )
    args = parser.parse_args(argv)
    if args.rows < args.days or args.days < 1 or args.stations < 1 or args.lookups < 1:
        parser.error("--days, --stations and --lookups must be positive, --rows at least --days")
    settings = ("server_version", "shared_buffers", "work_mem", "random_page_cost")
    try:
        with scratch_database(args.database_url, settings) as scratch:
            return _run(args, scratch.url, scratch.name, scratch.version, scratch.data_dir, out)
    except ServerUnreachable as error:
        out.write(f"{error}\n")
        return 2


def _run(
    args: argparse.Namespace, url: str, name: str, version: str, data_dir: str, out: TextIO
) -> int:
    parts = urlsplit(url)
    _setup_django(url, data_dir)
    from django.core.management import call_command

    from etcnet.tolling import partitions

    began = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    out.write(
        f"etcnet store benchmark: PostgreSQL at {parts.hostname}:{parts.port or 5432}"
        f" ({version}), scratch database {name}\n"
        f"preparation: migrate {time.perf_counter() - began:.1f} s\n"
    )
    out.flush()
    today = partitions.local_today()
    days = [today - dt.timedelta(days=n) for n in range(args.days, 0, -1)]
    rows = args.rows
    with psycopg.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        ref = _reference(conn, args.stations)
        cards = args.cards or max(1, rows // TRIPS_PER_CARD)
        per_row = _bytes_per_row(conn, cards, ref, days[0])
        free = _free_bytes(conn)
        out.write(
            f"sample of {SAMPLE_ROWS:,} rows with every index: {per_row:,.0f} bytes per row;"
            f" {rows:,} rows would take {per_row * rows / 1024**3:,.1f} GB;"
            + (
                f" the data folder's disk has {free / 1024**3:,.1f} GB free\n"
                if free is not None
                else " the data folder's free space is unknown (not this machine)\n"
            )
        )
        if free is not None:
            usable = free - max(KEEP_FREE, KEEP_FREE_SHARE * free)
            fits = int(usable / per_row) if per_row else rows
            if fits < rows:
                rows = max(args.days, fits // args.days * args.days)
                cards = args.cards or max(1, rows // TRIPS_PER_CARD)
                out.write(
                    f"NOT ENOUGH DISK for {args.rows:,} rows: loading {rows:,}"
                    f" (the largest size that leaves {KEEP_FREE_SHARE:.0%} of the free space,"
                    f" at least {KEEP_FREE / 1024**3:.0f} GB, free)\n"
                )
        per_day = rows // args.days
        rows = per_day * args.days
        out.write(
            f"loading {rows:,} rows: {args.days} days of {per_day:,}, {args.stations:,} stations"
            f" ({per_day // args.stations:,} rows per station-day), {cards:,} cards"
            f" (~{rows / cards:.0f} trips each)\n"
        )
        out.flush()
        fill_s = attach_s = 0.0
        for n, day in enumerate(days):
            filled, attached = _load_day(
                conn, day, first=1 + n * per_day, count=per_day, cards=cards, ref=ref
            )
            fill_s += filled
            attach_s += attached
            if n % 10 == 9 or n == len(days) - 1:
                out.write(
                    f"  {n + 1:>3} days, {(n + 1) * per_day:>12,} rows:"
                    f" generated {fill_s:7.1f} s,"
                    f" indexed, attached and vacuumed {attach_s:7.1f} s\n"
                )
                out.flush()
        conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [TABLE, rows])
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(TABLE)))
        conn.commit()
        size = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)), sum(pg_relation_size(c.oid))"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [TABLE],
        ).fetchone()
        total, heap = (int(size[0]), int(size[1])) if size else (0, 0)
        count = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", [TABLE]
        ).fetchone()
    loaded = fill_s + attach_s
    out.write(
        f"loaded {rows:,} rows in {loaded:,.0f} s ({rows / loaded:,.0f} rows/s): generated"
        f" {fill_s:,.0f} s, indexes built on attach + VACUUM ANALYZE {attach_s:,.0f} s\n"
        f"store: {count[0] if count else '?'} partitions, {total / 1024**3:,.1f} GB"
        f" ({heap / 1024**3:,.1f} GB rows, {(total - heap) / 1024**3:,.1f} GB indexes),"
        f" {total / rows:,.0f} bytes per row\n\n"
    )
    header = f"  {'':<52} {'median':>8} {'p95':>8} {'max':>8} {'rows':>9}\n"
    first = _lookups(days, cards, ref, per_day, args.lookups, args.seed)
    other = _lookups(days, cards, ref, per_day, args.lookups, args.seed + 1)
    out.write(
        f"lookups, {args.lookups} each with random keys, ms at the client (planning"
        " included); rows: the median rows returned\n\n"
        "(a) as the center runs them: the ORM on one kept connection, each query planned"
        " anew (client-side binding, Django's default)\n" + header
    )
    out.flush()
    for kind in first:
        out.write(_orm(kind).line() + "\n")
        out.flush()
    out.write(
        "\n(b) the same SQL as prepared statements (server-side binding: a generic plan"
        " reused per connection), other random keys\n" + header
    )
    for kind in other:
        out.write(_prepared(kind, url).line() + "\n")
        out.flush()
    fresh = min(args.lookups, NEW_CONNECTIONS)
    out.write(
        f"\n(c) the first query of a new connection (DATABASE_CONN_MAX_AGE=0), {fresh} each\n"
        + header
    )
    again = _lookups(days, cards, ref, per_day, args.lookups, args.seed + 2)
    for kind in again[:1] + again[2:3]:
        out.write(_new_connection(kind, fresh).line() + "\n")
        out.flush()
    out.write("\n(d) (a) again with its keys: their pages are in memory now\n" + header)
    for kind in first:
        out.write(_orm(kind).line() + "\n")
        out.flush()
    out.write(
        "\npages one lookup touches (EXPLAIN (ANALYZE, BUFFERS) of (b)'s first key, planning"
        " apart): the reads a lookup makes when nothing is in memory\n"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        for kind in other:
            out.write(f"  {kind.label:<52} {_pages(conn, kind):>8,}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
