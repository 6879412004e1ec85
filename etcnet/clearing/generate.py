"""A province's clearing day, generated into the real store: for the clearing
benchmark (`make benchmark-clearing`, 2 million trips) and the tests (a few
thousand), seeded and reproducible.

`generate_day(date, trips=…, seed=…)` writes what the intake would have stored
for the day, and returns what a run of the day must find (`Generated`).

The province (made once, reused by later days): 12 road owners, 8 roads of 25
nodes (a station every other node, 104 stations) whose 24 sections are toll
intervals both ways, owned three owners to a road; 4 open-road stations, each
paid for two intervals of two owners that end at it; tariff version
`VERSION` with a fee for the vehicle classes 1-4 and 11-12; 2 to 4 exit-lane
terminals a station, a few with a lane clock more than 5 minutes off; `cards` of our
network's cards (`CardUnit`), stored value and debit, every debit card's
account at one of 3 banks, valid until 2031-2035 but for a few that expired in
2024 (a day in 2025-2030 holds exactly those with code 10).

The day: each trip drives between two stations of a road (2 to 18 intervals,
10 on average, so 2,000,000 trips make about 20,000,000 interval rows) and
leaves at a terminal of its exit station; 3 % exit at an open-road station
(method `open`, no intervals: the run routes them over the station's
intervals). `intervals` is what lanes record, `[{"interval_id", "fee_fen"}]`,
the fees of the trip's class adding up to `fee_fen`. Payment: 60 % our cards
(22 stored value, 23 debit, as the card is; network 6101), 25 % other issuers'
cards (3201, 1101, 4401, 3301, 4201: flow 2, sent), 7 % cash (1), 8 % mobile (10,
11). Cards get the version's 5 % ETC discount (half up), cash and mobile pay to
the whole yuan (as the intake checks); payable = fee - discount for cards.
Each card debit carries the card's counter (`card_trans_no`), unique per card.
Then the exceptions, each predicted: about 0.1 % of card debits uploaded again
from another terminal of the station (a duplicate, held with code 2), 0.5 % of
card records disputed at intake (rejected with code 1, or accepted with code 3
or 6, held with it), the records of the terminals whose clock is off (16), of
the expired cards (10), and `late` records (exit time in the day, received
after it).

Everything per record is DuckDB SQL over `range()` — random numbers are
hashes of (i, seed, tag), the same on every run with the same DuckDB — written as
CSV (NULL `\\N`) and loaded with one `COPY … FROM STDIN` on PostgreSQL (into the
day's partition, made first), in chunks of inserts on SQLite: no Python loop
per record. Ids are drawn as one block of the table's sequence, so the
duplicates, disputes and late records are named by id beforehand. The network,
terminals and cards are the intake's tables as the center keeps them; record
keys (`RecordKey`) are not written: clearing does not read them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import json
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.utils import timezone

from etcnet.cards.models import Account, Batch, CardUnit, UnitKind
from etcnet.issuance.models import Customer, Outlet
from etcnet.network.models import (
    Interval,
    IntervalFee,
    Node,
    OpenStationFee,
    Owner,
    TariffVersion,
)
from etcnet.tolling import partitions
from etcnet.tolling.models import Terminal, TollTransaction

__all__ = ["VERSION", "Expected", "Generated", "deliver_late", "generate_day"]

#: The generated province's tariff version: in force from 2020, reused by every day.
VERSION = "6120200101001"
OUR_NETWORK = "6101"
OTHER_NETWORKS = ("3201", "1101", "4401", "3301", "4201")
BANKS = ("中国工商银行陕西省分行", "中国建设银行陕西省分行", "中国农业银行陕西省分行")
OWNERS = 12
ROADS = 8
NODES_PER_ROAD = 25  # stations at the even positions: 13 a road
OPEN_STATIONS = 4
#: Toll vehicle classes (JT/T 489: 1-4 passenger cars, 11-12 the lighter trucks)
#: and their rates in fen per km.
CLASSES = (1, 2, 3, 4, 11, 12)
CLASS_RATES = dict(zip(CLASSES, (45, 68, 90, 99, 120, 135), strict=True))
#: A card's counter moves on by this much a day (more than a card's trips in a day).
COUNTER_STEP = 64
DISCOUNT_BP = 500
#: A clock this far off is held (code 16) by any limit between the two.
CLOCK_OK_MS, CLOCK_OFF_MS = 3_000, 360_000
_BATCH = "GEN-" + VERSION
_CHUNK = 5_000
_NULL = "\\N"
_PRIME = 1_000_003  # spreads a kind's records over the cards (a prime above any card count)
_PROVINCE_SEED = 61  # the province does not change with a day's seed


@dataclass(frozen=True)
class Expected:
    """What a run must find in a set of generated records."""

    records: int
    cleared: int
    held: int
    sent: int
    cleared_payable_fen: int
    sent_payable_fen: int
    # Σ payable of the cleared records by payer, as the run's positions name them:
    # ("purses", ""), ("bank", bank name), ("mobile", "10"), ("station_cash", node id).
    receivable: dict[tuple[str, str], int]


@dataclass(frozen=True)
class Generated:
    """A generated day: its counts and what a run must find.

    `held` names every record a run must hold (id -> §6.2 code): the duplicates'
    copies (2), the intake's disputes (1, 3, 6), the records of terminals whose
    clock is off (16) and of expired cards (10). `expected` is for the records
    written now; `late` for the late ones when they were kept back
    (`defer_late`) until `deliver_late`."""

    date: dt.date
    version: str
    records: int  # transactions written (duplicates included; late ones when not kept back)
    interval_rows: int  # Σ intervals of their `intervals`
    route_rows: int  # the route rows a run explodes: open-road exits' intervals too
    kinds: dict[str, int]  # records by payment kind and by exception, late ones included
    held: dict[int, int]
    duplicates: dict[int, int]  # the copy's id -> the original's id
    late_ids: tuple[int, ...]
    expected: Expected
    late: Expected
    late_file: Path | None  # the kept-back late records, until delivered
    seconds: dict[str, float]


# -- the province ---------------------------------------------------------------------


def _province(cards: int, folder: Path, con: duckdb.DuckDBPyConnection) -> None:
    """The network, terminals and cards, made on first use; their DuckDB tables on
    `con` (the same on every call: they are drawn from a fixed seed)."""
    version = TariffVersion.objects.filter(number=VERSION).first()
    if version is None:
        _make_network()
        _make_terminals()
    existing = Batch.objects.filter(kind=UnitKind.CARD, reference=_BATCH).first()
    if existing is not None and existing.quantity != cards:
        raise ValueError(
            f"the generated province has {existing.quantity:,} cards, not {cards:,}:"
            " generate every day of a database with the same `cards`"
        )
    _network_tables(con, folder)
    _card_table(con, cards)
    if existing is None:
        _make_cards(con, cards, folder)


@dataclass(frozen=True)
class _Interval:
    interval_id: str
    start: str  # node ids
    end: str
    length_m: int
    owner: int
    way: tuple[int, int, int] | None  # (road, direction, place in driving order)
    open_no: int | None  # the open-road station it is paid for


def _layout() -> tuple[list[tuple[str, str, str, str]], list[_Interval]]:
    """The nodes (node_id, name, kind, hex) and intervals of the province."""
    rng = random.Random(_PROVINCE_SEED)
    nodes: list[tuple[str, str, str, str]] = []
    intervals: list[_Interval] = []
    last = NODES_PER_ROAD - 1
    for road in range(ROADS):
        for pos in range(NODES_PER_ROAD):
            if pos % 2 == 0:
                nodes.append((_node(road, pos), f"G{road}站{pos // 2}", "station",
                              f"61{road:02d}{pos:02d}00"))  # fmt: skip
            else:
                nodes.append((_node(road, pos), f"G{road}枢纽{pos}", "junction", ""))
        for seg in range(last):
            length, owner = 1_000 + rng.randrange(9_000), (road * 3 + seg // 8) % OWNERS
            intervals += [
                _Interval(f"G61{road:02d}{seg:03d}1", _node(road, seg), _node(road, seg + 1),
                          length, owner, (road, 0, seg), None),
                _Interval(f"G61{road:02d}{seg:03d}2", _node(road, seg + 1), _node(road, seg),
                          length, owner, (road, 1, last - 1 - seg), None),
            ]  # fmt: skip
    for n in range(OPEN_STATIONS):
        station = _open_station(n)
        nodes.append((station, f"开放站{n}", "station", f"619000{n:02d}"))
        for k in range(2):
            junction = f"J6190{n:02d}{k}"
            nodes.append((junction, f"开放站{n}入口{k}", "junction", ""))
            intervals.append(
                _Interval(f"G6190{n:02d}{k}1", junction, station, 2_000 + rng.randrange(6_000),
                          (n * 5 + k * 7) % OWNERS, None, n)
            )  # fmt: skip
    return nodes, intervals


def _node(road: int, pos: int) -> str:
    return f"{'S' if pos % 2 == 0 else 'J'}61{road:02d}{pos:02d}"


def _open_station(n: int) -> str:
    return f"S6190{n:02d}"


def _fee(length_m: int, vehicle_class: int) -> int:
    return max(1, (length_m * CLASS_RATES[vehicle_class] + 500) // 1000)


def _owner_id(n: int) -> str:
    return f"O61{n:02d}"


def _terminals() -> list[tuple[str, str, int, int]]:
    """(terminal id, station node id, exit lane, the station's terminals): 2 to 4 a
    station, one per exit lane."""
    stations = sorted(node_id for node_id, _, kind, _ in _layout()[0] if kind == "station")
    made = []
    for index, station in enumerate(stations):
        count = 2 + index % 3
        made += [
            (f"T{station[1:]}{lane:02d}", station, lane, count) for lane in range(1, count + 1)
        ]
    return made


def _clock_offset(number: int) -> int:
    """Terminal `number`'s clock: a few are more than 5 minutes off, the rest within 3 s."""
    rng = random.Random(_PROVINCE_SEED * 1000 + number)
    if number % 157 == 11:
        return rng.choice((-1, 1)) * rng.randrange(CLOCK_OFF_MS, 30 * 60_000)
    return rng.randrange(-CLOCK_OK_MS, CLOCK_OK_MS + 1)


def _make_network() -> None:
    nodes, intervals = _layout()
    Owner.objects.bulk_create(
        [Owner(owner_id=_owner_id(n), name=f"路段业主{n}") for n in range(OWNERS)]
    )
    Node.objects.bulk_create(
        [Node(node_id=i, name=name, kind=kind, hex=hex_, network=OUR_NETWORK)
         for i, name, kind, hex_ in nodes]
    )  # fmt: skip
    version = TariffVersion.objects.create(
        number=VERSION,
        effective_at=dt.datetime(2020, 1, 1, tzinfo=partitions.LOCAL),
        discount_bp=DISCOUNT_BP,
        imported_at=timezone.now(),
        source_name="etcnet.clearing.generate",
        node_ids=[n[0] for n in nodes],
        owner_ids=[_owner_id(n) for n in range(OWNERS)],
    )
    node_pk = _node_pks()
    owner_pk = dict(Owner.objects.values_list("owner_id", "pk"))
    Interval.objects.bulk_create(
        [
            Interval(
                version=version, interval_id=i.interval_id, from_node_id=node_pk[i.start],
                to_node_id=node_pk[i.end], length_m=i.length_m,
                owner_id=owner_pk[_owner_id(i.owner)],
            )
            for i in intervals
        ]
    )  # fmt: skip
    interval_pk = dict(version.intervals.values_list("interval_id", "pk"))
    IntervalFee.objects.bulk_create(
        [
            IntervalFee(interval_id=interval_pk[i.interval_id], vehicle_class=c,
                        fee_fen=_fee(i.length_m, c))
            for i in intervals for c in CLASSES
        ]
    )  # fmt: skip
    OpenStationFee.objects.bulk_create(
        [
            OpenStationFee(version=version, node_id=node_pk[_open_station(n)], vehicle_class=c,
                           fee_fen=sum(_fee(i.length_m, c) for i in intervals if i.open_no == n))
            for n in range(OPEN_STATIONS) for c in CLASSES
        ]
    )  # fmt: skip


def _make_terminals() -> None:
    node_pk, now = _node_pks(), timezone.now()
    Terminal.objects.bulk_create(
        [
            Terminal(
                terminal_id=terminal, station_id=node_pk[station],
                psam_terminal_no=f"6199{number:08d}",
                secret_digest=hashlib.sha256(terminal.encode()).hexdigest(), created_at=now,
            )
            for number, (terminal, station, _, _) in enumerate(_terminals())
        ]
    )  # fmt: skip


def _node_pks() -> dict[str, int]:
    return dict(Node.objects.filter(network=OUR_NETWORK).values_list("node_id", "pk"))


def _network_tables(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """On `con`: `ways(road, dir, vehicle_class, objs, fees)` — each road's intervals
    in driving order, as the lanes' JSON object and the fee for the class —
    `way_stations(road, dir, idx, station_pk, node_id)` (its stations in driving
    order), `open_fees(open_no, vehicle_class, station_pk, node_id, fee_fen,
    intervals)` and `terminals(station_pk, n, count, terminal_pk, lane_number,
    clock_offset_ms)`."""
    _, intervals = _layout()
    node_pk = _node_pks()
    segments = [
        (*i.way, c, json.dumps({"interval_id": i.interval_id, "fee_fen": _fee(i.length_m, c)}),
         _fee(i.length_m, c))
        for i in intervals if i.way is not None for c in CLASSES
    ]  # fmt: skip
    _table(con, folder, "segments", "road INT, dir INT, pos INT, vehicle_class INT,"
           " obj VARCHAR, fee BIGINT", segments)  # fmt: skip
    con.execute(
        "CREATE OR REPLACE TABLE ways AS SELECT road, dir, vehicle_class,"
        " list(obj ORDER BY pos) AS objs, list(fee ORDER BY pos) AS fees"
        " FROM segments GROUP BY road, dir, vehicle_class"
    )
    stations = []
    for road in range(ROADS):
        along = [_node(road, pos) for pos in range(0, NODES_PER_ROAD, 2)]
        for d, order in ((0, along), (1, along[::-1])):
            stations += [(road, d, idx, node_pk[s], s) for idx, s in enumerate(order)]
    _table(con, folder, "way_stations",
           "road INT, dir INT, idx INT, station_pk BIGINT, node_id VARCHAR", stations)  # fmt: skip
    opens = []
    for n in range(OPEN_STATIONS):
        own = [i for i in intervals if i.open_no == n]
        station = _open_station(n)
        opens += [(n, c, node_pk[station], station, sum(_fee(i.length_m, c) for i in own),
                   len(own)) for c in CLASSES]  # fmt: skip
    _table(con, folder, "open_fees", "open_no INT, vehicle_class INT, station_pk BIGINT,"
           " node_id VARCHAR, fee_fen BIGINT, intervals INT", opens)  # fmt: skip
    terminal_pk = dict(
        Terminal.objects.filter(station__network=OUR_NETWORK).values_list("terminal_id", "pk")
    )
    terminals = [
        (node_pk[station], lane - 1, count, terminal_pk[terminal], lane, _clock_offset(number))
        for number, (terminal, station, lane, count) in enumerate(_terminals())
    ]
    _table(con, folder, "terminals", "station_pk BIGINT, n INT, count INT, terminal_pk BIGINT,"
           " lane_number INT, clock_offset_ms BIGINT", terminals)  # fmt: skip


def _table(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    name: str,
    columns: str,
    rows: Iterable[Sequence[Any]],
) -> None:
    """Table `name` (`columns` as DDL) on `con`, through a CSV file (a few thousand rows)."""
    path = folder / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    types = ", ".join(f"'{n}': '{kind}'" for n, kind in (c.split() for c in columns.split(", ")))
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_csv(?, header = false,"
        f" quote = '\"', escape = '\"', columns = {{{types}}})",
        [str(path)],
    )


def _card_table(con: duckdb.DuckDBPyConnection, cards: int) -> None:
    """`cards` on `con`: our cards as `_make_cards` writes them (the same on every
    call): number, type, expiry, bank, plate, counter base."""
    expired = max(2, cards // 1000)
    banks = ", ".join(f"'{bank}'" for bank in BANKS)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE cards AS
        SELECT
            c,
            '{OUR_NETWORK}99' || lpad(CAST(c AS VARCHAR), 14, '0') AS card_no,
            CASE WHEN pu(c, 'type') < 0.45 THEN 23 ELSE 22 END AS card_type,
            CASE WHEN (c * {_PRIME}) % {cards} < {expired}
                 THEN DATE '2024-01-01' + CAST(floor(pu(c, 'exp') * 300) AS INT)
                 ELSE DATE '2031-01-01' + CAST(floor(pu(c, 'exp') * 1800) AS INT)
            END AS expiry_date,
            TIMESTAMP '2021-01-01 02:00:00' + to_days(CAST(floor(pu(c, 'iss') * 1400) AS INT))
                AS issued_at,
            [{banks}][1 + CAST(floor(pu(c, 'bank') * {len(BANKS)}) AS INT)] AS bank,
            '陕' || chr(65 + CAST(floor(pu(c, 'pl') * 20) AS INT))
                || lpad(CAST(c % 100000 AS VARCHAR), 5, '0') AS plate,
            1 + CAST(floor(pu(c, 'ctr') * 60000) AS BIGINT) AS counter
        FROM range({cards}) r(c)
        """
    )


def _make_cards(con: duckdb.DuckDBPyConnection, cards: int, folder: Path) -> None:
    """Our cards as CardUnit rows, every debit card's customer and account (its
    bank), one batch: by COPY from DuckDB, ids drawn as a block."""
    user, _ = get_user_model().objects.get_or_create(
        username="clearing-generator", defaults={"first_name": "generator"}
    )
    outlet, _ = Outlet.objects.get_or_create(code="610199001", defaults={"name": "生成网点"})
    batch = Batch.objects.create(
        kind=UnitKind.CARD, reference=_BATCH, location=outlet, quantity=cards,
        received_at=dt.datetime(2021, 1, 1, tzinfo=dt.UTC), received_by=user,
    )  # fmt: skip
    debit = con.execute("SELECT count(*) FROM cards WHERE card_type = 23").fetchone()
    accounts = int(debit[0]) if debit else 0
    customer0 = _reserve(Customer, accounts)
    account0 = _reserve(Account, accounts)
    con.execute(
        "CREATE OR REPLACE TABLE holders AS SELECT c, row_number() OVER (ORDER BY c) - 1 AS h"
        " FROM cards WHERE card_type = 23"
    )
    stamp = _text(timezone.now())
    source = "cards JOIN holders USING (c)"
    _copy(con, Customer, folder / "customers.csv", source, {
        "id": f"{customer0} + h", "customer_type": "1", "name": "'客户' || c", "id_type": "101",
        "id_number": "'GEN' || lpad(CAST(c AS VARCHAR), 15, '0')",
        "phone": "'139' || lpad(CAST(c AS VARCHAR), 8, '0')", "address": "'陕西省西安市'",
        "created_at": f"'{stamp}'", "updated_at": f"'{stamp}'",
    })  # fmt: skip
    _copy(con, Account, folder / "accounts.csv", source, {
        "id": f"{account0} + h", "customer_id": f"{customer0} + h",
        "number": "'A6199' || lpad(CAST(c AS VARCHAR), 15, '0')", "bank_name": "bank",
        "bank_account_no": "'6222' || lpad(CAST(c AS VARCHAR), 15, '0')",
        "agreement_signed_at": "ts(issued_at)", "created_at": "ts(issued_at)",
    })  # fmt: skip
    _copy(con, CardUnit, folder / "cards.csv", "cards LEFT JOIN holders USING (c)", {
        "card_no": "card_no", "batch_id": str(batch.pk), "location_id": str(outlet.pk),
        "state": "'active'", "card_type": "card_type",
        "account_id": f"CASE WHEN h IS NULL THEN NULL ELSE {account0} + h END",
        "is_master": "CASE WHEN h IS NULL THEN 0 ELSE 1 END",
        "expiry_date": "strftime(expiry_date, '%Y-%m-%d')", "issued_at": "ts(issued_at)",
        "updated_at": f"'{stamp}'",
    })  # fmt: skip


# -- the day ------------------------------------------------------------------------------

#: Each record's draws. `i` numbers the day's trips, late ones last.
_DRAWN = """
CREATE OR REPLACE TABLE drawn AS
SELECT
    i, i >= {trips} AS late, kind,
    row_number() OVER (PARTITION BY kind ORDER BY i) - 1 AS j,
    u(i, 'open') < 0.03 AS open_exit,
    CAST(floor(u(i, 'open_no') * {open_stations}) AS INT) AS open_no,
    CAST(floor(u(i, 'road') * {roads}) AS INT) AS road,
    CAST(floor(u(i, 'dir') * 2) AS INT) AS dir,
    gap,
    CAST(floor(u(i, 'from') * ({stations} - gap)) AS INT) AS a,
    CASE WHEN u(i, 'class') < 0.78 THEN 1 WHEN u(i, 'class') < 0.84 THEN 2
         WHEN u(i, 'class') < 0.88 THEN 3 WHEN u(i, 'class') < 0.92 THEN 4
         WHEN u(i, 'class') < 0.95 THEN 11 ELSE 12 END AS vehicle_class,
    CASE WHEN u(i, 'busy') < 0.75 THEN 21600 + CAST(floor(u(i, 'at') * 57600) AS INT)
         ELSE CAST(floor(u(i, 'at') * 86400) AS INT) END AS second,
    CASE WHEN kind IN ('own', 'other') AND u(i, 'dispute') < {disputed}
         THEN CASE WHEN u(i, 'code') < 0.5 THEN 1 WHEN u(i, 'code') < 0.75 THEN 3 ELSE 6 END
    END AS dispute_code,
    kind IN ('own', 'other') AND i < {trips} AND u(i, 'copy') < {duplicated} AS copied
FROM (
    SELECT
        i,
        CASE WHEN u(i, 'kind') < 0.60 THEN 'own' WHEN u(i, 'kind') < 0.85 THEN 'other'
             WHEN u(i, 'kind') < 0.92 THEN 'cash' ELSE 'mobile' END AS kind,
        1 + CAST(floor(u(i, 'gap') * 9) AS INT) AS gap
    FROM range({total}) r(i)
)
"""

#: The trips: route, exit station and terminal, card and amounts.
_TRIPS = """
CREATE OR REPLACE TABLE trips AS
SELECT
    d.i, d.late, d.kind, d.vehicle_class, d.dispute_code, d.copied, d.open_exit,
    CASE WHEN d.open_exit THEN o.station_pk ELSE xs.station_pk END AS station_pk,
    CASE WHEN d.open_exit THEN o.node_id ELSE xs.node_id END AS station_node,
    es.node_id AS entry_station,
    CASE WHEN d.open_exit THEN 'open' ELSE 'path' END AS method,
    CASE WHEN d.open_exit THEN '[]'
         ELSE '[' || array_to_string(w.objs[2 * d.a + 1 : 2 * (d.a + d.gap)], ', ') || ']'
    END AS intervals,
    CASE WHEN d.open_exit THEN 0 ELSE 2 * d.gap END AS interval_count,
    CASE WHEN d.open_exit THEN o.intervals ELSE 2 * d.gap END AS route_count,
    CASE WHEN d.open_exit THEN o.fee_fen ELSE list_sum(w.fees[2 * d.a + 1 : 2 * (d.a + d.gap)])
    END AS fee_fen,
    TIMESTAMP '{start}' + to_seconds(d.second) AS exit_at,
    u(d.i, 'lane') AS lane_u,
    CASE d.kind WHEN 'own' THEN c.card_no
        WHEN 'other' THEN n.network || lpad(CAST(n.f AS VARCHAR), 16, '0') ELSE '' END AS card_no,
    CASE d.kind WHEN 'own' THEN '{ours}' WHEN 'other' THEN n.network ELSE '' END AS card_network,
    -- The card's counter goes on from day to day: a debit is never repeated.
    CASE d.kind WHEN 'own' THEN (c.counter + {counter_day} + d.j // {cards}) % 65536
        WHEN 'other' THEN (1 + CAST(floor(pu(n.f, 'octr') * 60000) AS BIGINT) + {counter_day}
            + d.j // {others}) % 65536
    END AS card_trans_no,
    CASE d.kind WHEN 'own' THEN c.card_type
        WHEN 'other' THEN CASE WHEN pu(n.f, 'otype') < 0.5 THEN 22 ELSE 23 END
        WHEN 'cash' THEN 1 ELSE CASE WHEN u(d.i, 'app') < 0.5 THEN 10 ELSE 11 END
    END AS payment_type,
    CASE d.kind WHEN 'own' THEN c.plate
        WHEN 'other' THEN n.province || 'A' || lpad(CAST(n.f % 100000 AS VARCHAR), 5, '0')
        ELSE '陕' || chr(65 + CAST(floor(u(d.i, 'pl') * 20) AS INT))
            || lpad(CAST(CAST(floor(u(d.i, 'pn') * 100000) AS INT) AS VARCHAR), 5, '0')
    END AS plate,
    c.expiry_date, c.bank
FROM drawn d
JOIN way_stations es ON es.road = d.road AND es.dir = d.dir AND es.idx = d.a
JOIN way_stations xs ON xs.road = d.road AND xs.dir = d.dir AND xs.idx = d.a + d.gap
JOIN ways w ON w.road = d.road AND w.dir = d.dir AND w.vehicle_class = d.vehicle_class
JOIN open_fees o ON o.open_no = d.open_no AND o.vehicle_class = d.vehicle_class
LEFT JOIN cards c ON d.kind = 'own' AND c.c = (d.j * {prime}) % {cards}
LEFT JOIN (
    SELECT f, [{networks}][1 + f % {network_count}] AS network,
        [{provinces}][1 + f % {network_count}] AS province
    FROM range({others}) r(f)
) n ON d.kind = 'other' AND n.f = (d.j * {prime}) % {others}
"""

#: Every record to write: the trips and the duplicates' copies (uploaded by the next
#: terminal of the station), with ids, terminals, seqs and the amounts.
_RECORDS = """
CREATE OR REPLACE TABLE records AS
WITH rows_ AS (
    SELECT t.*, NULL::BIGINT AS copy_of, 0 AS next_lane, t.i AS n FROM trips t
    UNION ALL
    SELECT t.*, t.i AS copy_of, 1 AS next_lane,
        {total} + row_number() OVER (ORDER BY t.i) - 1 AS n
    FROM trips t WHERE t.copied
),
placed AS (
    SELECT
        r.* EXCLUDE (dispute_code),
        CASE WHEN r.copy_of IS NULL THEN r.dispute_code END AS dispute_code,
        m.terminal_pk, m.lane_number, m.clock_offset_ms
    FROM rows_ r
    JOIN terminals m ON m.station_pk = r.station_pk
        AND m.n = (CAST(floor(r.lane_u * m.count) AS INT) + r.next_lane) % m.count
),
priced AS (
    SELECT
        p.*,
        CASE WHEN p.payment_type IN (22, 23) THEN (p.fee_fen * {discount_bp} + 5000) // 10000
             ELSE 0 END AS discount_fen
    FROM placed p
)
SELECT
    {first_id} + p.n AS id, p.*,
    CAST({ordinal} AS BIGINT) * 1000000
        + row_number() OVER (PARTITION BY p.terminal_pk ORDER BY p.exit_at, p.n) AS seq,
    CASE WHEN p.payment_type IN (22, 23) THEN p.fee_fen - p.discount_fen
         ELSE (p.fee_fen + 50) // 100 * 100 END AS payable_fen,
    CASE WHEN p.copy_of IS NOT NULL
             THEN p.exit_at + to_seconds(600 + CAST(floor(u(p.n, 'again') * 7200) AS INT))
         WHEN p.late
             THEN TIMESTAMP '{end}' + to_seconds(3600 + CAST(floor(u(p.n, 'recv') * 86400) AS INT))
         ELSE p.exit_at + to_seconds(2 + CAST(floor(u(p.n, 'recv') * 120) AS INT))
    END AS received_at,
    p.exit_at - to_seconds(CAST(p.route_count * 150 + floor(u(p.n, 'drive') * 900) AS INT))
        AS entry_at
FROM priced p
"""

#: What a run must make of each record (definitions.CHECKED's order of codes).
_EXPECTED = """
CREATE OR REPLACE TABLE expected AS
SELECT
    id, late, payable_fen, payment_type, station_node, bank,
    CASE WHEN payment_type IN (22, 23) AND card_network <> '{ours}' THEN 2 ELSE 1 END AS flow,
    CASE WHEN dispute_code IS NOT NULL THEN dispute_code
         WHEN copy_of IS NOT NULL THEN 2
         WHEN abs(clock_offset_ms) > {clock_ok} THEN 16
         WHEN expiry_date IS NOT NULL AND expiry_date < DATE '{date}' THEN 10
    END AS hold_code
FROM records
"""

_FINDINGS = {
    1: ("tac_failed", "the TAC did not verify"),
    3: ("user_status", "the card was on the status list when it passed"),
    6: ("payable_differs", "the payable amount differs from the tariff"),
}


def generate_day(
    date: dt.date,
    *,
    trips: int,
    seed: int,
    cards: int = 300,
    late: int = 0,
    defer_late: bool = False,
    duplicated: float = 0.001,
    disputed: float = 0.005,
    folder: Path | None = None,
) -> Generated:
    """Writes a generated province day `date` into the store: `trips` exits and
    `late` more of the day received after it (kept back until `deliver_late` when
    `defer_late`), the copies of about `duplicated` of the card records, and
    `disputed` of them disputed at intake. The province (network, terminals,
    `cards` cards) is made on first use and reused: every day of a database must
    name the same `cards`. The same arguments on the same database write the
    same rows. Runs in one transaction; on PostgreSQL the day's partition is made
    first. Working files go to a temporary folder in `folder` (default
    `DATA_DIR/generated`), removed at the end; kept-back late records stay there
    until delivered."""
    if trips < 1 or late < 0 or cards < 10:
        raise ValueError("trips must be positive, late not negative, cards at least 10")
    folder = folder or Path(settings.DATA_DIR) / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    if connection.vendor == "postgresql":
        partitions.create_days([date])
    work = Path(tempfile.mkdtemp(prefix=f"{date}-", dir=folder))
    con = _connect(seed)
    try:
        seconds: dict[str, float] = {}
        began = time.perf_counter()
        with transaction.atomic():
            _province(cards, work, con)
            seconds["province"] = time.perf_counter() - began
            began = time.perf_counter()
            first_id = _draw(con, date, trips=trips, late=late, cards=cards,
                             duplicated=duplicated, disputed=disputed)  # fmt: skip
            seconds["drawn"] = time.perf_counter() - began
            began = time.perf_counter()
            values = _record_values()
            now_rows = "records WHERE NOT late" if defer_late else "records"
            _copy(con, TollTransaction, work / "records.csv", now_rows, values)
            late_file = folder / f"{date}-late-{first_id}.csv" if defer_late and late else None
            if late_file is not None:  # kept for `deliver_late`
                _copy(con, TollTransaction, late_file, "records WHERE late", values, load=False)
            seconds["written"] = time.perf_counter() - began
        return _summary(con, date, defer_late, late_file, seconds)
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)


def _connect(seed: int) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the generator's macros: `u(i, tag)` and `pu(i,
    tag)`, uniform draws in [0, 1) for record i (the day's seed) and for card or
    terminal i (the province's), and `ts(t)`, a UTC timestamp as this database
    reads it."""
    con = duckdb.connect(":memory:")
    # `hash(i, seed, tag)` alone draws alike for every tag (DuckDB combines the
    # hashes linearly): the tag's hash is mixed in and hashed again.
    for name, salt in (("u", int(seed)), ("pu", _PROVINCE_SEED)):
        con.execute(
            f"CREATE MACRO {name}(i, tag) AS"
            f" hash(xor(hash(i, {salt}), hash(tag))) / 18446744073709551616.0"
        )
    suffix = "+00" if connection.vendor == "postgresql" else ""
    con.execute(f"CREATE MACRO ts(x) AS strftime(x, '%Y-%m-%d %H:%M:%S') || '{suffix}'")
    return con


def _draw(
    con: duckdb.DuckDBPyConnection,
    date: dt.date,
    *,
    trips: int,
    late: int,
    cards: int,
    duplicated: float,
    disputed: float,
) -> int:
    """The day's `records` and what a run must make of them (`expected`) on
    `con`; returns the first of the ids drawn for them."""
    start, end = partitions.bounds(date)
    total = trips + late
    others = max(100, total // 15)  # other issuers' cards
    con.execute(
        _DRAWN.format(
            trips=trips, total=total, open_stations=OPEN_STATIONS, roads=ROADS,
            stations=(NODES_PER_ROAD + 1) // 2, disputed=float(disputed),
            duplicated=float(duplicated),
        )
    )  # fmt: skip
    con.execute(
        _TRIPS.format(
            start=_naive(start), ours=OUR_NETWORK, cards=cards, others=others, prime=_PRIME,
            counter_day=(date - dt.date(2020, 1, 1)).days * COUNTER_STEP,
            networks=", ".join(f"'{n}'" for n in OTHER_NETWORKS),
            provinces="'苏', '京', '粤', '浙', '鄂'", network_count=len(OTHER_NETWORKS),
        )
    )  # fmt: skip
    copies = con.execute("SELECT count(*) FROM trips WHERE copied").fetchone()
    first_id = _reserve(TollTransaction, total + (int(copies[0]) if copies else 0))
    con.execute(
        _RECORDS.format(
            total=total, first_id=first_id, ordinal=date.toordinal(), end=_naive(end),
            discount_bp=DISCOUNT_BP,
        )
    )  # fmt: skip
    con.execute(_EXPECTED.format(ours=OUR_NETWORK, clock_ok=CLOCK_OK_MS, date=date.isoformat()))
    return first_id


def deliver_late(generated: Generated) -> int:
    """Writes the late records `generate_day(…, defer_late=True)` kept back: they
    reach the center now. Returns how many."""
    if generated.late_file is None:
        return 0
    with transaction.atomic():
        written = _load(TollTransaction, _columns(TollTransaction, _record_values()),
                        generated.late_file)  # fmt: skip
    generated.late_file.unlink()
    return written


def _record_values() -> dict[str, str]:
    """The columns of a record (attribute -> DuckDB expression over `records`)."""
    card = "payment_type IN (22, 23)"
    return {
        "id": "id", "terminal_id": "terminal_pk", "seq": "seq", "direction": "'exit'",
        "status": "CASE WHEN dispute_code = 1 THEN 'rejected' ELSE 'accepted' END",
        "dispute_code": "dispute_code",
        "reason": "CASE WHEN dispute_code = 1 THEN 'TAC verification failed' ELSE '' END",
        "station_id": "station_pk", "lane_number": "lane_number", "exit_time": "ts(exit_at)",
        "clock_offset_ms": "clock_offset_ms", "received_at": "ts(received_at)",
        "entry_station": "entry_station", "entry_time": "ts(entry_at)",
        "card_no": "card_no", "card_network": "card_network",
        "obu_no": f"CASE WHEN {card} THEN substr(card_no, 1, 4) || right(card_no, 12) ELSE '' END",
        "plate": "plate", "plate_color": "CASE WHEN vehicle_class = 1 THEN 0 ELSE 1 END",
        "vehicle_class": "vehicle_class", "method": "method", "fee_fen": "fee_fen",
        "discount_fen": "discount_fen", "payable_fen": "payable_fen", "intervals": "intervals",
        "payment_type": "payment_type",
        "amount_fen": f"CASE WHEN {card} THEN payable_fen ELSE 0 END",
        "trans_type": f"CASE WHEN {card} THEN 9 END",
        # The PSAM's 4-byte transaction serial, as the intake keeps it.
        "terminal_trans_seq": f"CASE WHEN {card} THEN seq % 4294967296 END",
        "card_trans_no": "card_trans_no",
        "tac": f"CASE WHEN {card} THEN upper(substr(md5(CAST(id AS VARCHAR)), 1, 8)) ELSE '' END",
        "tac_verified": f"CASE WHEN {card} AND dispute_code IS DISTINCT FROM 1 THEN 1 ELSE 0 END",
        "balance_before_fen": "CASE WHEN payment_type = 22 THEN payable_fen"
        " + CAST(floor(u(id, 'bal') * 80000) AS BIGINT) END",
        "list_version": "'202612010001'", "tariff_version": f"'{VERSION}'",
        "findings": _findings(),
        "collector": "'c' || lpad(CAST(terminal_pk % 1000 AS VARCHAR), 3, '0')",
        "shift": "strftime(exit_at, '%Y%m%d') || '-' || (1 + hour(exit_at) // 8)",
    }  # fmt: skip


def _findings() -> str:
    """The intake's finding of each disputed record, as JSON text."""
    cases = []
    for code, (kind, reason) in _FINDINGS.items():
        found = [{"code": code, "kind": kind, "reason": reason, "evidence": {}}]
        cases.append(f"WHEN {code} THEN '{json.dumps(found)}'")
    return f"CASE dispute_code {' '.join(cases)} ELSE '[]' END"


def _summary(
    con: duckdb.DuckDBPyConnection,
    date: dt.date,
    defer_late: bool,
    late_file: Path | None,
    seconds: dict[str, float],
) -> Generated:
    def one(sql: str) -> tuple[Any, ...]:
        row = con.execute(sql).fetchone()
        assert row is not None
        return row

    written = "NOT late" if defer_late else "true"
    records, intervals, routes = one(
        f"SELECT count(*), sum(interval_count), sum(route_count) FROM records WHERE {written}"
    )
    kinds = dict(
        con.execute(
            f"""
            SELECT kind, count(*) FROM (
                SELECT CASE payment_type WHEN 22 THEN 'stored_value' WHEN 23 THEN 'debit'
                    WHEN 1 THEN 'cash' ELSE 'mobile' END AS kind
                FROM records WHERE card_network IN ('', '{OUR_NETWORK}')
                UNION ALL SELECT 'other_issuers' FROM records
                    WHERE card_network NOT IN ('', '{OUR_NETWORK}')
                UNION ALL SELECT 'open_road' FROM records WHERE open_exit
                UNION ALL SELECT 'duplicates' FROM records WHERE copy_of IS NOT NULL
                UNION ALL SELECT 'late' FROM records WHERE late
                UNION ALL SELECT 'disputed' FROM records WHERE dispute_code IS NOT NULL
                UNION ALL SELECT 'clock_off' FROM records WHERE abs(clock_offset_ms) > {CLOCK_OK_MS}
                UNION ALL SELECT 'expired_card' FROM records
                    WHERE expiry_date < DATE '{date.isoformat()}'
            ) GROUP BY kind ORDER BY kind
            """
        ).fetchall()
    )
    held = dict(
        con.execute(
            "SELECT id, hold_code FROM expected WHERE hold_code IS NOT NULL ORDER BY id"
        ).fetchall()
    )
    duplicates = dict(
        con.execute(
            "SELECT r.id, o.id FROM records r JOIN records o ON o.n = r.copy_of ORDER BY r.id"
        ).fetchall()
    )
    late_ids = tuple(
        int(i) for (i,) in con.execute("SELECT id FROM records WHERE late ORDER BY id").fetchall()
    )
    now = _expected(con, written)
    later = _expected(con, "late" if defer_late else "false")
    return Generated(
        date=date, version=VERSION, records=int(records), interval_rows=int(intervals or 0),
        route_rows=int(routes or 0), kinds={str(k): int(v) for k, v in kinds.items()},
        held={int(k): int(v) for k, v in held.items()},
        duplicates={int(k): int(v) for k, v in duplicates.items()}, late_ids=late_ids,
        expected=now, late=later, late_file=late_file, seconds=seconds,
    )  # fmt: skip


def _expected(con: duckdb.DuckDBPyConnection, where: str) -> Expected:
    states = {
        str(state): (int(n), int(payable))
        for state, n, payable in con.execute(
            f"""
            SELECT CASE WHEN hold_code IS NOT NULL THEN 'held' WHEN flow = 2 THEN 'sent'
                ELSE 'cleared' END AS state, count(*), sum(payable_fen)
            FROM expected WHERE {where} GROUP BY state
            """
        ).fetchall()
    }
    receivable = con.execute(
        f"""
        SELECT
            CASE payment_type WHEN 22 THEN 'purses' WHEN 23 THEN 'bank'
                WHEN 1 THEN 'station_cash' ELSE 'mobile' END AS kind,
            CASE payment_type WHEN 22 THEN '' WHEN 23 THEN coalesce(bank, '')
                WHEN 1 THEN station_node ELSE CAST(payment_type AS VARCHAR) END AS counterparty,
            sum(payable_fen)
        FROM expected
        WHERE {where} AND hold_code IS NULL AND flow = 1 AND payable_fen <> 0
        GROUP BY ALL
        """
    ).fetchall()
    return Expected(
        records=sum(n for n, _ in states.values()),
        cleared=states.get("cleared", (0, 0))[0],
        held=states.get("held", (0, 0))[0],
        sent=states.get("sent", (0, 0))[0],
        cleared_payable_fen=states.get("cleared", (0, 0))[1],
        sent_payable_fen=states.get("sent", (0, 0))[1],
        receivable={(str(k), str(c)): int(v) for k, c, v in receivable},
    )


# -- bulk in ------------------------------------------------------------------------------


def _naive(moment: dt.datetime) -> str:
    """An aware time as DuckDB's TIMESTAMP literal, in UTC."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(moment: dt.datetime) -> str:
    """An aware time as the CSV files write it for this database."""
    return _naive(moment) + ("+00" if connection.vendor == "postgresql" else "")


def _reserve(model: type[models.Model], count: int) -> int:
    """The first of `count` new primary keys of `model`, drawn as one block: the
    table's sequence moved past them (PostgreSQL) or after the highest id."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'),"
                " nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1) - %s + 1",
                [table, table, max(count, 1), max(count, 1)],
            )
        else:
            cursor.execute(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"')
        return int(cursor.fetchone()[0])


def _columns(model: type[models.Model], values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(column, DuckDB expression) of every column `model` stores: `values` by
    attribute name, the rest their default as a new instance has it."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no field {sorted(unknown)}")
    now = f"'{_text(timezone.now())}'"
    columns = []
    for name, f in fields.items():
        if name in values:
            columns.append((f.column, values[name]))
        elif not f.primary_key:
            columns.append((f.column, _literal(model, f, now)))
    return columns


def _literal(model: type[models.Model], f: models.Field[Any, Any], now: str) -> str:
    if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
        return now
    value = f.get_default()
    if value is None:
        if not f.null:
            raise ValueError(f"{model.__name__}.{f.name} needs a value")
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | dict):
        value = json.dumps(value)
    return "'" + str(value).replace("'", "''") + "'"


def _copy(
    con: duckdb.DuckDBPyConnection,
    model: type[models.Model],
    path: Path,
    source: str,
    values: Mapping[str, str],
    *,
    load: bool = True,
) -> int:
    """`model`'s rows as DuckDB selects them from `source` (`values`: `_columns`)
    written to the CSV file `path`, then into the database unless not `load`;
    returns the rows loaded."""
    selected = ", ".join(f"{expr} AS {column}" for column, expr in _columns(model, values))
    con.execute(f"COPY (SELECT {selected} FROM {source}) TO '{path}' (HEADER false, NULLSTR '\\N')")
    return _load(model, _columns(model, values), path) if load else 0


def _load(model: type[models.Model], columns: Sequence[tuple[str, str]], path: Path) -> int:
    """The CSV file at `path` (`columns` in order, NULL `\\N`) into `model`'s table:
    one COPY on PostgreSQL, inserts of `_CHUNK` rows elsewhere."""
    table = model._meta.db_table
    names = ", ".join(f'"{column}"' for column, _ in columns)
    if connection.vendor == "postgresql":
        with connection.wrap_database_errors, connection.cursor() as wrapper:
            cursor = wrapper.cursor  # psycopg's own, for COPY
            statement = f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv, NULL '{_NULL}')"
            with path.open("rb") as source, cursor.copy(statement) as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            return int(cursor.rowcount)
    marks = ", ".join("%s" for _ in columns)
    written = 0
    with path.open(newline="", encoding="utf-8") as source, connection.cursor() as cursor:
        rows = csv.reader(source)
        while chunk := [
            [None if value == _NULL else value for value in row]
            for row in itertools.islice(rows, _CHUNK)
        ]:
            cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', chunk)
            written += len(chunk)
    return written
