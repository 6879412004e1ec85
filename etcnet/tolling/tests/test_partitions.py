"""The transaction store's day partitions (etcnet.tolling.partitions, tolling/0005,
`etcnet tolling_partitions`).

On PostgreSQL the table is partitioned by Asia/Shanghai day of `exit_time`; on
SQLite it is one plain table and the command says so. The days used here are
fixed and far from today (2025 and 2098): the migration made partitions for
the days around the real today, and none of these."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from etcnet.core.models import AuditEvent
from etcnet.network.models import Node
from etcnet.tolling import partitions
from etcnet.tolling.models import Terminal, TollTransaction

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="only PostgreSQL's transaction store is partitioned (SQLite keeps one plain table)",
)
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="what the command says where nothing is partitioned"
)

SHANGHAI = partitions.LOCAL
DAY = dt.date(2025, 3, 10)  # a Monday long past: no partition until a test makes one
FAR = dt.date(2098, 5, 20)  # no partition either
DUPLICATE = r"Key \(terminal_id, seq, exit_time\)=\(\d+, \d+, [^)]+\) already exists"


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)


@pytest.fixture
def lane_terminal(db: Any) -> Terminal:
    station = Node.objects.create(
        node_id="S1201005", name="小孙庄", kind="station", hex="12010050", network="1201"
    )
    return Terminal.objects.create(
        terminal_id="HH-0001", psam_terminal_no="120100000001", secret_digest="0" * 64,
        station=station, created_at=timezone.now(),
    )  # fmt: skip


def toll(terminal: Terminal, seq: int, exit_time: dt.datetime, **fields: Any) -> TollTransaction:
    """An accepted cash exit of 35.00 at the terminal's station."""
    values: dict[str, Any] = {
        "terminal": terminal,
        "seq": seq,
        "status": "accepted",
        "station": terminal.station,
        "lane_number": 3,
        "exit_time": exit_time,
        "received_at": exit_time + dt.timedelta(seconds=30),
        "vehicle_class": 1,
        "method": "cash",
        "fee_fen": 3500,
        "payable_fen": 3500,
        "payment_type": 1,
    }
    return TollTransaction.objects.create(**(values | fields))


def partition_of(row: TollTransaction) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM tolling_tolltransaction WHERE id = %s", [row.pk]
        )
        return cursor.fetchone()[0]


def count_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        return cursor.fetchone()[0]


def is_partition(table: str) -> bool | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relispartition FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
        return None if row is None else row[0]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("tolling_partitions", *args, stdout=out)
    return out.getvalue()


# --- The day of a time, its bounds and names: no database ------------------------------


def test_an_asia_shanghai_day_runs_from_1600_utc_the_day_before() -> None:
    start, end = partitions.bounds(DAY)

    assert start == dt.datetime(2025, 3, 9, 16, 0, tzinfo=dt.UTC)
    assert end == dt.datetime(2025, 3, 10, 16, 0, tzinfo=dt.UTC)
    assert partitions.day_of(dt.datetime(2025, 3, 10, 15, 59, 59, tzinfo=dt.UTC)) == DAY
    assert partitions.day_of(dt.datetime(2025, 3, 10, 16, 0, tzinfo=dt.UTC)) == dt.date(2025, 3, 11)


def test_a_partition_is_named_for_its_day_and_only_such_names_are_days() -> None:
    assert partitions.partition_name(DAY) == "tolling_tolltransaction_p20250310"
    assert partitions.partition_day("tolling_tolltransaction_p20250310") == DAY
    assert partitions.partition_day("tolling_tolltransaction_default") is None
    assert partitions.partition_day("tolling_tolltransaction_p20250231") is None
    assert partitions.partition_day("tolling_tolltransaction_p2025031") is None


# --- SQLite: one plain table ----------------------------------------------------------


@sqlite_only
def test_on_sqlite_the_command_says_the_store_is_not_partitioned(db: Any) -> None:
    out = run("--list")

    assert out == (
        "the transaction store is not partitioned on sqlite (only PostgreSQL's is, after"
        " `etcnet migrate`): nothing to do\n"
    )
    assert partitions.ensure() == []
    assert partitions.detach_before(DAY, actor="test") == []
    assert not AuditEvent.objects.exists()


def test_the_command_refuses_a_bad_or_future_detach_day_and_changes_nothing(db: Any) -> None:
    before = partitions.partitions()
    tomorrow = partitions.local_today() + dt.timedelta(days=1)

    with pytest.raises(CommandError, match=r"--detach-before '2025-02-30' is not a date"):
        run("--detach-before", "2025-02-30")
    with pytest.raises(CommandError, match=r"would detach today's partition"):
        run("--detach-before", tomorrow.isoformat())
    with pytest.raises(CommandError, match=r"--ahead must be zero or more days"):
        run("--ahead", "-1")

    assert partitions.partitions() == before
    assert not AuditEvent.objects.exists()


# --- PostgreSQL: partitioned by day ---------------------------------------------------


@postgresql_only
def test_the_store_is_partitioned_with_today_and_the_days_ahead(db: Any) -> None:
    today = partitions.local_today()
    found = {p.name: p for p in partitions.partitions()}

    assert partitions.is_partitioned()
    assert found[partitions.DEFAULT_PARTITION].attached
    for n in range(partitions.AHEAD_DAYS + 1):
        assert found[partitions.partition_name(today + dt.timedelta(days=n))].attached


@postgresql_only
def test_a_row_lands_in_the_partition_of_its_asia_shanghai_day(lane_terminal: Terminal) -> None:
    partitions.create_days([DAY, DAY + dt.timedelta(days=1)])

    late = toll(lane_terminal, 1, local(DAY, 23, 30))  # 15:30 UTC on the 10th
    early = toll(lane_terminal, 2, local(DAY + dt.timedelta(days=1), 0, 30))  # 16:30 UTC

    assert partition_of(late) == "tolling_tolltransaction_p20250310"
    assert partition_of(early) == "tolling_tolltransaction_p20250311"
    assert list(TollTransaction.objects.order_by("exit_time").values_list("seq", flat=True)) == [
        1,
        2,
    ]


@postgresql_only
def test_a_day_without_a_partition_lands_in_default_and_moves_when_its_day_is_made(
    lane_terminal: Terminal,
) -> None:
    row = toll(lane_terminal, 1, local(FAR, 12))

    assert partition_of(row) == partitions.DEFAULT_PARTITION

    made = partitions.create_days([FAR])

    assert made == [partitions.Created("tolling_tolltransaction_p20980520", FAR, 1)]
    assert partition_of(row) == "tolling_tolltransaction_p20980520"
    assert count_in(partitions.DEFAULT_PARTITION) == 0
    assert TollTransaction.objects.get(pk=row.pk).seq == 1


@postgresql_only
def test_creating_the_days_ahead_is_idempotent(db: Any) -> None:
    first = partitions.ensure(ahead=2, keep=0, today=FAR)
    names = [p.name for p in partitions.partitions()]
    again = partitions.ensure(ahead=2, keep=0, today=FAR)

    assert [(c.name, c.moved) for c in first] == [
        ("tolling_tolltransaction_p20980520", 0),
        ("tolling_tolltransaction_p20980521", 0),
        ("tolling_tolltransaction_p20980522", 0),
    ]
    assert again == []
    assert partitions.create_days([FAR]) == []
    assert [p.name for p in partitions.partitions()] == names


@postgresql_only
def test_the_command_creates_the_days_ahead_once(db: Any) -> None:
    today = partitions.local_today()
    beyond = [today + dt.timedelta(days=partitions.AHEAD_DAYS + n) for n in (1, 2)]

    out = run("--ahead", str(partitions.AHEAD_DAYS + 2))
    again = run("--ahead", str(partitions.AHEAD_DAYS + 2))

    assert out.splitlines()[:2] == [
        f"created {partitions.partition_name(day)} ({day})" for day in beyond
    ]
    assert out.splitlines()[2].startswith("2 partitions created; every day through")
    assert again.startswith("0 partitions created; every day through")
    listed = run("--list")
    assert all(partitions.partition_name(day) in listed for day in beyond)
    assert listed.splitlines()[0].startswith("DEFAULT     tolling_tolltransaction_default")


@postgresql_only
def test_detaching_keeps_the_rows_in_a_table_of_their_own_and_the_store_forgets_them(
    lane_terminal: Terminal,
) -> None:
    partitions.create_days([DAY])
    rows = [toll(lane_terminal, seq, local(DAY, 8, seq)) for seq in (1, 2)]
    kept = toll(lane_terminal, 3, local(FAR, 8))  # in DEFAULT: never detached
    name = "tolling_tolltransaction_p20250310"

    out = run("--detach-before", (DAY + dt.timedelta(days=1)).isoformat())

    assert f"detached {name} (2025-03-10, 2 rows): now a table of its own" in out
    assert "1 partitions detached (days before 2025-03-11)" in out
    assert is_partition(name) is False
    assert count_in(name) == 2
    assert not TollTransaction.objects.filter(pk__in=[r.pk for r in rows]).exists()
    assert list(TollTransaction.objects.values_list("seq", flat=True)) == [kept.seq]
    [event] = AuditEvent.objects.filter(action="tolling.partition_detached")
    assert (event.actor_name, event.subject_type, event.subject_id) == (
        "etcnet tolling_partitions",
        "tolling.partition",
        name,
    )
    assert event.after == {
        "table": name,
        "day": "2025-03-10",
        "from": "2025-03-09T16:00:00+00:00",
        "to": "2025-03-10T16:00:00+00:00",
        "rows": 2,
    }
    [listed] = [p for p in partitions.partitions() if p.name == name]
    assert (listed.day, listed.attached) == (DAY, False)


@postgresql_only
def test_a_late_record_for_a_detached_day_lands_in_default_and_the_day_is_not_made_again(
    lane_terminal: Terminal,
) -> None:
    partitions.create_days([DAY])
    toll(lane_terminal, 1, local(DAY, 8))
    partitions.detach_before(DAY + dt.timedelta(days=1), actor="test", today=FAR)

    late = toll(lane_terminal, 2, local(DAY, 9))
    made = partitions.ensure(ahead=0, keep=1, today=DAY + dt.timedelta(days=1))

    assert partition_of(late) == partitions.DEFAULT_PARTITION
    assert [c.name for c in made] == ["tolling_tolltransaction_p20250311"]
    assert count_in("tolling_tolltransaction_p20250310") == 1
    assert is_partition("tolling_tolltransaction_p20250310") is False


@postgresql_only
def test_the_same_terminal_and_seq_is_still_refused(lane_terminal: Terminal) -> None:
    partitions.create_days([DAY])
    first = toll(lane_terminal, 7, local(DAY, 10))

    # PostgreSQL names the day partition's own index of transaction_unique_seq.
    with pytest.raises(IntegrityError, match=DUPLICATE), transaction.atomic():
        toll(lane_terminal, 7, local(DAY, 10), plate="陕B00001")
    # In DEFAULT as well.
    toll(lane_terminal, 8, local(FAR, 10))
    with pytest.raises(IntegrityError, match=DUPLICATE), transaction.atomic():
        toll(lane_terminal, 8, local(FAR, 10))

    assert list(TollTransaction.objects.order_by("seq").values_list("pk", "seq"))[:1] == [
        (first.pk, 7)
    ]
    assert TollTransaction.objects.count() == 2


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_back_to_one_plain_table_and_forward_again(
    lane_terminal: Terminal,
) -> None:
    today = partitions.local_today()
    old = toll(lane_terminal, 1, local(DAY, 8))  # older than the store's 90 days
    recent = toll(lane_terminal, 2, local(today, 0, 1))
    try:
        call_command("migrate", "tolling", "0004", verbosity=0)

        assert not partitions.is_partitioned()
        assert partitions.partitions() == []
        assert sorted(TollTransaction.objects.values_list("pk", flat=True)) == [old.pk, recent.pk]
    finally:
        call_command("migrate", "tolling", verbosity=0)

    assert partitions.is_partitioned()
    assert partition_of(TollTransaction.objects.get(pk=old.pk)) == partitions.DEFAULT_PARTITION
    assert partition_of(TollTransaction.objects.get(pk=recent.pk)) == partitions.partition_name(
        today
    )
    newer = toll(lane_terminal, 3, local(today, 0, 2))
    assert newer.pk > recent.pk  # the identity went on
