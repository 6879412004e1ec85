"""The clearing reports through the real run: two days of a small network built
in the store (etcnet.clearing.tests.store) and closed by `run.run_day`, then
every figure checked against numbers computed by hand below.

The network: owners 610001, 610002, 610003 on G1 (30.00), G2 (25.00) and G3
(20.25) for class 1; stations 小孙庄 (S1201005, terminal HH-0001) and 杨村
(S1201006, terminal HH-0003).

2026-11-10, the records (fee / discount / payable, in fen):
  #1 our stored-value card over G1-G3   7525 / 376 / 7149  cleared (2850, 2375, 1924)
  #2 card of 3201 over G2                2500 / 125 / 2375  sent to the national center
  #3 cash over G1, shift 1, c001         3000 /   0 / 3000  cleared (610001)
  #4 our card, class 2 (no fee) over G1  3000 / 150 / 2850  held, code 6
  #5 TAC not verified                    7525 / 376 / 7149  held, code 1
  #6 cash at 杨村 over G2, shift 2, c002 2500 /   0 / 2500  cleared (610002)
  #7 Alipay at 杨村 over G3, shift 2      2025 /   0 / 2025  cleared (610003)
2026-11-11: #8, an exit of the 10th at 20:00 over G3 that arrives after the
10th closed: 2025 / 101 / 1924, late, cleared (610003).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone, translation

from etcnet.cards import services as card_services
from etcnet.cards.tests.conftest import (  # noqa: F401  (fixtures)
    CARD_NOS,
    _vault,
    approved_application,
    second_car,
    stock,
)
from etcnet.cards.tests.services import active, issued
from etcnet.clearing import run
from etcnet.clearing.models import ClearingEntry
from etcnet.clearing.reports import drill, figures, tables
from etcnet.clearing.reports.tables import FilterError, Period
from etcnet.clearing.tests.store import SHANGHAI, VERSION, exit_, local, route, tariff
from etcnet.network.models import Node, Owner
from etcnet.tolling.models import Terminal
from etcnet.tolling.tests.test_partitions import lane_terminal  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 10)
NEXT = dt.date(2026, 11, 11)
MONTH = Period.month(2026, 11)
OWNERS = ("610001", "610002", "610003")


def build_days(terminal: Terminal) -> dict[str, Any]:
    """The two days above, stored and closed; returns the transactions by name."""
    tariff(
        VERSION,
        {"G1": (OWNERS[0], 3000), "G2": (OWNERS[1], 2500), "G3": (OWNERS[2], 2025)},
        effective_at=local(DAY, 0) - dt.timedelta(days=30),
    )
    for owner_id, name in zip(OWNERS, ("甲路公司", "乙路公司", "丙路公司"), strict=True):
        Owner.objects.filter(owner_id=owner_id).update(name=name)
    yangcun = Node.objects.create(
        node_id="S1201006", name="杨村", kind="station", hex="12010060", network="1201"
    )
    other = Terminal.objects.create(
        terminal_id="HH-0003", psam_terminal_no="120100000003", secret_digest="0" * 64,
        station=yangcun, created_at=timezone.now(),
    )  # fmt: skip
    t = terminal
    no_card = {"card_no": "", "card_network": "", "card_trans_no": None, "discount_fen": 0,
               "amount_fen": 0}  # fmt: skip
    made = {
        "own": exit_(t, 1, local(DAY, 9), plate="陕A12345"),
        "foreign": exit_(
            t, 2, local(DAY, 10), card_no="32010000000000000002", card_network="3201",
            fee_fen=2500, discount_fen=125, payable_fen=2375, amount_fen=2375,
            intervals=route("G2"),
        ),
        "cash": exit_(
            t, 3, local(DAY, 11), payment_type=1, fee_fen=3000, payable_fen=3000,
            intervals=route("G1"), shift="1", collector="c001", **no_card,
        ),
        "unpriced": exit_(
            t, 4, local(DAY, 12), vehicle_class=2, fee_fen=3000, discount_fen=150,
            payable_fen=2850, amount_fen=2850, intervals=route("G1"),
        ),
        "tac": exit_(t, 5, local(DAY, 13), status="rejected", dispute_code=1, tac_verified=False),
        "cash_yangcun": exit_(
            other, 1, local(DAY, 14), payment_type=1, fee_fen=2500, payable_fen=2500,
            intervals=route("G2"), shift="2", collector="c002", **no_card,
        ),
        "alipay": exit_(
            other, 2, local(DAY, 15), payment_type=10, fee_fen=2025, payable_fen=2025,
            intervals=route("G3"), shift="2", collector="c002", **no_card,
        ),
    }  # fmt: skip
    run.run_day(DAY)
    made["late"] = exit_(
        t, 6, local(DAY, 20), received_at=timezone.now(), fee_fen=2025, discount_fen=101,
        payable_fen=1924, amount_fen=1924, intervals=route("G3"),
    )  # fmt: skip
    run.run_day(NEXT)
    return made


@pytest.fixture(autouse=True)
def _english() -> Any:
    """The labels checked here in English (the pages' Chinese: test_pages)."""
    with translation.override("en"):
        yield


@pytest.fixture
def two_days(lane_terminal: Terminal) -> dict[str, Any]:  # noqa: F811  (the fixture imported above)
    return build_days(lane_terminal)


def values(table: tables.Table, *keys: str) -> dict[str, tuple[Any, ...]]:
    return {str(row.values[keys[0]]): tuple(row.values[k] for k in keys[1:]) for row in table.rows}


FIGURES = ("key", "trips", "fee", "discount", "payable", "cleared", "held_trips", "held",
           "sent_trips", "sent")  # fmt: skip


def test_a_days_figures_by_station_add_up_to_what_was_taken(two_days):
    table = figures.report(Period.day(DAY), "station")

    assert values(table, *FIGURES) == {
        "小孙庄 S1201005": (5, 23550, 1027, 22523, 10149, 2, 9999, 1, 2375),
        "杨村 S1201006": (2, 4525, 0, 4525, 4525, 0, 0, 0, 0),
        "Total": (7, 28075, 1027, 27048, 14674, 2, 9999, 1, 2375),
    }
    # What the day cleared is what its run split.
    assert ClearingEntry.objects.filter(day__date=DAY).count() == 7


def test_a_month_adds_its_days_and_counts_a_late_record_on_the_day_that_took_it(two_days):
    table = figures.report(MONTH, "station")

    assert values(table, *FIGURES)["小孙庄 S1201005"] == (
        6, 25575, 1128, 24447, 12073, 2, 9999, 1, 2375,
    )  # fmt: skip
    assert values(table, *FIGURES)["Total"][4] == 16598
    assert values(figures.report(Period.day(NEXT), "station"), *FIGURES) == {
        "小孙庄 S1201005": (1, 2025, 101, 1924, 1924, 0, 0, 0, 0),
        "Total": (1, 2025, 101, 1924, 1924, 0, 0, 0, 0),
    }


def test_figures_by_issuer_payment_type_and_class(two_days):
    day = Period.day(DAY)
    assert values(figures.report(day, "network"), *FIGURES) == {
        "Shaanxi 6101 (ours)": (3, 18050, 902, 17148, 7149, 2, 9999, 0, 0),
        "Jiangsu 3201": (1, 2500, 125, 2375, 0, 0, 0, 1, 2375),
        "Paid at the lane (no card)": (3, 7525, 0, 7525, 7525, 0, 0, 0, 0),
        "Total": (7, 28075, 1027, 27048, 14674, 2, 9999, 1, 2375),
    }
    by_payment = values(figures.report(day, "payment"), "key", "trips", "payable", "cleared")
    assert by_payment == {
        "Cash (1)": (2, 5500, 5500),
        "Alipay (10)": (1, 2025, 2025),
        "Stored-value card (22)": (4, 19523, 7149),
        "Total": (7, 27048, 14674),
    }
    by_class = values(figures.report(day, "class"), "key", "trips", "held_trips", "held")
    assert by_class == {
        "class 1 passenger vehicle": (6, 1, 7149),
        "class 2 passenger vehicle": (1, 1, 2850),
        "Total": (7, 2, 9999),
    }


def test_road_owners_get_their_splits(two_days):
    # 7149 over 3000 / 2500 / 2025: 2850, 2375, 1924 (the fen left to the largest
    # remainder); cash 3000 to 610001, cash 2500 to 610002, Alipay 2025 to 610003.
    columns = ("key", "trips", "fee", "discount", "amount")
    assert values(figures.report(Period.day(DAY), "owner"), *columns) == {
        "甲路公司 610001": (2, 6000, 150, 5850),
        "乙路公司 610002": (2, 5000, 125, 4875),
        "丙路公司 610003": (2, 4050, 101, 3949),
        "Total": (6, 15050, 376, 14674),
    }
    month = values(figures.report(MONTH, "owner"), *columns)
    assert month["丙路公司 610003"] == (3, 6075, 202, 5873)


def test_positions_net_to_zero_over_a_day_and_a_month(two_days):
    columns = ("name", "receivable", "payable", "net")
    assert values(figures.positions(Period.day(DAY)), *columns) == {
        "甲路公司 610001": (0, 5850, -5850),
        "乙路公司 610002": (0, 4875, -4875),
        "丙路公司 610003": (0, 3949, -3949),
        "Stored-value purses": (7149, 0, 7149),
        "小孙庄 S1201005": (3000, 0, 3000),
        "杨村 S1201006": (2500, 0, 2500),
        "Alipay (10)": (2025, 0, 2025),
        "Total": (14674, 14674, 0),
    }
    month = values(figures.positions(MONTH), *columns)
    assert month["丙路公司 610003"] == (0, 5873, -5873)
    assert month["Total"] == (16598, 16598, 0)


def test_lane_payments_by_station_shift_and_collector(two_days):
    table = figures.lane_payments(Period.day(DAY))

    columns = ("station", "shift", "collector", "trips", "cash", "mobile", "other", "total")
    assert [tuple(row.values.get(k) for k in columns) for row in table.rows] == [
        ("小孙庄 S1201005", "1", "c001", 1, 3000, 0, 0, 3000),
        ("杨村 S1201006", "2", "c002", 2, 2500, 2025, 0, 4525),
        ("Total", None, None, 3, 5500, 2025, 0, 7525),
    ]
    # Card debits and the rejected record are not lane payments; one station only:
    only = figures.lane_payments(Period.day(DAY), "S1201006")
    assert [row.values["total"] for row in only.rows] == [4525, 4525]


def every(query: drill.Drill | drill.LaneDrill) -> list[int]:
    return [t.pk for listed in drill.every_page(query) for _e, t in listed.rows if t is not None]


def test_each_total_drills_down_to_its_transactions(two_days):
    t = two_days
    day = Period.day(DAY)
    assert every(drill.Drill(day, "taken", station="S1201005")) == [
        t[k].pk for k in ("own", "foreign", "cash", "unpriced", "tac")
    ]
    assert every(drill.Drill(day, "cleared")) == [
        t[k].pk for k in ("own", "cash", "cash_yangcun", "alipay")
    ]
    assert every(drill.Drill(day, "held", code=6)) == [t["unpriced"].pk]
    assert every(drill.Drill(day, "sent", network="3201")) == [t["foreign"].pk]
    assert every(drill.Drill(day, "taken", network="")) == [
        t[k].pk for k in ("cash", "cash_yangcun", "alipay")
    ]
    assert every(drill.Drill(day, "taken", payment=10, vehicle_class=1)) == [t["alipay"].pk]
    # A road owner's trips: those over its intervals in their tariff version.
    assert every(drill.Drill(MONTH, "cleared", owner="610003")) == [
        t[k].pk for k in ("own", "alipay", "late")
    ]
    assert every(drill.Drill(MONTH, "taken", late=True)) == [t["late"].pk]
    assert every(drill.LaneDrill(day, station="S1201006", shift="2", pay="mobile")) == [
        t["alipay"].pk
    ]


def test_the_drill_down_pages_by_key(two_days):
    query = drill.Drill(Period.day(DAY), "all")
    first = drill.page(query, size=3)
    second = drill.page(query, first.next_after or 0, size=3)
    third = drill.page(query, second.next_after or 0, size=3)

    assert [len(p.rows) for p in (first, second, third)] == [3, 3, 1]
    assert third.next_after is None
    ids = [t.pk for p in (first, second, third) for _e, t in p.rows]
    assert ids == sorted(ids)
    assert len(set(ids)) == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "2026-13"}, "period"),
        ({"period": "yesterday"}, "period"),
        ({"period": "2026-11-10", "what": "lost"}, "what"),
        ({"period": "2026-11-10", "network": "61"}, "network"),
        ({"period": "2026-11-10", "payment": "x"}, "payment"),
        ({"period": "2026-11-10", "flow": "4"}, "flow"),
    ],
)
def test_a_bad_filter_names_its_field(params, field):
    with pytest.raises(FilterError) as refused:
        drill.Drill.parse(params)
    assert refused.value.field == field


def test_wan_rounds_half_up_to_the_hundredth():
    assert [tables.wan(fen) for fen in (1_225_000, 1_224_999, 1_725_000, 0, 4_999, 5_000)] == [
        "1.23", "1.22", "1.73", "0.00", "0.00", "0.01",
    ]  # fmt: skip
    assert tables.wan_decimal(1_225_000) == Decimal("1.23")


def issue_and_load(clerk: Any, application: Any, n: int, amount_fen: int, *, install: bool) -> Any:
    """Card `n` issued (its OBU installed if `install`) and `amount_fen` loaded on it."""
    binding = (active if install else issued)(clerk, application, n)
    card_services.top_up(
        binding.card.card_no, amount_fen=amount_fen, channel="cash",
        idempotency_key=f"load-{n}", actor=clerk,
    )  # fmt: skip
    return binding


def test_issuance_figures_count_to_the_periods_end(clerk, stock):  # noqa: F811
    # The 10th: a card issued and its OBU installed, 12,250.00 loaded on it;
    # the 11th: another card issued (its OBU not installed yet), 5,000.00 loaded.
    with time_machine.travel(dt.datetime(2026, 11, 10, 9, tzinfo=SHANGHAI), tick=False):
        issue_and_load(clerk, approved_application(clerk), 0, 1_225_000, install=True)
    with time_machine.travel(dt.datetime(2026, 11, 11, 9, tzinfo=SHANGHAI), tick=False):
        binding = issue_and_load(clerk, second_car(clerk), 1, 500_000, install=False)

    before = figures.issuance(Period.day(dt.date(2026, 11, 9)))
    day = figures.issuance(Period.day(DAY))
    month = figures.issuance(MONTH)

    assert before == figures.Issuance(0, 0, 0, 0, 0)
    assert day == figures.Issuance(1, 1, 1, 1, 1_225_000)
    assert month == figures.Issuance(2, 2, 1, 1, 1_725_000)
    shown = values(figures.issuance_table(MONTH), "key", "value")
    assert shown["Prepaid tolls (预收通行费), 万元"] == ("1.73",)  # 1.725 half up, not 1.72
    assert shown["Cards issued to date (累计办卡张数)"] == ("2",)
    assert CARD_NOS[1] == binding.card.card_no
