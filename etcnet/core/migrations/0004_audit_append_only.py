"""The database refuses UPDATE and DELETE of audit events (append-only).

PostgreSQL: a row trigger `BEFORE UPDATE OR DELETE` runs `etcnet_append_only()`,
which raises `restrict_violation` (Django: IntegrityError). The function is shared:
`cards.0003_ledger_triggers` puts postings and journal entries under it too.
Flushing the test database (TRUNCATE) fires no row trigger; there is deliberately
no TRUNCATE trigger.

SQLite: a `BEFORE UPDATE` trigger always raises; a `BEFORE DELETE` trigger raises
unless the one-row table `core_append_only_guard` holds its row. SQLite flushes a
database (`etcnet flush`, and every transactional test's teardown) with
`DELETE FROM <table>`, which fires row triggers; `etcnet.core`'s own `flush`
command inserts the guard row, flushes and deletes the row again inside one
transaction, so no other connection ever sees it set. Nothing else writes the
guard: it is not a Django model. Anyone with the file can still drop a trigger;
the triggers stop the application and its tools, not the owner of the file.

A later migration that alters `core_auditevent` on SQLite makes Django rebuild
the table (create, copy, drop, rename), which drops these triggers: it must run
`create_triggers` of this module again afterwards. PostgreSQL keeps triggers
through ALTER TABLE.
"""

from django.db import migrations

GUARD = "core_append_only_guard"

POSTGRESQL_FUNCTION = """
CREATE FUNCTION etcnet_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only: % refused (write a correcting row instead)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def postgresql_append_only(table: str) -> list[str]:
    """The trigger that puts `table` under `etcnet_append_only()`."""
    return [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION etcnet_append_only()",
    ]


def sqlite_append_only(table: str, what: str) -> list[str]:
    """UPDATE always refused; DELETE refused unless the flush guard's row exists."""
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{what} are append-only: UPDATE refused'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}"
        f" WHEN NOT EXISTS (SELECT 1 FROM {GUARD})"
        f" BEGIN SELECT RAISE(ABORT, '{what} are append-only: DELETE refused'); END",
    ]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = [POSTGRESQL_FUNCTION, *postgresql_append_only("core_auditevent")]
    elif vendor == "sqlite":
        statements = [
            f"CREATE TABLE {GUARD} (id INTEGER PRIMARY KEY CHECK (id = 1))",
            *sqlite_append_only("core_auditevent", "audit events"),
        ]
    else:
        raise NotImplementedError(f"append-only audit events on {vendor}")
    for statement in statements:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = [
            "DROP TRIGGER IF EXISTS core_auditevent_append_only ON core_auditevent",
            "DROP FUNCTION IF EXISTS etcnet_append_only()",
        ]
    else:
        statements = [
            "DROP TRIGGER IF EXISTS core_auditevent_no_update",
            "DROP TRIGGER IF EXISTS core_auditevent_no_delete",
            f"DROP TABLE IF EXISTS {GUARD}",
        ]
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("core", "0003_vehicle_office_role")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
