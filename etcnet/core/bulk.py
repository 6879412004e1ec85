"""Bulk inserts for the hot paths: PostgreSQL's COPY where the database has it.

`insert(model, objects)` writes model instances in one statement and gives each
its primary key. On PostgreSQL the keys are drawn from the table's own sequence
first (one `nextval` query for all of them) and the rows go in with `COPY ...
FROM STDIN`, which skips the ORM's per-value preparation and the statement's
parameter limit; row triggers (the ledger's deferred balance checks) and
constraints fire as for an INSERT. Elsewhere (SQLite) it is `bulk_create`.

Only what the hot paths store: plain columns, JSON, files (their name) and
foreign keys by id. Defaults are the instances' own (set when they were made);
`auto_now`/`auto_now_add` fields are filled as `save` would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, models, router
from psycopg import sql
from psycopg.types.json import Jsonb

__all__ = ["insert"]


def insert(model: type[models.Model], objects: Sequence[models.Model]) -> None:
    """Inserts `objects` (new instances of `model`) and sets their primary keys."""
    if not objects:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        model._default_manager.using(alias).bulk_create(list(objects))
        return
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields = [f for f in meta.concrete_fields if f is not pk]
    stamped = [
        f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    for obj in objects:
        for field in stamped:
            field.pre_save(obj, add=True)
    values = [_value(field, connection) for field in fields]
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # psycopg's own cursor, for COPY
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(objects)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(meta.db_table),
            sql.SQL(", ").join(sql.Identifier(c) for c in (pk.column, *(f.column for f in fields))),
        )
        with cursor.copy(statement) as copy:
            for obj, new_id in zip(objects, ids, strict=True):
                copy.write_row([new_id, *(value(obj) for value in values)])
    for obj, new_id in zip(objects, ids, strict=True):
        setattr(obj, pk.attname, new_id)
        obj._state.adding = False
        obj._state.db = alias


def _value(field: models.Field[Any, Any], connection: Any) -> Callable[[models.Model], Any]:
    """How the column's value is read off an instance, as COPY takes it."""
    name = field.attname
    if isinstance(field, models.JSONField):
        nullable = field.null

        def json_value(obj: models.Model) -> Any:
            value = getattr(obj, name)
            return None if value is None and nullable else Jsonb(value)

        return json_value
    if isinstance(field, models.FileField):

        def file_name(obj: models.Model) -> str:
            # The raw attribute (a name or a file), not the descriptor's FieldFile.
            value = obj.__dict__.get(name)
            return (getattr(value, "name", value) or "") if value is not None else ""

        return file_name
    if isinstance(field, models.UUIDField | models.DecimalField | models.DurationField):
        return lambda obj: field.get_db_prep_save(getattr(obj, name), connection)
    return lambda obj: getattr(obj, name)
