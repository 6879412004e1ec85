"""Bulk inserts for the hot paths: PostgreSQL's COPY where the database has it.

`insert_rows(model, columns, rows)` writes rows given as tuples of column values
(attribute names: foreign keys by id, files by name) in one statement, without
model instances, and returns their primary keys in order. On PostgreSQL the keys
are drawn from the table's own sequence first (one `nextval` query for all of
them) and the rows go in with `COPY ... FROM STDIN`, which skips the ORM's
per-value preparation and the statement's parameter limit; row triggers (the
ledger's deferred balance checks) and constraints fire as for an INSERT, and
errors are raised as Django's. Elsewhere (SQLite) it is `bulk_create`. The
columns not named take the model's default, as a new instance would
(`auto_now`/`auto_now_add` fields the time now). `append_rows` is the same for
rows nobody needs the keys of: the table's default numbers them, one round trip
fewer.

`add_by_pk(model, column, deltas)` adds each row's own amount to a column in one
UPDATE: on PostgreSQL joined to the amounts as two arrays (`unnest`), so the
statement does not grow with the rows; elsewhere a `CASE`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from django.db import connections, models, router
from django.db.models import Case, F, Value, When
from django.utils import timezone
from psycopg import sql
from psycopg.types.json import Jsonb

__all__ = ["add_by_pk", "append_rows", "insert_rows"]


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """Inserts `rows` (tuples of the values of `columns`, attribute names) and
    returns their primary keys in order."""
    return _copy_rows(model, columns, rows, keys=True)


def append_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """`insert_rows` for rows nobody refers to by key in the same transaction:
    the table's own default numbers them as COPY reads them (one round trip
    fewer, no key drawn in advance)."""
    _copy_rows(model, columns, rows, keys=False)


def _copy_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], *, keys: bool
) -> list[int]:
    if not rows:
        return []
    alias = router.db_for_write(model)
    connection = connections[alias]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    if connection.vendor != "postgresql":
        made = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        model._default_manager.using(alias).bulk_create(made)
        return [obj.pk for obj in made] if keys else []
    named: list[Any] = [meta.get_field(name) for name in columns]
    rest = [f for f in meta.concrete_fields if f is not pk and f not in named]
    defaults = tuple(_default(field) for field in rest)
    # JSON columns: (position, whether None is SQL NULL rather than JSON null)
    json = [(n, f.null) for n, f in enumerate(named) if isinstance(f, models.JSONField)]
    stored = [f.column for f in (*named, *rest)]
    # psycopg's own cursor below: its errors raised as Django's, as the ORM's are.
    with connection.wrap_database_errors, connection.cursor() as wrapper:
        cursor = wrapper.cursor  # psycopg's own cursor, for COPY
        ids: list[int] = []
        if keys:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk.column, len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            stored.insert(0, pk.column)
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(meta.db_table), sql.SQL(", ").join(map(sql.Identifier, stored))
        )
        leading: list[tuple[int, ...]] = [(new_id,) for new_id in ids] if keys else [()] * len(rows)
        with cursor.copy(statement) as copy:
            for key, row in zip(leading, rows, strict=True):
                values = list(row)
                for n, nullable in json:
                    if values[n] is not None or not nullable:
                        values[n] = Jsonb(values[n], dumps=_dumps)
                copy.write_row((*key, *values, *defaults))
    return ids


def _default(field: models.Field[Any, Any]) -> Any:
    """A column's value in a new instance that does not set it."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now()
    value = field.get_default()
    if isinstance(field, models.JSONField):
        return None if value is None and field.null else Jsonb(value)
    if isinstance(field, models.FileField):
        return value or ""
    return value


def add_by_pk(model: type[models.Model], column: str, deltas: Mapping[int, int]) -> None:
    """`column += deltas[pk]` for each row whose primary key `deltas` names."""
    if not deltas:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    field = meta.get_field(column)
    assert isinstance(field, models.Field)
    assert field.column
    if connection.vendor != "postgresql":
        model._default_manager.using(alias).filter(pk__in=list(deltas)).update(
            **{
                column: F(column)
                + Case(
                    *(When(pk=key, then=Value(value)) for key, value in deltas.items()),
                    output_field=models.BigIntegerField(),
                )
            }
        )
        return
    statement = sql.SQL(
        "UPDATE {table} SET {col} = {table}.{col} + d.delta"
        " FROM unnest(%s::bigint[], %s::bigint[]) AS d(id, delta) WHERE {table}.{pk} = d.id"
    ).format(
        table=sql.Identifier(meta.db_table),
        col=sql.Identifier(field.column),
        pk=sql.Identifier(pk.column),
    )
    with connection.wrap_database_errors, connection.cursor() as wrapper:
        wrapper.cursor.execute(statement, [list(deltas), list(deltas.values())])


def _dumps(value: Any) -> bytes:
    """JSON for the JSON columns of `insert_rows` (orjson; the standard library
    for what orjson does not take, such as integers past 64 bits)."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=False).encode()
