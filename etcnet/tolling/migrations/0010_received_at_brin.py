"""A BRIN index on the store's `received_at` (PostgreSQL): clearing finds the late
records of closed days — received after their day's run — by it, reading only
the blocks written since instead of every day it looks back over. Rows arrive
in `received_at` order, so the index is a few pages a day and costs the intake
next to nothing. SQLite (the demo, the tests) has no BRIN and needs none."""

from django.db import migrations

INDEX = "transaction_received_brin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON tolling_tolltransaction"
            " USING brin (received_at)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("tolling", "0009_card_transaction_counter"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
