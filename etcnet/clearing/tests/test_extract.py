"""Bulk out of the real database (SQLite or PostgreSQL): a window of accepted
exits, their routes and every tariff version, then priced and split in DuckDB."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from etcnet.clearing import definitions, embedded, extract
from etcnet.network.models import Interval, IntervalFee, Node, Owner, TariffVersion
from etcnet.tolling.models import Terminal, TollTransaction
from etcnet.tolling.tests.test_partitions import lane_terminal  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 12, 2)
START = dt.datetime.combine(DAY, dt.time(0), tzinfo=SHANGHAI)
END = START + dt.timedelta(days=1)


def tariff(number: str, fees: dict[str, tuple[str, int]]) -> None:
    """A tariff version whose interval `G…` belongs to an owner with a class-1 fee."""
    version = TariffVersion.objects.create(
        number=number, effective_at=START - dt.timedelta(days=30), imported_at=timezone.now()
    )
    for interval_id, (owner_id, fee) in fees.items():
        owner, _ = Owner.objects.get_or_create(owner_id=owner_id, defaults={"name": owner_id})
        a, _ = Node.objects.get_or_create(
            node_id=f"J{interval_id}a",
            defaults={"name": "a", "kind": "junction", "network": "1201"},
        )
        b, _ = Node.objects.get_or_create(
            node_id=f"J{interval_id}b",
            defaults={"name": "b", "kind": "junction", "network": "1201"},
        )
        interval = Interval.objects.create(
            version=version, interval_id=interval_id, from_node=a, to_node=b, length_m=1000,
            owner=owner,
        )  # fmt: skip
        IntervalFee.objects.create(interval=interval, vehicle_class=1, fee_fen=fee)


def exit_(terminal: Terminal, seq: int, at: dt.datetime, **fields: Any) -> TollTransaction:
    values: dict[str, Any] = {
        "terminal": terminal, "seq": seq, "status": "accepted", "station": terminal.station,
        "lane_number": 3, "exit_time": at, "received_at": at, "vehicle_class": 1,
        "method": "path", "fee_fen": 3500, "payable_fen": 3325, "payment_type": 22,
        "tariff_version": "1220261201001", "intervals": ["G1", "G2", "G3"],
    }  # fmt: skip
    return TollTransaction.objects.create(**(values | fields))


def test_a_window_of_exits_leaves_the_database_and_splits_among_the_owners(
    lane_terminal,  # noqa: F811  (the fixture imported above)
    tmp_path,
):
    terminal = lane_terminal
    tariff("1220261201001", {"G1": ("A", 1000), "G2": ("B", 2000), "G3": ("C", 500)})
    inside = exit_(terminal, 1, START + dt.timedelta(hours=10))
    last = exit_(terminal, 2, END - dt.timedelta(seconds=1), intervals=["G3", "G1"])
    exit_(terminal, 3, END, intervals=["G1"])  # the next day's
    exit_(terminal, 4, START - dt.timedelta(seconds=1))  # the day before's
    exit_(terminal, 5, START + dt.timedelta(hours=11), status="rejected")
    exit_(terminal, 6, START + dt.timedelta(hours=12), direction="entry", intervals=[])

    files = extract.write_day(tmp_path, start=START, end=END)

    assert files.rows == {"trips": 2, "trip_routes": 5, "interval_fees": 3}
    con = embedded.connect()
    embedded.load_csv(con, "trips", embedded.TRIP_COLUMNS, files.trips)
    embedded.load_csv(con, "trip_routes", embedded.ROUTE_COLUMNS, files.trip_routes)
    embedded.load_csv(con, "interval_fees", embedded.FEE_COLUMNS, files.interval_fees)
    assert embedded.unpriced(con).fetchall() == []
    con.execute("CREATE VIEW trip_intervals AS " + definitions.TRIP_INTERVALS)
    # 3325 of 3500 by fee (1000 / 2000 / 500): 950, 1900, 475; then 3325 over G3, G1
    # (500 / 1000): 1108.33 and 2216.67 -> 1108 + 2217.
    assert embedded.split(con).order("trip_id, position").fetchall() == [
        (inside.pk, 0, "G1", "A", 1000, 950),
        (inside.pk, 1, "G2", "B", 2000, 1900),
        (inside.pk, 2, "G3", "C", 500, 475),
        (last.pk, 0, "G3", "C", 500, 1108),
        (last.pk, 1, "G1", "A", 1000, 2217),
    ]
