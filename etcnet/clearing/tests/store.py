"""Records in the real store for the clearing tests: a tariff of road owners, and
exits written as the intake stores them (the intake's own checks are tested in
etcnet.tolling; clearing reads what it stored)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from etcnet.network.models import Interval, IntervalFee, Node, Owner, TariffVersion
from etcnet.tolling.models import Terminal, TollTransaction

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
VERSION = "1220261201001"


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)


def tariff(
    number: str, fees: dict[str, tuple[str, int]], *, effective_at: dt.datetime, to: str = ""
) -> None:
    """A tariff version whose intervals `G…` each belong to an owner, with a class-1
    fee; `to`: the station the last interval ends at (an open-road station's road)."""
    version = TariffVersion.objects.create(
        number=number, effective_at=effective_at, imported_at=timezone.now()
    )
    names = list(fees)
    for interval_id, (owner_id, fee) in fees.items():
        owner, _ = Owner.objects.get_or_create(owner_id=owner_id, defaults={"name": owner_id})
        a, _ = Node.objects.get_or_create(
            node_id=f"J{interval_id}a",
            defaults={"name": "a", "kind": "junction", "network": "1201"},
        )
        if to and interval_id == names[-1]:
            b = Node.objects.get(node_id=to)
        else:
            b, _ = Node.objects.get_or_create(
                node_id=f"J{interval_id}b",
                defaults={"name": "b", "kind": "junction", "network": "1201"},
            )
        interval = Interval.objects.create(
            version=version, interval_id=interval_id, from_node=a, to_node=b, length_m=1000,
            owner=owner,
        )  # fmt: skip
        IntervalFee.objects.create(interval=interval, vehicle_class=1, fee_fen=fee)


def route(*interval_ids: str) -> list[dict[str, Any]]:
    """`intervals` as a lane records them."""
    return [{"interval_id": i, "fee_fen": 0} for i in interval_ids]


def exit_(terminal: Terminal, seq: int, at: dt.datetime, **fields: Any) -> TollTransaction:
    """An accepted stored-value exit of one of our cards over G1-G3 (75.25 less 5 %)."""
    values: dict[str, Any] = {
        "terminal": terminal, "seq": seq, "status": "accepted", "station": terminal.station,
        "lane_number": 3, "exit_time": at, "received_at": at, "vehicle_class": 1,
        "method": "path", "fee_fen": 7525, "discount_fen": 376, "payable_fen": 7149,
        "payment_type": 22, "amount_fen": 7149, "card_no": f"6101{seq:016d}",
        "card_network": "6101", "card_trans_no": seq, "tac_verified": True,
        "tariff_version": VERSION, "intervals": route("G1", "G2", "G3"),
    }  # fmt: skip
    return TollTransaction.objects.create(**(values | fields))
