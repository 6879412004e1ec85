"""The cluster engine: Spark runs the clearing definitions past one machine.

The same SQL text as the embedded engine (`etcnet.clearing.definitions`), over
Spark temporary views of the same names and columns — a national center's day or
a province that outgrows one machine runs it with `spark-submit` against a
standalone or YARN master (docs/clearing.md); the tests run it in local mode.
PySpark is imported only here, and only when a session is asked for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from etcnet.clearing import definitions

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "FEE_SCHEMA",
    "INTERVAL_SCHEMA",
    "PARAM_SCHEMA",
    "RECORD_SCHEMA",
    "ROUTE_SCHEMA",
    "TRIP_SCHEMA",
    "local_session",
    "main",
    "owner_totals",
    "run_day",
    "split",
    "trip_intervals",
    "unpriced",
    "unsplit",
]

# The input relations as Spark DDL, from the columns both engines share.
TRIP_SCHEMA = definitions.ddl(definitions.TRIP_COLUMNS)
ROUTE_SCHEMA = definitions.ddl(definitions.ROUTE_COLUMNS)
FEE_SCHEMA = definitions.ddl(definitions.FEE_COLUMNS)
INTERVAL_SCHEMA = definitions.ddl(definitions.INTERVAL_COLUMNS)
RECORD_SCHEMA = definitions.ddl(definitions.RECORD_COLUMNS)
PARAM_SCHEMA = definitions.ddl(definitions.PARAM_COLUMNS)


def local_session(cores: int = 2) -> SparkSession:
    """A Spark session in local mode on this machine's `cores` (tests, one host):
    no web UI, few shuffle partitions, bound to the loopback address."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("etcnet-clearing")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )


def unpriced(spark: SparkSession) -> DataFrame:
    """The route rows of `trip_routes` the tariff (`interval_fees`) has no fee for."""
    return spark.sql(definitions.UNPRICED)


def trip_intervals(spark: SparkSession) -> DataFrame:
    """The priced trips' route rows with owner and fee (`SPLIT`'s input)."""
    return spark.sql(definitions.TRIP_INTERVALS)


def split(spark: SparkSession) -> DataFrame:
    """The splitting of the `trips` view over `trip_intervals` (both registered)."""
    return spark.sql(definitions.SPLIT)


def unsplit(spark: SparkSession) -> DataFrame:
    """The trips, not held, whose `splits` do not add up to their payable amount."""
    return spark.sql(definitions.UNSPLIT)


def owner_totals(spark: SparkSession) -> DataFrame:
    """Per road owner: trips, fees and the amount due, from `splits`."""
    return spark.sql(definitions.OWNER_TOTALS)


def run_day(spark: SparkSession) -> None:
    """The clearing day (`definitions.DAY`) over the temporary views `records`,
    `trip_routes`, `interval_fees` and `params`: each step a cached temporary
    view of its name, read by the steps after it and by the caller."""
    for name, statement in definitions.DAY:
        spark.sql(statement).cache().createOrReplaceTempView(name)


def main(argv: Sequence[str] | None = None) -> int:
    """The clearing day as a Spark job over Parquet files — the inputs the center's
    extract writes (`records`, `trip_routes`, `interval_fees`), every result of
    `definitions.RESULTS` written as `<out>/<name>.parquet`:

        spark-submit --master spark://host:7077 etcnet/clearing/cluster.py \\
            --records hdfs:///clearing/2026-12-02/records.parquet \\
            --routes hdfs:///clearing/2026-12-02/trip_routes.parquet \\
            --fees hdfs:///clearing/2026-12-02/interval_fees.parquet \\
            --out hdfs:///clearing/2026-12-02/results

    or `python -m etcnet.clearing.cluster … --local 2` on one machine."""
    parser = argparse.ArgumentParser(
        prog="etcnet.clearing.cluster", description="The clearing day on Spark."
    )
    parser.add_argument("--records", required=True, help="Parquet of the day's records")
    parser.add_argument("--routes", required=True, help="Parquet of trip_routes")
    parser.add_argument("--fees", required=True, help="Parquet of interval_fees")
    parser.add_argument("--out", required=True, help="folder the results' Parquet go to")
    parser.add_argument(
        "--clock-limit-ms",
        type=int,
        default=300_000,
        help="a lane clock off by more than this is held (code 16); default 300000",
    )
    parser.add_argument(
        "--local",
        type=int,
        metavar="CORES",
        help="run in local mode on this many cores (default: the master spark-submit gives)",
    )
    args = parser.parse_args(argv)
    from pyspark.sql import SparkSession

    # A session already running in this process (a caller's, a test's) is used and
    # left running; one made here is stopped at the end.
    ours = SparkSession.getActiveSession() is None
    if args.local:
        spark = local_session(args.local)
    else:
        spark = SparkSession.builder.appName("etcnet-clearing").getOrCreate()
    try:
        for name, schema, path in (
            ("records", RECORD_SCHEMA, args.records),
            ("trip_routes", ROUTE_SCHEMA, args.routes),
            ("interval_fees", FEE_SCHEMA, args.fees),
        ):
            spark.read.schema(schema).parquet(path).createOrReplaceTempView(name)
        spark.createDataFrame([(args.clock_limit_ms,)], PARAM_SCHEMA).createOrReplaceTempView(
            "params"
        )
        run_day(spark)
        for name in definitions.RESULTS:
            spark.table(name).write.mode("overwrite").parquet(f"{args.out}/{name}.parquet")
    finally:
        if ours:
            spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
