"""The lifecycle: loss, suspension, replacement, cancellation, recycling, renewal,
OBU replacement, the bank link — and a randomized run with faults that keeps
the ledger and the cards in agreement.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from conftest import photo
from etcnet.cards import devices, ledger, services
from etcnet.cards.errors import DisputePeriod, LoadInterrupted, TopUpPending, WrongState
from etcnet.cards.models import (
    BindingStatus,
    CardUnit,
    ObuUnit,
    TopUp,
    TopUpStatus,
    UnitKind,
    UnitState,
)
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS, second_car
from etcnet.cards.tests.services import DEBIT, PulledOut, active, state
from etcnet.core.errors import InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.issuance.models import Vehicle, VehicleStatus
from etcnet.lists.models import ListEvent, Medium
from etcnet.smartcard import ops
from etcnet.smartcard.emulator import SoftObu

pytestmark = pytest.mark.django_db


def test_loss_report_takes_effect_at_once_on_the_status_list(clerk, stock, approved):
    binding = active(clerk, approved)

    services.report_loss(binding.card.card_no, reason="客户来电挂失", actor=clerk)

    card = CardUnit.objects.get(pk=binding.card_id)
    assert card.state == UnitState.LOST
    event = ListEvent.objects.get()
    assert (event.medium, event.medium_id, event.list_type, event.status) == (
        "card",
        card.card_no,
        1,
        1,
    )
    assert event.published_at is None

    services.cancel_loss_report(card.card_no, actor=clerk)
    assert CardUnit.objects.get(pk=card.pk).state == UnitState.ACTIVE
    assert list(ListEvent.objects.values_list("list_type", "status")) == [(1, 1), (1, 2)]


def test_loss_report_on_a_cancelled_card_is_refused(clerk, stock, approved):
    binding = active(clerk, approved)
    services.cancel(binding.card.card_no, obu_returned=True, actor=clerk)
    before = state()

    with pytest.raises(WrongState) as caught:
        services.report_loss(binding.card.card_no, actor=clerk)

    assert "已注销" in caught.value.message
    assert state() == before


def test_replacement_moves_the_balance_only_after_the_dispute_period(clerk, stock, approved):
    start = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        binding = active(clerk, approved)
        old_no = binding.card.card_no
        services.top_up(old_no, amount_fen=8_800, channel="cash", idempotency_key="t", actor=clerk)
        services.report_loss(old_no, actor=clerk)

        replacement = services.replace_card(old_no, new_card_no=CARD_NOS[1], actor=clerk)

        old = CardUnit.objects.get(card_no=old_no)
        new = replacement.card
        assert (old.state, new.state) == (UnitState.CANCELLED, UnitState.ACTIVE)
        assert new.is_master
        assert not old.is_master
        assert (old.shadow_balance_fen, new.shadow_balance_fen) == (0, 0)
        assert ledger.balance(ledger.SETTLEMENTS_HELD) == -8_800
        assert devices.read_card(new).f0015.plate == "陕A12345"

        # recycling the old card before the dispute period ends is refused
        before = state()
        with pytest.raises(DisputePeriod):
            services.recycle(UnitKind.CARD, old_no, actor=clerk)
        assert state() == before

        traveller.shift(dt.timedelta(days=29))
        assert services.settle_due() == 0
        traveller.shift(dt.timedelta(days=2))
        assert services.settle_due() == 1
        assert services.settle_due() == 0
        assert ledger.balance(ledger.SETTLEMENTS_HELD) == 0
        assert ledger.balance(ledger.LOADS_PENDING) == -8_800
        assert ledger.check() == []


def test_cancellation_refunds_after_the_dispute_period_and_recycles(clerk, stock, approved):
    start = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        binding = active(clerk, approved)
        card_no = binding.card.card_no
        services.top_up(card_no, amount_fen=2_000, channel="cash", idempotency_key="c", actor=clerk)
        services.cancel(card_no, obu_returned=True, actor=clerk)

        assert Vehicle.objects.get().status == VehicleStatus.CANCELLED
        assert ObuUnit.objects.get(pk=binding.obu_id).state == UnitState.CANCELLED
        traveller.shift(dt.timedelta(days=31))
        services.settle_due()
        assert ledger.balance(ledger.REFUNDS_PAYABLE) == -2_000

        # the OBU is recycled; the card still holds its purse money physically
        recycled = services.recycle(UnitKind.OBU, binding.obu.contract_no, actor=clerk)
        assert recycled.state == UnitState.IN_STOCK
        assert SoftObu.load(devices.path_of(recycled)).tamper_flag == 0
        assert ledger.check() == []


def test_ledger_check_finds_a_tampered_shadow_balance(clerk, stock, approved):
    binding = active(clerk, approved)
    services.top_up(
        binding.card.card_no, amount_fen=1_000, channel="cash", idempotency_key="z", actor=clerk
    )
    CardUnit.objects.filter(pk=binding.card_id).update(shadow_balance_fen=999)

    problems = ledger.check()

    assert problems == [
        f"card {binding.card.card_no}: shadow balance 999 fen, purse postings 1000 fen"
    ]


def test_renewal_writes_the_new_expiry_date_to_the_card(clerk, stock, approved):
    with time_machine.travel(dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC), tick=False):
        binding = active(clerk, approved)
    with time_machine.travel(dt.datetime(2035, 6, 1, 2, 0, tzinfo=dt.UTC), tick=False):
        renewed = services.renew(binding.card.card_no, actor=clerk)
    assert renewed.expiry_date == dt.date(2046, 11, 21)
    assert devices.read_card(renewed).f0015.expiry_date == dt.date(2046, 11, 21)
    assert AuditEvent.objects.filter(action="cards.card_renewed").count() == 1


def test_obu_replacement_needs_a_new_activation(clerk, stock, approved):
    binding = active(clerk, approved)

    replacement = services.replace_obu(
        binding.obu.contract_no, new_contract_no=OBU_NOS[1], actor=clerk
    )

    assert replacement.status == BindingStatus.ISSUED
    assert replacement.card_id == binding.card_id
    assert ObuUnit.objects.get(contract_no=binding.obu.contract_no).state == UnitState.CANCELLED
    assert list(ListEvent.objects.values_list("medium", "list_type", "status")) == [("obu", 3, 1)]
    services.activate(replacement.pk, photo=photo("new obu"), actor=clerk)
    assert ops.read_obu(devices.open_unit(replacement.obu)).activated is True


def test_a_debit_account_is_linked_to_its_bank_account(clerk, stock, approved):
    binding = active(clerk, approved, card_type=DEBIT)
    number = binding.card.account.number

    with pytest.raises(Exception, match="Some fields"):
        services.link_bank_account(number, bank_name="", bank_account_no="12", actor=clerk)
    account = services.link_bank_account(
        number,
        bank_name="中国工商银行西安分行",
        bank_account_no="6222 0212 3456 7890 123",
        actor=clerk,
    )

    assert account.bank_account_no == "6222021234567890123"
    assert account.agreement_signed_at is not None


def test_ledger_and_cards_agree_through_a_randomized_run_with_faults(clerk, stock, monkeypatch):
    import random

    from django.core.management import call_command

    rng = random.Random(20261121)
    real_open = devices.open_unit
    spare = list(CARD_NOS[4:])
    live: list[str] = []
    for n, plate in enumerate(["陕A10001", "陕A10002", "陕A10003", "陕A10004"]):
        application = second_car(clerk, plate=plate, serial=f"60000{n}")
        binding = services.issue(
            application.pk, card_no=CARD_NOS[n], contract_no=OBU_NOS[n], card_type=22, actor=clerk
        )
        services.activate(binding.pk, photo=photo("obu"), actor=clerk)
        live.append(CARD_NOS[n])

    def cards_agree() -> None:
        for card in CardUnit.objects.filter(card_no__in=live):
            assert devices.read_card(card).balance == card.shadow_balance_fen, card.card_no

    interrupted = 0
    for step in range(40):
        card_no = rng.choice(live)
        action = rng.choice(["top_up", "top_up", "pulled", "retry", "loss", "replace", "cancel"])
        try:
            if action in ("top_up", "pulled"):
                if action == "pulled":
                    monkeypatch.setattr(
                        devices, "open_unit", lambda unit: PulledOut(real_open(unit))
                    )
                services.top_up(
                    card_no,
                    amount_fen=rng.randint(1, 50_000),
                    channel=rng.choice(["cash", "bank_transfer", "mobile_payment"]),
                    idempotency_key=f"r{step}",
                    actor=clerk,
                )
            elif action == "retry":
                for top in TopUp.objects.filter(status=TopUpStatus.PENDING):
                    services.retry_top_up(top.pk, actor=clerk)
            elif action == "loss":
                services.report_loss(card_no, actor=clerk)
            elif action == "replace" and spare:
                new = spare.pop()
                services.replace_card(card_no, new_card_no=new, actor=clerk)
                live.remove(card_no)
                live.append(new)
            elif action == "cancel" and len(live) > 1:
                services.cancel(card_no, obu_returned=True, actor=clerk)
                live.remove(card_no)
        except LoadInterrupted:
            interrupted += 1
        except (WrongState, TopUpPending):
            pass  # refused: nothing may have moved, as the checks below prove
        finally:
            monkeypatch.setattr(devices, "open_unit", real_open)
        assert ledger.check() == [], f"after step {step} ({action} on {card_no})"
        cards_agree()
    # The run did real work: money loaded, loads interrupted and finished later.
    assert TopUp.objects.filter(status=TopUpStatus.LOADED).count() >= 5
    assert interrupted >= 2
    assert TopUp.objects.filter(status=TopUpStatus.LOADED, tac__gt="").count() >= 5
    services.settle_due(now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert ledger.check() == []
    call_command("ledger", "check")


def test_a_replaced_cards_balance_is_loaded_onto_the_new_card_after_the_period(
    clerk, stock, approved
):
    start = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        binding = active(clerk, approved)
        old_no = binding.card.card_no
        services.top_up(old_no, amount_fen=8_800, channel="cash", idempotency_key="t", actor=clerk)
        new = services.replace_card(old_no, new_card_no=CARD_NOS[1], actor=clerk).card
        assert TopUp.objects.filter(card=new).count() == 0  # nothing before the period ends

        traveller.shift(dt.timedelta(days=31))
        services.settle_due()

        transfer = TopUp.objects.get(card=new)
        assert (transfer.channel, transfer.status, transfer.amount_fen) == (
            "balance_transfer",
            "pending",
            8_800,
        )
        done = services.retry_top_up(transfer.pk, actor=clerk)
        assert done.status == TopUpStatus.LOADED
        assert devices.read_card(new).balance == 8_800
        assert CardUnit.objects.get(pk=new.pk).shadow_balance_fen == 8_800
        assert ledger.balance(ledger.LOADS_PENDING) == 0
        assert ledger.check() == []


def test_recycled_units_leave_every_list_and_a_purse_is_emptied(clerk, stock, approved):
    start = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        binding = active(clerk, approved)
        card_no, obu_no = binding.card.card_no, binding.obu.contract_no
        services.top_up(card_no, amount_fen=2_000, channel="cash", idempotency_key="c", actor=clerk)
        services.report_loss(card_no, actor=clerk)
        services.cancel(card_no, obu_returned=False, card_returned=False, actor=clerk)
        traveller.shift(dt.timedelta(days=31))
        services.settle_due()

        services.recycle(UnitKind.CARD, card_no, actor=clerk)
        services.recycle(UnitKind.OBU, obu_no, actor=clerk)

    assert services.listed_types(Medium.CARD, card_no) == set()
    assert services.listed_types(Medium.OBU, obu_no) == set()
    recycled = CardUnit.objects.get(card_no=card_no)
    assert recycled.state == UnitState.IN_STOCK
    assert devices.read_card(recycled).balance == 0
    assert devices.read_card(recycled).f0015 is None
    assert ledger.balance(ledger.REFUNDS_PAYABLE) == -2_000
    assert ledger.check() == []


def test_a_returned_card_is_not_listed_on_cancellation_but_a_kept_one_is(clerk, stock, approved):
    first = active(clerk, approved)
    services.cancel(first.card.card_no, obu_returned=True, card_returned=True, actor=clerk)
    assert services.listed_types(Medium.CARD, first.card.card_no) == set()

    other = second_car(clerk)
    second = services.issue(
        other.pk, card_no=CARD_NOS[1], contract_no=OBU_NOS[1], card_type=22, actor=clerk
    )
    services.cancel(second.card.card_no, obu_returned=True, card_returned=False, actor=clerk)
    assert services.listed_types(Medium.CARD, second.card.card_no) == {3}


def test_withdrawing_a_loss_keeps_a_suspension_and_resume_lifts_it(clerk, stock, approved):
    binding = active(clerk, approved)
    card_no = binding.card.card_no
    services.suspend(card_no, reason="欠费", actor=clerk)
    services.report_loss(card_no, actor=clerk)

    services.cancel_loss_report(card_no, actor=clerk)
    assert CardUnit.objects.get(card_no=card_no).state == UnitState.SUSPENDED
    assert services.listed_types(Medium.CARD, card_no) == {2}

    services.resume(card_no, actor=clerk)
    assert CardUnit.objects.get(card_no=card_no).state == UnitState.ACTIVE
    assert services.listed_types(Medium.CARD, card_no) == set()


def test_an_overlong_reason_is_refused_before_anything_changes(clerk, stock, approved):
    binding = active(clerk, approved)
    before = state()
    with pytest.raises(InvalidInput):
        services.report_loss(binding.card.card_no, reason="很" * 201, actor=clerk)
    assert state() == before


def test_replacing_a_card_still_waiting_for_a_balance_is_refused(clerk, stock, approved):
    binding = active(clerk, approved)
    services.top_up(
        binding.card.card_no, amount_fen=1_000, channel="cash", idempotency_key="w", actor=clerk
    )
    new = services.replace_card(binding.card.card_no, new_card_no=CARD_NOS[1], actor=clerk).card
    before = state()

    with pytest.raises(DisputePeriod) as caught:
        services.replace_card(new.card_no, new_card_no=CARD_NOS[2], actor=clerk)
    with pytest.raises(DisputePeriod):
        services.cancel(new.card_no, obu_returned=True, actor=clerk)

    assert binding.card.card_no in caught.value.message
    assert state() == before
