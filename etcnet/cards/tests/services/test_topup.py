"""Top-up (圈存): the two transactions, idempotency keys, and cards pulled out, lost
answers and garbled TACs in between.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from etcnet.cards import devices, ledger, services, vault
from etcnet.cards.errors import (
    CardFault,
    IdempotencyConflict,
    LoadInterrupted,
    MacRejected,
    TopUpPending,
)
from etcnet.cards.models import CardUnit, TopUp, TopUpStatus
from etcnet.cards.tests.conftest import CARD_NOS
from etcnet.cards.tests.services import (
    DEBIT,
    CorruptTac,
    LostAnswer,
    PulledOut,
    active,
    pending_top_up,
    state,
)
from etcnet.core.errors import InvalidInput
from etcnet.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_top_up_of_100_yuan_lands_on_the_card_and_in_the_ledger(clerk, stock, approved):
    binding = active(clerk, approved)

    top = services.top_up(
        binding.card.card_no, amount_fen=10_000, channel="cash", idempotency_key="k1", actor=clerk
    )

    assert top.status == TopUpStatus.LOADED
    assert len(top.tac) == 8
    assert devices.read_card(binding.card).balance == 10_000
    card = CardUnit.objects.get(pk=binding.card_id)
    assert card.shadow_balance_fen == 10_000
    assert ledger.balance("cash:610101001") == 10_000
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.balance(ledger.purse_code(card.card_no)) == -10_000
    assert ledger.check() == []
    loaded = AuditEvent.objects.get(action="cards.top_up_loaded")
    assert (loaded.before, loaded.after["balance_fen"]) == ({"balance_fen": 0}, 10_000)


def test_the_same_top_up_key_twice_loads_once(clerk, stock, approved):
    binding = active(clerk, approved)
    first = services.top_up(
        binding.card.card_no, amount_fen=5_000, channel="cash", idempotency_key="same", actor=clerk
    )
    again = services.top_up(
        binding.card.card_no, amount_fen=5_000, channel="cash", idempotency_key="same", actor=clerk
    )
    assert first.pk == again.pk
    assert devices.read_card(binding.card).balance == 5_000


def test_top_up_with_a_card_the_vault_does_not_know_credits_nothing(
    clerk, stock, approved, tmp_path
):
    binding = active(clerk, approved)
    # The vault's keys change under the card (a card issued by someone else).
    other = tmp_path / "other-keys.json"
    vault.generate_key_file(other)
    settings.ETCNET_KEYS_FILE = str(other)
    vault.reset_cache()
    before = state()

    with pytest.raises(MacRejected):
        services.top_up(
            binding.card.card_no,
            amount_fen=10_000,
            channel="cash",
            idempotency_key="x",
            actor=clerk,
        )

    after = state()
    # The card counted a VERIFY PIN and an INITIALIZE; no money anywhere.
    assert {k: v for k, v in after.items() if k != "files"} == {
        k: v for k, v in before.items() if k != "files"
    }
    assert devices.read_card(binding.card).balance == 0


def test_card_pulled_out_before_the_credit_leaves_a_safe_pending_top_up(
    clerk, stock, approved, monkeypatch
):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: PulledOut(real_open(unit)))

    with pytest.raises(LoadInterrupted):
        services.top_up(
            binding.card.card_no,
            amount_fen=10_000,
            channel="cash",
            idempotency_key="p",
            actor=clerk,
        )

    # the money is recorded as received, not on the card; the ledger balances
    top = TopUp.objects.get()
    assert top.status == TopUpStatus.PENDING
    assert CardUnit.objects.get(pk=binding.card_id).shadow_balance_fen == 0
    assert devices.read_card(binding.card).balance == 0
    assert ledger.balance(ledger.LOADS_PENDING) == -10_000
    assert ledger.check() == []

    # the card is put back: the retry finishes it, once
    monkeypatch.setattr(devices, "open_unit", real_open)
    done = services.retry_top_up(top.pk, actor=clerk)
    assert done.status == TopUpStatus.LOADED
    assert devices.read_card(binding.card).balance == 10_000
    assert services.retry_top_up(top.pk, actor=clerk).status == TopUpStatus.LOADED
    assert devices.read_card(binding.card).balance == 10_000
    assert ledger.check() == []


def test_a_pending_top_up_the_card_never_took_can_be_refunded(clerk, stock, approved, monkeypatch):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: PulledOut(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        services.top_up(
            binding.card.card_no, amount_fen=3_000, channel="cash", idempotency_key="r", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)

    refunded = services.refund_pending_top_up(TopUp.objects.get().pk, actor=clerk)

    assert refunded.status == TopUpStatus.REFUNDED
    assert ledger.balance("cash:610101001") == 0
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.check() == []


def test_debit_cards_are_not_topped_up(clerk, stock, approved):
    binding = active(clerk, approved, card_type=DEBIT)
    before = state()
    with pytest.raises(Exception, match="Some fields"):
        services.top_up(
            binding.card.card_no, amount_fen=100, channel="cash", idempotency_key="d", actor=clerk
        )
    assert state() == before


@pytest.mark.parametrize("amount", [0, -5, 5_000_001])
def test_top_up_amount_must_be_sensible(clerk, stock, approved, amount):
    binding = active(clerk, approved)
    before = state()
    with pytest.raises(Exception, match="Some fields"):
        services.top_up(
            binding.card.card_no,
            amount_fen=amount,
            channel="cash",
            idempotency_key="a",
            actor=clerk,
        )
    assert state() == before


def test_no_second_top_up_starts_while_one_is_pending(clerk, stock, approved, monkeypatch):
    binding = active(clerk, approved)
    card_no = binding.card.card_no
    pending_top_up(clerk, card_no, 10_000, "a", monkeypatch)
    before = state()

    with pytest.raises(TopUpPending):
        services.top_up(
            card_no, amount_fen=20_000, channel="cash", idempotency_key="b", actor=clerk
        )

    assert state() == before


def test_a_load_whose_answer_was_lost_is_confirmed_from_the_card_log(
    clerk, stock, approved, monkeypatch
):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: LostAnswer(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        services.top_up(
            binding.card.card_no, amount_fen=6_000, channel="cash", idempotency_key="l", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    top = TopUp.objects.get()
    assert devices.read_card(binding.card).balance == 6_000  # the card has it
    assert CardUnit.objects.get(pk=binding.card_id).shadow_balance_fen == 0  # the center not yet

    done = services.retry_top_up(top.pk, actor=clerk)

    assert done.status == TopUpStatus.LOADED
    assert devices.read_card(binding.card).balance == 6_000  # not credited twice
    assert CardUnit.objects.get(pk=binding.card_id).shadow_balance_fen == 6_000
    event = AuditEvent.objects.filter(action="cards.top_up_loaded").last()
    assert event.after["confirmed_from_card_log"]["amount"] == 6_000
    assert ledger.check() == []


def test_a_refund_is_refused_once_the_card_took_the_load(clerk, stock, approved, monkeypatch):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: LostAnswer(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        services.top_up(
            binding.card.card_no, amount_fen=3_000, channel="cash", idempotency_key="f", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    before = state()

    with pytest.raises(CardFault):
        services.refund_pending_top_up(TopUp.objects.get().pk, actor=clerk)

    assert {k: v for k, v in state().items() if k != "files"} == {
        k: v for k, v in before.items() if k != "files"
    }


def test_a_wrong_tac_credits_nothing_and_the_retry_does_not_either(
    clerk, stock, approved, monkeypatch
):
    binding = active(clerk, approved)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: CorruptTac(real_open(unit)))
    with pytest.raises(MacRejected):
        services.top_up(
            binding.card.card_no, amount_fen=4_000, channel="cash", idempotency_key="t", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    top = TopUp.objects.get()
    assert top.status == TopUpStatus.PENDING
    assert CardUnit.objects.get(pk=binding.card_id).shadow_balance_fen == 0

    # The card did credit itself (its TAC was garbled on the way): the retry
    # finds that load in the card's log and confirms exactly that one.
    done = services.retry_top_up(top.pk, actor=clerk)
    assert done.status == TopUpStatus.LOADED
    assert devices.read_card(binding.card).balance == 4_000
    assert ledger.check() == []


def test_the_idempotency_key_is_tied_to_its_request(clerk, stock, approved):
    binding = active(clerk, approved)
    services.top_up(
        binding.card.card_no, amount_fen=1_000, channel="cash", idempotency_key="k", actor=clerk
    )
    before = state()

    with pytest.raises(IdempotencyConflict):
        services.top_up(
            binding.card.card_no, amount_fen=9_999, channel="cash", idempotency_key="k", actor=clerk
        )
    with pytest.raises(InvalidInput):
        services.top_up(
            binding.card.card_no, amount_fen=1_000, channel="cash", idempotency_key="", actor=clerk
        )

    assert state() == before


def test_a_card_with_a_pending_top_up_is_not_cancelled_or_replaced(
    clerk, stock, approved, monkeypatch
):
    binding = active(clerk, approved)
    pending_top_up(clerk, binding.card.card_no, 2_000, "p", monkeypatch)
    before = state()

    with pytest.raises(TopUpPending):
        services.cancel(binding.card.card_no, obu_returned=True, actor=clerk)
    with pytest.raises(TopUpPending):
        services.replace_card(binding.card.card_no, new_card_no=CARD_NOS[1], actor=clerk)

    assert state() == before
