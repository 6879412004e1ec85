"""Purchases that terminals uploaded: TAC verified, then the purse or account pays."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from etcnet.cards import ledger, vault
from etcnet.cards.errors import (
    MacRejected,
)
from etcnet.cards.models import (
    EntryKind,
    JournalEntry,
)
from etcnet.cards.services._common import (
    _lock_card,
    _wrong_state,
)
from etcnet.core import audit
from etcnet.core.errors import FieldIssue, InvalidInput
from etcnet.core.validators import gettext_noop
from etcnet.smartcard.crypto import Alg


def record_purchase(
    card_no: str,
    *,
    amount_fen: int,
    trans_type: int,
    terminal_no: str,
    terminal_seq: int,
    when: dt.datetime,
    tac: str,
    actor: Any,
) -> JournalEntry | None:
    """A purchase a terminal uploaded: the card's TAC is verified by the vault
    first (no TAC, no debit — a card pulled out before 8054 left none); then a
    stored-value card's purse pays the toll (`purse → tolls payable`), a debit
    card's account owes it (`receivable → tolls payable`, settled by the bank).
    Idempotent by (terminal, terminal sequence): an upload repeated returns the
    first entry. Audits `cards.purchase_recorded`."""
    key = f"purchase:{terminal_no}:{terminal_seq}"
    try:
        tac_bytes = bytes.fromhex(tac)
        terminal = bytes.fromhex(terminal_no)
    except ValueError:
        tac_bytes, terminal = b"", b""
    if len(tac_bytes) != 4 or len(terminal) != 6 or not 0 <= amount_fen <= 0xFFFFFFFF:
        raise InvalidInput(
            issues=[FieldIssue("tac", "invalid", gettext_noop("This value is not valid."))]
        )
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        if card.card_type is None:
            raise _wrong_state(card)
        if not vault.verify_purchase_tac(
            Alg(card.alg),
            card.internal_no,
            amount=amount_fen,
            trans_type=trans_type,
            terminal_no=terminal,
            terminal_seq=terminal_seq.to_bytes(4, "big"),
            when=when,
            tac=tac_bytes,
        ):
            raise MacRejected(params={"what": "TAC"})
        # Only after the TAC: a repeated upload finds its entry, a forged one never does.
        existing = JournalEntry.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return existing
        if card.is_stored_value:
            payer = ledger.purse_account(card)
        else:
            payer = ledger.account(
                ledger.receivable_code(card.account.number if card.account else card.card_no)
            )
        entry: JournalEntry | None = None
        if amount_fen > 0:
            entry = ledger.post(
                EntryKind.PURCHASE,
                ledger.lines(
                    (payer, amount_fen), (ledger.account(ledger.TOLLS_PAYABLE), -amount_fen)
                ),
                actor=actor,
                memo=f"{card.card_no} {terminal_no}:{terminal_seq}",
                idempotency_key=key,
            )
        # A debit card's zero-amount composite purchase only proves the passage;
        # clearing posts its toll from the exit record.
        audit.record(
            actor=actor,
            action="cards.purchase_recorded",
            subject=card,
            after={"amount_fen": amount_fen, "terminal": terminal_no, "seq": terminal_seq},
        )
    return entry
