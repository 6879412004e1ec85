"""`etcnet clearing run --date YYYY-MM-DD`: the clearing day's run (idempotent: a
closed day's run changes nothing); `etcnet clearing runs [--date D]`: the job-run
log; `etcnet clearing runs --crashed ID`: mark a run whose process died on
another host; `etcnet clearing export --date D --out DIR`: a closed day's
transaction packages for the national center; `etcnet clearing import FILE…`:
the national center's files (docs/clearing.md, docs/clearing-packages.md)."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from etcnet.clearing import exchange, run
from etcnet.clearing.models import JobRun, RunStatus
from etcnet.core import audit


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--date {text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Run a clearing day, list the runs."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        go = sub.add_parser("run", help="clear, split and settle one Asia/Shanghai day")
        go.add_argument("--date", required=True, help="the clearing day, YYYY-MM-DD")
        runs = sub.add_parser("runs", help="the job-run log")
        runs.add_argument("--date", help="only this day's runs")
        runs.add_argument("--crashed", type=int, metavar="ID", help="mark run ID crashed")
        out = sub.add_parser("export", help="a closed day's packages for the national center")
        out.add_argument("--date", required=True, help="the clearing day, YYYY-MM-DD")
        out.add_argument("--out", required=True, help="the folder the files are copied to")
        imp = sub.add_parser("import", help="files from the national center (§6.2)")
        imp.add_argument("files", nargs="+")

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        if options["action"] == "run":
            self._run(_date(options["date"]))
        elif options["action"] == "export":
            self._export(_date(options["date"]), Path(options["out"]))
        elif options["action"] == "import":
            self._import([Path(f) for f in options["files"]])
        elif options["crashed"] is not None:
            self._crashed(options["crashed"])
        else:
            self._runs(_date(options["date"]) if options["date"] else None)

    def _run(self, date: dt.date) -> None:
        began = time.monotonic()

        def progress(message: str) -> None:
            # On a terminal each step as it goes, with the time since the start.
            if sys.stderr.isatty() or self.verbosity > 1:
                sys.stderr.write(f"[{time.monotonic() - began:7.1f} s] {message}\n")

        try:
            job = run.run_day(date, actor="etcnet clearing run", progress=progress)
        except run.ClearingError as error:
            raise CommandError(str(error)) from None
        counts = job.counts
        if job.status == RunStatus.UNCHANGED:
            self.stdout.write(f"{date} is closed: nothing changed (run {job.pk})")
            return
        self.stdout.write(
            f"{date} closed (run {job.pk}): {counts.get('records', 0):,} records,"
            f" {counts.get('cleared', 0):,} cleared, {counts.get('held', 0):,} held,"
            f" {counts.get('sent', 0):,} sent, {counts.get('late', 0):,} late;"
            f" payable {counts.get('payable_fen', 0) / 100:,.2f} yuan split among the owners"
        )

    def _export(self, date: dt.date, out: Path) -> None:
        try:
            written = exchange.export_day(date, out)
        except exchange.ExchangeError as error:
            raise CommandError(str(error)) from None
        for path in written:
            self.stdout.write(str(path))
        self.stdout.write(f"{len(written)} package file(s) of {date} in {out}")

    def _import(self, files: list[Path]) -> None:
        failed = 0
        for path in files:
            # One bad file never stops the others: each is taken or refused alone.
            try:
                taken = exchange.import_file(path)
            except exchange.ExchangeError as error:
                failed += 1
                self.stderr.write(f"refused {error}")
                continue
            file = taken.file
            said = "taken" if taken.created else "already taken, nothing changed"
            self.stdout.write(
                f"{path.name}: {file.get_kind_display()} {file.message_id} {said};"
                f" {file.count} records, {file.amount_fen / 100:,.2f} yuan,"
                f" {file.disputed_count} disputed"
                + (f"; {file.finding}" if file.finding else "")
                + (f"; our answer {taken.answer}" if taken.answer else "")
            )
        if failed:
            raise CommandError(f"{failed} of {len(files)} file(s) refused")

    def _runs(self, date: dt.date | None) -> None:
        jobs = JobRun.objects.select_related("day")
        if date:
            jobs = jobs.filter(day__date=date)
        for job in jobs[:50]:
            took = (
                f"{(job.finished_at - job.started_at).total_seconds():.1f} s"
                if job.finished_at
                else "-"
            )
            self.stdout.write(
                f"{job.pk:>6}  {job.job:<6} {job.day.date}  {job.status:<9}"
                f" {timezone.localtime(job.started_at):%Y-%m-%d %H:%M:%S}  {took:>9}"
                f"  {job.step}  {job.error.splitlines()[-1] if job.error else ''}"
            )

    def _crashed(self, pk: int) -> None:
        from django.db import transaction

        with transaction.atomic():
            job = JobRun.objects.select_for_update().filter(pk=pk).first()
            if job is None:
                raise CommandError(f"no run {pk}")
            if job.status != RunStatus.RUNNING:
                raise CommandError(f"run {pk} is {job.status}, not running")
            job.status, job.finished_at = RunStatus.CRASHED, timezone.now()
            job.error = f"marked crashed by an operator at step {job.step!r}"
            job.save(update_fields=["status", "finished_at", "error"])
            audit.record(
                actor="etcnet clearing runs",
                action="clearing.run_marked_crashed",
                subject=job,
                before={"status": RunStatus.RUNNING},
                after={"status": RunStatus.CRASHED},
            )
        self.stdout.write(f"run {pk} marked crashed; the next run resumes from its files")
