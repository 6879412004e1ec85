"""Bulk out: the records a clearing run takes, with their routes, and every
tariff version, as two CSV files (`records`, `interval_fees`; no header) that
`embedded.load_extracted` reads into the engines' inputs.

A record's columns are `definitions.RECORD_COLUMNS` and last its `route`: the
interval ids of its `intervals` in driving order as a JSON array, which the
embedded engine explodes into `trip_routes` — a day's 20 million route rows
never cross the database connection one by one. On PostgreSQL each file is one
`COPY (SELECT …) TO STDOUT` streamed to disk, no row through Python; on SQLite
(the demo, the tests) the same selection with `json_each`, written by the csv
module in chunks. NULL is written `\\N`, so an empty text is never taken for a
missing value.

Which records (`Selection`), each exit the store holds, accepted or not:
- the day's own (`carried` 0): exit time in [`start`, `end`) — the store's
  partitions prune the scan to that day;
- late ones (1): exit time in [`late_from`, `start`), received since `since`
  (the cutoff of the last closed day, less a margin; None: any time), and not
  taken by any run before;
- carried ones (2): entries held or sent before that are now to be cleared
  (a resolved dispute, an issuer's acceptance).

An exit with no `intervals` at an open-road station (method `open`) is routed
over the intervals of its tariff version that end at the station: the fixed
fee goes to the owners of the road it was paid for (reference §6.3).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection

from etcnet.clearing import embedded

__all__ = ["RunFiles", "Selection", "write_run"]

_CHUNK = 10_000
#: How the files write SQL NULL, so that an empty text stays an empty text.
NULL = embedded.NULL
STORE = "tolling_tolltransaction"


@dataclass(frozen=True)
class Selection:
    start: dt.datetime
    end: dt.datetime
    late_from: dt.datetime
    since: dt.datetime | None
    networks: Sequence[str]  # our card networks
    carried_states: Sequence[str] = ("accepted", "resolved")


@dataclass(frozen=True)
class RunFiles:
    """The files written, and how many rows each holds."""

    records: Path
    interval_fees: Path
    rows: dict[str, int]


def _parts() -> list[tuple[int, str, str]]:
    """(carried, FROM, WHERE) of each part of the selection; `t` is the store."""
    not_taken = "NOT EXISTS (SELECT 1 FROM clearing_clearingentry e WHERE e.transaction_id = t.id)"
    exits = "t.direction = 'exit'"
    return [
        (0, f"FROM {STORE} t", f"t.exit_time >= %(start)s AND t.exit_time < %(end)s AND {exits}"),
        (
            1,
            f"FROM {STORE} t",
            f"t.exit_time >= %(late_from)s AND t.exit_time < %(start)s AND {exits}"
            f" AND t.received_at >= %(since)s AND {not_taken}",
        ),
        (
            2,
            f"FROM clearing_clearingentry e JOIN {STORE} t"
            " ON t.id = e.transaction_id AND t.exit_time = e.exit_time",
            "e.state IN (%(carried_0)s, %(carried_1)s)",
        ),
    ]


_JOINS = (
    "JOIN network_node n ON n.id = t.station_id"
    " JOIN tolling_terminal m ON m.id = t.terminal_id"
    " LEFT JOIN cards_cardunit c ON c.card_no = t.card_no AND t.card_no <> ''"
    " LEFT JOIN cards_account a ON a.id = c.account_id"
)
# A late record whose card debit (card number and counter) a record taken before
# already carried: a duplicate across days (code 2).
_SEEN = (
    f"CASE WHEN t.card_trans_no IS NOT NULL AND EXISTS (SELECT 1 FROM {STORE} o"
    " JOIN clearing_clearingentry pe ON pe.transaction_id = o.id"
    " WHERE o.card_no = t.card_no AND o.card_trans_no = t.card_trans_no AND o.id <> t.id"
    " AND pe.state <> 'held') THEN 1 ELSE 0 END"
)


def _route(pg: bool) -> str:
    """The record's route as a JSON array of interval ids. An element that is not
    an object with an `interval_id` comes out as itself: the tariff knows no such
    interval, and the trip is held (code 6)."""
    open_ids = (
        "SELECT i.interval_id FROM network_interval i"
        " JOIN network_tariffversion v ON v.id = i.version_id"
        " WHERE v.number = t.tariff_version AND i.to_node_id = t.station_id"
    )
    if pg:
        return f"""CASE WHEN t.method = 'open' AND jsonb_array_length(t.intervals) = 0
        THEN COALESCE((SELECT jsonb_agg(o.interval_id ORDER BY o.interval_id)
                       FROM ({open_ids}) o), '[]')
    WHEN jsonb_array_length(p.ids) = jsonb_array_length(t.intervals) THEN p.ids
    ELSE (SELECT jsonb_agg(COALESCE(r.v -> 'interval_id', r.v) ORDER BY r.n)
          FROM jsonb_array_elements(t.intervals) WITH ORDINALITY r(v, n)) END"""
    return f"""CASE WHEN t.method = 'open' AND json_array_length(t.intervals) = 0
        THEN (SELECT json_group_array(o.interval_id)
              FROM ({open_ids} ORDER BY i.interval_id) o)
    ELSE (SELECT json_group_array(CASE WHEN r.type = 'object'
                                       THEN json_extract(r.value, '$.interval_id')
                                       ELSE r.value END)
          FROM (SELECT * FROM json_each(t.intervals) ORDER BY key) r) END"""


def _records(pg: bool, networks: int) -> str:
    own = ", ".join(f"%(network_{n})s" for n in range(networks)) or "''"
    if pg:
        exit_date = "to_char(t.exit_time AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"
        expiry = "COALESCE(to_char(c.expiry_date, 'YYYY-MM-DD'), '')"
        # The ids of a well-formed route in one call; the CASE checks it was.
        ids = (
            " CROSS JOIN LATERAL (SELECT jsonb_path_query_array(t.intervals,"
            " '$[*].interval_id') AS ids) p"
        )
    else:
        exit_date = "date(t.exit_time, '+8 hours')"
        expiry = "COALESCE(c.expiry_date, '')"
        ids = ""
    intake_code = "COALESCE(t.dispute_code, CASE WHEN t.status = 'rejected' THEN 100 END)"
    selects = [
        f"""SELECT t.id, {carried},
    CASE WHEN t.payment_type IN (22, 23) AND t.card_network NOT IN ({own}) THEN 2 ELSE 1 END,
    n.node_id, m.terminal_id, t.card_network, t.card_no, t.card_trans_no,
    t.payment_type, t.vehicle_class, t.tariff_version,
    t.fee_fen, t.discount_fen, t.payable_fen, {"NULL" if carried == 2 else intake_code},
    t.clock_offset_ms, {exit_date}, {"''" if carried == 2 else expiry},
    {_SEEN if carried == 1 else "0"}, COALESCE(a.bank_name, ''), t.exit_time,
    {_route(pg)}
{source}{ids} {_JOINS} WHERE {where}"""
        for carried, source, where in _parts()
    ]
    return "\nUNION ALL\n".join(selects)


_FEES = """
SELECT v.number, i.interval_id, o.owner_id, f.vehicle_class, f.fee_fen
FROM network_intervalfee f
JOIN network_interval i ON i.id = f.interval_id
JOIN network_tariffversion v ON v.id = i.version_id
JOIN network_owner o ON o.id = i.owner_id
ORDER BY v.number, i.interval_id, f.vehicle_class
"""


def write_run(folder: Path, selection: Selection) -> RunFiles:
    """Writes `records.csv` (with each record's route) and `interval_fees.csv` in
    `folder` for the records `selection` names."""
    folder.mkdir(parents=True, exist_ok=True)
    pg = connection.vendor == "postgresql"
    adapt = connection.ops.adapt_datetimefield_value  # as the store keeps them
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    params: dict[str, Any] = {
        "start": adapt(selection.start),
        "end": adapt(selection.end),
        "late_from": adapt(selection.late_from),
        "since": adapt(selection.since or epoch),
        **{f"network_{n}": network for n, network in enumerate(selection.networks)},
        **{f"carried_{n}": state for n, state in enumerate(selection.carried_states[:2])},
    }
    statements = {
        "records": _records(pg, len(selection.networks)),
        "interval_fees": _FEES,
    }
    rows: dict[str, int] = {}
    paths = {}
    for name, statement in statements.items():
        path = folder / f"{name}.csv"
        rows[name] = _write(path, statement, params)
        paths[name] = path
    return RunFiles(paths["records"], paths["interval_fees"], rows)


def _write(path: Path, statement: str, params: Mapping[str, Any]) -> int:
    if connection.vendor == "postgresql":
        with connection.wrap_database_errors, connection.cursor() as wrapper:
            cursor = wrapper.cursor  # psycopg's own cursor, for COPY
            copy_sql = f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, NULL '{NULL}')"
            with path.open("wb") as out, cursor.copy(copy_sql, params) as copy:
                for block in copy:
                    out.write(block)
            return int(cursor.rowcount)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as out, connection.cursor() as cursor:
        cursor.execute(statement, params)
        writer = csv.writer(out)
        while chunk := cursor.fetchmany(_CHUNK):
            writer.writerows([NULL if v is None else v for v in row] for row in chunk)
            written += len(chunk)
    return written
