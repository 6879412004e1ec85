"""The center's own checks of uploaded records (issue 14): the fee computed again
by the tariff in force at the exit, the card and OBU against the status list the
lane held. Through the real database: imported tariff versions, published list
versions."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from etcnet.lists import services as lists
from etcnet.lists.models import ListEntry, ListStatus, ListType, ListVersion, Medium
from etcnet.network import services as network
from etcnet.network.models import Node, TariffVersion
from etcnet.tolling.checks import ExitFacts, Finding, ListFacts, fee_findings, list_findings

pytestmark = pytest.mark.django_db

DEMO = Path(__file__).resolve().parents[2] / "network" / "demo_bundle"
NEW_YEAR = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
JULY = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
EXIT_TIME = dt.datetime(2026, 3, 10, 2, 30, tzinfo=dt.UTC)  # 10:30 in Shanghai

# 杨村 (S1201048) → 小孙庄 (S1201005), class 1, by the demo tariff: the minimum
# fee 47.38, the ETC discount (5 %) 2.37, the card pays 45.01, cash 47.00.
ENTRY, EXIT = "S1201048", "S1201005"
FEE, DISCOUNT, PAYABLE, CASH = 4738, 237, 4501, 4700
# The gantries' path of that trip (the cheapest one).
PATH = [
    "S004012001003110",
    "S004012001004110",
    "S004012001005110",
    "S004012001006110",
    "S000312001001110",
    "S000312001002110",
    "S000312001003110",
    "S001112001007110",
    "S001112001008110",
    "G001812001001110",
]


@pytest.fixture
def tariff(operator: Any) -> TariffVersion:
    record = network.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    assert record.version is not None
    return record.version


@pytest.fixture
def doubled(operator: Any, tariff: TariffVersion, tmp_path: Path) -> TariffVersion:
    """A second version from 1 July: every interval fee twice the first's."""
    folder = tmp_path / "doubled"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("README.md"))
    path = folder / "interval_fees.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    for row in rows[1:]:
        row[2] = str(int(row[2]) * 2)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    record = network.import_bundle(folder, effective_at=JULY, actor=operator)
    assert record.version is not None
    return record.version


def exit_facts(index: int = 0, **changes: Any) -> ExitFacts:
    """A class 1 car's exit at 小孙庄 paid by a stored-value card, charged as the
    lane charges it (the minimum fee: the lane has no gantry path)."""
    facts = ExitFacts(
        index=index,
        direction="exit",
        station_id=EXIT,
        entry_station=ENTRY,
        exit_time=EXIT_TIME,
        entry_time=EXIT_TIME - dt.timedelta(minutes=40),
        vehicle_class=1,
        vehicle_kind=0,
        method="minimum",
        fee_fen=FEE,
        discount_fen=DISCOUNT,
        payable_fen=PAYABLE,
        payment_type=22,
        intervals=[],
        special_case="minimum_fee",
        authorised_by="sam",
        tariff_version="1220260101001",
    )
    return dataclasses.replace(facts, **changes)


# -- the fee ------------------------------------------------------------------------


def test_exits_charged_as_the_center_computes_have_no_finding(tariff: TariffVersion) -> None:
    exits = [
        exit_facts(0),
        # Cash: no discount, to the whole yuan.
        exit_facts(1, payment_type=1, discount_fen=0, payable_fen=CASH),
        # No entry: the farthest entry (杨柳青, S1201019) that can reach the exit.
        exit_facts(
            2,
            method="farthest-entry",
            entry_station="S1201019",
            fee_fen=9589,
            discount_fen=479,
            payable_fen=9110,
            special_case="no_entry",
        ),
        # An open-road station's fixed fee.
        exit_facts(
            3,
            station_id="S1201035",
            entry_station=None,
            method="open",
            fee_fen=500,
            discount_fen=25,
            payable_fen=475,
        ),
        # An exempt vehicle (车种 8, military or police) passes free.
        exit_facts(
            4,
            vehicle_kind=8,
            method="exempt",
            fee_fen=0,
            discount_fen=0,
            payable_fen=0,
            payment_type=0,
            special_case="exempt",
        ),
        # The station given as the Node's primary key.
        exit_facts(5, station_id=Node.objects.get(node_id=EXIT).pk),
        # Charged by the path the gantries recorded.
        exit_facts(6, method="path", intervals=[{"interval_id": i} for i in PATH]),
    ]

    assert fee_findings(exits) == {}
    wrong_path = exit_facts(7, method="path", intervals=[{"interval_id": i} for i in PATH[:-1]])
    assert [
        (f.kind, f.evidence["center_method"], f.evidence["center_fee_fen"])
        for f in fee_findings([dataclasses.replace(wrong_path, fee_fen=FEE - 1)])[7]
    ] == [("fee_differs", "minimum", FEE)]


def test_a_lane_that_charged_less_or_more_is_a_code_6_dispute(tariff: TariffVersion) -> None:
    less = exit_facts(0, fee_fen=4000, discount_fen=200, payable_fen=3800)
    more = exit_facts(1, fee_fen=5000, discount_fen=250, payable_fen=4750)

    found = fee_findings([less, more])

    assert set(found) == {0, 1}
    (finding,) = found[0]
    assert (finding.code, finding.kind) == (6, "fee_differs")
    assert finding.evidence == {
        "fee_fen": 4000,
        "center_fee_fen": FEE,
        "discount_fen": 200,
        "center_discount_fen": DISCOUNT,
        "payable_fen": 3800,
        "center_payable_fen": PAYABLE,
        "payment_type": 22,
        "method": "minimum",
        "center_method": "minimum",
        "exit_station": EXIT,
        "entry_station": ENTRY,
        "center_entry_station": ENTRY,
        "vehicle_class": 1,
        "vehicle_kind": 0,
        "exit_time": "2026-03-10T02:30:00+00:00",
        "tariff_version": "1220260101001",
        "tariff_effective_at": "2026-01-01T00:00:00+00:00",
        "lane_tariff_version": "1220260101001",
        "tariff_version_differs": False,
        "special_case": "minimum_fee",
        "authorised_by": "sam",
    }
    assert finding.reason == (
        "The lane charged a fee of 4000 fen; tariff 1220260101001, in force at the exit, "
        "gives 4738 fen (minimum)."
    )
    assert [(f.kind, f.evidence["fee_fen"], f.evidence["center_fee_fen"]) for f in found[1]] == [
        ("fee_differs", 5000, FEE)
    ]


def test_a_right_fee_with_a_wrong_discount_is_a_code_6_dispute(tariff: TariffVersion) -> None:
    # The card paid the toll without its ETC discount; and cash paid to the fen.
    no_discount = exit_facts(0, discount_fen=0, payable_fen=FEE)
    cash_to_the_fen = exit_facts(1, payment_type=1, discount_fen=0, payable_fen=FEE)

    found = fee_findings([no_discount, cash_to_the_fen])

    assert [(f.code, f.kind) for f in found[0]] == [(6, "payable_differs")]
    assert {k: found[0][0].evidence[k] for k in ("payable_fen", "center_payable_fen")} == {
        "payable_fen": FEE,
        "center_payable_fen": PAYABLE,
    }
    assert {
        k: found[1][0].evidence[k]
        for k in ("discount_fen", "center_discount_fen", "payable_fen", "center_payable_fen")
    } == {
        "discount_fen": 0,
        "center_discount_fen": 0,
        "payable_fen": FEE,
        "center_payable_fen": CASH,
    }


def test_the_tariff_in_force_at_the_exit_time_is_used(doubled: TariffVersion) -> None:
    before = exit_facts(0, exit_time=JULY - dt.timedelta(minutes=1))
    # After 1 July, by the old tariff the lane still held.
    after = exit_facts(1, exit_time=JULY + dt.timedelta(minutes=1))
    # After 1 July, by the new tariff.
    charged_new = exit_facts(
        2,
        exit_time=JULY + dt.timedelta(days=3),
        fee_fen=2 * FEE,
        discount_fen=474,  # 5 % of 94.76, half-up
        payable_fen=2 * FEE - 474,
        tariff_version=doubled.number,
    )

    found = fee_findings([before, after, charged_new])

    assert list(found) == [1]
    (finding,) = found[1]
    assert (finding.code, finding.kind) == (6, "fee_differs")
    assert {
        k: finding.evidence[k]
        for k in (
            "fee_fen",
            "center_fee_fen",
            "tariff_version",
            "lane_tariff_version",
            "tariff_version_differs",
            "lane_tariff_fee_fen",
        )
    } == {
        "fee_fen": FEE,
        "center_fee_fen": 2 * FEE,
        "tariff_version": doubled.number,
        "lane_tariff_version": "1220260101001",
        "tariff_version_differs": True,
        # The lane's own (old) version gives what it charged: a stale tariff.
        "lane_tariff_fee_fen": FEE,
    }
    assert finding.reason.endswith("The lane charged by tariff 1220260101001.")


def test_no_finding_where_the_center_cannot_recompute(tariff: TariffVersion) -> None:
    exits = [
        # Before any tariff was in force: nothing to compare with.
        exit_facts(0, exit_time=NEW_YEAR - dt.timedelta(seconds=1), fee_fen=1),
        # Not an exit.
        exit_facts(1, direction="entry", method="entry", fee_fen=0, payable_fen=0),
        # A method the engine does not have.
        exit_facts(2, method="", fee_fen=1),
        # An entry station the tariff in force does not know.
        exit_facts(3, entry_station="S9999999", fee_fen=1),
        # A station given by a primary key that does not exist.
        exit_facts(4, station_id=10**9, fee_fen=1),
    ]

    assert fee_findings(exits) == {}
    assert fee_findings([]) == {}


def test_fee_findings_take_a_bounded_number_of_queries(
    doubled: TariffVersion, django_assert_max_num_queries: Any
) -> None:
    # 200 exits over both versions, a tenth of them charged wrong (and those
    # after 1 July by the old version): two queries for the versions in force,
    # one for the lanes' own versions, six per engine built (both built here),
    # whatever the number of records.
    def charged(n: int) -> ExitFacts:
        at = JULY + dt.timedelta(hours=n - 100)
        if n % 10 == 0:
            return exit_facts(n, exit_time=at, fee_fen=1)
        if at < JULY:
            return exit_facts(n, exit_time=at)
        return exit_facts(
            n,
            exit_time=at,
            fee_fen=2 * FEE,
            discount_fen=474,
            payable_fen=2 * FEE - 474,
            tariff_version=doubled.number,
        )

    exits = [charged(n) for n in range(200)]

    with django_assert_max_num_queries(2 + 1 + 2 * 6):
        found = fee_findings(exits)

    assert sorted(found) == list(range(0, 200, 10))
    assert found[150][0].evidence["lane_tariff_fee_fen"] == FEE
    # The next upload finds both engines built.
    with django_assert_max_num_queries(2 + 1):
        assert fee_findings(exits) == found


# -- the status list ----------------------------------------------------------------

T0 = dt.datetime(2026, 11, 21, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
CARD = "61010000000000000001"
OTHER_CARD = "61010000000000000002"
OBU = "6101000000000001"


def event(medium: str, medium_id: str, list_type: ListType, status: ListStatus) -> None:
    with transaction.atomic():
        lists.record_event(
            medium=Medium(medium),
            medium_id=medium_id,
            list_type=list_type,
            status=status,
            reason=f"test {status}",
            actor=None,
            issuer_id="61010001",
        )


def publish(minutes: int) -> ListVersion:
    return lists.publish(now=T0 + dt.timedelta(minutes=minutes)).version


def passage(index: int, held: str | None, **changes: Any) -> ListFacts:
    facts = ListFacts(
        index=index,
        card_no=CARD,
        obu_no=OBU,
        list_version=held,
        exit_time=T0 + dt.timedelta(hours=1),
    )
    return dataclasses.replace(facts, **changes)


def test_a_card_listed_in_the_version_the_lane_held_is_a_code_3_dispute() -> None:
    first = publish(0)  # the list before the loss
    event("card", CARD, ListType.LOST, ListStatus.IN)
    lost = publish(5)
    later = publish(10)

    found = list_findings([passage(0, lost.number), passage(1, later.number)])

    assert set(found) == {0, 1}
    (finding,) = found[0]
    entry = ListEntry.objects.get(medium_id=CARD)
    assert (finding.code, finding.kind) == (3, "listed_when_passed")
    one = {
        "medium": "card",
        "medium_id": CARD,
        "list_type": 1,
        "list_type_name": "lost",
        "entry_id": entry.pk,
        "source": "local",
        "since": entry.since.isoformat(),
        "added_in": lost.number,
        "added_published_at": lost.published_at.isoformat(),
        "removed_in": None,
    }
    assert finding.evidence == {
        **one,
        "list_version": lost.number,
        "list_version_published_at": lost.published_at.isoformat(),
        "exit_time": (T0 + dt.timedelta(hours=1)).isoformat(),
        "entries": [one],
    }
    assert finding.reason == (
        f"The card {CARD} was on the status list (type 1, lost) from version {lost.number}, "
        f"and the lane held version {lost.number}: it could have been refused."
    )
    assert first.number < lost.number


def test_a_card_listed_only_in_a_later_version_is_no_dispute() -> None:
    held = publish(0)
    event("card", CARD, ListType.LOST, ListStatus.IN)
    publish(5)

    assert list_findings([passage(0, held.number)]) == {}


def test_a_card_taken_off_the_list_before_the_lanes_version_is_no_dispute() -> None:
    event("card", CARD, ListType.OVERDRAWN, ListStatus.IN)
    listed = publish(0)
    event("card", CARD, ListType.OVERDRAWN, ListStatus.OUT)
    cleared = publish(5)

    found = list_findings([passage(0, listed.number), passage(1, cleared.number)])

    assert list(found) == [0]
    assert found[0][0].evidence["removed_in"] == cleared.number


def test_a_listed_obu_is_a_code_3_dispute_with_every_entry() -> None:
    event("obu", OBU, ListType.SUSPENDED, ListStatus.IN)
    event("card", CARD, ListType.LOW_BALANCE, ListStatus.IN)
    held = publish(0)

    (finding,) = list_findings([passage(0, held.number)])[0]

    # The card's entries first, then the OBU's.
    assert [(e["medium"], e["list_type"]) for e in finding.evidence["entries"]] == [
        ("card", 7),
        ("obu", 2),
    ]
    (obu_only,) = list_findings([passage(0, held.number, card_no=None)])[0]
    assert obu_only.evidence["medium"] == "obu"
    assert obu_only.reason.startswith(f"The OBU {OBU} was on the status list (type 2, suspended)")


def test_without_a_version_the_lane_held_there_is_no_finding() -> None:
    event("card", CARD, ListType.LOST, ListStatus.IN)
    publish(0)

    # No list version; a version the center never published; a malformed one.
    assert (
        list_findings(
            [
                passage(0, None),
                passage(1, ""),
                passage(2, "209901010000"),
                passage(3, "2026"),
                passage(4, None, card_no=None, obu_no=None),
            ]
        )
        == {}
    )


def test_list_findings_take_two_queries_for_200_records(
    django_assert_max_num_queries: Any,
) -> None:
    event("card", CARD, ListType.LOST, ListStatus.IN)
    held = publish(0)
    items = [
        passage(
            n,
            held.number,
            card_no=CARD if n % 20 == 0 else f"6102{n:016d}",
            obu_no=f"6101{n:012d}",
        )
        for n in range(200)
    ]

    with django_assert_max_num_queries(2):
        found = list_findings(items)

    assert sorted(found) == list(range(0, 200, 20))
    assert all(isinstance(f, Finding) and f.code == 3 for fs in found.values() for f in fs)
