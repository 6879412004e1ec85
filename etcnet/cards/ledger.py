"""The double-entry ledger behind every money movement.

`post` writes one balanced journal entry and moves the cached balances (ledger
accounts and, for purse accounts, the card's shadow balance) in the same
transaction, locking the affected accounts in primary-key order so concurrent
postings cannot deadlock or lose an update. Entries are never edited; `reverse`
posts the mirror image. `check` proves the caches equal the postings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from etcnet.cards.models import (
    CardUnit,
    EntryKind,
    JournalEntry,
    LedgerAccount,
    LedgerKind,
    Posting,
)

# Chart of accounts: fixed codes and the per-card / per-outlet families.
LOADS_PENDING = "loads_pending"  # received, not yet on a card
SETTLEMENTS_HELD = "settlements_held"  # cancelled or replaced cards' balances in the dispute period
REFUNDS_PAYABLE = "refunds_payable"
TOLLS_PAYABLE = "tolls_payable"  # purse money spent on tolls, owed to road owners
BANK = "bank"
MOBILE = "mobile_payment"


def cash_code(outlet_code: str) -> str:
    return f"cash:{outlet_code}"


def purse_code(card_no: str) -> str:
    return f"purse:{card_no}"


def receivable_code(account_number: str) -> str:
    """What a debit account (记账卡) owes for its tolls until its bank settles."""
    return f"receivable:{account_number}"


_KINDS = {
    LOADS_PENDING: LedgerKind.LIABILITY,
    SETTLEMENTS_HELD: LedgerKind.LIABILITY,
    REFUNDS_PAYABLE: LedgerKind.LIABILITY,
    TOLLS_PAYABLE: LedgerKind.LIABILITY,
    BANK: LedgerKind.ASSET,
    MOBILE: LedgerKind.ASSET,
}


class UnbalancedEntry(ValueError):
    pass


def account(code: str) -> LedgerAccount:
    """The ledger account for a code, created on first use."""
    if code.startswith(("cash:", "receivable:")):
        kind = LedgerKind.ASSET
    elif code.startswith("purse:"):
        kind = LedgerKind.LIABILITY
    else:
        kind = _KINDS[code]
    found, _ = LedgerAccount.objects.get_or_create(code=code, defaults={"kind": kind})
    return found


def purse_account(card: CardUnit) -> LedgerAccount:
    found, _ = LedgerAccount.objects.get_or_create(
        code=purse_code(card.card_no), defaults={"kind": LedgerKind.LIABILITY, "card": card}
    )
    return found


@dataclass(frozen=True)
class Line:
    account: LedgerAccount
    amount_fen: int  # debit positive, credit negative


def post(
    kind: EntryKind,
    lines: Sequence[Line],
    *,
    actor: Any = None,
    memo: str = "",
    idempotency_key: str | None = None,
    reverses: JournalEntry | None = None,
) -> JournalEntry:
    """One balanced entry. Runs inside the caller's transaction.

    Raises `UnbalancedEntry` when the lines do not sum to zero or an amount is
    zero; nothing is written then."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger.post runs inside the service's transaction")
    if not lines or sum(line.amount_fen for line in lines) != 0:
        raise UnbalancedEntry(
            f"entry {kind} does not balance: {[line.amount_fen for line in lines]}"
        )
    if any(line.amount_fen == 0 for line in lines):
        raise UnbalancedEntry("a posting of zero fen")
    # Lock every touched account (and card) in primary-key order.
    ids = sorted({line.account.pk for line in lines})
    locked = {
        a.pk: a for a in LedgerAccount.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    entry = JournalEntry.objects.create(
        kind=kind,
        memo=memo[:200],
        created_at=timezone.now(),
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        idempotency_key=idempotency_key,
        reverses=reverses,
    )
    Posting.objects.bulk_create(
        Posting(entry=entry, account_id=line.account.pk, amount_fen=line.amount_fen)
        for line in lines
    )
    totals: dict[int, int] = defaultdict(int)
    for line in lines:
        totals[line.account.pk] += line.amount_fen
    for account_id in ids:
        delta = totals[account_id]
        LedgerAccount.objects.filter(pk=account_id).update(balance_fen=F("balance_fen") + delta)
        card_id = locked[account_id].card_id
        if card_id is not None:
            # A purse is a liability: a credit (negative posting) raises the card's balance.
            CardUnit.objects.filter(pk=card_id).update(
                shadow_balance_fen=F("shadow_balance_fen") - delta
            )
    return entry


def reverse(entry: JournalEntry, *, actor: Any, memo: str = "") -> JournalEntry:
    """The mirror image of an entry; the original stays as it was."""
    lines = [Line(p.account, -p.amount_fen) for p in entry.postings.select_related("account")]
    return post(
        EntryKind.REVERSAL, lines, actor=actor, memo=memo or f"reverses {entry.pk}", reverses=entry
    )


def balance(code: str) -> int:
    found = LedgerAccount.objects.filter(code=code).values_list("balance_fen", flat=True).first()
    return int(found or 0)


def check() -> list[str]:
    """Every invariant of the ledger; an empty list when all hold.

    Set-based: one aggregate query per invariant, not a loop over entries."""
    problems: list[str] = []
    unbalanced = (
        Posting.objects.values("entry_id").annotate(total=Sum("amount_fen")).exclude(total=0)
    )
    problems += [f"entry {row['entry_id']} sums to {row['total']} fen" for row in unbalanced]
    empty = JournalEntry.objects.filter(postings__isnull=True).values_list("pk", flat=True)
    problems += [f"entry {pk} has no postings" for pk in empty]
    sums = dict(
        Posting.objects.values("account_id")
        .annotate(total=Sum("amount_fen"))
        .values_list("account_id", "total")
    )
    for pk, code, cached in LedgerAccount.objects.values_list("pk", "code", "balance_fen"):
        actual = int(sums.get(pk) or 0)
        if cached != actual:
            problems.append(f"account {code}: cached {cached} fen, postings {actual} fen")
    purses = dict(LedgerAccount.objects.filter(card__isnull=False).values_list("card_id", "pk"))
    for card_id, card_no, shadow in CardUnit.objects.values_list(
        "pk", "card_no", "shadow_balance_fen"
    ):
        account_id = purses.get(card_id)
        expected = -int(sums.get(account_id) or 0) if account_id else 0
        if shadow != expected:
            problems.append(
                f"card {card_no}: shadow balance {shadow} fen, purse postings {expected} fen"
            )
    total = sum(int(v or 0) for v in sums.values())
    if total != 0:
        problems.append(f"all postings sum to {total} fen")
    return problems


def lines(*pairs: tuple[LedgerAccount, int]) -> list[Line]:
    return [Line(acc, amount) for acc, amount in pairs]


def accounts(codes: Iterable[str]) -> list[LedgerAccount]:
    return [account(code) for code in codes]
