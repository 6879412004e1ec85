"""A generated province day (etcnet.clearing.generate) through the clearing run, on
SQLite and PostgreSQL alike: the run finds what the generator predicts — every
record held with its code, other issuers' records sent, the splits adding up to
the cleared payable, positions netting to zero, one balanced journal entry."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db.models import Sum

from etcnet.cards import ledger
from etcnet.cards.models import CardUnit, JournalEntry
from etcnet.clearing import generate, run
from etcnet.clearing.models import ClearingDay, ClearingEntry, OwnerShare, Position
from etcnet.tolling.models import TollTransaction

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 2)
NEXT = DAY + dt.timedelta(days=1)
# After the day, before its late records reach the center (an hour after it at the
# earliest); then after all of them.
CLOSING = dt.datetime.combine(NEXT, dt.time(0, 30), tzinfo=generate.partitions.LOCAL)
LATER = CLOSING + dt.timedelta(days=1, hours=2)


def entries(ids: object = None) -> dict[int, tuple[str, int | None]]:
    rows = ClearingEntry.objects.all()
    if ids is not None:
        rows = rows.filter(transaction_id__in=ids)
    return {e.transaction_id: (e.state, e.hold_code) for e in rows}


def test_a_generated_day_is_cleared_as_the_generator_predicts():
    day = generate.generate_day(DAY, trips=2_000, seed=5, cards=300, duplicated=0.01)

    # Every kind of record and every exception is there.
    assert day.records == TollTransaction.objects.count() == 2_000 + day.kinds["duplicates"]
    assert CardUnit.objects.count() == 300
    for kind in ("stored_value", "debit", "other_issuers", "cash", "mobile", "open_road",
                 "duplicates", "disputed", "clock_off", "expired_card"):  # fmt: skip
        assert day.kinds[kind] > 0, kind
    assert 8 * day.records < day.interval_rows < 12 * day.records
    assert set(day.held.values()) == {1, 2, 3, 6, 10, 16}

    job = run.run_day(DAY)

    expected = day.expected
    closed = ClearingDay.objects.get(date=DAY)
    assert (job.status, closed.status) == ("succeeded", "closed")
    assert job.counts["records"] == expected.records == day.records
    assert job.counts["trip_routes"] == day.route_rows
    predicted = {
        "records": expected.records, "cleared": expected.cleared, "held": expected.held,
        "sent": expected.sent, "late": 0, "carried": 0,
        "payable_fen": expected.cleared_payable_fen, "split_fen": expected.cleared_payable_fen,
    }  # fmt: skip
    assert {key: closed.totals[key] for key in predicted} == predicted
    found = entries()
    # Held: each duplicate's copy (2, its original not), each dispute with its code,
    # the lanes whose clock is off (16), the expired cards (10); nothing else.
    assert {t: code for t, (state, code) in found.items() if state == "held"} == day.held
    assert all(found[original] != ("held", 2) for original in day.duplicates.values())
    sent = ClearingEntry.objects.filter(state="sent")
    assert sent.count() == expected.sent
    assert set(sent.values_list("flow", flat=True)) == {2}
    assert sent.aggregate(s=Sum("payable_fen"))["s"] == expected.sent_payable_fen
    # Σ splits = Σ cleared payable; the positions net to zero, each payer owing its own.
    shares = OwnerShare.objects.filter(day=closed).aggregate(s=Sum("amount_fen"))["s"]
    assert shares == expected.cleared_payable_fen
    positions = {(p.kind, p.counterparty_id): p for p in Position.objects.filter(day=closed)}
    assert sum(p.net_fen for p in positions.values()) == 0
    owed = {key: p.receivable_fen for key, p in positions.items() if key[0] != "owner"}
    assert owed == expected.receivable
    assert {k for k, _ in expected.receivable} == {"purses", "bank", "mobile", "station_cash"}
    assert sum(p.payable_fen for p in positions.values()) == expected.cleared_payable_fen
    entry = JournalEntry.objects.get(pk=closed.journal_entry_id)
    lines = list(entry.postings.values_list("account__code", "amount_fen"))
    assert sum(amount for _, amount in lines) == 0
    owners = sum(amount for code, amount in lines if code.startswith("owner_payable:"))
    assert owners == -expected.cleared_payable_fen


def test_the_same_seed_writes_the_same_day_and_late_records_go_to_the_next_day():
    with time_machine.travel(CLOSING):
        day = generate.generate_day(DAY, trips=1_000, seed=9, cards=200, late=25, defer_late=True)
        rows = list(TollTransaction.objects.order_by("id").values_list(
            "seq", "terminal_id", "card_no", "card_trans_no", "payable_fen", "intervals"
        ))  # fmt: skip
        run.run_day(DAY)
    # Not in the store yet when the day closed: none of them was taken.
    assert day.records == 1_000 + day.kinds["duplicates"]
    assert not entries(day.late_ids)
    assert TollTransaction.objects.filter(pk__in=day.late_ids).count() == 0

    with time_machine.travel(LATER):
        assert generate.deliver_late(day) == 25
        job = run.run_day(NEXT)

    late = ClearingEntry.objects.filter(transaction_id__in=day.late_ids)
    assert {(e.day.date, e.late) for e in late} == {(NEXT, True)}
    assert entries(day.late_ids) == {
        t: ("held", day.held[t]) if t in day.held else (
            "sent" if TollTransaction.objects.get(pk=t).card_network not in ("", "6101")
            else "cleared", None)
        for t in day.late_ids
    }  # fmt: skip
    assert job.counts["late"] == 25
    assert job.counts["payable_fen"] == day.late.cleared_payable_fen == job.counts["split_fen"]
    assert Position.objects.filter(day__date=NEXT).aggregate(s=Sum("net_fen"))["s"] == 0

    # The same arguments on another database write the same rows (here: the same
    # one, emptied of the day's records, ids apart).
    TollTransaction.objects.all().delete()
    ClearingEntry.objects.all().delete()
    again = generate.generate_day(DAY, trips=1_000, seed=9, cards=200, late=25, defer_late=True)
    assert again.expected == day.expected
    assert again.kinds == day.kinds
    assert list(TollTransaction.objects.order_by("id").values_list(
        "seq", "terminal_id", "card_no", "card_trans_no", "payable_fen", "intervals"
    )) == rows  # fmt: skip


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_any_generated_day_balances_and_a_second_run_changes_nothing(seed):
    generate.generate_day(DAY, trips=600, seed=seed, cards=100, duplicated=0.02, disputed=0.02)
    run.run_day(DAY)
    closed = ClearingDay.objects.get(date=DAY)

    cleared = ClearingEntry.objects.filter(day=closed, state="cleared").aggregate(
        s=Sum("payable_fen")
    )["s"]
    assert OwnerShare.objects.filter(day=closed).aggregate(s=Sum("amount_fen"))["s"] == cleared
    assert Position.objects.filter(day=closed).aggregate(s=Sum("net_fen"))["s"] == 0
    assert ledger.check() == []
    entry = JournalEntry.objects.get(pk=closed.journal_entry_id)
    assert entry.postings.aggregate(s=Sum("amount_fen"))["s"] == 0

    def state() -> tuple[object, ...]:
        return (
            list(ClearingEntry.objects.order_by("transaction_id").values_list(
                "transaction_id", "state", "hold_code", "day_id")),
            list(Position.objects.order_by("pk").values_list("kind", "counterparty_id", "net_fen")),
            JournalEntry.objects.count(),
            ClearingDay.objects.get(date=DAY).totals,
        )  # fmt: skip

    before = state()
    assert run.run_day(DAY).status == "unchanged"
    assert state() == before
