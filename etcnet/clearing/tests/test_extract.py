"""Bulk out of the real database (SQLite or PostgreSQL): the records a run takes —
the day's, late ones, carried ones — their routes and every tariff version,
then priced and split in DuckDB."""

from __future__ import annotations

import datetime as dt

import pytest

from etcnet.clearing import definitions, embedded, extract
from etcnet.clearing.models import ClearingDay, ClearingEntry
from etcnet.clearing.tests.store import VERSION, exit_, local, route, tariff

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 2)
START = local(DAY, 0)
END = START + dt.timedelta(days=1)


def selection(since: dt.datetime | None = None) -> extract.Selection:
    return extract.Selection(
        start=START, end=END, late_from=START - dt.timedelta(days=90), since=since,
        networks=["6101"],
    )  # fmt: skip


def test_the_runs_records_leave_the_database_and_split_among_the_owners(
    lane_terminal,
    tmp_path,
):
    terminal = lane_terminal
    tariff(VERSION, {"G1": ("A", 1000), "G2": ("B", 2000), "G3": ("C", 500)},
           effective_at=START - dt.timedelta(days=30))  # fmt: skip
    inside = exit_(terminal, 1, START + dt.timedelta(hours=10), fee_fen=3500, payable_fen=3325)
    last = exit_(terminal, 2, END - dt.timedelta(seconds=1), payable_fen=3325,
                 intervals=route("G3", "G1"))  # fmt: skip
    exit_(terminal, 3, END, intervals=route("G1"))  # the next day's
    old = exit_(terminal, 4, START - dt.timedelta(hours=1))  # the day before's, taken
    late = exit_(terminal, 5, START - dt.timedelta(hours=2), received_at=END)  # not taken yet
    rejected = exit_(terminal, 6, START + dt.timedelta(hours=11), status="rejected",
                     dispute_code=None, card_no="", card_network="", payment_type=1)  # fmt: skip
    exit_(terminal, 7, START + dt.timedelta(hours=12), direction="entry", intervals=[])
    before = ClearingDay.objects.create(date=DAY - dt.timedelta(days=1), status="closed")
    ClearingEntry.objects.create(
        transaction_id=old.pk, exit_time=old.exit_time, day=before, flow=1, state="cleared",
        payable_fen=old.payable_fen,
    )  # fmt: skip

    files = extract.write_run(tmp_path, selection(since=START))

    assert files.rows == {"records": 4, "interval_fees": 3}
    con = embedded.connect()
    # The routes travel inside the records: 3 + 2 + 3 + 3 interval rows.
    assert embedded.load_extracted(con, tmp_path) == 11
    records = {
        row[0]: row
        for row in con.execute(
            "SELECT trip_id, carried, flow, station_id, terminal_id, card_no, dispute_code,"
            " exit_date, expiry_date, bank FROM records"
        ).fetchall()
    }
    assert records == {
        inside.pk: (inside.pk, 0, 1, "S1201005", "HH-0001", "61010000000000000001", None,
                    "2026-12-02", "", ""),
        last.pk: (last.pk, 0, 1, "S1201005", "HH-0001", "61010000000000000002", None,
                  "2026-12-02", "", ""),
        late.pk: (late.pk, 1, 1, "S1201005", "HH-0001", "61010000000000000005", None,
                  "2026-12-01", "", ""),
        # Rejected without a code: held as 100 (other) until an operator says why.
        rejected.pk: (rejected.pk, 0, 1, "S1201005", "HH-0001", "", 100, "2026-12-02", "", ""),
    }  # fmt: skip
    con.execute("CREATE TABLE trips AS SELECT trip_id, payable_fen, tariff_version,"
                " vehicle_class FROM records")  # fmt: skip
    assert embedded.unpriced(con).fetchall() == []
    con.execute("CREATE VIEW trip_intervals AS " + definitions.TRIP_INTERVALS)
    # 3325 of 3500 by fee (1000 / 2000 / 500): 950, 1900, 475; then 3325 over G3, G1
    # (500 / 1000): 1108.33 and 2216.67 -> 1108 + 2217.
    splits = embedded.split(con).filter(f"trip_id IN ({inside.pk}, {last.pk})")
    assert splits.order("trip_id, position").fetchall() == [
        (inside.pk, 0, "G1", "A", 1000, 950),
        (inside.pk, 1, "G2", "B", 2000, 1900),
        (inside.pk, 2, "G3", "C", 500, 475),
        (last.pk, 0, "G3", "C", 500, 1108),
        (last.pk, 1, "G1", "A", 1000, 2217),
    ]


def test_a_late_record_received_before_the_last_cutoff_is_not_taken_twice(
    lane_terminal,
    tmp_path,
):
    exit_(lane_terminal, 1, START - dt.timedelta(hours=2), received_at=START)

    files = extract.write_run(tmp_path, selection(since=START + dt.timedelta(minutes=1)))

    assert files.rows["records"] == 0
