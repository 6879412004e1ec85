"""The audit trail's hash chain: `seq` and `chain_hash` on each event, the seals'
checkpoints, and append-only triggers that let the sealer through once.

The sealer (`etcnet.core.chain`) is the only writer that ever updates an audit
event, and only to set `seq` and `chain_hash` on an event that has neither yet,
leaving every other column as it was. The triggers of 0004_audit_append_only
refused every UPDATE; this migration replaces them on `core_auditevent` with
ones that allow exactly that and still refuse anything else (DELETE stays as it
was: refused, except SQLite's flush guard). Checkpoints are append-only like the
events, under the shared `etcnet_append_only()` / the same SQLite triggers.

PostgreSQL: `etcnet_audit_append_only()` compares the whole new row with the
old one given the new seq and hash, so a column added later is protected
without touching the function (and it costs a few microseconds a row, where
`to_jsonb` of both rows cost five times as much). SQLite: the `WHEN` of the UPDATE
trigger names the columns; adding a column to `core_auditevent` must add it
there (and, as 0004 says, recreate the triggers: SQLite rebuilds the table).

Adding a unique column on SQLite rebuilds the table, which drops its triggers:
the old ones are dropped first and the new ones created after the schema
change; backwards the same in reverse, so 0004's triggers come back last.
"""

from django.db import migrations, models
from django.db.models import Q

GUARD = "core_append_only_guard"

# The one UPDATE an audit event takes: the sealer's, once.
_SEALING = (
    "OLD.seq IS NULL AND OLD.chain_hash = '' AND NEW.seq IS NOT NULL"
    " AND length(NEW.chain_hash) = 64"
)

POSTGRESQL_AUDIT_FUNCTION = f"""
CREATE FUNCTION etcnet_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kept core_auditevent;
BEGIN
    IF TG_OP = 'UPDATE' AND {_SEALING} THEN
        -- The row as it was but for the two columns the seal sets: equal to the
        -- new row only if nothing else changed, whatever columns the table has.
        kept := OLD;
        kept.seq := NEW.seq;
        kept.chain_hash := NEW.chain_hash;
        IF kept IS NOT DISTINCT FROM NEW THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% rows are append-only: % refused (write a correcting row instead)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$
"""

# Every column of core_auditevent but seq and chain_hash.
_KEPT = (
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "subject_type",
    "subject_id",
    "before",
    "after",
    "request_id",
)


def _sqlite_update_trigger(sealing: bool) -> str:
    unchanged = " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in _KEPT)
    when = f" WHEN NOT ({_SEALING} AND {unchanged})" if sealing else ""
    return (
        "CREATE TRIGGER core_auditevent_no_update BEFORE UPDATE ON core_auditevent"
        f"{when} BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END"
    )


def _sqlite_delete_trigger(table: str, what: str) -> str:
    return (
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}"
        f" WHEN NOT EXISTS (SELECT 1 FROM {GUARD})"
        f" BEGIN SELECT RAISE(ABORT, '{what} are append-only: DELETE refused'); END"
    )


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement, params=None)


def drop_plain_triggers(apps, schema_editor):
    """0004's triggers on core_auditevent, before the table changes."""
    if schema_editor.connection.vendor == "postgresql":
        _run(schema_editor, ["DROP TRIGGER core_auditevent_append_only ON core_auditevent"])
    else:
        _run(
            schema_editor,
            [
                "DROP TRIGGER IF EXISTS core_auditevent_no_update",
                "DROP TRIGGER IF EXISTS core_auditevent_no_delete",
            ],
        )


def create_plain_triggers(apps, schema_editor):
    """0004's triggers again (backwards)."""
    if schema_editor.connection.vendor == "postgresql":
        _run(
            schema_editor,
            [
                "CREATE TRIGGER core_auditevent_append_only BEFORE UPDATE OR DELETE"
                " ON core_auditevent FOR EACH ROW EXECUTE FUNCTION etcnet_append_only()"
            ],
        )
    else:
        _run(
            schema_editor,
            [
                _sqlite_update_trigger(sealing=False),
                _sqlite_delete_trigger("core_auditevent", "audit events"),
            ],
        )


def create_chain_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = [
            POSTGRESQL_AUDIT_FUNCTION,
            "CREATE TRIGGER core_auditevent_append_only BEFORE UPDATE OR DELETE"
            " ON core_auditevent FOR EACH ROW EXECUTE FUNCTION etcnet_audit_append_only()",
            "CREATE TRIGGER core_auditcheckpoint_append_only BEFORE UPDATE OR DELETE"
            " ON core_auditcheckpoint FOR EACH ROW EXECUTE FUNCTION etcnet_append_only()",
        ]
    elif vendor == "sqlite":
        statements = [
            _sqlite_update_trigger(sealing=True),
            _sqlite_delete_trigger("core_auditevent", "audit events"),
            "CREATE TRIGGER core_auditcheckpoint_no_update BEFORE UPDATE ON core_auditcheckpoint"
            " BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only: UPDATE refused');"
            " END",
            _sqlite_delete_trigger("core_auditcheckpoint", "audit checkpoints"),
        ]
    else:
        raise NotImplementedError(f"the audit chain's triggers on {vendor}")
    _run(schema_editor, statements)


def drop_chain_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        statements = [
            "DROP TRIGGER IF EXISTS core_auditcheckpoint_append_only ON core_auditcheckpoint",
            "DROP TRIGGER IF EXISTS core_auditevent_append_only ON core_auditevent",
            "DROP FUNCTION IF EXISTS etcnet_audit_append_only()",
        ]
    else:
        statements = [
            "DROP TRIGGER IF EXISTS core_auditcheckpoint_no_update",
            "DROP TRIGGER IF EXISTS core_auditcheckpoint_no_delete",
            "DROP TRIGGER IF EXISTS core_auditevent_no_update",
            "DROP TRIGGER IF EXISTS core_auditevent_no_delete",
        ]
    _run(schema_editor, statements)


class Migration(migrations.Migration):
    dependencies = [("core", "0005_rate_counters")]

    operations = [
        migrations.RunPython(drop_plain_triggers, create_plain_triggers, elidable=False),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("sealed_at", models.DateTimeField()),
                ("first_seq", models.BigIntegerField()),
                ("last_seq", models.BigIntegerField(unique=True)),
                ("head_hash", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["last_seq"],
                "constraints": [
                    models.CheckConstraint(
                        condition=Q(first_seq__gte=1, last_seq__gte=models.F("first_seq")),
                        name="audit_checkpoint_seq_range",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="chain_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(condition=Q(seq__isnull=True), fields=["id"], name="audit_unsealed"),
        ),
        migrations.RunPython(create_chain_triggers, drop_chain_triggers, elidable=False),
    ]
