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
from django.db.models import Exists, F, OuterRef, Sum
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

    Set-based: three aggregate queries, each returning only the rows that break an
    invariant — no loop over entries, accounts or cards in Python. In order:
    entries that do not sum to zero, entries without postings, accounts whose
    cached balance differs from their postings, cards whose shadow balance differs
    from their purse's postings (negated: a purse is a liability), and the sum of
    all postings."""
    unbalanced = list(
        Posting.objects.values("entry_id")
        .annotate(total=Sum("amount_fen"))
        .exclude(total=0)
        .order_by("entry_id")
        .values_list("entry_id", "total")
    )
    problems = [f"entry {entry_id} sums to {total} fen" for entry_id, total in unbalanced]
    empty = (
        JournalEntry.objects.filter(~Exists(Posting.objects.filter(entry=OuterRef("pk"))))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    problems += [f"entry {pk} has no postings" for pk in empty]
    problems += _cache_drift()
    # Every posting belongs to an entry, so all postings sum to what the unbalanced
    # entries sum to: no further pass over the postings is needed.
    total = sum(int(row_total) for _, row_total in unbalanced)
    if total != 0:
        problems.append(f"all postings sum to {total} fen")
    return problems


def _cache_drift() -> list[str]:
    """Accounts whose cached balance, and cards whose shadow balance, differ from the
    postings: one pass over the postings (summed per account once, then joined to
    the accounts and, through the purse accounts, to the cards)."""
    connection = transaction.get_connection()
    posting, account, card = (
        connection.ops.quote_name(model._meta.db_table)
        for model in (Posting, LedgerAccount, CardUnit)
    )
    query = f"""
        WITH sums AS (
            SELECT account_id, SUM(amount_fen) AS total FROM {posting} GROUP BY account_id
        )
        SELECT 0, a.id, a.code, a.balance_fen, COALESCE(s.total, 0)
          FROM {account} a LEFT JOIN sums s ON s.account_id = a.id
         WHERE a.balance_fen <> COALESCE(s.total, 0)
        UNION ALL
        SELECT 1, c.id, c.card_no, c.shadow_balance_fen, -COALESCE(s.total, 0)
          FROM {card} c
          LEFT JOIN {account} a ON a.card_id = c.id
          LEFT JOIN sums s ON s.account_id = a.id
         WHERE c.shadow_balance_fen <> -COALESCE(s.total, 0)
        ORDER BY 1, 2
    """
    with connection.cursor() as cursor:
        cursor.execute(query)
        rows = cursor.fetchall()
    return [
        f"account {name}: cached {cached} fen, postings {actual} fen"
        if what == 0
        else f"card {name}: shadow balance {cached} fen, purse postings {actual} fen"
        for what, _, name, cached, actual in rows
    ]


def lines(*pairs: tuple[LedgerAccount, int]) -> list[Line]:
    return [Line(acc, amount) for acc, amount in pairs]


def accounts(codes: Iterable[str]) -> list[LedgerAccount]:
    return [account(code) for code in codes]
