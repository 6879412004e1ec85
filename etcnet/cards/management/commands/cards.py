"""`etcnet cards`: refunds of cancelled cards paid out (退费).

    etcnet cards payouts [--due]          the payouts (or, with --due, the accounts
                                          whose refunds may be paid now)
    etcnet cards payout ACCOUNT --bank-name … --bank-account … --holder …
                                          makes the due payout of an account
    etcnet cards paid REFERENCE --bank-reference …
                                          the bank paid it (idempotent)

A refused input exits with the error naming its field; nothing changes then."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from etcnet.cards import services
from etcnet.cards.models import Payout
from etcnet.core.errors import DomainError
from etcnet.core.money import format_yuan
from etcnet.core.roles import Role, has_role


class Command(BaseCommand):
    help = "Refunds of cancelled cards: list, make and mark paid the payouts."

    def add_arguments(self, parser: CommandParser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True)
        listing = verbs.add_parser("payouts", help="list the payouts")
        listing.add_argument(
            "--due", action="store_true", help="the accounts whose refunds may be paid now"
        )
        make = verbs.add_parser("payout", help="make an account's due payout")
        make.add_argument("account")
        make.add_argument("--bank-name", default="", help="default: the account's linked bank")
        make.add_argument("--bank-account", default="", help="8 to 32 digits")
        make.add_argument("--holder", default="", help="default: the customer's name")
        make.add_argument("--operator", required=True, help="a clerk's or operator's user name")
        paid = verbs.add_parser("paid", help="the bank paid a payout")
        paid.add_argument("reference")
        paid.add_argument("--bank-reference", required=True)
        paid.add_argument("--operator", required=True, help="a center operator's user name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["verb"] == "payouts":
                self._list(due=options["due"])
            elif options["verb"] == "payout":
                payout = services.make_payout(
                    options["account"],
                    bank_name=options["bank_name"],
                    bank_account_no=options["bank_account"],
                    holder_name=options["holder"],
                    actor=self._operator(
                        options["operator"], Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR
                    ),
                )
                self.stdout.write(
                    f"payout {payout.reference} due: {format_yuan(payout.amount_fen)} "
                    f"to {payout.bank_name} ****{payout.bank_account_no[-4:]}"
                )
            else:
                payout = services.mark_paid(
                    options["reference"],
                    bank_reference=options["bank_reference"],
                    actor=self._operator(options["operator"], Role.CENTER_OPERATOR),
                )
                self.stdout.write(
                    f"payout {payout.reference} paid: {format_yuan(payout.amount_fen)} "
                    f"(bank reference {payout.bank_reference})"
                )
        except DomainError as error:
            fields = "; ".join(f"{issue.field}: {issue.message}" for issue in error.issues)
            raise CommandError(fields or error.message) from error

    def _operator(self, username: str, *roles: Role) -> Any:
        operator = get_user_model().objects.filter(username=username).first()
        if operator is None or not has_role(operator, *roles):
            raise CommandError(f"--operator {username!r} may not do this")
        return operator

    def _list(self, *, due: bool) -> None:
        if due:
            for row in services.payouts_due():
                self.stdout.write(
                    f"{row.account_number}\t{format_yuan(row.amount_fen)}\t{','.join(row.card_nos)}"
                )
            return
        for payout in Payout.objects.select_related("account"):
            self.stdout.write(
                f"{payout.reference}\t{payout.account.number}\t{payout.state}\t"
                f"{format_yuan(payout.amount_fen)}\t{payout.bank_reference}"
            )
