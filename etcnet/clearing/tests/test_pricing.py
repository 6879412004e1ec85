"""Pricing each trip's route with the tariff it was charged by, then splitting it:
the same definitions on DuckDB and on Spark."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from etcnet.clearing import cluster, definitions, embedded
from etcnet.clearing.tests.days import load, write_csv

OLD, NEW = "1220260101001", "1220261201001"

# Two tariff versions: the new one raises G2's class-1 fee and moves G3 to owner C.
FEES = [
    (OLD, "G1", "A", 1, 1000),
    (OLD, "G2", "B", 1, 2000),
    (OLD, "G3", "B", 1, 500),
    (NEW, "G1", "A", 1, 1000),
    (NEW, "G2", "B", 1, 2500),
    (NEW, "G3", "C", 1, 500),
    (NEW, "G1", "A", 2, 1500),  # class 2 has a fee on G1 only
]
TRIPS = [
    (1, 3500, OLD, 1),  # G1 G2 G3 on the old tariff
    (2, 3800, NEW, 1),  # the same route on the new tariff, 5% off
    (3, 2000, NEW, 2),  # class 2 over G1 and G2: no class-2 fee for G2 -> held
    (4, 900, NEW, 1),  # over G9, which no version knows -> held
    (5, 700, NEW, 1),  # no route rows at all: unsplit, the day's check names it
]
ROUTES = [
    *[(1, n, g) for n, g in enumerate(["G1", "G2", "G3"])],
    *[(2, n, g) for n, g in enumerate(["G1", "G2", "G3"])],
    *[(3, n, g) for n, g in enumerate(["G1", "G2"])],
    *[(4, n, g) for n, g in enumerate(["G1", "G9"])],
]
PRICED = [
    (1, 0, "G1", "A", 1000),
    (1, 1, "G2", "B", 2000),
    (1, 2, "G3", "B", 500),
    (2, 0, "G1", "A", 1000),
    (2, 1, "G2", "B", 2500),
    (2, 2, "G3", "C", 500),
]
UNPRICED = [(3, 1, "G2"), (4, 1, "G9")]
# Trip 2: 3800 of 4000 by fee: 950 / 2375 / 475, no remainder.
SPLITS = [
    (1, 0, "G1", "A", 1000, 1000),
    (1, 1, "G2", "B", 2000, 2000),
    (1, 2, "G3", "B", 500, 500),
    (2, 0, "G1", "A", 1000, 950),
    (2, 1, "G2", "B", 2500, 2375),
    (2, 2, "G3", "C", 500, 475),
]
UNSPLIT = [(5, 700, 0)]
# A: G1 twice; B: G2 twice and G3 on the old tariff; C: G3 on the new one.
OWNER_TOTALS = [("A", 2, 2000, 1950), ("B", 2, 5000, 4875), ("C", 1, 500, 475)]


def test_duckdb_prices_each_route_with_its_own_tariff_and_holds_what_it_cannot(tmp_path):
    con = embedded.connect()
    load(con, tmp_path, "trips", embedded.TRIP_COLUMNS, TRIPS)
    load(con, tmp_path, "trip_routes", embedded.ROUTE_COLUMNS, ROUTES)
    load(con, tmp_path, "interval_fees", embedded.FEE_COLUMNS, FEES)

    assert embedded.unpriced(con).order("trip_id, position").fetchall() == UNPRICED
    assert embedded.trip_intervals(con).order("trip_id, position").fetchall() == PRICED
    con.execute("CREATE VIEW trip_intervals AS " + definitions.TRIP_INTERVALS)
    assert embedded.split(con).order("trip_id, position").fetchall() == SPLITS
    con.execute("CREATE VIEW splits AS " + definitions.SPLIT)
    assert embedded.unsplit(con).fetchall() == UNSPLIT
    assert embedded.owner_totals(con).order("owner_id").fetchall() == OWNER_TOTALS


@pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime (make java-deps)")
@pytest.mark.xdist_group("spark")
def test_spark_prices_and_splits_the_same(spark, tmp_path: Path):
    for name, schema, rows in (
        ("trips", cluster.TRIP_SCHEMA, TRIPS),
        ("trip_routes", cluster.ROUTE_SCHEMA, ROUTES),
        ("interval_fees", cluster.FEE_SCHEMA, FEES),
    ):
        path = write_csv(tmp_path / f"{name}.csv", rows)
        spark.read.csv(str(path), schema=schema).createOrReplaceTempView(name)

    def rows(frame: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in frame.orderBy("trip_id", "position").collect()]

    assert rows(cluster.unpriced(spark)) == UNPRICED
    assert rows(cluster.trip_intervals(spark)) == PRICED
    cluster.trip_intervals(spark).createOrReplaceTempView("trip_intervals")
    assert rows(cluster.split(spark)) == SPLITS
    cluster.split(spark).createOrReplaceTempView("splits")
    assert [tuple(row) for row in cluster.unsplit(spark).collect()] == UNSPLIT
    totals = cluster.owner_totals(spark).orderBy("owner_id").collect()
    assert [tuple(row) for row in totals] == OWNER_TOTALS
