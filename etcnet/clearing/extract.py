"""Bulk out: a window of the transaction store and every tariff version, as the
CSV files the clearing engines read (`trips`, `trip_routes`, `interval_fees`).

On PostgreSQL each file is one `COPY (SELECT …) TO STDOUT` streamed to disk —
the routes exploded from each transaction's `intervals` by
`jsonb_array_elements_text … WITH ORDINALITY` in the same statement, so no row
passes through Python. On SQLite (the demo, the tests) the same selection with
`json_each`, written by the csv module in chunks.

Which transactions: exits stored as accepted whose exit time falls in
[`start`, `end`) — the store's partitions prune the scan to those days.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection

__all__ = ["DayFiles", "write_day"]

_CHUNK = 10_000

_TRIPS = """
SELECT t.id, t.payable_fen, t.tariff_version, t.vehicle_class
FROM tolling_tolltransaction t
WHERE t.exit_time >= %(start)s AND t.exit_time < %(end)s
  AND t.direction = 'exit' AND t.status = 'accepted'
ORDER BY t.id
"""

_ROUTES = {
    "postgresql": """
SELECT t.id, r.n - 1, r.interval_id
FROM tolling_tolltransaction t
CROSS JOIN LATERAL jsonb_array_elements_text(t.intervals) WITH ORDINALITY AS r(interval_id, n)
WHERE t.exit_time >= %(start)s AND t.exit_time < %(end)s
  AND t.direction = 'exit' AND t.status = 'accepted'
ORDER BY t.id, r.n
""",
    "sqlite": """
SELECT t.id, CAST(r.key AS INTEGER), r.value
FROM tolling_tolltransaction t, json_each(t.intervals) r
WHERE t.exit_time >= %(start)s AND t.exit_time < %(end)s
  AND t.direction = 'exit' AND t.status = 'accepted'
ORDER BY t.id, CAST(r.key AS INTEGER)
""",
}

_FEES = """
SELECT v.number, i.interval_id, o.owner_id, f.vehicle_class, f.fee_fen
FROM network_intervalfee f
JOIN network_interval i ON i.id = f.interval_id
JOIN network_tariffversion v ON v.id = i.version_id
JOIN network_owner o ON o.id = i.owner_id
ORDER BY v.number, i.interval_id, f.vehicle_class
"""


@dataclass(frozen=True)
class DayFiles:
    """The files written, and how many rows each holds."""

    trips: Path
    trip_routes: Path
    interval_fees: Path
    rows: dict[str, int]


def write_day(folder: Path, *, start: dt.datetime, end: dt.datetime) -> DayFiles:
    """Writes `trips.csv`, `trip_routes.csv` and `interval_fees.csv` (no header) in
    `folder` for the accepted exits of [`start`, `end`)."""
    folder.mkdir(parents=True, exist_ok=True)
    adapt = connection.ops.adapt_datetimefield_value  # as the store keeps them
    window = {"start": adapt(start), "end": adapt(end)}
    rows: dict[str, int] = {}
    statements = {
        "trips": _TRIPS,
        "trip_routes": _ROUTES["postgresql" if connection.vendor == "postgresql" else "sqlite"],
        "interval_fees": _FEES,
    }
    paths = {}
    for name, statement in statements.items():
        path = folder / f"{name}.csv"
        rows[name] = _write(path, statement, window)
        paths[name] = path
    return DayFiles(paths["trips"], paths["trip_routes"], paths["interval_fees"], rows)


def _write(path: Path, statement: str, params: Mapping[str, Any]) -> int:
    if connection.vendor == "postgresql":
        with connection.wrap_database_errors, connection.cursor() as wrapper:
            cursor = wrapper.cursor  # psycopg's own cursor, for COPY
            copy_sql = f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)"
            with path.open("wb") as out, cursor.copy(copy_sql, params) as copy:
                for block in copy:
                    out.write(block)
            return int(cursor.rowcount)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as out, connection.cursor() as cursor:
        cursor.execute(statement, params)
        writer = csv.writer(out)
        while chunk := cursor.fetchmany(_CHUNK):
            writer.writerows(chunk)
            written += len(chunk)
    return written
