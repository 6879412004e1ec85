"""Purchases uploaded by terminals: verified by their TAC, paid once."""

from __future__ import annotations

import datetime as dt

import pytest

from etcnet.cards import devices, ledger, services, vault
from etcnet.cards.errors import MacRejected
from etcnet.cards.models import CardUnit
from etcnet.cards.tests.services import active, state
from etcnet.smartcard import ops

pytestmark = pytest.mark.django_db


def test_a_purchase_with_a_provisioned_psam_is_verified_by_the_center(
    clerk, stock, approved, tmp_path
):
    from etcnet.smartcard.crypto import Alg
    from etcnet.smartcard.transport import open_emulated

    binding = active(clerk, approved)
    card_no = binding.card.card_no
    services.top_up(card_no, amount_fen=5_000, channel="cash", idempotency_key="p1", actor=clerk)
    psam_file = tmp_path / "psam.json"
    devices.provision_psam(psam_file, terminal_no="610100000099")

    result = ops.purchase(
        devices.open_unit(binding.card),
        open_emulated(psam_file),
        amount=1_234,
        when=dt.datetime(2026, 11, 21, 12, 0, 0),
    )

    assert (result.balance_before, result.balance_after) == (5_000, 3_766)
    assert vault.verify_purchase_tac(
        Alg.TDES,
        binding.card.internal_no,
        amount=1_234,
        trans_type=result.trans_type,
        terminal_no=result.terminal_no,
        terminal_seq=result.terminal_seq,
        when=result.when,
        tac=result.tac,
    )
    assert not vault.verify_purchase_tac(
        Alg.TDES,
        binding.card.internal_no,
        amount=1_235,
        trans_type=result.trans_type,
        terminal_no=result.terminal_no,
        terminal_seq=result.terminal_seq,
        when=result.when,
        tac=result.tac,
    )


def test_an_uploaded_purchase_debits_the_purse_once_and_only_with_its_tac(
    clerk, stock, approved, tmp_path
):
    from etcnet.smartcard.transport import open_emulated

    binding = active(clerk, approved)
    card_no = binding.card.card_no
    services.top_up(card_no, amount_fen=5_000, channel="cash", idempotency_key="u", actor=clerk)
    psam = tmp_path / "psam.json"
    devices.provision_psam(psam, terminal_no="610100000099")
    when = dt.datetime(2026, 11, 21, 12, 0, 0)
    result = ops.purchase(
        devices.open_unit(binding.card), open_emulated(psam), amount=1_234, when=when
    )
    upload = {
        "amount_fen": 1_234,
        "trans_type": result.trans_type,
        "terminal_no": "610100000099",
        "terminal_seq": int.from_bytes(result.terminal_seq, "big"),
        "when": result.when,
        "tac": result.tac.hex().upper(),
    }
    forged = {**upload, "tac": "00000000"}
    before = state()
    with pytest.raises(MacRejected):
        services.record_purchase(card_no, **forged, actor=clerk)
    assert state() == before

    first = services.record_purchase(card_no, **upload, actor=clerk)
    again = services.record_purchase(card_no, **upload, actor=clerk)

    assert first.pk == again.pk
    card = CardUnit.objects.get(pk=binding.card_id)
    assert card.shadow_balance_fen == 3_766
    assert devices.read_card(card).balance == 3_766
    assert ledger.balance(ledger.TOLLS_PAYABLE) == -1_234
    assert ledger.check() == []
