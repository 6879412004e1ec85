"""Test days for the clearing engines: rows written to CSV files, which DuckDB and
Spark both read whole (as a real day arrives in files, not row by row)."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from etcnet.clearing import embedded

OWNERS = [f"O{n:02d}" for n in range(12)]
VERSION = "1220261201001"
Rows = list[tuple[Any, ...]]


def write_csv(path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([embedded.NULL if v is None else v for v in row] for row in rows)
    return path


def load(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Rows,
) -> None:
    """Table `name` on `con`, read from a CSV file of `rows` written in `folder`."""
    embedded.load_csv(con, name, columns, write_csv(folder / f"{name}.csv", rows))


def load_duckdb(con: duckdb.DuckDBPyConnection, folder: Path, trips: Rows, intervals: Rows) -> None:
    """`trips` and `trip_intervals` on `con`, read from CSV files in `folder`."""
    load(con, folder, "trips", embedded.TRIP_COLUMNS, trips)
    load(con, folder, "trip_intervals", embedded.INTERVAL_COLUMNS, intervals)


def generated_day(trips: int, seed: int) -> tuple[Rows, Rows]:
    """Trips over 1-15 intervals of random owners and fees, with reversals, free
    intervals, all-free trips and amounts that leave remainders."""
    rng = random.Random(seed)
    trip_rows: Rows = []
    interval_rows: Rows = []
    for trip in range(1, trips + 1):
        count = rng.randint(1, 15)
        fees = [rng.choice([0, rng.randint(1, 60_000)]) for _ in range(count)]
        if rng.random() < 0.02:
            fees = [0] * count
        payable = rng.randint(0, 2 * max(sum(fees), 1000))
        if rng.random() < 0.05:
            payable = -payable
        trip_rows.append((trip, payable, VERSION, 1 + trip % 6))
        for position, fee in enumerate(fees):
            owner = rng.choice(OWNERS)
            interval_rows.append((trip, position, f"G{trip:07d}{position:02d}", owner, fee))
    return trip_rows, interval_rows


#: Payment types a generated record pays by, with their weights.
_PAYMENTS = ((22, 50), (23, 15), (1, 20), (10, 5), (11, 5), (0, 5))
_NETWORKS = ("6101", "6101", "6101", "3201", "1101")
_BANKS = ("", "工商银行", "建设银行", "农业银行")
CLOCK_LIMIT_MS = 300_000


def generated_records(trips: int, seed: int) -> tuple[Rows, Rows, Rows]:
    """A clearing day's inputs as the extract writes them: `records`
    (definitions.RECORD_COLUMNS), `trip_routes` and `interval_fees` — our cards
    and others', cash and mobile payments, duplicates of a card debit, intake
    disputes, late and carried records, wild clocks, expired cards, unpriced and
    unrouted trips, reversals."""
    rng = random.Random(seed)
    intervals = [f"G{n:03d}" for n in range(40)]
    fees: Rows = [
        (VERSION, interval, rng.choice(OWNERS), klass, rng.choice([0, rng.randint(100, 9000)]))
        for interval in intervals
        for klass in range(1, 7)
    ]
    records: Rows = []
    routes: Rows = []
    debits: list[tuple[str, int]] = []
    payments = [p for p, weight in _PAYMENTS for _ in range(weight)]
    for trip in range(1, trips + 1):
        payment = rng.choice(payments)
        network = rng.choice(_NETWORKS) if payment in (22, 23) else ""
        card_no, counter = "", None
        if network:
            if debits and rng.random() < 0.03:
                card_no, counter = rng.choice(debits)  # the same debit again
                network = card_no[:4]
            else:
                card_no, counter = (
                    f"{network}{rng.randint(0, 10**16 - 1):016d}",
                    rng.randint(0, 65535),
                )
                debits.append((card_no, counter))
        route = rng.sample(intervals, rng.randint(0, 8))
        if rng.random() < 0.01:
            route.append("G999")  # an interval the tariff does not know: held
        fee = rng.randint(0, 20_000)
        discount = fee * 5 // 100 if payment in (22, 23) else 0
        payable = fee - discount
        if rng.random() < 0.02:
            payable = -payable  # a reversal
        carried = rng.choices((0, 1, 2), weights=(90, 5, 5))[0]
        code = rng.choice([None] * 30 + [1, 3, 6, 14]) if carried != 2 else None
        records.append(
            (
                trip, carried, 2 if network not in ("", "6101") else 1,
                f"S{rng.randint(1, 5):07d}", f"HH-{rng.randint(1, 9):04d}", network, card_no,
                counter, payment, rng.randint(1, 6), VERSION, fee, discount, payable, code,
                rng.choice([0] * 40 + [CLOCK_LIMIT_MS + 1, -CLOCK_LIMIT_MS - 5]),
                "2026-12-02",
                rng.choice(["", "", "", "2030-01-01", "2026-11-30"]) if network == "6101" else "",
                1 if carried == 1 and rng.random() < 0.1 else 0,
                rng.choice(_BANKS) if payment == 23 else "",
                f"2026-12-02 0{rng.randint(0, 9)}:00:00+00",
            )
        )  # fmt: skip
        routes.extend((trip, position, interval) for position, interval in enumerate(route))
    return records, routes, fees
