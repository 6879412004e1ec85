"""The database keeps the ledger balanced and append-only (django-hordak's lesson).

PostgreSQL:
- `cards_posting_entry_balances`, a constraint trigger `AFTER INSERT ON
  cards_posting DEFERRABLE INITIALLY DEFERRED`: at commit (or at `SET CONSTRAINTS
  ALL IMMEDIATE`) every entry that received a posting must sum to zero, else the
  commit fails with `check_violation` (Django: IntegrityError);
- `cards_journalentry_has_postings`, the same kind of trigger on
  `cards_journalentry`: an entry committed without postings is refused;
- postings and journal entries are append-only: `BEFORE UPDATE OR DELETE` row
  triggers run `etcnet_append_only()` (made by `core.0004_audit_append_only`).
  A flush (TRUNCATE) fires none of them.

SQLite cannot defer a trigger to the commit, so nothing there refuses an
unbalanced entry or an entry without postings: `ledger.post` refuses them before
writing, and `etcnet ledger check` finds any that get in. The append-only rule
holds: `BEFORE UPDATE` triggers always raise, `BEFORE DELETE` triggers raise unless
the flush guard `core_append_only_guard` holds its row (see that migration and
`etcnet.core.management.commands.flush`).

A later migration that alters these tables on SQLite rebuilds them and so drops
the triggers: it must run `create_triggers` of this module again afterwards.
"""

from django.db import migrations

GUARD = "core_append_only_guard"
TABLES = {"cards_posting": "postings", "cards_journalentry": "journal entries"}

POSTGRESQL = [
    """
CREATE FUNCTION cards_posting_entry_balances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
BEGIN
    SELECT COALESCE(SUM(amount_fen), 0) INTO total
        FROM cards_posting WHERE entry_id = NEW.entry_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'journal entry % does not balance: its postings sum to % fen',
            NEW.entry_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$
""",
    "CREATE CONSTRAINT TRIGGER cards_posting_entry_balances AFTER INSERT ON cards_posting"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cards_posting_entry_balances()",
    """
CREATE FUNCTION cards_journalentry_has_postings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cards_posting WHERE entry_id = NEW.id) THEN
        RAISE EXCEPTION 'journal entry % has no postings', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$
""",
    "CREATE CONSTRAINT TRIGGER cards_journalentry_has_postings AFTER INSERT ON cards_journalentry"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
    " EXECUTE FUNCTION cards_journalentry_has_postings()",
    *(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION etcnet_append_only()"
        for table in TABLES
    ),
]

POSTGRESQL_REVERSE = [
    *(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in TABLES),
    "DROP TRIGGER IF EXISTS cards_journalentry_has_postings ON cards_journalentry",
    "DROP FUNCTION IF EXISTS cards_journalentry_has_postings()",
    "DROP TRIGGER IF EXISTS cards_posting_entry_balances ON cards_posting",
    "DROP FUNCTION IF EXISTS cards_posting_entry_balances()",
]

SQLITE = [
    statement
    for table, what in TABLES.items()
    for statement in (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{what} are append-only: UPDATE refused'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}"
        f" WHEN NOT EXISTS (SELECT 1 FROM {GUARD})"
        f" BEGIN SELECT RAISE(ABORT, '{what} are append-only: DELETE refused'); END",
    )
]

SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {table}_{verb}"
    for table in TABLES
    for verb in ("no_update", "no_delete")
]


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement, params=None)


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, POSTGRESQL)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE)
    else:
        raise NotImplementedError(f"ledger triggers on {vendor}")


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _run(schema_editor, POSTGRESQL_REVERSE if vendor == "postgresql" else SQLITE_REVERSE)


class Migration(migrations.Migration):
    dependencies = [
        ("cards", "0002_top_up_request_hash_and_system_transfers"),
        ("core", "0004_audit_append_only"),
    ]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
