"""Migration cards.0004: the shadow balance may run below zero (issue 14), and
dropping its CHECK leaves the ledger's triggers armed.

On SQLite, removing a constraint rebuilds the table (create, copy, drop,
rename); a rebuild of `cards_posting` or `cards_journalentry` would drop their
triggers. 0004 rebuilds only `cards_cardunit`: these tests prove the triggers of
0003 are there after migrating forward, and after migrating back and forward
again, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from etcnet.cards import ledger
from etcnet.cards.models import CardPurchase, CardUnit, EntryKind
from etcnet.cards.tests.conftest import CARD_NOS

LEDGER_TABLES = ("cards_posting", "cards_journalentry")
# 0005 checks an entry's balance once per entry, from the noted entries' table.
PENDING_TABLE = "cards_ledger_pending"
TRIGGERS_0004 = {
    "sqlite": {
        "cards_journalentry_no_delete",
        "cards_journalentry_no_update",
        "cards_posting_no_delete",
        "cards_posting_no_update",
    },
    "postgresql": {
        "cards_journalentry_append_only",
        "cards_journalentry_has_postings",
        "cards_posting_append_only",
        "cards_posting_entry_balances",
    },
}
TRIGGERS = {
    "sqlite": TRIGGERS_0004["sqlite"],
    "postgresql": {
        "cards_journalentry_append_only",
        "cards_journalentry_has_postings",
        "cards_posting_append_only",
        "cards_posting_note_entries",
        "cards_posting_entry_balances",  # on cards_ledger_pending
    },
}


def ledger_triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s, %s)",
                LEDGER_TABLES,
            )
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN"
                " (SELECT oid FROM pg_class WHERE relname IN (%s, %s, %s))",
                [*LEDGER_TABLES, PENDING_TABLE],
            )
        return {name for (name,) in cursor.fetchall()}


def negative_shadow_balance_accepted() -> bool:
    """Whether the database takes a card whose shadow balance is below zero."""
    try:
        with transaction.atomic():
            CardUnit.objects.filter(card_no=CARD_NOS[0]).update(shadow_balance_fen=-3_000)
    except IntegrityError:
        return False
    return CardUnit.objects.get(card_no=CARD_NOS[0]).shadow_balance_fen == -3_000


@pytest.fixture
def migrator() -> Iterator[MigrationExecutor]:
    executor = MigrationExecutor(connection)
    yield executor
    # Whatever the test did, the database ends at the latest migrations.
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_the_migrated_database_keeps_the_ledger_triggers_and_takes_a_negative_balance(stock):
    assert ledger_triggers() == TRIGGERS[connection.vendor]
    assert negative_shadow_balance_accepted()


@pytest.mark.django_db(transaction=True)
def test_migrating_0004_back_and_forth_keeps_the_ledger_triggers(migrator):
    migrator.migrate([("cards", "0003_ledger_triggers")])
    assert ledger_triggers() == TRIGGERS_0004[connection.vendor]

    migrator.loader.build_graph()
    migrator.migrate([("cards", "0004_drop_shadow_balance_not_negative")])

    assert ledger_triggers() == TRIGGERS_0004[connection.vendor]


@pytest.mark.django_db(transaction=True)
def test_migrating_0005_back_and_forth_swaps_the_balance_check(migrator):
    migrator.migrate([("cards", "0004_drop_shadow_balance_not_negative")])
    assert ledger_triggers() == TRIGGERS_0004[connection.vendor]

    migrator.loader.build_graph()
    migrator.migrate([("cards", "0005_card_purchases_and_set_based_ledger_checks")])

    assert ledger_triggers() == TRIGGERS[connection.vendor]


@pytest.mark.django_db(transaction=True)  # SQLite's schema editor runs outside atomic()
def test_0004_alters_only_the_cards_table():
    sql = call_command("sqlmigrate", "cards", "0004").lower()

    # SQLite: create new__cards_cardunit, copy, drop, rename, index; PostgreSQL: one
    # ALTER TABLE. Neither names a ledger table.
    touched = set(re.findall(r'(?:table|into|on) "(\w+)"', sql))
    assert touched <= {"cards_cardunit", "new__cards_cardunit"}
    assert "cards_cardunit" in touched
    assert not any(table in sql for table in LEDGER_TABLES)


@pytest.mark.django_db(transaction=True)
def test_0005_keeps_each_earlier_purchase_once(migrator, stock):
    # given a purchase posted alone before 0005, as the intake did (purse → tolls)
    card = CardUnit.objects.get(card_no=CARD_NOS[0])
    migrator.migrate([("cards", "0004_drop_shadow_balance_not_negative")])
    with transaction.atomic():
        entry = ledger.post(
            EntryKind.PURCHASE,
            ledger.lines(
                (ledger.purse_account(card), 300), (ledger.account(ledger.TOLLS_PAYABLE), -300)
            ),
            memo=f"{card.card_no} 610100000099:7",
            idempotency_key="purchase:610100000099:7",
        )

    # when 0005 runs
    migrator.loader.build_graph()
    migrator.migrate([("cards", "0005_card_purchases_and_set_based_ledger_checks")])

    # then the purchase is kept once, so the intake never posts it again
    assert list(
        CardPurchase.objects.values_list(
            "card_id", "terminal_no", "terminal_seq", "amount_fen", "entry_id"
        )
    ) == [(card.pk, "610100000099", 7, 300, entry.pk)]
