"""`etcnet lists publish [--full] [--every SECONDS] [--full-at HH:MM]`, `etcnet
lists import FILE…`, `etcnet lists versions`: the status list's versions and
imports (docs/lists.md).

`publish` is safe to run twice (the minute's version is made once). With
`--every` it is the schedule: it publishes at every multiple of SECONDS (300:
the 5-minute slots) and the day's full version at `--full-at` (Asia/Shanghai)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from etcnet.lists import services
from etcnet.lists.models import ListImport, ListVersion


def _clock(text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--full-at {text!r} is not a time of day (HH:MM)") from None


class Command(BaseCommand):
    help = "Publish status-list versions, import list files, show the versions."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        pub = sub.add_parser("publish", help="publish this minute's increment (and a full version)")
        pub.add_argument("--full", action="store_true", help="also the full version")
        pub.add_argument(
            "--every", type=int, default=0, help="keep publishing every SECONDS (300: 5 minutes)"
        )
        pub.add_argument(
            "--full-at", default="00:00", help="with --every: the daily full version's time"
        )
        imp = sub.add_parser("import", help="import list files (national or other issuers)")
        imp.add_argument("files", nargs="+")
        sub.add_parser("versions", help="the latest versions with their counts")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "publish":
            if options["every"] < 0:
                raise CommandError("--every must be a number of seconds")
            if options["every"]:
                self._schedule(options["every"], _clock(options["full_at"]))
            else:
                self._publish(full=options["full"])
        elif action == "import":
            self._import([Path(f) for f in options["files"]])
        else:
            for v in ListVersion.objects.all()[:20]:
                full = f" full {v.full_file}" if v.full_file else ""
                self.stdout.write(
                    f"{v.number}  +{v.adds} -{v.removes}  size {v.list_size}  {v.file}{full}"
                )

    def _publish(self, *, full: bool) -> None:
        report = services.publish(full=full)
        v = report.version
        said = "published" if report.created else "already published"
        self.stdout.write(
            f"version {v.number} {said}: +{v.adds} -{v.removes}, list size {v.list_size}"
            + (f"; full version {v.full_file}" if report.full_written else "")
        )

    def _schedule(self, every: int, full_at: dt.time) -> None:
        self.stdout.write(f"publishing every {every} s, the full version daily at {full_at}")
        last_full_day = None
        while True:
            now = timezone.now()
            local = timezone.localtime(now)
            due_full = local.time() >= full_at and local.date() != last_full_day
            self._publish(full=due_full)
            if due_full:
                last_full_day = local.date()
            wait = every - (time.time() % every)
            time.sleep(wait)

    def _import(self, files: list[Path]) -> None:
        failed = False
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as error:
                raise CommandError(f"{path}: {error.strerror}") from None
            row = services.import_file(data, filename=path.name, actor="etcnet lists import")
            if row.result == ListImport.Result.REFUSED:
                failed = True
                self.stderr.write(f"{path}: refused — {row.field}: {row.report}")
            elif row.result == ListImport.Result.ALREADY:
                self.stdout.write(f"{path}: {row.report}")
            else:
                self.stdout.write(
                    f"{path}: {row.kind} {row.version} from {row.publisher} applied:"
                    f" {row.lines} lines, +{row.adds} -{row.removes}"
                    " (the next published version carries them)"
                )
        if failed:
            raise CommandError("some files were refused; they changed nothing")
