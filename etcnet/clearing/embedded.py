"""The embedded engine: DuckDB runs the clearing definitions in this process.

Inputs are handed over as whole relations (tables or views on the connection, made
from CSV or Parquet files) under the names the definitions use, with the columns
`definitions` gives (`TRIP_COLUMNS` and the others, re-exported here); the result
comes back as one relation. Nothing here loops over records.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from etcnet.clearing import definitions
from etcnet.clearing.definitions import FEE_COLUMNS, INTERVAL_COLUMNS, ROUTE_COLUMNS, TRIP_COLUMNS

#: How the day's CSV files write SQL NULL (PostgreSQL's COPY `NULL '\\N'`): an
#: empty field is an empty text.
NULL = "\\N"

__all__ = [
    "FEE_COLUMNS",
    "INTERVAL_COLUMNS",
    "NULL",
    "ROUTE_COLUMNS",
    "TRIP_COLUMNS",
    "connect",
    "load_csv",
    "load_extracted",
    "owner_totals",
    "run_day",
    "split",
    "trip_intervals",
    "unpriced",
    "unsplit",
]


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for one clearing run."""
    return duckdb.connect(":memory:")


def load_csv(
    con: duckdb.DuckDBPyConnection, name: str, columns: definitions.Columns, path: Path
) -> None:
    """Table `name` on `con` with `columns` (name, SQL type), read whole from the CSV
    file at `path` (no header; `NULL` is SQL NULL, an empty field an empty text)."""
    types = ", ".join(f"'{column}': '{kind}'" for column, kind in columns)
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT *"
        " FROM read_csv(?, header = false, auto_detect = false, nullstr = ?,"
        f" delim = ',', quote = '\"', escape = '\"', columns = {{{types}}})",
        [str(path), NULL],
    )


def unpriced(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The route rows of `trip_routes` the tariff (`interval_fees`) has no fee for."""
    return con.sql(definitions.UNPRICED)


def trip_intervals(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The priced trips' route rows with owner and fee (`SPLIT`'s input)."""
    return con.sql(definitions.TRIP_INTERVALS)


def split(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The splitting of `trips` over `trip_intervals` (both already on `con`)."""
    return con.sql(definitions.SPLIT)


def unsplit(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The trips, not held, whose `splits` do not add up to their payable amount."""
    return con.sql(definitions.UNSPLIT)


def owner_totals(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Per road owner: trips, fees and the amount due, from `splits`."""
    return con.sql(definitions.OWNER_TOTALS)


def run_day(con: duckdb.DuckDBPyConnection) -> None:
    """The clearing day (`definitions.DAY`) over the inputs on `con` (`records`,
    `trip_routes`, `interval_fees`, `params`): each step made a table of its
    name, read by the steps after it and by the caller (`definitions.RESULTS`)."""
    for name, statement in definitions.DAY:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS {statement}")


def load_extracted(con: duckdb.DuckDBPyConnection, folder: Path) -> int:
    """The center's extract (`etcnet.clearing.extract`) in `folder` as the day's
    inputs on `con`: `records` (each with its route as a JSON array of interval
    ids, `records.csv`), `trip_routes` exploded from those routes, and
    `interval_fees`. Returns the number of route rows."""
    load_csv(
        con, "extracted", (*definitions.RECORD_COLUMNS, ("route", "STRING")),
        folder / "records.csv",
    )  # fmt: skip
    con.execute("CREATE OR REPLACE TABLE records AS SELECT * EXCLUDE (route) FROM extracted")
    con.execute(
        "CREATE OR REPLACE TABLE trip_routes AS"
        " SELECT trip_id, CAST(generate_subscripts(ids, 1) - 1 AS INT) AS position,"
        " unnest(ids) AS interval_id"
        " FROM (SELECT trip_id, CAST(json(route) AS VARCHAR[]) AS ids FROM extracted)"
    )
    con.execute("DROP TABLE extracted")
    load_csv(con, "interval_fees", definitions.FEE_COLUMNS, folder / "interval_fees.csv")
    (count,) = con.execute("SELECT count(*) FROM trip_routes").fetchall()[0]
    return int(count)
