"""`etcnet flush`: Django's flush, able to empty the append-only tables on SQLite.

Audit events, journal entries and postings are append-only in the database
(migrations `core.0004_audit_append_only`, `cards.0003_ledger_triggers`). On
PostgreSQL a flush is a TRUNCATE, which fires no row trigger. On SQLite it is a
`DELETE FROM` per table, which the DELETE triggers refuse unless the one-row table
`core_append_only_guard` holds its row. This command (it overrides Django's: an
app's command wins over `django.core`'s) sets the guard, flushes and clears the
guard in one transaction, so no other connection ever sees it set. Every
transactional test's teardown flushes through here (`call_command("flush")`).
Emptying the whole database is a reset, not an edit of the history; the triggers
still refuse deleting single rows.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush
from django.db import connections, transaction

GUARD = "core_append_only_guard"


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        database = options["database"]
        connection = connections[database]
        if connection.vendor != "sqlite" or GUARD not in connection.introspection.table_names():
            super().handle(**options)
            return
        with transaction.atomic(using=database):
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {GUARD} (id) VALUES (1)")
            super().handle(**options)
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {GUARD}")
