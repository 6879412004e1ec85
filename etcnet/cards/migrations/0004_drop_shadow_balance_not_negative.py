"""The shadow balance may run below zero (issue 14).

A purchase whose TAC verifies is posted for what the card paid, whatever the
center expected, so `CardUnit.shadow_balance_fen` — the center's running copy of
the card's purse — may fall below zero ("the card spent money the center has not
matched yet", dispute 14). The CHECK `card_shadow_balance_not_negative` goes; the
counter's services still never make a negative balance by themselves.

On SQLite this rebuilds `cards_cardunit` only (no trigger lives on it); the
ledger triggers of 0003 on `cards_posting` / `cards_journalentry` are untouched
(`cards/tests/test_shadow_balance_database.py`).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("cards", "0003_ledger_triggers"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="cardunit",
            name="card_shadow_balance_not_negative",
        ),
    ]
