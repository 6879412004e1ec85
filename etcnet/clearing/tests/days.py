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
        csv.writer(out).writerows(rows)
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
