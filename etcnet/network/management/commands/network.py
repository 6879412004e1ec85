"""`etcnet network import DIR [--effective TIME]` and `etcnet network export DIR
[--version NUMBER]`: the network bundle in and out of the database.

An import is all or nothing: a bad bundle prints every problem with file, line
and column, imports nothing, and exits 1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from etcnet.network import services
from etcnet.network.models import ImportStatus, TariffVersion


def _when(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--effective {text!r} is not an ISO date or time (e.g. 2026-01-01T00:00)"
        ) from None
    if value.tzinfo is None:
        value = timezone.make_aware(value)  # a local (Asia/Shanghai) time
    return value


class Command(BaseCommand):
    help = "Import or export a network bundle (a folder of CSV files)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="import a bundle folder as a new tariff version")
        imp.add_argument("folder")
        imp.add_argument(
            "--effective", default="", help="when the version takes effect (default: now)"
        )
        imp.add_argument(
            "--discount-bp", type=int, default=500, help="ETC discount in basis points (500 = 5 %%)"
        )
        exp = sub.add_parser("export", help="write a tariff version as a bundle folder")
        exp.add_argument("folder")
        exp.add_argument("--version", default="", help="version number (default: the one in force)")

    def handle(self, *args: Any, **options: Any) -> None:
        folder = Path(options["folder"])
        if options["action"] == "import":
            if not folder.is_dir():
                raise CommandError(f"{folder}: not a folder")
            effective = _when(options["effective"]) if options["effective"] else timezone.now()
            if not 0 <= options["discount_bp"] <= 10_000:
                raise CommandError("--discount-bp must be from 0 to 10000 (500 = 5 %)")
            record = services.import_bundle(
                folder, effective_at=effective, discount_bp=options["discount_bp"]
            )
            if record.status == ImportStatus.REFUSED:
                for p in record.problems:
                    self.stderr.write(
                        f"{p['file']}:{p['line']}:{p['column']}: {p['code']}: {p['message']}"
                    )
                raise CommandError(
                    f"bundle refused: {len(record.problems)} problem(s); nothing imported"
                )
            assert record.version is not None
            self.stdout.write(
                f"imported version {record.version.number} effective "
                f"{timezone.localtime(record.version.effective_at):%Y-%m-%d %H:%M}: "
                f"{record.summary}"
            )
            return
        version = None
        if options["version"]:
            version = TariffVersion.objects.filter(number=options["version"]).first()
            if version is None:
                raise CommandError(f"no tariff version {options['version']}")
        folder.mkdir(parents=True, exist_ok=True)
        written = services.export_bundle(folder, version=version)
        self.stdout.write(f"exported version {written.number} to {folder}")
