"""Purchases that terminals uploaded: TAC verified, then the purse or account pays.

`post_purchases` posts many verified purchases as one journal entry — one line
per paying account (a stored-value card's purse, a debit account's receivable)
and one for the terminal's tolls payable — and keeps each purchase once as a
`CardPurchase` by the PSAM's terminal number and sequence: the intake's batch
posting. `record_purchase` is the same for one purchase that arrives alone, with
its TAC verified here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from etcnet.cards import ledger, vault
from etcnet.cards.errors import (
    MacRejected,
)
from etcnet.cards.models import (
    CardPurchase,
    CardUnit,
    EntryKind,
    JournalEntry,
)
from etcnet.cards.services._common import (
    _lock_card,
    _wrong_state,
)
from etcnet.core import audit, bulk
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
        existing = (
            CardPurchase.objects.filter(terminal_no=terminal_no, terminal_seq=terminal_seq)
            .select_related("entry")
            .first()
        )
        if existing is not None:
            return existing.entry
        entry_id = post_purchases(
            [Purchase(card, terminal_no, terminal_seq, amount_fen)],
            tolls_code=ledger.TOLLS_PAYABLE,
            memo=f"{card.card_no} {terminal_no}:{terminal_seq}",
            idempotency_key=key,
        )
        entry = JournalEntry.objects.get(pk=entry_id) if entry_id is not None else None
        # A debit card's zero-amount composite purchase only proves the passage;
        # clearing posts its toll from the exit record.
        audit.record(
            actor=actor,
            action="cards.purchase_recorded",
            subject=card,
            after={"amount_fen": amount_fen, "terminal": terminal_no, "seq": terminal_seq},
        )
    return entry


@dataclass(frozen=True)
class Purchase:
    """A purchase whose TAC the vault verified: what the card paid, where."""

    card: CardUnit
    terminal_no: str  # the PSAM's terminal number, hex
    terminal_seq: int
    amount_fen: int


def payer_code(card: CardUnit) -> str:
    """The account a card's purchase is paid from: its purse, or its debit
    account's receivable (owed until the bank settles)."""
    if card.is_stored_value:
        return ledger.purse_code(card.card_no)
    number = card.account.number if card.account_id and card.account else card.card_no
    return ledger.receivable_code(number)


def posted_purchases(terminal_no: str, seqs: Iterable[int]) -> set[int]:
    """The sequences among `seqs` of this PSAM whose purchases are posted already."""
    return set(
        CardPurchase.objects.filter(terminal_no=terminal_no, terminal_seq__any=list(seqs))
        .values_list("terminal_seq", flat=True)
        .order_by()
    )


def post_purchases(
    purchases: Sequence[Purchase],
    *,
    tolls_code: str,
    memo: str,
    idempotency_key: str | None = None,
    owed: Sequence[tuple[str, int]] = (),
) -> int | None:
    """Posts `purchases` (and `owed`: (receivable code, fen) for debit tolls the
    card did not pay on the spot) as one entry against `tolls_code`, and keeps
    each purchase once, a zero-amount one too (without an entry). Runs inside
    the caller's transaction, the cards locked first. The caller leaves out what
    `posted_purchases` names: a purchase kept twice breaks `card_purchase_once`
    (IntegrityError). Returns the entry's id, or None when no money moved."""
    lines: dict[str, int] = defaultdict(int)
    cards: dict[str, CardUnit] = {}
    for purchase in purchases:
        if purchase.amount_fen > 0:
            code = payer_code(purchase.card)
            lines[code] += purchase.amount_fen
            if purchase.card.is_stored_value:
                cards[purchase.card.card_no] = purchase.card
    for code, amount in owed:
        if amount > 0:
            lines[code] += amount
    total = sum(lines.values())
    entry_id: int | None = None
    if total:
        (entry_id,) = ledger.post_many(
            [
                ledger.Entry(
                    EntryKind.PURCHASE,
                    (*sorted(lines.items()), (tolls_code, -total)),
                    memo=memo,
                    idempotency_key=idempotency_key,
                )
            ],
            cards=cards,
        )
    bulk.append_rows(
        CardPurchase,
        ("card_id", "terminal_no", "terminal_seq", "amount_fen", "entry_id"),
        [
            (
                p.card.pk,
                p.terminal_no,
                p.terminal_seq,
                p.amount_fen,
                entry_id if p.amount_fen else None,
            )
            for p in purchases
        ],
    )
    return entry_id
