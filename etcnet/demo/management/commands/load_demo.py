"""`etcnet load_demo`: the demo users, outlet, customers, vehicles, cards, network,
terminal, status list and plate pools (``etcnet.demo.loader``); idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from etcnet.demo.loader import Loader


class Command(BaseCommand):
    help = "Load the demo users, outlet, customers and vehicles (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        Loader(self.stdout, self.style).run()
