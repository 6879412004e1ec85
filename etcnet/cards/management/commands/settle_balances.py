"""`etcnet settle_balances`: moves the balances of replaced and cancelled cards
whose fund-dispute period has ended (to the new card's pending load, or to
refunds payable). Idempotent; meant for a daily schedule."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from etcnet.cards import services


class Command(BaseCommand):
    help = "Settle card balances whose fund-dispute period has ended."

    def handle(self, *args: Any, **options: Any) -> None:
        done = services.settle_due()
        self.stdout.write(f"settled {done} balance(s)")
