"""The database itself keeps the ledger balanced and append-only (django-hordak).

PostgreSQL refuses at commit an entry whose postings do not sum to zero, or an
entry without postings (deferred constraint triggers); on both databases triggers
refuse UPDATE and DELETE of postings and journal entries, whether the SQL is raw
or comes from `QuerySet.update()` / `.delete()`. `ledger.check()` is set-based:
it reads only the rows that break an invariant.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from etcnet.cards import ledger
from etcnet.cards.models import CardUnit, EntryKind, JournalEntry, LedgerAccount, Posting

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite cannot defer a trigger to the commit"
)
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="what SQLite lacks")


class _Undo(Exception):
    pass


@contextmanager
def undone() -> Iterator[None]:
    """Runs the block in a savepoint that is rolled back afterwards: a broken entry
    made on purpose never reaches the end of the test, where Django's
    `SET CONSTRAINTS ALL IMMEDIATE` would run PostgreSQL's deferred checks."""
    try:
        with transaction.atomic():
            yield
            raise _Undo
    except _Undo:
        pass


def refused() -> Any:
    """The statement fails with IntegrityError inside its own savepoint, so the test's
    transaction stays usable (PostgreSQL aborts a transaction on an error)."""

    @contextmanager
    def block() -> Iterator[None]:
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            yield

    return block()


def post_top_up(amount_fen: int = 500) -> JournalEntry:
    with transaction.atomic():
        return ledger.post(
            EntryKind.TOP_UP_RECEIVED,
            ledger.lines(
                (ledger.account(ledger.BANK), amount_fen),
                (ledger.account(ledger.LOADS_PENDING), -amount_fen),
            ),
            actor=None,
        )


def raw(statement: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def new_entry_row(kind: str = EntryKind.TOP_UP_RECEIVED) -> int:
    """A journal entry row inserted by raw SQL; its id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cards_journalentry (kind, memo, created_at) VALUES (%s, '', %s)",
            [kind, timezone.now()],
        )
        return int(JournalEntry.objects.order_by("-pk").values_list("pk", flat=True)[0])


def snapshot() -> list[tuple[Any, ...]]:
    return list(
        Posting.objects.order_by("pk").values_list("pk", "entry_id", "account_id", "amount_fen")
    ) + list(JournalEntry.objects.order_by("pk").values_list("pk", "kind", "memo"))


# --- append-only: postings and journal entries -----------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["raw SQL", "QuerySet"])
def test_a_posting_cannot_be_updated(how):
    entry = post_top_up(500)
    posting = entry.postings.order_by("pk").first()
    before = snapshot()

    with refused():
        if how == "raw SQL":
            raw("UPDATE cards_posting SET amount_fen = 600 WHERE id = %s", [posting.pk])
        else:
            Posting.objects.filter(pk=posting.pk).update(amount_fen=600)

    assert snapshot() == before
    assert ledger.check() == []


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["raw SQL", "QuerySet"])
def test_a_posting_cannot_be_deleted(how):
    entry = post_top_up(500)
    before = snapshot()

    with refused():
        if how == "raw SQL":
            raw("DELETE FROM cards_posting WHERE entry_id = %s", [entry.pk])
        else:
            Posting.objects.filter(entry=entry).delete()

    assert snapshot() == before
    assert ledger.check() == []


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["raw SQL", "QuerySet"])
def test_a_journal_entry_cannot_be_updated(how):
    entry = post_top_up(500)
    before = snapshot()

    with refused():
        if how == "raw SQL":
            raw("UPDATE cards_journalentry SET memo = 'edited' WHERE id = %s", [entry.pk])
        else:
            JournalEntry.objects.filter(pk=entry.pk).update(memo="edited")

    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["raw SQL", "QuerySet"])
def test_a_journal_entry_cannot_be_deleted(how):
    post_top_up(500)
    with undone():
        # An entry without postings, so that no foreign key stops the ORM first
        # (it refuses to delete an entry with postings: on_delete=PROTECT).
        bare = JournalEntry.objects.create(kind=EntryKind.REVERSAL, created_at=timezone.now())
        before = snapshot()

        with refused():
            if how == "raw SQL":
                raw("DELETE FROM cards_journalentry WHERE id = %s", [bare.pk])
            else:
                JournalEntry.objects.filter(pk=bare.pk).delete()

        assert snapshot() == before


@pytest.mark.django_db
def test_a_correction_is_a_reversing_entry_which_the_triggers_allow():
    entry = post_top_up(500)

    with transaction.atomic():
        reversal = ledger.reverse(entry, actor=None)

    assert sorted(reversal.postings.values_list("amount_fen", flat=True)) == [-500, 500]
    assert ledger.balance(ledger.BANK) == 0
    assert ledger.balance(ledger.LOADS_PENDING) == 0
    assert ledger.check() == []


# --- PostgreSQL: a deferred constraint trigger balances every entry at commit -------


def write_entry(how: str, *amounts: int) -> int:
    """One journal entry with a posting of each amount (alternately on `bank` and
    `loads_pending`), written by raw SQL or by the ORM, not through `ledger.post`."""
    accounts = [ledger.account(ledger.BANK), ledger.account(ledger.LOADS_PENDING)]
    if how == "raw SQL":
        entry_id = new_entry_row()
        for index, amount in enumerate(amounts):
            raw(
                "INSERT INTO cards_posting (entry_id, account_id, amount_fen) VALUES (%s, %s, %s)",
                [entry_id, accounts[index % 2].pk, amount],
            )
        return entry_id
    entry = JournalEntry.objects.create(kind=EntryKind.TOP_UP_RECEIVED, created_at=timezone.now())
    Posting.objects.bulk_create(
        Posting(entry=entry, account=accounts[index % 2], amount_fen=amount)
        for index, amount in enumerate(amounts)
    )
    return entry.pk


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["raw SQL", "ORM"])
def test_postgresql_refuses_to_commit_an_unbalanced_entry(how):
    with (
        pytest.raises(IntegrityError, match=r"does not balance: its postings sum to 100 fen"),
        transaction.atomic(),
    ):
        write_entry(how, 300, -200)

    assert JournalEntry.objects.count() == 0
    assert Posting.objects.count() == 0


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["raw SQL", "ORM"])
def test_postgresql_refuses_to_commit_an_entry_without_postings(how):
    with pytest.raises(IntegrityError, match=r"has no postings"), transaction.atomic():
        write_entry(how)

    assert JournalEntry.objects.count() == 0


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_postgresql_commits_a_balanced_entry_written_in_raw_sql():
    with transaction.atomic():
        write_entry("raw SQL", 300, -300)

    assert sorted(Posting.objects.values_list("amount_fen", flat=True)) == [-300, 300]


@postgresql_only
@pytest.mark.django_db
def test_postgresql_checks_the_balance_at_set_constraints_immediate():
    with undone():
        write_entry("raw SQL", 700)
        with (
            pytest.raises(IntegrityError, match=r"does not balance: its postings sum to 700 fen"),
            transaction.atomic(),
        ):
            raw("SET CONSTRAINTS ALL IMMEDIATE", [])

    assert Posting.objects.count() == 0


def pending_notes() -> int:
    """Entries noted for the balance check at commit and not checked yet."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cards_ledger_pending")
        return int(cursor.fetchone()[0])


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_a_posting_added_later_to_a_committed_entry():
    with transaction.atomic():
        entry_id = write_entry("raw SQL", 300, -300)
    assert pending_notes() == 0  # checked at commit, the note removed

    with (
        pytest.raises(IntegrityError, match=r"does not balance: its postings sum to 50 fen"),
        transaction.atomic(),
    ):
        raw(
            "INSERT INTO cards_posting (entry_id, account_id, amount_fen) VALUES (%s, %s, %s)",
            [entry_id, ledger.account(ledger.BANK).pk, 50],
        )

    assert sorted(Posting.objects.values_list("amount_fen", flat=True)) == [-300, 300]
    assert pending_notes() == 0


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_postgresql_checks_each_entry_of_one_statement_once_and_names_the_bad_one():
    bank, pending = ledger.account(ledger.BANK), ledger.account(ledger.LOADS_PENDING)
    with transaction.atomic():
        good = [
            JournalEntry.objects.create(kind=EntryKind.TOP_UP_RECEIVED, created_at=timezone.now())
            for _ in range(2)
        ]
        Posting.objects.bulk_create(
            Posting(entry=entry, account=account, amount_fen=amount)
            for entry in good
            for account, amount in ((bank, 100), (pending, -100))
        )
    assert Posting.objects.count() == 4

    def three_entries_one_short() -> None:
        entries = [
            JournalEntry.objects.create(kind=EntryKind.TOP_UP_RECEIVED, created_at=timezone.now())
            for _ in range(3)
        ]
        Posting.objects.bulk_create(
            Posting(entry=entry, account=account, amount_fen=amount)
            for entry, (a, b) in zip(entries, ((100, -100), (107, -100), (5, -5)), strict=True)
            for account, amount in ((bank, a), (pending, b))
        )

    with (
        pytest.raises(IntegrityError, match=r"does not balance: its postings sum to 7 fen"),
        transaction.atomic(),
    ):
        three_entries_one_short()

    assert Posting.objects.count() == 4
    assert JournalEntry.objects.count() == 2
    assert pending_notes() == 0


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_sqlite_commits_an_unbalanced_entry_and_ledger_check_reports_it():
    # What SQLite does not hold: it cannot defer a trigger to the commit, so only
    # `ledger.post` (which refuses before writing) and `ledger check` guard the sum.
    with transaction.atomic():
        entry_id = write_entry("raw SQL", 700)

    assert ledger.check() == [
        f"entry {entry_id} sums to 700 fen",
        "account bank: cached 0 fen, postings 700 fen",
        "all postings sum to 700 fen",
    ]


# --- the test flush still empties the append-only tables ---------------------------


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_ledger_and_leaves_the_triggers_armed():
    post_top_up(500)
    post_top_up(700)

    call_command("flush", verbosity=0, interactive=False)

    assert Posting.objects.count() == 0
    assert JournalEntry.objects.count() == 0
    entry = post_top_up(900)
    with refused():
        Posting.objects.filter(entry=entry).delete()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM core_append_only_guard")
            assert cursor.fetchone() == (0,)


# --- ledger check: set-based ------------------------------------------------------


@pytest.fixture
def fetched(monkeypatch: Any) -> list[int]:
    """The number of rows each fetch moved from the database into Python."""
    counts: list[int] = []

    def counting(name: str) -> Any:
        def method(self: CursorWrapper, *args: Any) -> Any:
            result = getattr(self.cursor, name)(*args)
            if name == "fetchone":
                counts.append(0 if result is None else 1)
            else:
                counts.append(len(result))
            return result

        return method

    for name in ("fetchone", "fetchmany", "fetchall"):
        monkeypatch.setattr(CursorWrapper, name, counting(name), raising=False)
    return counts


@pytest.mark.django_db
def test_ledger_check_reads_only_the_rows_that_break_an_invariant(stock, fetched):
    # given 6 cards (3 with a purse) and 40 cash accounts, all consistent
    cards = list(CardUnit.objects.order_by("pk"))
    for index, card in enumerate(cards[:3]):
        with transaction.atomic():
            ledger.post(
                EntryKind.TOP_UP_LOADED,
                ledger.lines(
                    (ledger.account(ledger.LOADS_PENDING), 100 * (index + 1)),
                    (ledger.purse_account(card), -100 * (index + 1)),
                ),
            )
            CardUnit.objects.filter(pk=card.pk).update(shadow_balance_fen=100 * (index + 1))
    for outlet in range(40):
        with transaction.atomic():
            ledger.post(
                EntryKind.TOP_UP_RECEIVED,
                ledger.lines(
                    (ledger.account(ledger.cash_code(f"61010{outlet:04d}")), 10),
                    (ledger.account(ledger.LOADS_PENDING), -10),
                ),
            )
    assert LedgerAccount.objects.count() == 44
    fetched.clear()

    # when
    problems = ledger.check()

    # then nothing is wrong and no row crossed into Python
    assert problems == []
    assert sum(fetched) == 0

    # given one card's shadow balance tampered with
    CardUnit.objects.filter(pk=cards[1].pk).update(shadow_balance_fen=1)
    fetched.clear()

    assert ledger.check() == [
        f"card {cards[1].card_no}: shadow balance 1 fen, purse postings 200 fen"
    ]
    assert sum(fetched) == 1


@pytest.mark.django_db
def test_ledger_check_names_every_kind_of_problem_in_order(stock):
    card = CardUnit.objects.order_by("pk").first()
    post_top_up(500)
    with undone():
        unbalanced = write_entry("raw SQL", 7)
        empty = new_entry_row(EntryKind.REVERSAL)
        LedgerAccount.objects.filter(code=ledger.LOADS_PENDING).update(balance_fen=-400)
        CardUnit.objects.filter(pk=card.pk).update(shadow_balance_fen=25)

        assert ledger.check() == [
            f"entry {unbalanced} sums to 7 fen",
            f"entry {empty} has no postings",
            "account bank: cached 500 fen, postings 507 fen",
            "account loads_pending: cached -400 fen, postings -500 fen",
            f"card {card.card_no}: shadow balance 25 fen, purse postings 0 fen",
            "all postings sum to 7 fen",
        ]


@pytest.mark.django_db
def test_ledger_command_reports_a_balanced_ledger():
    post_top_up(500)
    out = io.StringIO()

    call_command("ledger", "check", stdout=out)

    assert out.getvalue() == "ledger balanced: 1 entries, 2 postings\n"


@pytest.mark.django_db
def test_ledger_command_lists_the_problems_and_fails():
    post_top_up(500)
    LedgerAccount.objects.filter(code=ledger.BANK).update(balance_fen=499)
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^ledger check failed: 1 problem\(s\)$"):
        call_command("ledger", "check", stderr=err)

    assert err.getvalue() == "account bank: cached 499 fen, postings 500 fen\n"
