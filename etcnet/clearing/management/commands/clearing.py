"""`etcnet clearing run --date YYYY-MM-DD`: the clearing day's run (idempotent: a
closed day's run changes nothing); `etcnet clearing runs [--date D]`: the job-run
log; `etcnet clearing runs --crashed ID`: mark a run whose process died on
another host (docs/clearing.md)."""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from etcnet.clearing import run
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

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        if options["action"] == "run":
            self._run(_date(options["date"]))
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
