"""`etcnet plates expire [--every SECONDS]`, `etcnet plates pool create|release`,
`etcnet plates pools`: plate pre-selection's batch job and pools (docs/plates.md).

`expire` is safe to run any number of times; with `--every` it repeats."""

from __future__ import annotations

import json
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from etcnet.core.errors import DomainError
from etcnet.core.roles import Role, has_role
from etcnet.plates import services
from etcnet.plates.models import NumberPool


class Command(BaseCommand):
    help = "Plate pre-selection: the expiry job and number pools."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        exp = sub.add_parser("expire", help="return lapsed and overdue numbers, cancel accounts")
        exp.add_argument("--every", type=int, default=0, help="repeat every SECONDS")
        pool = sub.add_parser("pool", help="create or release a number pool")
        verbs = pool.add_subparsers(dest="verb", required=True)
        create = verbs.add_parser("create", help="a draft pool from patterns")
        create.add_argument("--office", required=True, help="vehicle office code")
        create.add_argument("--kind", required=True, choices=["ordinary", "new_energy"])
        create.add_argument("--title", required=True)
        create.add_argument("--pattern", action="append", required=True, dest="patterns")
        create.add_argument("--reserved", action="append", default=[], help="regex held back")
        create.add_argument("--forbidden", action="append", default=[], help="regex never made")
        create.add_argument("--announcement", default="")
        create.add_argument("--release", action="store_true", help="release it at once")
        create.add_argument("--operator", required=True, help="a center operator's user name")
        release = verbs.add_parser("release", help="make a draft pool's numbers, announce it")
        release.add_argument("pool_id", type=int)
        release.add_argument("--operator", required=True, help="a center operator's user name")
        sub.add_parser("pools", help="the pools with their counts")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "expire":
                self._expire(options["every"])
            elif options["action"] == "pool":
                self._pool(options)
            else:
                for p in NumberPool.objects.select_related("office")[:50]:
                    self.stdout.write(
                        f"{p.pk}  {p.office.code}  {p.kind}  {p.status}  "
                        f"available {p.available_count}  reserved {p.reserved_count}  {p.title}"
                    )
        except DomainError as exc:
            details = "; ".join(f"{i.field}: {i.message}" for i in exc.issues)
            raise CommandError(exc.message + (f" {details}" if details else "")) from None

    def _expire(self, every: int) -> None:
        if every < 0:
            raise CommandError("--every must be a number of seconds")
        while True:
            report = services.expire()
            self.stdout.write(json.dumps(report.as_dict()))
            if not every:
                return
            time.sleep(every)

    def _pool(self, options: dict[str, Any]) -> None:
        operator = get_user_model().objects.filter(username=options["operator"]).first()
        if operator is None or not has_role(operator, Role.CENTER_OPERATOR):
            raise CommandError(f"--operator {options['operator']!r} is not a center operator")
        if options["verb"] == "create":
            pool = services.create_pool(
                office_code=options["office"],
                kind=options["kind"],
                title=options["title"],
                patterns=options["patterns"],
                reserved=options["reserved"],
                forbidden=options["forbidden"],
                announcement=options["announcement"],
                actor=operator,
            )
            self.stdout.write(f"pool {pool.pk} created (draft)")
            if not options["release"]:
                return
            pool_id = pool.pk
        else:
            pool_id = options["pool_id"]
        if not NumberPool.objects.filter(pk=pool_id).exists():
            raise CommandError(f"no pool {pool_id}")
        pool = services.release_pool(pool_id, actor=operator)
        self.stdout.write(
            f"pool {pool.pk} released: {pool.available_count} available, "
            f"{pool.reserved_count} held back, {pool.forbidden_count} forbidden"
        )
