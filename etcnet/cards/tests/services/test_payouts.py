"""Payouts (issue 17 §2): a cancelled card's balance, moved to refunds payable
by the settlement after the fund-dispute period, paid to the customer's bank
account — through the service and the `etcnet cards` command."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from etcnet.cards import devices, ledger, services
from etcnet.cards.errors import DisputePeriod, NothingToPay, PayoutDue, PayoutWrongState
from etcnet.cards.models import Account, CardUnit, JournalEntry, Payout, PayoutState
from etcnet.cards.tests.services import active
from etcnet.cards.tests.services.test_late_debits import pay_at_lane
from etcnet.core.errors import InvalidInput
from etcnet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)  # 10:00 in Xi'an
PERIOD = dt.timedelta(days=settings.ETCNET_FUND_DISPUTE_DAYS)
LANE = "610100000099"
BANK = {"bank_name": "中国工商银行", "bank_account_no": "6222020200012345678", "holder_name": ""}


@pytest.fixture
def psam(tmp_path: Path) -> Path:
    path = tmp_path / "lane-psam.json"
    devices.provision_psam(path, terminal_no=LANE)
    return path


def cancelled_with(clerk: Any, approved: Any, amount_fen: int) -> tuple[str, str]:
    """A stored-value card loaded with `amount_fen` and cancelled now: its card
    number and account number."""
    card_no = active(clerk, approved).card.card_no
    services.top_up(
        card_no, amount_fen=amount_fen, channel="cash", idempotency_key="c", actor=clerk
    )
    services.cancel(card_no, obu_returned=True, actor=clerk)
    account = Account.objects.get(cards__card_no=card_no)
    return card_no, account.number


def counts() -> dict[str, int]:
    return {
        "payouts": Payout.objects.count(),
        "entries": JournalEntry.objects.count(),
        "events": AuditEvent.objects.count(),
        "refunds_payable": ledger.balance(ledger.REFUNDS_PAYABLE),
        "bank": ledger.balance(ledger.BANK),
    }


def test_a_cancelled_cards_56_yuan_is_paid_out_only_after_the_dispute_period(
    clerk, operator, stock, approved
):
    with time_machine.travel(START, tick=False) as traveller:
        # given a card cancelled with 56.00
        card_no, number = cancelled_with(clerk, approved, 5_600)
        bank_before = ledger.balance(ledger.BANK)

        # then nothing is payable during the 30 days, even once settle_due runs
        traveller.shift(PERIOD - dt.timedelta(hours=1))
        assert services.settle_due() == 0
        assert services.payouts_due() == []
        with pytest.raises(DisputePeriod) as refused:
            services.make_payout(number, **BANK, actor=clerk)
        assert refused.value.params == {"card": card_no, "date": "2026-12-21"}
        assert Payout.objects.count() == 0

        # when the period has ended and the settlement ran
        traveller.shift(dt.timedelta(hours=2))
        assert services.settle_due() == 1
        assert services.payouts_due() == [services.DuePayout(number, 5_600, (card_no,))]

        # then the clerk makes the due payout for exactly 56.00, to the customer's name
        payout = services.make_payout(number, **BANK, actor=clerk)
        assert (payout.amount_fen, payout.state, payout.holder_name) == (
            5_600,
            PayoutState.DUE,
            approved.customer.name,
        )
        assert list(payout.cards.values_list("card_no", flat=True)) == [card_no]
        assert payout.reference.startswith("PO20261221")
        assert services.payouts_due() == []

        # and the operator marks it paid: Dr refunds_payable / Cr bank
        paid = services.mark_paid(payout.reference, bank_reference="ICBC-0001", actor=operator)
        assert (paid.state, paid.paid_by, paid.bank_reference) == (
            PayoutState.PAID,
            operator,
            "ICBC-0001",
        )
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == 0
    assert ledger.balance(ledger.BANK) == bank_before - 5_600
    assert ledger.check() == []
    assert list(
        AuditEvent.objects.filter(action__startswith="cards.payout").values_list(
            "action", "after__state", "after__bank_account_no"
        )
    ) == [
        ("cards.payout_made", "due", "****5678"),
        ("cards.payout_paid", "paid", "****5678"),
    ]


def test_a_bad_bank_account_number_is_refused_naming_the_field(clerk, stock, approved):
    with time_machine.travel(START, tick=False) as traveller:
        _, number = cancelled_with(clerk, approved, 5_600)
        traveller.shift(PERIOD + dt.timedelta(days=1))
        services.settle_due()
        before = counts()

        with pytest.raises(InvalidInput) as refused:
            services.make_payout(
                number, bank_name="中国工商银行", bank_account_no="62220A", actor=clerk
            )
        assert [issue.field for issue in refused.value.issues] == ["bank_account_no"]
        assert counts() == before

        # through the command too, naming the field
        with pytest.raises(CommandError, match="bank_account_no"):
            call_command(
                "cards", "payout", number, "--bank-name", "工行", "--bank-account", "12",
                "--operator", clerk.username,
            )  # fmt: skip
        assert counts() == before

        # and the next good input goes through
        assert services.make_payout(number, **BANK, actor=clerk).amount_fen == 5_600


def test_a_second_payout_is_refused_while_one_is_due_and_nothing_paid_twice(
    clerk, operator, stock, approved
):
    with time_machine.travel(START, tick=False) as traveller:
        _, number = cancelled_with(clerk, approved, 5_600)
        traveller.shift(PERIOD + dt.timedelta(days=1))
        services.settle_due()
        payout = services.make_payout(number, **BANK, actor=clerk)
        before = counts()

        with pytest.raises(PayoutDue):
            services.make_payout(number, **BANK, actor=clerk)
        assert counts() == before

        # once paid, nothing is left to pay
        services.mark_paid(payout.reference, bank_reference="B1", actor=operator)
        with pytest.raises(NothingToPay):
            services.make_payout(number, **BANK, actor=clerk)


def test_marking_paid_twice_changes_nothing(clerk, operator, stock, approved):
    with time_machine.travel(START, tick=False) as traveller:
        _, number = cancelled_with(clerk, approved, 5_600)
        traveller.shift(PERIOD + dt.timedelta(days=1))
        services.settle_due()
        payout = services.make_payout(number, **BANK, actor=clerk)
        services.mark_paid(payout.reference, bank_reference="B1", actor=operator)
        before = counts()

        again = services.mark_paid(payout.reference, bank_reference="B1", actor=operator)
        assert again.state == PayoutState.PAID
        assert counts() == before
        # another bank reference for a paid payout is refused, nothing changed
        with pytest.raises(PayoutWrongState):
            services.mark_paid(payout.reference, bank_reference="B2", actor=operator)
        assert counts() == before
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == 0
    assert ledger.check() == []


def test_late_debits_are_netted_by_the_settlement_before_the_payout(
    clerk, operator, stock, approved, psam
):
    with time_machine.travel(START, tick=False) as traveller:
        # given a card with 56.00 that paid 12.00 at a lane, cancelled before the
        # lane's record arrived
        card_no = active(clerk, approved).card.card_no
        services.top_up(card_no, amount_fen=5_600, channel="cash", idempotency_key="c", actor=clerk)
        upload = pay_at_lane(CardUnit.objects.get(card_no=card_no), psam, 1_200)
        services.cancel(card_no, obu_returned=True, actor=clerk)
        services.record_purchase(card_no, **upload, actor=clerk)
        number = Account.objects.get(cards__card_no=card_no).number

        # when the period ends
        traveller.shift(PERIOD + dt.timedelta(days=1))
        services.settle_due()

        # then the payout is what the card really held: 44.00
        assert services.payouts_due() == [services.DuePayout(number, 4_400, (card_no,))]
        payout = services.make_payout(number, **BANK, actor=clerk)
        assert payout.amount_fen == 4_400
        services.mark_paid(payout.reference, bank_reference="B1", actor=operator)
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == 0
    assert ledger.check() == []


def test_the_command_lists_makes_and_pays(clerk, operator, stock, approved):
    with time_machine.travel(START, tick=False) as traveller:
        card_no, number = cancelled_with(clerk, approved, 5_600)
        traveller.shift(PERIOD + dt.timedelta(days=1))
        services.settle_due()

        out = StringIO()
        call_command("cards", "payouts", "--due", stdout=out)
        assert out.getvalue() == f"{number}\t56.00\t{card_no}\n"

        out = StringIO()
        call_command(
            "cards", "payout", number, "--bank-name", "中国工商银行",
            "--bank-account", "6222 0202 0001 2345 678", "--holder", "张三",
            "--operator", clerk.username, stdout=out,
        )  # fmt: skip
        payout = Payout.objects.get()
        assert (payout.holder_name, payout.bank_account_no) == ("张三", "6222020200012345678")
        assert out.getvalue() == f"payout {payout.reference} due: 56.00 to 中国工商银行 ****5678\n"

        with pytest.raises(CommandError, match="may not"):
            call_command(
                "cards", "paid", payout.reference, "--bank-reference", "B1",
                "--operator", clerk.username,
            )  # fmt: skip
        for _ in range(2):
            call_command(
                "cards", "paid", payout.reference, "--bank-reference", "B1",
                "--operator", operator.username, stdout=StringIO(),
            )  # fmt: skip
    assert Payout.objects.get().state == PayoutState.PAID
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == 0
    assert ledger.check() == []


def test_a_cancelled_payout_leaves_the_refund_payable_again(clerk, operator, stock, approved):
    with time_machine.travel(START, tick=False) as traveller:
        card_no, number = cancelled_with(clerk, approved, 5_600)
        traveller.shift(PERIOD + dt.timedelta(days=1))
        services.settle_due()
        wrong = services.make_payout(number, **BANK, actor=clerk)

        # when the clerk withdraws it (the customer gave a wrong account)
        cancelled = services.cancel_payout(wrong.reference, actor=clerk)
        assert cancelled.state == PayoutState.CANCELLED
        assert services.payouts_due() == [services.DuePayout(number, 5_600, (card_no,))]
        with pytest.raises(PayoutWrongState):
            services.mark_paid(wrong.reference, bank_reference="B1", actor=operator)

        # then a new payout pays it once
        right = services.make_payout(
            number, bank_name="中国银行", bank_account_no="6216610200016587010", actor=clerk
        )
        services.mark_paid(right.reference, bank_reference="B1", actor=operator)
        with pytest.raises(PayoutWrongState):
            services.cancel_payout(right.reference, actor=clerk)
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == 0
    assert ledger.check() == []
    assert AuditEvent.objects.filter(action="cards.payout_cancelled").count() == 1


def test_the_card_page_lists_its_payouts_in_chinese(clerk, operator, stock, approved):
    with time_machine.travel(START, tick=False) as traveller:
        card_no, number = cancelled_with(clerk, approved, 5_600)
        traveller.shift(PERIOD + dt.timedelta(days=1))
        services.settle_due()
        payout = services.make_payout(number, **BANK, actor=clerk)
        services.mark_paid(payout.reference, bank_reference="B1", actor=operator)

    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(clerk)
    page = client.get(f"/cards/cards/{card_no}/").content.decode()
    assert "退费支付" in page
    assert payout.reference in page
    assert "56.00" in page
    assert "中国工商银行 ****5678" in page
    assert "6222020200012345678" not in page
    assert "已付" in page
