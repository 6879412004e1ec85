"""Issue 17 §2: a replacement whose old card is handed in and read at the
counter moves what the card's own purse holds to the new card at once; only
debits the card logged that the center has not received yet wait for the
fund-dispute period. A missing old card keeps the 30-day wait; a read that
fails or finds another card refuses the replacement and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine

from etcnet.cards import devices, ledger, services
from etcnet.cards.models import (
    BalanceSettlement,
    CardUnit,
    SettlementStatus,
    TopUp,
    TopUpStatus,
    UnitKind,
    UnitState,
)
from etcnet.cards.tests.conftest import CARD_NOS
from etcnet.cards.tests.services import active, state
from etcnet.cards.tests.services.test_late_debits import LANE, PERIOD, START, pay_at_lane, shadow
from etcnet.core.errors import InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.lists.models import ListEvent, ListType, Medium
from etcnet.smartcard.transport import TransportError

pytestmark = pytest.mark.django_db


@pytest.fixture
def psam(tmp_path: Path) -> Path:
    """The lane's PSAM (the one `test_late_debits` pays with)."""
    path = tmp_path / "lane-psam.json"
    devices.provision_psam(path, terminal_no=LANE)
    return path


def topped_up(clerk: Any, approved: Any, amount_fen: int) -> CardUnit:
    card_no = active(clerk, approved).card.card_no
    services.top_up(
        card_no, amount_fen=amount_fen, channel="cash", idempotency_key="t", actor=clerk
    )
    return CardUnit.objects.get(card_no=card_no)


def test_a_handed_in_card_moves_its_purse_at_once(clerk, stock, approved):
    with time_machine.travel(START, tick=False):
        old = topped_up(clerk, approved, 8_800)

        new = services.replace_card(
            old.card_no, new_card_no=CARD_NOS[1], read_old_card=True, actor=clerk
        ).card

    # the balance is the new card's now: a pending load, nothing held, no wait
    transfer = TopUp.objects.get(card=new)
    assert (transfer.channel, transfer.status, transfer.amount_fen) == (
        "balance_transfer",
        TopUpStatus.PENDING,
        8_800,
    )
    assert shadow(old.card_no) == 0
    assert not BalanceSettlement.objects.exists()
    assert ledger.balance(ledger.SETTLEMENTS_HELD) == 0
    assert ledger.balance(ledger.LOADS_PENDING) == -8_800
    assert ledger.check() == []

    # which the counter loads onto the new card at once
    services.retry_top_up(transfer.pk, actor=clerk)
    assert devices.read_card(new).balance == 8_800
    assert shadow(new.card_no) == 8_800
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.check() == []
    event = AuditEvent.objects.get(action="cards.balance_transferred").after
    assert {k: event[k] for k in ("purse_fen", "shadow_fen", "moved_fen", "late_debits_fen")} == {
        "purse_fen": 8_800,
        "shadow_fen": 8_800,
        "moved_fen": 8_800,
        "late_debits_fen": 0,
    }
    # the old card is cancelled, handed in (not listed) and can be recycled at once
    assert CardUnit.objects.get(pk=old.pk).state == UnitState.CANCELLED
    assert not ListEvent.objects.filter(medium=Medium.CARD, medium_id=old.card_no).exists()
    services.recycle(UnitKind.CARD, old.card_no, actor=clerk)
    assert devices.read_card(CardUnit.objects.get(pk=old.pk)).is_blank
    assert ledger.check() == []


def test_late_debits_the_card_logged_are_held_and_the_rest_moves_at_once(
    clerk, stock, approved, psam
):
    # given a card with 100.00 that paid 30.00 at a lane whose record has not arrived
    with time_machine.travel(START, tick=False) as traveller:
        old = topped_up(clerk, approved, 10_000)
        upload = pay_at_lane(old, psam, 3_000)
        traveller.shift(dt.timedelta(hours=1))

        # when it is handed in, read and replaced
        new = services.replace_card(
            old.card_no, new_card_no=CARD_NOS[1], read_old_card=True, actor=clerk
        ).card

        # then the purse's 70.00 is on the new card at once; the 30.00 the card
        # logged waits for its record
        services.retry_top_up(TopUp.objects.get(card=new).pk, actor=clerk)
        assert devices.read_card(new).balance == 7_000
        assert (shadow(old.card_no), shadow(new.card_no)) == (0, 7_000)
        assert ledger.balance(ledger.SETTLEMENTS_HELD) == -3_000
        settlement = BalanceSettlement.objects.get()
        assert (settlement.amount_fen, settlement.to_card_id) == (3_000, new.pk)
        event = AuditEvent.objects.get(action="cards.balance_transferred").after
        assert (event["purse_fen"], event["shadow_fen"], event["moved_fen"]) == (
            7_000,
            10_000,
            7_000,
        )
        assert event["late_debits_fen"] == 3_000
        assert [(r["type"], r["amount_fen"], r["terminal"]) for r in event["log"][:1]] == [
            (upload["trans_type"], 3_000, LANE)
        ]
        assert ledger.check() == []

        # the lane's record arrives; the dispute period nets it and moves nothing more
        traveller.shift(dt.timedelta(hours=1))
        services.record_purchase(old.card_no, **upload, actor=clerk)
        assert shadow(old.card_no) == -3_000
        traveller.shift(PERIOD + dt.timedelta(days=1))
        assert services.settle_due() == 1

    assert BalanceSettlement.objects.get().status == SettlementStatus.DONE
    assert shadow(old.card_no) == 0
    assert TopUp.objects.filter(card=new).count() == 1  # the 70.00 only
    assert ledger.balance(ledger.SETTLEMENTS_HELD) == 0
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.balance(ledger.TOLLS_PAYABLE) == -3_000
    assert ledger.check() == []


def test_a_missing_card_still_waits_for_the_dispute_period(clerk, stock, approved):
    with time_machine.travel(START, tick=False) as traveller:
        old = topped_up(clerk, approved, 8_800)

        new = services.replace_card(
            old.card_no, new_card_no=CARD_NOS[1], card_returned=False, actor=clerk
        ).card

        assert devices.read_card(new).balance == 0
        assert not TopUp.objects.filter(card=new).exists()
        assert ledger.balance(ledger.SETTLEMENTS_HELD) == -8_800
        assert not AuditEvent.objects.filter(action="cards.balance_transferred").exists()
        assert ListEvent.objects.get(medium_id=old.card_no).list_type == (
            ListType.CANCELLED_WITHOUT_CARD
        )
        traveller.shift(PERIOD - dt.timedelta(days=1))
        assert services.settle_due() == 0
        traveller.shift(dt.timedelta(days=2))
        assert services.settle_due() == 1

    transfer = TopUp.objects.get(card=new)
    assert (transfer.status, transfer.amount_fen) == (TopUpStatus.PENDING, 8_800)
    assert ledger.check() == []


def test_another_card_in_the_reader_is_refused_and_nothing_changes(clerk, stock, approved):
    old = topped_up(clerk, approved, 8_800)
    other = CardUnit.objects.get(card_no=CARD_NOS[2])
    real_read = devices.read_card
    before = state()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(devices, "read_card", lambda card: real_read(other))
        with pytest.raises(InvalidInput) as caught:
            services.replace_card(
                old.card_no, new_card_no=CARD_NOS[1], read_old_card=True, actor=clerk
            )

    (issue,) = caught.value.issues
    assert (issue.field, issue.code) == ("old_card", "wrong_card")
    assert old.card_no in issue.message
    assert state() == before


class EmptyReader:
    """The counter's reader with no card in it."""

    def transmit(self, apdu: bytes) -> bytes:
        raise TransportError("no card in the reader")


def test_no_card_in_the_reader_is_refused_and_nothing_changes(clerk, stock, approved):
    old = topped_up(clerk, approved, 8_800)
    before = state()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(devices, "open_unit", lambda unit: EmptyReader())
        with pytest.raises(InvalidInput) as caught:
            services.replace_card(
                old.card_no, new_card_no=CARD_NOS[1], read_old_card=True, actor=clerk
            )

    (issue,) = caught.value.issues
    assert (issue.field, issue.code) == ("old_card", "unreadable")
    assert "no card in the reader" in issue.message
    assert state() == before
