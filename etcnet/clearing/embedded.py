"""The embedded engine: DuckDB runs the clearing definitions in this process.

Inputs are handed over as whole relations (tables or views on the connection, made
from Parquet files or Arrow tables) under the names the definitions use, with the
columns `TRIP_COLUMNS` and `INTERVAL_COLUMNS` name; the result comes back as one
relation. Nothing here loops over records.
"""

from __future__ import annotations

import duckdb

from etcnet.clearing import definitions

__all__ = ["INTERVAL_COLUMNS", "TRIP_COLUMNS", "connect", "split"]

TRIP_COLUMNS = (("trip_id", "BIGINT"), ("payable_fen", "BIGINT"))
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


def split(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The splitting of `trips` over `trip_intervals` (both already on `con`)."""
    return con.sql(definitions.SPLIT)
