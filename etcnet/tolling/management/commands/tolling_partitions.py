"""`etcnet tolling_partitions [--ahead N] [--detach-before YYYY-MM-DD] [--list]`: the
transaction store's day partitions on PostgreSQL (docs/tolling-store.md).

Without options (or with `--ahead N`) it creates the missing day partitions
through today + 14 (or N) days, Asia/Shanghai, and the missing days between the
oldest attached one (at most 90 days back) and today; safe to run any number of
times: the daily timer runs it. `--detach-before DAY` detaches every attached day
before DAY, never today or later (never drops it: the day stays a table of its
own for an operator to archive), one audit event per day. `--list` lists the
partitions with PostgreSQL's row estimates (after the other actions, if any).
On SQLite the store is one plain table: it says so and does nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from etcnet.tolling import partitions

ACTOR = "etcnet tolling_partitions"


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--detach-before {text!r} is not a date (YYYY-MM-DD)") from None


def _size(size: int) -> str:
    amount, unit = float(size), "B"
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            break
        amount /= 1024
    return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"


class Command(BaseCommand):
    help = "Create the transaction store's day partitions ahead, detach old days, list them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--ahead",
            type=int,
            help=f"days after today (Asia/Shanghai) to have partitions for"
            f" (default {partitions.AHEAD_DAYS})",
        )
        parser.add_argument(
            "--detach-before",
            metavar="YYYY-MM-DD",
            help="detach (not drop) every day partition before this day",
        )
        parser.add_argument(
            "--list", action="store_true", help="list the partitions with row estimates"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ahead, before = options["ahead"], options["detach_before"]
        if ahead is not None and ahead < 0:
            raise CommandError("--ahead must be zero or more days")
        day = _day(before) if before is not None else None
        today = partitions.local_today()
        if day is not None and day > today:
            raise CommandError(
                f"--detach-before {day} would detach today's partition ({today}) or later days"
            )
        if not partitions.is_partitioned(connection):
            self.stdout.write(
                f"the transaction store is not partitioned on {connection.vendor}"
                " (only PostgreSQL's is, after `etcnet migrate`): nothing to do"
            )
            return
        if ahead is not None or (day is None and not options["list"]):
            self._ensure(partitions.AHEAD_DAYS if ahead is None else ahead, today)
        if day is not None:
            gone = partitions.detach_before(day, actor=ACTOR)
            for detached in gone:
                self.stdout.write(
                    f"detached {detached.name} ({detached.day}, {detached.rows:,} rows):"
                    " now a table of its own, to archive (pg_dump -t) and drop"
                )
            self.stdout.write(f"{len(gone)} partitions detached (days before {day})")
        if options["list"]:
            self._list()

    def _ensure(self, ahead: int, today: dt.date) -> None:
        made = partitions.ensure(ahead=ahead, today=today)
        for created in made:
            moved = f", {created.moved:,} rows moved from DEFAULT" if created.moved else ""
            self.stdout.write(f"created {created.name} ({created.day}){moved}")
        self.stdout.write(
            f"{len(made)} partitions created; every day through"
            f" {today + dt.timedelta(days=ahead)} has its partition"
        )

    def _list(self) -> None:
        found = partitions.partitions(connection)
        for part in found:
            state = "attached" if part.attached else "DETACHED"
            day = part.day.isoformat() if part.day else "DEFAULT   "
            self.stdout.write(
                f"{day}  {part.name:<40} {state:<9} ~{part.rows:>12,} rows  {_size(part.bytes):>9}"
            )
        attached = [p for p in found if p.attached and p.day is not None]
        self.stdout.write(
            f"{len(attached)} day partitions attached"
            + (f" ({attached[0].day} to {attached[-1].day})" if attached else "")
            + f", {sum(1 for p in found if not p.attached)} detached,"
            f" ~{sum(p.rows for p in found if p.attached):,} rows in the store"
            " (PostgreSQL's estimates: exact after ANALYZE)"
        )
