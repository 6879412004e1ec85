"""The transaction store on PostgreSQL: `tolling_tolltransaction` partitioned by day.

A province's lanes make 2-3 million transactions a day and the center keeps 90
days of them on line (docs/tolling-store.md). On PostgreSQL
the table is partitioned BY RANGE on `exit_time`, one partition per Asia/Shanghai
day (`tolling_tolltransaction_pYYYYMMDD`, from 16:00 UTC the day before to 16:00
UTC), plus a DEFAULT partition (`tolling_tolltransaction_default`) so that no
record is ever refused: a lane with a wild clock, or a late record for a day
that has no partition (yet, or any more), lands there.

Why by day: a day is what the operators archive, and a day's partition is what
a station-day report reads; a card's or a plate's history reads each day's small
index instead of one huge one, and an old day leaves the store with a `DETACH`
(a catalogue change) instead of a 3-million-row `DELETE`.

PostgreSQL wants the partition key in every unique constraint, so the primary
key is `(id, exit_time)` and `transaction_unique_seq` is `(terminal_id, seq,
exit_time)`; the ingest keeps `(terminal, seq)` unique by serialising a
terminal's uploads on the terminal's row lock and looking the seq up first.
The `id` is one identity sequence shared by every partition.

This module keeps the partitions: `ensure` creates the days from the earliest
needed to today + `ahead` (idempotent, each day in its own short transaction,
moving the DEFAULT partition's rows of that day into it), `detach_before` takes
old days out as standalone tables for an operator to archive (audited), and
`partitions` lists them. `partition_table` / `unpartition_table` are the
migration's conversion (tolling/0005). On SQLite the table stays a plain table
and every function here is a no-op that says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection as default_connection
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from etcnet.core import audit

TABLE = "tolling_tolltransaction"
DEFAULT_PARTITION = f"{TABLE}_default"
PREFIX = f"{TABLE}_p"  # + YYYYMMDD (the Asia/Shanghai day)
KEY = "exit_time"
LOCAL = ZoneInfo("Asia/Shanghai")
AHEAD_DAYS = 14  # partitions made ahead of today, so a quiet week never needs one
KEEP_DAYS = 90  # the store's window: a day older than this is not (re-)created
LOCK_TIMEOUT = "10s"  # a maintenance step waits this long for the lanes' inserts
# One maintenance run at a time (pg_advisory_xact_lock key: "tolling partitions").
_ADVISORY_KEY = 0x746F6C6C_70617274


@dataclass(frozen=True)
class Partition:
    """One partition of the store, or a detached day (`attached` False)."""

    name: str
    day: dt.date | None  # None: the DEFAULT partition
    attached: bool
    rows: int  # PostgreSQL's estimate (reltuples) unless counted
    bytes: int  # the table with its indexes


@dataclass(frozen=True)
class Created:
    name: str
    day: dt.date
    moved: int  # rows moved out of the DEFAULT partition


@dataclass(frozen=True)
class Detached:
    name: str
    day: dt.date
    rows: int


def day_of(moment: dt.datetime) -> dt.date:
    """The Asia/Shanghai day of an aware time: the day its partition holds."""
    return moment.astimezone(LOCAL).date()


def bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC range `[start, end)` of an Asia/Shanghai day (16:00 UTC to 16:00 UTC)."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=LOCAL).astimezone(dt.UTC)
    return start, start + dt.timedelta(days=1)


def partition_name(day: dt.date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def partition_day(name: str) -> dt.date | None:
    """The day a partition's name stands for, None for any other name."""
    digits = name.removeprefix(PREFIX)
    if digits == name or len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return dt.datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None


def local_today() -> dt.date:
    return day_of(timezone.now())


def is_partitioned(connection: BaseDatabaseWrapper | None = None) -> bool:
    """Whether the store is partitioned here (PostgreSQL after tolling/0005)."""
    connection = connection or default_connection
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
            " WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            [TABLE],
        )
        return cursor.fetchone() is not None


def partitions(
    connection: BaseDatabaseWrapper | None = None, *, count: bool = False
) -> list[Partition]:
    """The DEFAULT partition first, then the days, oldest first, attached or
    detached (a standalone `tolling_tolltransaction_pYYYYMMDD` table). `count`
    counts the rows exactly instead of PostgreSQL's estimate."""
    connection = connection or default_connection
    if not is_partitioned(connection):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relispartition, greatest(c.reltuples, 0)::bigint,"
            " pg_total_relation_size(c.oid)"
            " FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
            " AND (c.relname = %s OR c.relname LIKE %s)",
            [DEFAULT_PARTITION, PREFIX.replace("_", r"\_") + "%"],
        )
        rows = cursor.fetchall()
        found: list[Partition] = []
        for name, attached, rows_estimate, size in rows:
            day = partition_day(name)
            if day is None and name != DEFAULT_PARTITION:
                continue
            if count:
                cursor.execute(f'SELECT count(*) FROM "{name}"')
                rows_estimate = cursor.fetchone()[0]
            found.append(Partition(name, day, bool(attached), int(rows_estimate), int(size)))
    return sorted(found, key=lambda p: (p.day is not None, p.day or dt.date.min))


def ensure(
    *,
    ahead: int = AHEAD_DAYS,
    today: dt.date | None = None,
    keep: int = KEEP_DAYS,
    connection: BaseDatabaseWrapper | None = None,
) -> list[Created]:
    """Creates every missing day partition from the earliest needed through
    today + `ahead`, and returns what it made (nothing when all exist: safe to
    run any number of times).

    The earliest needed day is the earliest of today, the oldest attached day
    and the oldest day that has rows waiting in the DEFAULT partition, but never
    before today − `keep` (older records stay in DEFAULT). A day whose detached
    table still exists is not made again (its late records stay in DEFAULT).
    Each day is its own transaction: the DEFAULT partition's rows of the day
    are moved into the new partition in the same transaction, since PostgreSQL
    refuses a partition whose rows sit in the DEFAULT."""
    if ahead < 0 or keep < 0:
        raise ValueError("ahead and keep must be zero or more days")
    connection = connection or default_connection
    if not is_partitioned(connection):
        return []
    today = today or local_today()
    window_start, last = today - dt.timedelta(days=keep), today + dt.timedelta(days=ahead)
    existing = {p.day: p for p in partitions(connection) if p.day is not None}
    attached = [day for day, p in existing.items() if p.attached]
    first = min([today, *attached])
    with connection.cursor() as cursor:
        lo, _ = bounds(window_start)
        _, hi = bounds(last)
        cursor.execute(
            f'SELECT min("{KEY}") FROM "{DEFAULT_PARTITION}" WHERE "{KEY}" >= %s AND "{KEY}" < %s',
            [lo, hi],
        )
        waiting = cursor.fetchone()[0]
    if waiting is not None:
        first = min(first, day_of(waiting))
    first = max(first, window_start)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return create_days((day for day in days if day not in existing), connection=connection)


def create_days(
    days: Iterable[dt.date], *, connection: BaseDatabaseWrapper | None = None
) -> list[Created]:
    """Creates the partitions of `days` that do not exist, each in its own
    transaction (or inside the caller's, as the migration's), moving their rows
    out of the DEFAULT partition."""
    connection = connection or default_connection
    made = []
    for day in days:
        with transaction.atomic(using=connection.alias):
            created = _create_day(connection, day)
        if created is not None:
            made.append(created)
    return made


def _create_day(connection: BaseDatabaseWrapper, day: dt.date) -> Created | None:
    name = partition_name(day)
    start, end = bounds(day)
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_KEY])
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return None  # made meanwhile, or a detached day's table
        # The day's rows waiting in DEFAULT, kept aside while the partition is made.
        cursor.execute(
            "CREATE TEMPORARY TABLE tolling_moving ON COMMIT DROP AS"
            f' WITH gone AS (DELETE FROM "{DEFAULT_PARTITION}"'
            f' WHERE "{KEY}" >= %s AND "{KEY}" < %s RETURNING *) SELECT * FROM gone',
            [start, end],
        )
        moved = max(cursor.rowcount, 0)
        cursor.execute(
            f'CREATE TABLE "{name}" PARTITION OF "{TABLE}" FOR VALUES FROM (%s) TO (%s)',
            [start, end],
        )
        if moved:
            cursor.execute(f'INSERT INTO "{name}" SELECT * FROM tolling_moving')
        cursor.execute("DROP TABLE tolling_moving")
    return Created(name, day, moved)


def detach_before(
    day: dt.date,
    *,
    actor: Any,
    today: dt.date | None = None,
    connection: BaseDatabaseWrapper | None = None,
) -> list[Detached]:
    """Detaches every attached day partition older than `day` (`DETACH
    PARTITION`, never a drop): each becomes a standalone table of that name,
    with its rows and indexes, for an operator to archive (pg_dump -t) and
    drop. The store no longer sees those rows; a late record for such a day
    lands in DEFAULT. Each day is its own transaction with its audit event
    (`tolling.partition_detached`). Today and later days stay: the lanes are
    writing there."""
    connection = connection or default_connection
    today = today or local_today()
    if day > today:
        raise ValueError(
            f"detach_before: {day} would detach today's partition ({today}) or later days"
        )
    if not is_partitioned(connection):
        return []
    done = []
    for part in partitions(connection):
        if part.day is None or not part.attached or part.day >= day:
            continue
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_KEY])
            cursor.execute(f'SELECT count(*) FROM "{part.name}"')
            rows = int(cursor.fetchone()[0])
            cursor.execute(f'ALTER TABLE "{TABLE}" DETACH PARTITION "{part.name}"')
            start, end = bounds(part.day)
            audit.record(
                actor=actor,
                action="tolling.partition_detached",
                subject=("tolling.partition", part.name),
                after={"table": part.name, "day": part.day, "from": start, "to": end, "rows": rows},
            )
        done.append(Detached(part.name, part.day, rows))
    return done


# The conversion of tolling/0005 -------------------------------------------------------


def partition_table(
    connection: BaseDatabaseWrapper,
    *,
    ahead: int = AHEAD_DAYS,
    keep: int = KEEP_DAYS,
    today: dt.date | None = None,
) -> None:
    """Turns the plain `tolling_tolltransaction` into the partitioned store,
    rows and all, inside the migration's transaction: the same columns,
    defaults, check constraints, foreign keys and indexes (by their names),
    the primary key and `transaction_unique_seq` with `exit_time` added, the
    identity sequence carried on. Partitions: the days of the rows within
    the last `keep` days, today through today + `ahead`, and DEFAULT for the rest."""
    today = today or local_today()
    new = f"{TABLE}_new"
    with connection.cursor() as cursor:
        keys, foreign, indexes = _definitions(cursor)
        cursor.execute(
            f'CREATE TABLE "{new}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
            " INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMMENTS INCLUDING COMPRESSION)"
            f' PARTITION BY RANGE ("{KEY}")'
        )
        cursor.execute(f'CREATE TABLE "{DEFAULT_PARTITION}" PARTITION OF "{new}" DEFAULT')
        lo, _ = bounds(today - dt.timedelta(days=keep))
        cursor.execute(
            f'SELECT DISTINCT ("{KEY}" AT TIME ZONE %s)::date FROM "{TABLE}" WHERE "{KEY}" >= %s',
            [str(LOCAL), lo],
        )
        days = {row[0] for row in cursor.fetchall()}
        days |= {today + dt.timedelta(days=n) for n in range(ahead + 1)}
        for day in sorted(days):
            start, end = bounds(day)
            cursor.execute(
                f'CREATE TABLE "{partition_name(day)}" PARTITION OF "{new}"'
                " FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
        cursor.execute(f'INSERT INTO "{new}" SELECT * FROM "{TABLE}"')
        _carry_sequence(cursor, TABLE, new)
        cursor.execute(f'DROP TABLE "{TABLE}"')
        cursor.execute(f'ALTER TABLE "{new}" RENAME TO "{TABLE}"')
        _rename_sequence(cursor, new)
        _restore(cursor, keys, foreign, indexes, add_key=True)


def unpartition_table(connection: BaseDatabaseWrapper) -> None:
    """The reverse of `partition_table`: the rows of the attached partitions
    (DEFAULT included) back in one plain table with the primary key `(id)` and
    `transaction_unique_seq` on `(terminal_id, seq)`. Detached days stay
    standalone tables; their rows do not come back."""
    new = f"{TABLE}_new"
    with connection.cursor() as cursor:
        keys, foreign, indexes = _definitions(cursor)
        cursor.execute(
            f'CREATE TABLE "{new}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
            " INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMMENTS INCLUDING COMPRESSION)"
        )
        cursor.execute(f'INSERT INTO "{new}" SELECT * FROM "{TABLE}"')
        _carry_sequence(cursor, TABLE, new)
        cursor.execute(f'DROP TABLE "{TABLE}"')  # and its attached partitions
        cursor.execute(f'ALTER TABLE "{new}" RENAME TO "{TABLE}"')
        _rename_sequence(cursor, new)
        _restore(cursor, keys, foreign, indexes, add_key=False)


def _definitions(cursor: Any) -> tuple[list[tuple[str, str, list[str]]], list[str], list[str]]:
    """The table's primary key and unique constraints (name, type, columns),
    foreign keys (ADD CONSTRAINT clauses) and other indexes (CREATE INDEX)."""
    cursor.execute(
        "SELECT con.conname, con.contype,"
        " array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)"
        "       JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)"
        " FROM pg_constraint con WHERE con.conrelid = %s::regclass AND con.contype IN ('p', 'u')"
        " ORDER BY con.contype, con.conname",
        [TABLE],
    )
    keys = [(name, kind, list(columns)) for name, kind, columns in cursor.fetchall()]
    cursor.execute(
        "SELECT format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', %s, conname,"
        " pg_get_constraintdef(oid)) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [TABLE, TABLE],
    )
    foreign = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass AND NOT EXISTS"
        " (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)"
        " ORDER BY c.relname",
        [TABLE],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    return keys, foreign, indexes


def _carry_sequence(cursor: Any, old: str, new: str) -> None:
    """The new table's identity goes on from where the old one stopped."""
    cursor.execute(
        "SELECT pg_get_serial_sequence(%s, 'id'), pg_get_serial_sequence(%s, 'id')", [old, new]
    )
    old_seq, new_seq = cursor.fetchone()
    cursor.execute(f"SELECT last_value, is_called FROM {old_seq}")
    last, called = cursor.fetchone()
    cursor.execute("SELECT setval(%s, %s, %s)", [new_seq, last, called])


def _rename_sequence(cursor: Any, new: str) -> None:
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    (sequence,) = cursor.fetchone()
    cursor.execute(f'ALTER SEQUENCE {sequence} RENAME TO "{TABLE}_id_seq"')


def _restore(
    cursor: Any,
    keys: list[tuple[str, str, list[str]]],
    foreign: list[str],
    indexes: list[str],
    *,
    add_key: bool,
) -> None:
    """The constraints and indexes again, by their names (Django's state names
    them), the partition key added to (or taken from) the unique ones. On the
    partitioned table each is made once on the parent and every partition,
    present and future, gets its own."""
    for name, kind, columns in keys:
        columns = [c for c in columns if c != KEY] + ([KEY] if add_key else [])
        clause = "PRIMARY KEY" if kind == "p" else "UNIQUE"
        listed = ", ".join(f'"{c}"' for c in columns)
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {clause} ({listed})')
    for statement in [*foreign, *indexes]:
        cursor.execute(statement)
