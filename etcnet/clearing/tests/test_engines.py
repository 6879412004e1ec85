"""One definition, two engines: a generated day split by DuckDB (embedded) and by
Spark in local mode (cluster) gives the same rows, every one."""

from __future__ import annotations

import shutil

import pytest

from etcnet.clearing import cluster, definitions, embedded
from etcnet.clearing.tests.days import (
    CLOCK_LIMIT_MS,
    generated_day,
    generated_records,
    load,
    load_duckdb,
)

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


def _load_day(con, folder, records, routes, fees) -> None:
    load(con, folder, "records", definitions.RECORD_COLUMNS, records)
    load(con, folder, "trip_routes", definitions.ROUTE_COLUMNS, routes)
    load(con, folder, "interval_fees", definitions.FEE_COLUMNS, fees)
    con.execute(f"CREATE TABLE params ({definitions.ddl(definitions.PARAM_COLUMNS)})")
    con.execute("INSERT INTO params VALUES (?)", [CLOCK_LIMIT_MS])


def _rows(relation) -> list[tuple]:
    return sorted(tuple(row) for row in relation)


def test_duckdb_and_spark_run_a_generated_clearing_day_identically(spark, tmp_path):
    records, routes, fees = generated_records(3_000, seed=20261203)
    con = embedded.connect()
    _load_day(con, tmp_path, records, routes, fees)
    embedded.run_day(con)

    # Handed over as a cluster gets a day: Parquet, written by the embedded engine.
    for name, schema in (
        ("records", cluster.RECORD_SCHEMA),
        ("trip_routes", cluster.ROUTE_SCHEMA),
        ("interval_fees", cluster.FEE_SCHEMA),
    ):
        con.execute(f"COPY {name} TO '{tmp_path / name}.parquet' (FORMAT parquet)")
        spark.read.schema(schema).parquet(
            str(tmp_path / f"{name}.parquet")
        ).createOrReplaceTempView(name)
    spark.createDataFrame([(CLOCK_LIMIT_MS,)], cluster.PARAM_SCHEMA).createOrReplaceTempView(
        "params"
    )
    cluster.run_day(spark)

    for name in definitions.RESULTS:
        by_duckdb = _rows(con.sql(f"SELECT * FROM {name}").fetchall())
        by_spark = _rows(spark.table(name).collect())
        assert by_spark == by_duckdb, name
    # The day is not trivial: every state and several codes, all adding up.
    states = dict(con.sql("SELECT state, COUNT(*) FROM checked GROUP BY state").fetchall())
    assert set(states) == {"cleared", "held", "sent"}
    codes = {c for (c,) in con.sql("SELECT DISTINCT hold_code FROM checked").fetchall()}
    assert {1, 2, 3, 6, 10, 16} <= codes
    assert con.sql("SELECT * FROM missplit").fetchall() == []


def test_the_spark_job_runs_the_day_over_parquet_files_as_duckdb_does(spark, tmp_path):
    # The day's inputs leave the embedded engine as Parquet, as a day is handed to a
    # cluster; the job (what spark-submit runs) writes every result as Parquet.
    records, routes, fees = generated_records(400, seed=7)
    con = embedded.connect()
    _load_day(con, tmp_path, records, routes, fees)
    for name in ("records", "trip_routes", "interval_fees"):
        con.execute(f"COPY {name} TO '{tmp_path / name}.parquet' (FORMAT parquet)")
    out = tmp_path / "results"

    assert (
        cluster.main(
            [
                "--records",
                str(tmp_path / "records.parquet"),
                "--routes",
                str(tmp_path / "trip_routes.parquet"),
                "--fees",
                str(tmp_path / "interval_fees.parquet"),
                "--clock-limit-ms",
                str(CLOCK_LIMIT_MS),
                "--out",
                str(out),
                "--local",
                "2",
            ]
        )
        == 0
    )

    embedded.run_day(con)
    for name in definitions.RESULTS:
        by_job = con.sql(f"SELECT * FROM read_parquet('{out}/{name}.parquet/*.parquet')")
        assert _rows(by_job.fetchall()) == _rows(con.sql(f"SELECT * FROM {name}").fetchall())
