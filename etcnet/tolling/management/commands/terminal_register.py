"""`etcnet terminal_register ID --station NODE --lanes 3,4`: registers a terminal
and provisions its emulated PSAM; prints the secret once (only its digest is kept)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from etcnet.core.errors import DomainError
from etcnet.core.roles import Role
from etcnet.tolling import services


class Command(BaseCommand):
    help = "Register a toll terminal (handheld or lane PC) and provision its PSAM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("terminal_id")
        parser.add_argument("--station", required=True, help="station node id, e.g. S1201005")
        parser.add_argument("--lanes", required=True, help="lane numbers, comma-separated")
        parser.add_argument(
            "--operator", default="operator", help="the center operator registering it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        operator = User.objects.filter(
            username=options["operator"], groups__name=Role.CENTER_OPERATOR
        ).first()
        if operator is None:
            raise CommandError(f"{options['operator']!r} is not a center operator")
        try:
            lanes = [int(n) for n in options["lanes"].split(",") if n.strip()]
        except ValueError:
            raise CommandError("--lanes takes lane numbers, e.g. 3,4") from None
        try:
            terminal, secret, psam = services.register_terminal(
                options["terminal_id"], station_id=options["station"], lanes=lanes, actor=operator
            )
        except DomainError as error:
            details = "; ".join(issue.message for issue in error.issues)
            raise CommandError(f"{error.message} {details}".strip()) from None
        self.stdout.write(
            f"terminal {terminal.terminal_id} at {terminal.station.name}, "
            f"PSAM {terminal.psam_terminal_no}"
        )
        self.stdout.write(f"PSAM file: {psam}")
        self.stdout.write(f"secret (shown once): {secret}")
