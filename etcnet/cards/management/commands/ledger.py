"""`etcnet ledger check`: proves the ledger's invariants — every entry sums to
zero, every cached account balance equals its postings, every card's shadow
balance equals its purse postings. Exit status 1 when any does not hold.

Set-based (`ledger.check()`: a few aggregate queries that return only the rows
breaking an invariant); on PostgreSQL the database also refuses to commit an
unbalanced entry, so a problem here means a cache drifted or the data was loaded
around the triggers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from etcnet.cards import ledger
from etcnet.cards.models import JournalEntry, Posting


class Command(BaseCommand):
    help = "Check the ledger's invariants (`etcnet ledger check`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["check"])

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger.check()
        entries, postings = JournalEntry.objects.count(), Posting.objects.count()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"ledger check failed: {len(problems)} problem(s)")
        self.stdout.write(f"ledger balanced: {entries} entries, {postings} postings")
