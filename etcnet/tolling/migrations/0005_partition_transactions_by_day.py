"""On PostgreSQL, `tolling_tolltransaction` becomes a table partitioned by day
(etcnet.tolling.partitions): one partition per Asia/Shanghai day of
`exit_time` and a DEFAULT partition, the rows moved across, the primary key
`(id, exit_time)` and `transaction_unique_seq` `(terminal_id, seq, exit_time)`.
Django's state does not change (the ORM still sees `id` as the key).

Reversible: going back copies the attached partitions' rows (DEFAULT
included) into one plain table again; detached days stay standalone tables.
On SQLite both directions do nothing: the table stays a plain table."""

from django.db import migrations

from etcnet.tolling import partitions


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        partitions.partition_table(schema_editor.connection)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        partitions.unpartition_table(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("tolling", "0004_transaction_findings_and_versions"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition),
    ]
