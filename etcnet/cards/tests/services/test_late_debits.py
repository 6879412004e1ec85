"""Issue 14: a purchase whose TAC verifies is posted for what the card really
paid, whatever happened to the card since. The shadow balance is the center's
running copy of the card's log and may run below zero; a replacement or a
refund then moves what the card really held: the hold minus the late debits.

Worked examples with real TACs: an emulated card pays at a lane through an
emulated PSAM, and the lane's record is uploaded later (`record_purchase`,
which the intake's batch posting mirrors: purse → tolls payable).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from etcnet.cards import devices, ledger, services, vault
from etcnet.cards.errors import LoadInterrupted, WrongState
from etcnet.cards.models import (
    BalanceSettlement,
    CardUnit,
    JournalEntry,
    TopUp,
    TopUpStatus,
    UnitKind,
    UnitState,
)
from etcnet.cards.tests.conftest import CARD_NOS
from etcnet.cards.tests.services import LostAnswer, active, state
from etcnet.core.models import AuditEvent
from etcnet.smartcard import ops
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.transport import open_emulated

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)  # 10:00 in Xi'an
LANE = "610100000099"
PERIOD = dt.timedelta(days=settings.ETCNET_FUND_DISPUTE_DAYS)


@pytest.fixture
def psam(tmp_path: Path) -> Path:
    """The lane's PSAM: its terminal number and the purchase master key only."""
    path = tmp_path / "lane-psam.json"
    devices.provision_psam(path, terminal_no=LANE)
    return path


def pay_at_lane(card: CardUnit, psam: Path, amount_fen: int) -> dict[str, Any]:
    """The card pays at the lane (its purse is debited now); the lane's record,
    as the terminal uploads it later."""
    when = timezone.localtime().replace(microsecond=0, tzinfo=None)
    result = ops.purchase(
        devices.open_unit(card), open_emulated(psam), amount=amount_fen, when=when
    )
    return {
        "amount_fen": amount_fen,
        "trans_type": result.trans_type,
        "terminal_no": LANE,
        "terminal_seq": int.from_bytes(result.terminal_seq, "big"),
        "when": result.when,
        "tac": result.tac.hex().upper(),
    }


def load_the_center_did_not_record(card: CardUnit, amount_fen: int) -> None:
    """A load the card executed that the center's books do not show (its record
    lost): the card holds more than the shadow balance, as with a pending
    top-up the card in fact received."""
    terminal = "610100000077"
    transport = devices.open_unit(card)
    init = devices.init_load(transport, card, amount_fen, terminal)
    when = timezone.localtime().replace(microsecond=0)
    mac2 = vault.load_mac2(
        Alg(card.alg),
        card.internal_no,
        random=init.random,
        online_atc=init.online_atc,
        amount=amount_fen,
        terminal_no=bytes.fromhex(terminal),
        when=when,
    )
    devices.finish_load(transport, mac2, when)


def shadow(card_no: str) -> int:
    return CardUnit.objects.get(card_no=card_no).shadow_balance_fen


def settled_event() -> dict[str, Any]:
    return AuditEvent.objects.get(action="cards.balance_settled").after


def test_a_replacement_moves_what_the_card_really_held_after_a_late_debit(
    clerk, stock, approved, psam
):
    # given a stored-value card with 100.00 that pays 30.00 at a lane
    with time_machine.travel(START, tick=False) as traveller:
        old_no = active(clerk, approved).card.card_no
        services.top_up(old_no, amount_fen=10_000, channel="cash", idempotency_key="t", actor=clerk)
        old = CardUnit.objects.get(card_no=old_no)
        upload = pay_at_lane(old, psam, 3_000)
        assert devices.read_card(old).balance == 7_000

        # when it is reported lost and replaced before the lane's record arrives
        traveller.shift(dt.timedelta(hours=2))
        services.report_loss(old_no, actor=clerk)
        new = services.replace_card(old_no, new_card_no=CARD_NOS[1], actor=clerk).card
        assert ledger.balance(ledger.SETTLEMENTS_HELD) == -10_000  # the center held 100.00

        # then the purchase is posted to the cancelled card all the same
        traveller.shift(dt.timedelta(hours=1))
        entry = services.record_purchase(old_no, **upload, actor=clerk)
        assert entry is not None
        assert CardUnit.objects.get(card_no=old_no).state == UnitState.CANCELLED
        assert shadow(old_no) == -3_000
        assert ledger.balance(ledger.TOLLS_PAYABLE) == -3_000
        assert ledger.check() == []

        # and after the dispute period only 70.00 moves to the new card
        traveller.shift(PERIOD + dt.timedelta(days=1))
        assert services.settle_due() == 1
        assert services.settle_due() == 0

    transfer = TopUp.objects.get(card=new)
    assert (transfer.channel, transfer.status, transfer.amount_fen) == (
        "balance_transfer",
        "pending",
        7_000,
    )
    assert shadow(old_no) == 0
    assert ledger.balance(ledger.SETTLEMENTS_HELD) == 0
    assert ledger.balance(ledger.LOADS_PENDING) == -7_000
    assert ledger.balance(ledger.TOLLS_PAYABLE) == -3_000
    assert BalanceSettlement.objects.get().amount_fen == 10_000
    assert settled_event() == {
        "kind": "transfer",
        "amount_fen": 10_000,
        "late_debits_fen": 3_000,
        "moved_fen": 7_000,
        "uncovered_fen": 0,
    }
    assert ledger.check() == []

    # the clerk loads it: the new card holds what the old one really held
    services.retry_top_up(transfer.pk, actor=clerk)
    assert devices.read_card(new).balance == 7_000
    assert shadow(new.card_no) == 7_000
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.check() == []
    call_command("ledger", "check")


def test_a_cancellation_refunds_what_the_card_really_held_after_a_late_debit(
    clerk, stock, approved, psam
):
    with time_machine.travel(START, tick=False) as traveller:
        card_no = active(clerk, approved).card.card_no
        services.top_up(
            card_no, amount_fen=10_000, channel="cash", idempotency_key="c", actor=clerk
        )
        upload = pay_at_lane(CardUnit.objects.get(card_no=card_no), psam, 3_000)
        services.cancel(card_no, obu_returned=True, actor=clerk)
        services.record_purchase(card_no, **upload, actor=clerk)
        assert shadow(card_no) == -3_000

        traveller.shift(PERIOD + dt.timedelta(days=1))
        assert services.settle_due() == 1

    assert ledger.balance(ledger.REFUNDS_PAYABLE) == -7_000
    assert ledger.balance(ledger.SETTLEMENTS_HELD) == 0
    assert shadow(card_no) == 0
    assert settled_event() == {
        "kind": "refund",
        "amount_fen": 10_000,
        "late_debits_fen": 3_000,
        "moved_fen": 7_000,
        "uncovered_fen": 0,
    }
    assert ledger.check() == []


def test_late_debits_larger_than_the_hold_take_all_of_it_and_stay_visible(
    clerk, stock, approved, psam
):
    # given a card the center believes holds 20.00 but which holds 70.00
    with time_machine.travel(START, tick=False) as traveller:
        old_no = active(clerk, approved).card.card_no
        services.top_up(old_no, amount_fen=2_000, channel="cash", idempotency_key="t", actor=clerk)
        old = CardUnit.objects.get(card_no=old_no)
        load_the_center_did_not_record(old, 5_000)
        assert (devices.read_card(old).balance, shadow(old_no)) == (7_000, 2_000)
        upload = pay_at_lane(old, psam, 6_000)

        # when it is replaced (20.00 held) and its 60.00 purchase arrives late
        services.report_loss(old_no, actor=clerk)
        new = services.replace_card(old_no, new_card_no=CARD_NOS[1], actor=clerk).card
        services.record_purchase(old_no, **upload, actor=clerk)
        assert shadow(old_no) == -6_000

        traveller.shift(PERIOD + dt.timedelta(days=1))
        assert services.settle_due() == 1

    # then the hold covers what it can, nothing moves, and 40.00 stays short
    assert TopUp.objects.filter(card=new).count() == 0
    assert shadow(old_no) == -4_000
    assert ledger.balance(ledger.SETTLEMENTS_HELD) == 0
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.balance(ledger.TOLLS_PAYABLE) == -6_000
    assert settled_event() == {
        "kind": "transfer",
        "amount_fen": 2_000,
        "late_debits_fen": 2_000,
        "moved_fen": 0,
        "uncovered_fen": 4_000,
    }
    assert ledger.check() == []


def test_a_card_already_short_holds_nothing_and_stays_short(clerk, stock, approved, psam):
    # given a purse the center saw run below zero before the cancellation
    with time_machine.travel(START, tick=False) as traveller:
        card_no = active(clerk, approved).card.card_no
        services.top_up(card_no, amount_fen=1_000, channel="cash", idempotency_key="c", actor=clerk)
        card = CardUnit.objects.get(card_no=card_no)
        load_the_center_did_not_record(card, 5_000)
        services.record_purchase(card_no, **pay_at_lane(card, psam, 4_000), actor=clerk)
        assert shadow(card_no) == -3_000
        entries = JournalEntry.objects.count()

        # when it is cancelled: no negative hold, nothing posted for it
        services.cancel(card_no, obu_returned=True, actor=clerk)
        settlement = BalanceSettlement.objects.get()
        assert settlement.amount_fen == 0
        assert JournalEntry.objects.count() == entries
        assert shadow(card_no) == -3_000

        traveller.shift(PERIOD + dt.timedelta(days=1))
        assert services.settle_due() == 1

    assert JournalEntry.objects.count() == entries
    assert shadow(card_no) == -3_000
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == 0
    assert ledger.balance(ledger.SETTLEMENTS_HELD) == 0
    assert settled_event() == {
        "kind": "refund",
        "amount_fen": 0,
        "late_debits_fen": 0,
        "moved_fen": 0,
        "uncovered_fen": 3_000,
    }
    assert ledger.check() == []


def test_a_pending_top_up_the_card_received_makes_the_copy_negative_until_confirmed(
    clerk, stock, approved, psam, monkeypatch
):
    # given a top-up of 50.00 that the card executed but whose answer was lost
    with time_machine.travel(START, tick=False):
        card_no = active(clerk, approved).card.card_no
        services.top_up(card_no, amount_fen=1_000, channel="cash", idempotency_key="a", actor=clerk)
        real_open = devices.open_unit
        monkeypatch.setattr(devices, "open_unit", lambda unit: LostAnswer(real_open(unit)))
        with pytest.raises(LoadInterrupted):
            services.top_up(
                card_no, amount_fen=5_000, channel="cash", idempotency_key="b", actor=clerk
            )
        monkeypatch.setattr(devices, "open_unit", real_open)
        card = CardUnit.objects.get(card_no=card_no)
        assert devices.read_card(card).balance == 6_000

        # when the card pays 40.00 with it, the debit is posted all the same
        services.record_purchase(card_no, **pay_at_lane(card, psam, 4_000), actor=clerk)
        assert shadow(card_no) == -3_000
        assert ledger.check() == []

        # then confirming the load from the card's log matches the card again
        pending = TopUp.objects.get(idempotency_key="b")
        assert services.retry_top_up(pending.pk, actor=clerk).status == TopUpStatus.LOADED
    assert shadow(card_no) == 2_000 == devices.read_card(card).balance
    assert ledger.check() == []


def test_a_recycled_card_is_refused_by_record_purchase(clerk, stock, approved, psam):
    # record_purchase refuses only a card without a card type (blank: in stock,
    # recycled); lost, suspended and cancelled cards are posted.
    with time_machine.travel(START, tick=False) as traveller:
        card_no = active(clerk, approved).card.card_no
        services.top_up(card_no, amount_fen=1_000, channel="cash", idempotency_key="c", actor=clerk)
        upload = pay_at_lane(CardUnit.objects.get(card_no=card_no), psam, 400)
        services.cancel(card_no, obu_returned=True, actor=clerk)
        traveller.shift(PERIOD + dt.timedelta(days=1))
        services.settle_due()
        services.recycle(UnitKind.CARD, card_no, actor=clerk)
        before = state()

        with pytest.raises(WrongState):
            services.record_purchase(card_no, **upload, actor=clerk)

    assert state() == before
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == -1_000
