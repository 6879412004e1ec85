"""Purchases kept once each beside batch entries; the ledger's balance check set-based.

`CardPurchase` is the detail of a purchase entry: the intake posts an upload's
purchases as one entry (a line per paying account) and keeps each purchase here,
unique by the PSAM's terminal number and sequence. The per-purchase entries of
earlier uploads (idempotency key `purchase:<terminal>:<seq>`) are copied in.

PostgreSQL: 0003's `cards_posting_entry_balances` ran a deferred check for every
posting row (three trigger calls per purchase). Now a statement-level trigger
notes the entries a statement's postings touched (`cards_ledger_pending`, one
row per entry, set-based from the statement's transition table), and a deferred
constraint trigger on that table checks each noted entry once at commit (or at
`SET CONSTRAINTS ALL IMMEDIATE`), with 0003's message, and removes its note. So
postings of one entry may still come in several statements, and a posting added
later to an old entry is checked as before. `cards_journalentry_has_postings`
stays as it was.
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

# 0003's balance check of one entry and its trigger (one call per posting row).
_0003 = importlib.import_module("etcnet.cards.migrations.0003_ledger_triggers")
ENTRY_BALANCES_0003, TRIGGER_0003 = _0003.POSTGRESQL[0], _0003.POSTGRESQL[1]
assert "RETURN NULL;" in ENTRY_BALANCES_0003 and "ON cards_posting" in TRIGGER_0003

BALANCE_CHECK = [
    "DROP TRIGGER IF EXISTS cards_posting_entry_balances ON cards_posting",
    "DROP FUNCTION IF EXISTS cards_posting_entry_balances()",
    "CREATE TABLE cards_ledger_pending (entry_id bigint PRIMARY KEY)",
    """
CREATE FUNCTION cards_posting_note_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cards_ledger_pending (entry_id)
        SELECT DISTINCT entry_id FROM added_postings
        ON CONFLICT (entry_id) DO NOTHING;
    RETURN NULL;
END
$$
""",
    "CREATE TRIGGER cards_posting_note_entries AFTER INSERT ON cards_posting"
    " REFERENCING NEW TABLE AS added_postings"
    " FOR EACH STATEMENT EXECUTE FUNCTION cards_posting_note_entries()",
    # The same check, once per noted entry, removing the note.
    ENTRY_BALANCES_0003.replace(
        "RETURN NULL;",
        "DELETE FROM cards_ledger_pending WHERE entry_id = NEW.entry_id;\n    RETURN NULL;",
    ),
    "CREATE CONSTRAINT TRIGGER cards_posting_entry_balances AFTER INSERT ON cards_ledger_pending"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cards_posting_entry_balances()",
]

BALANCE_CHECK_REVERSE = [
    "DROP TRIGGER IF EXISTS cards_posting_note_entries ON cards_posting",
    "DROP FUNCTION IF EXISTS cards_posting_note_entries()",
    "DROP TABLE IF EXISTS cards_ledger_pending",
    "DROP FUNCTION IF EXISTS cards_posting_entry_balances()",
    ENTRY_BALANCES_0003,
    TRIGGER_0003,
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement, params=None)

    return run


def copy_purchases(apps, schema_editor):
    """The per-purchase entries of earlier uploads, one `CardPurchase` each."""
    JournalEntry = apps.get_model("cards", "JournalEntry")
    Posting = apps.get_model("cards", "Posting")
    CardUnit = apps.get_model("cards", "CardUnit")
    CardPurchase = apps.get_model("cards", "CardPurchase")
    cards = dict(CardUnit.objects.values_list("card_no", "pk"))
    batch = []
    entries = JournalEntry.objects.filter(kind="purchase", idempotency_key__startswith="purchase:")
    # The payer's line is the entry's positive one (purse or receivable).
    paid = dict(
        Posting.objects.filter(entry__in=entries, amount_fen__gt=0).values_list(
            "entry_id", "amount_fen"
        )
    )
    for entry_id, key, memo in entries.values_list("pk", "idempotency_key", "memo").iterator():
        _, terminal_no, seq = key.split(":")
        card_id = cards.get(memo.split(" ")[0])
        amount = paid.get(entry_id)
        if card_id is None or not amount:
            continue
        batch.append(
            CardPurchase(
                card_id=card_id,
                terminal_no=terminal_no,
                terminal_seq=int(seq),
                amount_fen=amount,
                entry_id=entry_id,
            )
        )
        if len(batch) >= 5000:
            CardPurchase.objects.bulk_create(batch)
            batch = []
    CardPurchase.objects.bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('cards', '0004_drop_shadow_balance_not_negative'),
    ]

    operations = [
        migrations.CreateModel(
            name='CardPurchase',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('terminal_no', models.CharField(max_length=12)),
                ('terminal_seq', models.PositiveBigIntegerField()),
                ('amount_fen', models.BigIntegerField()),
                ('card', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='purchases', to='cards.cardunit')),
                ('entry', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='purchases', to='cards.journalentry')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('terminal_no', 'terminal_seq'), name='card_purchase_once'), models.CheckConstraint(condition=models.Q(('amount_fen__gte', 0), models.Q(('amount_fen', 0), ('entry__isnull', False), _connector='OR')), name='card_purchase_posted')],
            },
        ),
        migrations.RunPython(copy_purchases, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(
            _run(BALANCE_CHECK), _run(BALANCE_CHECK_REVERSE), elidable=False
        ),
    ]
