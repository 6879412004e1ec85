"""Properties of the clearing day's definitions, for any generated day (DuckDB):
the cleared trips' splits add up to their payable amounts, per trip and in total;
a held or sent record is never split; the positions net to zero across the
counterparties; the day's journal entry balances; and a record is taken once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from etcnet.clearing import definitions, embedded
from etcnet.clearing.tests.days import CLOCK_LIMIT_MS, generated_records, load


def _day(tmp_path_factory, trips: int, seed: int):
    folder = tmp_path_factory.mktemp("day")
    records, routes, fees = generated_records(trips, seed)
    con = embedded.connect()
    load(con, folder, "records", definitions.RECORD_COLUMNS, records)
    load(con, folder, "trip_routes", definitions.ROUTE_COLUMNS, routes)
    load(con, folder, "interval_fees", definitions.FEE_COLUMNS, fees)
    con.execute(f"CREATE TABLE params ({definitions.ddl(definitions.PARAM_COLUMNS)})")
    con.execute("INSERT INTO params VALUES (?)", [CLOCK_LIMIT_MS])
    embedded.run_day(con)
    return con, records


def _one(con, sql: str):
    (row,) = con.execute(sql).fetchall()
    return row


@settings(max_examples=25)
@given(trips=st.integers(0, 400), seed=st.integers(0, 2**32))
def test_any_day_adds_up_and_nets_to_zero(tmp_path_factory, trips, seed):
    con, records = _day(tmp_path_factory, trips, seed)

    assert con.sql("SELECT * FROM missplit").fetchall() == []
    cleared, split = _one(
        con,
        "SELECT (SELECT COALESCE(SUM(payable_fen), 0) FROM checked WHERE state = 'cleared'),"
        " (SELECT COALESCE(SUM(amount_fen), 0) FROM splits)",
    )
    assert cleared == split
    assert _one(
        con,
        "SELECT COUNT(*) FROM splits s JOIN checked c ON c.trip_id = s.trip_id"
        " WHERE c.state <> 'cleared'",
    ) == (0,)
    # Each owner's position is its splits; the payers' add up to the same.
    assert _one(con, "SELECT COALESCE(SUM(net_fen), 0) FROM positions") == (0,)
    assert _one(con, "SELECT COALESCE(SUM(amount_fen), 0) FROM postings") == (0,)
    owners = dict(con.sql("SELECT owner_id, SUM(amount_fen) FROM splits GROUP BY 1").fetchall())
    assert owners == dict(
        con.sql(
            "SELECT counterparty_id, payable_fen FROM positions WHERE kind = 'owner'"
        ).fetchall()
    )
    # Every record taken once, with one verdict; the figures count them all.
    assert _one(con, "SELECT COUNT(*), COUNT(DISTINCT trip_id) FROM checked") == (
        len(records),
        len(records),
    )
    assert _one(con, "SELECT COALESCE(SUM(trips), 0) FROM figures") == (len(records),)
    shares = _one(con, "SELECT COALESCE(SUM(amount_fen), 0) FROM shares")
    assert shares == (split,)
