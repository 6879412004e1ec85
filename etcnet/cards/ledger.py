"""The double-entry ledger behind every money movement.

`post` writes one balanced journal entry and moves the cached balances (ledger
accounts and, for purse accounts, the card's shadow balance) in the same
transaction, locking the affected accounts in primary-key order so concurrent
postings cannot deadlock or lose an update. Entries are never edited; `reverse`
posts the mirror image. `check` proves the caches equal the postings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.utils import timezone

from etcnet.cards.models import (
    CardUnit,
    EntryKind,
    JournalEntry,
    LedgerAccount,
    LedgerKind,
    Posting,
)
from etcnet.core import bulk

# Chart of accounts: fixed codes and the per-card / per-outlet families.
LOADS_PENDING = "loads_pending"  # received, not yet on a card
SETTLEMENTS_HELD = "settlements_held"  # cancelled or replaced cards' balances in the dispute period
REFUNDS_PAYABLE = "refunds_payable"
TOLLS_PAYABLE = "tolls_payable"  # purse money spent on tolls, owed to road owners
# One tolls-payable account per terminal (`tolls_payable:<terminal>`): a province's
# uploads never queue on one row; clearing rolls them up.
TOLLS_PAYABLE_PREFIX = "tolls_payable:"
BANK = "bank"
MOBILE = "mobile_payment"
# Clearing (etcnet.clearing): what the road owners are due, what the stations'
# cash and the national center owe the center, and what it owes the national center.
OWNER_PAYABLE_PREFIX = "owner_payable:"
LANE_CASH_PREFIX = "lane_cash:"
NATIONAL_RECEIVABLE = "national_receivable"
NATIONAL_PAYABLE = "national_payable"
# The banks (etcnet.exchange.banks): what a bank collected from its debit accounts
# (三方协议) and owes the center until it pays in settlement, and the center's
# account at the settlement bank (全国ETC结算行), through which every transfer goes.
BANK_COLLECTIONS_PREFIX = "bank_collections:"
SETTLEMENT_BANK = "settlement_bank"


def cash_code(outlet_code: str) -> str:
    return f"cash:{outlet_code}"


def purse_code(card_no: str) -> str:
    return f"purse:{card_no}"


def tolls_payable_code(terminal_id: str) -> str:
    """Card money a terminal's lane took, owed to the road owners until clearing."""
    return f"{TOLLS_PAYABLE_PREFIX}{terminal_id}"


def bank_collections_code(bank_id: str) -> str:
    """What a bank collected from its debit accounts, owed to the center until settled."""
    return f"{BANK_COLLECTIONS_PREFIX}{bank_id}"


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
    NATIONAL_RECEIVABLE: LedgerKind.ASSET,
    NATIONAL_PAYABLE: LedgerKind.LIABILITY,
    SETTLEMENT_BANK: LedgerKind.ASSET,
}


class UnbalancedEntry(ValueError):
    pass


def account_kind(code: str) -> LedgerKind:
    if code.startswith(("cash:", "receivable:", LANE_CASH_PREFIX, BANK_COLLECTIONS_PREFIX)):
        return LedgerKind.ASSET
    if code.startswith(("purse:", TOLLS_PAYABLE_PREFIX, OWNER_PAYABLE_PREFIX)):
        return LedgerKind.LIABILITY
    return _KINDS[code]


def account(code: str) -> LedgerAccount:
    """The ledger account for a code, created on first use."""
    found, _ = LedgerAccount.objects.get_or_create(code=code, defaults={"kind": account_kind(code)})
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


@dataclass(frozen=True)
class Entry:
    """One balanced entry of a batch: `lines` are (account code, fen) pairs."""

    kind: EntryKind
    lines: tuple[tuple[str, int], ...]
    memo: str = ""
    idempotency_key: str | None = None


def post_many(
    entries: Sequence[Entry], *, cards: Mapping[str, CardUnit] | None = None
) -> list[int]:
    """Many balanced entries in a few statements, whatever their number: the
    accounts fetched (and made) at once, locked in primary-key order, the entries
    and postings inserted in bulk, and each touched account's balance — and each
    purse's card shadow balance — moved by one UPDATE. Runs inside the caller's
    transaction; the caller locks the cards first (the order every service
    keeps: card, then accounts). `cards` maps a card number to its card, for
    the `purse:<card number>` accounts made on first use. Returns the entries' ids."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger.post_many runs inside the service's transaction")
    for entry in entries:
        amounts = [amount for _, amount in entry.lines]
        if not amounts or sum(amounts) != 0 or 0 in amounts:
            raise UnbalancedEntry(f"entry {entry.kind} does not balance: {amounts}")
    if not entries:
        return []
    codes = sorted({code for entry in entries for code, _ in entry.lines})
    found = _accounts_for(codes, cards or {})
    now = timezone.now()
    made = [
        JournalEntry(
            kind=entry.kind,
            memo=entry.memo[:200],
            created_at=now,
            idempotency_key=entry.idempotency_key,
        )
        for entry in entries
    ]
    # INSERT ... RETURNING: the ids in the one statement (entries are few; the
    # postings, many, go by COPY).
    JournalEntry.objects.bulk_create(made)
    bulk.append_rows(
        Posting,
        ("entry_id", "account_id", "amount_fen"),
        [
            (made_entry.pk, found[code].pk, amount)
            for made_entry, entry in zip(made, entries, strict=True)
            for code, amount in entry.lines
        ],
    )
    totals: dict[int, int] = defaultdict(int)
    for entry in entries:
        for code, amount in entry.lines:
            totals[found[code].pk] += amount
    moved = {pk: delta for pk, delta in totals.items() if delta}
    bulk.add_by_pk(LedgerAccount, "balance_fen", moved)
    purses: dict[int, int] = {}
    for code in codes:
        card_id = found[code].card_id
        if card_id is not None and found[code].pk in moved:
            purses[card_id] = -moved[found[code].pk]
    # A purse is a liability: a credit (negative posting) raises the card's balance.
    bulk.add_by_pk(CardUnit, "shadow_balance_fen", purses)
    return [made_entry.pk for made_entry in made]


def _accounts_for(codes: Sequence[str], cards: Mapping[str, CardUnit]) -> dict[str, LedgerAccount]:
    """The accounts of `codes`, locked in primary-key order (rows are locked as
    the sorted scan returns them), made in bulk where missing (a race with
    another process making the same account is settled by the unique code; a
    deadlock it may cause is the database's to break, and the service's caller
    runs again)."""
    found = {
        a.code: a
        for a in LedgerAccount.objects.select_for_update().filter(code__any=codes).order_by("pk")
    }
    missing = [code for code in codes if code not in found]
    if missing:
        LedgerAccount.objects.bulk_create(
            [
                LedgerAccount(
                    code=code,
                    kind=account_kind(code),
                    card=cards.get(code[len("purse:") :]) if code.startswith("purse:") else None,
                )
                for code in missing
            ],
            ignore_conflicts=True,
        )
        made = LedgerAccount.objects.select_for_update().filter(code__in=missing).order_by("pk")
        found.update({a.code: a for a in made})
    return found


def reverse(entry: JournalEntry, *, actor: Any, memo: str = "") -> JournalEntry:
    """The mirror image of an entry; the original stays as it was."""
    lines = [Line(p.account, -p.amount_fen) for p in entry.postings.select_related("account")]
    return post(
        EntryKind.REVERSAL, lines, actor=actor, memo=memo or f"reverses {entry.pk}", reverses=entry
    )


def tolls_payable_total() -> int:
    """What every terminal's tolls-payable account holds together (a liability: negative)."""
    total = LedgerAccount.objects.filter(
        Q(code=TOLLS_PAYABLE) | Q(code__startswith=TOLLS_PAYABLE_PREFIX)
    ).aggregate(total=Sum("balance_fen"))["total"]
    return int(total or 0)


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
