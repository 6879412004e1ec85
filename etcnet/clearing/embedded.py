"""The embedded engine: DuckDB runs the clearing definitions in this process.

Inputs are handed over as whole relations (tables or views on the connection, made
from Parquet files or Arrow tables) under the names the definitions use, with the
columns `TRIP_COLUMNS` and `INTERVAL_COLUMNS` name; the result comes back as one
relation. Nothing here loops over records.
"""

from __future__ import annotations

import duckdb

from etcnet.clearing import definitions

__all__ = [
    "FEE_COLUMNS",
    "INTERVAL_COLUMNS",
    "ROUTE_COLUMNS",
    "TRIP_COLUMNS",
    "connect",
    "split",
    "trip_intervals",
    "unpriced",
]

TRIP_COLUMNS = (
    ("trip_id", "BIGINT"),
    ("payable_fen", "BIGINT"),
    ("tariff_version", "VARCHAR"),
    ("vehicle_class", "INTEGER"),
)
ROUTE_COLUMNS = (("trip_id", "BIGINT"), ("position", "INTEGER"), ("interval_id", "VARCHAR"))
FEE_COLUMNS = (
    ("tariff_version", "VARCHAR"),
    ("interval_id", "VARCHAR"),
    ("owner_id", "VARCHAR"),
    ("vehicle_class", "INTEGER"),
    ("fee_fen", "BIGINT"),
)
INTERVAL_COLUMNS = (
    ("trip_id", "BIGINT"),
    ("position", "INTEGER"),
    ("interval_id", "VARCHAR"),
    ("owner_id", "VARCHAR"),
    ("fee_fen", "BIGINT"),
)


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for one clearing run."""
    return duckdb.connect(":memory:")


def unpriced(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The route rows of `trip_routes` the tariff (`interval_fees`) has no fee for."""
    return con.sql(definitions.UNPRICED)


def trip_intervals(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The priced trips' route rows with owner and fee (`SPLIT`'s input)."""
    return con.sql(definitions.TRIP_INTERVALS)


def split(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The splitting of `trips` over `trip_intervals` (both already on `con`)."""
    return con.sql(definitions.SPLIT)
