"""One definition, two engines: a generated day split by DuckDB (embedded) and by
Spark in local mode (cluster) gives the same rows, every one."""

from __future__ import annotations

import shutil

import pytest

from etcnet.clearing import cluster, definitions, embedded
from etcnet.clearing.tests.days import generated_day, load_duckdb

pytestmark = [
    pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime (make java-deps)"),
    # One Spark driver at a time on this machine: the module's tests share a worker.
    pytest.mark.xdist_group("spark"),
]


def test_duckdb_and_spark_split_a_generated_day_identically(spark, tmp_path):
    trip_rows, interval_rows = generated_day(2_000, seed=20261203)

    con = embedded.connect()
    load_duckdb(con, tmp_path, trip_rows, interval_rows)
    by_duckdb = embedded.split(con).order("trip_id, position").fetchall()

    for name, schema in (
        ("trips", cluster.TRIP_SCHEMA),
        ("trip_intervals", cluster.INTERVAL_SCHEMA),
    ):
        spark.read.csv(str(tmp_path / f"{name}.csv"), schema=schema).createOrReplaceTempView(name)
    by_spark = [tuple(row) for row in cluster.split(spark).orderBy("trip_id", "position").collect()]

    assert len(by_duckdb) == len(interval_rows)
    assert by_spark == by_duckdb
    con.execute("CREATE VIEW splits AS " + definitions.SPLIT)
    cluster.split(spark).createOrReplaceTempView("splits")
    owners = embedded.owner_totals(con).order("owner_id").fetchall()
    assert [tuple(r) for r in cluster.owner_totals(spark).orderBy("owner_id").collect()] == owners
    assert sum(amount for *_, amount in owners) == sum(amount for _, amount, *_ in trip_rows)
    payable = {trip: amount for trip, amount, *_ in trip_rows}
    totals: dict[int, int] = {}
    for trip, *_, amount in by_duckdb:
        totals[trip] = totals.get(trip, 0) + amount
    assert totals == payable


def test_the_spark_job_splits_parquet_files_as_duckdb_does(spark, tmp_path):
    # The day's inputs leave the embedded engine as Parquet, as a day is handed
    # to a cluster; the job (what spark-submit runs) writes the splits as Parquet.
    trip_rows, interval_rows = generated_day(300, seed=7)
    con = embedded.connect()
    load_duckdb(con, tmp_path, trip_rows, interval_rows)
    for name in ("trips", "trip_intervals"):
        con.execute(f"COPY {name} TO '{tmp_path / name}.parquet' (FORMAT parquet)")
    out = tmp_path / "splits.parquet"

    assert (
        cluster.main(
            [
                "--trips",
                str(tmp_path / "trips.parquet"),
                "--intervals",
                str(tmp_path / "trip_intervals.parquet"),
                "--out",
                str(out),
                "--local",
                "2",
            ]
        )
        == 0
    )

    by_job = con.sql(
        f"SELECT * FROM read_parquet('{out}/*.parquet') ORDER BY trip_id, position"
    ).fetchall()
    assert by_job == embedded.split(con).order("trip_id, position").fetchall()
