"""Worked examples of the clearing day, in fen, through the real database: every
split, position and posting below is computed by hand."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from etcnet.cards import ledger
from etcnet.cards.models import JournalEntry
from etcnet.clearing import run, services
from etcnet.clearing.models import (
    ClearingDay,
    ClearingEntry,
    DayFigure,
    JobRun,
    OwnerShare,
    Position,
)
from etcnet.clearing.tests.store import VERSION, exit_, local, route, tariff
from etcnet.core.errors import Conflict, InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.network.models import Node
from etcnet.tolling.models import Terminal

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 2)
NEXT = DAY + dt.timedelta(days=1)


@pytest.fixture
def small_day(lane_terminal):
    """Owners A, B, C on G1 (30.00), G2 (25.00), G3 (20.25) for class 1."""
    tariff(
        VERSION,
        {"G1": ("A", 3000), "G2": ("B", 2500), "G3": ("C", 2025)},
        effective_at=local(DAY, 0) - dt.timedelta(days=30),
    )
    other = Terminal.objects.create(
        terminal_id="HH-0002", psam_terminal_no="120100000002", secret_digest="0" * 64,
        station=lane_terminal.station, created_at=timezone.now(),
    )  # fmt: skip
    t = lane_terminal
    return {
        # Our card over three owners: 75.25 less the 5 % discount (3.76) = 71.49.
        "own": exit_(t, 1, local(DAY, 9)),
        # Another issuer's card over G2: 25.00 less 1.25.
        "foreign": exit_(
            t,
            2,
            local(DAY, 10),
            card_no="32010000000000000002",
            card_network="3201",
            fee_fen=2500,
            discount_fen=125,
            payable_fen=2375,
            amount_fen=2375,
            intervals=route("G2"),
        ),
        # The same debit of the first card (card number and counter) from another
        # handheld: a duplicate across terminals.
        "duplicate": exit_(
            other, 7, local(DAY, 9, 5), card_no="61010000000000000001", card_trans_no=1
        ),
        # A TAC that did not verify at intake: rejected with code 1.
        "tac": exit_(t, 4, local(DAY, 11), status="rejected", dispute_code=1, tac_verified=False),
        # Cash over G1: 30.00, no discount.
        "cash": exit_(
            t,
            5,
            local(DAY, 12),
            payment_type=1,
            card_no="",
            card_network="",
            card_trans_no=None,
            fee_fen=3000,
            discount_fen=0,
            payable_fen=3000,
            amount_fen=0,
            intervals=route("G1"),
        ),
    }


def test_a_small_day_is_split_settled_and_closed(small_day):
    job = run.run_day(DAY)

    day = ClearingDay.objects.get(date=DAY)
    assert (job.status, day.status) == ("succeeded", "closed")
    entries = {e.transaction_id: e for e in ClearingEntry.objects.all()}
    state = {name: (entries[t.pk].state, entries[t.pk].hold_code) for name, t in small_day.items()}
    assert state == {
        "own": ("cleared", None),
        "foreign": ("sent", None),  # cleared through the national center: flow 2
        "duplicate": ("held", 2),
        "tac": ("held", 1),
        "cash": ("cleared", None),
    }
    assert entries[small_day["foreign"].pk].flow == 2
    # 7149 by fee 3000 / 2500 / 2025 of 7525: 2850.10, 2375.08, 1923.82 -> 2850, 2375,
    # 1923 and the fen left over to the largest remainder (C): 1924. Cash 3000 to A.
    shares = {
        (s.owner_id, s.payment_type): (s.trips, s.fee_fen, s.amount_fen)
        for s in OwnerShare.objects.filter(day=day)
    }
    assert shares == {
        ("A", 22): (1, 3000, 2850),
        ("B", 22): (1, 2500, 2375),
        ("C", 22): (1, 2025, 1924),
        ("A", 1): (1, 3000, 3000),
    }
    positions = {
        (p.kind, p.counterparty_id): (p.receivable_fen, p.payable_fen, p.net_fen)
        for p in Position.objects.filter(day=day)
    }
    assert positions == {
        ("owner", "A"): (0, 5850, -5850),
        ("owner", "B"): (0, 2375, -2375),
        ("owner", "C"): (0, 1924, -1924),
        ("purses", ""): (7149, 0, 7149),
        ("station_cash", "S1201005"): (3000, 0, 3000),
    }
    assert sum(net for *_, net in positions.values()) == 0
    entry = JournalEntry.objects.get(pk=day.journal_entry_id)
    assert entry.kind == "clearing"
    assert {p.account.code: p.amount_fen for p in entry.postings.select_related("account")} == {
        "tolls_payable:HH-0001": 7149,
        "lane_cash:S1201005": 3000,
        "owner_payable:A": -5850,
        "owner_payable:B": -2375,
        "owner_payable:C": -1924,
    }
    assert ledger.balance("owner_payable:A") == -5850  # a credit: the center owes A 58.50
    assert day.totals == {
        "records": 5, "cleared": 2, "held": 2, "sent": 1, "late": 0, "carried": 0,
        "payable_fen": 10149, "split_fen": 10149, "purses_fen": 0,
    }  # fmt: skip
    held = DayFigure.objects.filter(day=day, state="held")
    assert sorted((f.hold_code, f.trips, f.payable_fen) for f in held) == [
        (1, 1, 7149),
        (2, 1, 7149),
    ]
    assert AuditEvent.objects.filter(action="clearing.day_closed", subject_id=str(day.pk)).exists()


def test_a_closed_day_run_again_changes_nothing(small_day):
    run.run_day(DAY)
    before = (
        list(ClearingEntry.objects.values_list("transaction_id", "state", "day_id")),
        list(Position.objects.values_list("kind", "counterparty_id", "net_fen")),
        JournalEntry.objects.count(),
    )

    again = run.run_day(DAY)

    assert again.status == "unchanged"
    after = (
        list(ClearingEntry.objects.values_list("transaction_id", "state", "day_id")),
        list(Position.objects.values_list("kind", "counterparty_id", "net_fen")),
        JournalEntry.objects.count(),
    )
    assert after == before
    assert list(JobRun.objects.order_by("pk").values_list("status", flat=True)) == [
        "succeeded",
        "unchanged",
    ]


def test_a_record_arriving_after_close_is_an_adjustment_of_the_next_day(small_day, lane_terminal):
    run.run_day(DAY)
    closed = list(Position.objects.filter(day__date=DAY).values_list("kind", "net_fen"))
    # An exit of the 2nd over G3 that reaches the center only now: 20.25 less 1.01.
    late = exit_(
        lane_terminal, 9, local(DAY, 20), received_at=timezone.now(), fee_fen=2025,
        discount_fen=101, payable_fen=1924, amount_fen=1924, intervals=route("G3"),
    )  # fmt: skip

    run.run_day(NEXT)

    entry = ClearingEntry.objects.get(transaction_id=late.pk)
    assert (entry.day.date, entry.state, entry.late) == (NEXT, "cleared", True)
    assert list(Position.objects.filter(day__date=DAY).values_list("kind", "net_fen")) == closed
    assert {
        (p.kind, p.counterparty_id): p.net_fen for p in Position.objects.filter(day__date=NEXT)
    } == {("owner", "C"): -1924, ("purses", ""): 1924}
    assert DayFigure.objects.get(day__date=NEXT).late is True


def test_days_close_in_order(small_day):
    ClearingDay.objects.create(date=DAY)
    with pytest.raises(run.ClearingError, match="2026-12-02 is still open"):
        run.run_day(NEXT)
    assert JobRun.objects.get(day__date=NEXT).status == "failed"


def test_an_open_road_exit_goes_to_the_owner_of_the_road_to_its_station(lane_terminal):
    station = Node.objects.get(node_id="S1201005")
    tariff(VERSION, {"G7": ("D", 1000), "G8": ("E", 500)},
           effective_at=local(DAY, 0) - dt.timedelta(days=1), to=station.node_id)  # fmt: skip
    exit_(lane_terminal, 1, local(DAY, 8), method="open", intervals=[], fee_fen=1000,
          discount_fen=50, payable_fen=950, amount_fen=950)  # fmt: skip

    run.run_day(DAY)

    assert list(OwnerShare.objects.values_list("owner_id", "amount_fen")) == [("E", 950)]


class _Killed(BaseException):
    """The process dying mid-run (not an error the run could note)."""


def test_a_run_killed_mid_way_is_marked_crashed_and_the_next_run_resumes(small_day, lane_terminal):
    def die_at_compute(message: str) -> None:
        if message == "compute":
            raise _Killed

    with pytest.raises(_Killed):
        run.run_day(DAY, progress=die_at_compute)
    crashed = JobRun.objects.get()
    assert (crashed.status, crashed.step, ClearingDay.objects.get(date=DAY).status) == (
        "running",
        "compute",
        "open",
    )
    assert not ClearingEntry.objects.exists()
    # A record arriving after the crashed run read the store: the next day's.
    after = exit_(lane_terminal, 11, local(DAY, 21), received_at=timezone.now())

    said: list[str] = []
    resumed = run.run_day(DAY, progress=said.append)

    crashed.refresh_from_db()
    assert crashed.status == "crashed"
    assert "its process gone" in crashed.error
    assert (resumed.status, resumed.counts["resumed_from"]) == ("succeeded", crashed.pk)
    assert any(m.startswith(f"resuming from run {crashed.pk}") for m in said)
    assert ClearingEntry.objects.count() == len(small_day)
    run.run_day(NEXT)
    assert ClearingEntry.objects.get(transaction_id=after.pk).late is True


def test_the_command_runs_a_day_once_and_names_a_bad_date(small_day):
    out = StringIO()
    call_command("clearing", "run", "--date", "2026-12-02", stdout=out)
    call_command("clearing", "run", "--date", "2026-12-02", stdout=out)
    call_command("clearing", "runs", stdout=out)

    first, second = JobRun.objects.order_by("pk").values_list("pk", flat=True)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(
        f"2026-12-02 closed (run {first}): 5 records, 2 cleared, 2 held, 1 sent"
    )
    assert "101.49 yuan" in lines[0]
    assert lines[1] == f"2026-12-02 is closed: nothing changed (run {second})"
    assert "unchanged" in lines[2]
    assert "succeeded" in lines[3]
    with pytest.raises(CommandError, match="--date '2026-13-01' is not a date"):
        call_command("clearing", "run", "--date", "2026-13-01")


def test_a_held_record_resolved_to_pay_is_cleared_on_the_day_of_its_resolution(small_day, operator):
    run.run_day(DAY)
    duplicate = small_day["duplicate"].pk
    with pytest.raises(InvalidInput):
        services.resolve_held(duplicate, pay=True, note=" ", actor=operator)
    with pytest.raises(Conflict):
        services.resolve_held(small_day["own"].pk, pay=True, note="paid", actor=operator)

    # The operator finds the "duplicate" was a second, real debit: it is paid.
    services.resolve_held(duplicate, pay=True, note="a second debit, see the card log",
                          actor=operator)  # fmt: skip
    services.resolve_held(small_day["tac"].pk, pay=False, note="no proof", actor=operator)
    run.run_day(NEXT)

    entry = ClearingEntry.objects.get(transaction_id=duplicate)
    assert (entry.day.date, entry.state, entry.cleared_on.date) == (DAY, "cleared", NEXT)
    # As its own day took it, it stays: held for code 2 on the 2nd.
    assert (entry.taken_state, entry.taken_code, entry.hold_code) == ("held", 2, None)
    assert ClearingEntry.objects.get(transaction_id=small_day["tac"].pk).state == "written_off"
    assert {
        (p.kind, p.counterparty_id): p.net_fen for p in Position.objects.filter(day__date=NEXT)
    } == {("owner", "A"): -2850, ("owner", "B"): -2375, ("owner", "C"): -1924,
          ("purses", ""): 7149}  # fmt: skip
    carried = DayFigure.objects.get(day__date=NEXT)
    assert (carried.carried, carried.state, carried.payable_fen) == (True, "cleared", 7149)
    assert AuditEvent.objects.filter(action="clearing.held_resolved").count() == 2
