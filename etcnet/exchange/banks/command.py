"""`etcnet exchange bank …`: the banks' front server from the command line.

etcnet exchange bank debit --date D          each bank's debit file of a closed day
etcnet exchange bank usage --date D          each bank's cards' out-of-province usage
etcnet exchange bank instruct --date D       the day's transfer instructions
etcnet exchange bank send|receive [--bank ID]   one pass of each
etcnet exchange bank run [--every S]         send and receive (forever with --every)
etcnet exchange bank unconfirmed [--overdue] instructions not confirmed, with their age
etcnet exchange bank chase                   send the overdue instructions again
etcnet exchange bank recoveries [--open]     accounts in recovery (追缴)
etcnet exchange bank repay ID --amount-fen N [--outlet CODE]   the holder repays
etcnet exchange bank files [--state S]       what was sent and received
etcnet exchange bank keys                    the banks' shared keys the vault holds (KCVs)
"""

from __future__ import annotations

import datetime as dt
import time
from argparse import ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from etcnet.cards import vault
from etcnet.cards.models import Account
from etcnet.exchange import signing
from etcnet.exchange.banks import debits, settlement, transport
from etcnet.exchange.banks.config import ConfigError
from etcnet.exchange.models import BankFile, Recovery, TransferState

ACTOR = "etcnet exchange bank"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ArgumentTypeError(f"--date: YYYY-MM-DD, not {text!r}") from None


def add_arguments(sub: Any) -> None:
    bank = sub.add_parser("bank", help="the banks: debit files, settlement, keys (docs/banks.md)")
    actions = bank.add_subparsers(dest="bank_action", required=True)
    for name, text in (
        ("debit", "each bank's debit file of a closed day"),
        ("usage", "each bank's cards' out-of-province usage of a closed day"),
        ("instruct", "the closed day's transfer instructions to the settlement bank"),
    ):
        actions.add_parser(name, help=text).add_argument("--date", type=_date, required=True)
    for name, text in (("send", "send what is due"), ("receive", "fetch and take what waits")):
        actions.add_parser(name, help=text).add_argument("--bank", default=None)
    actions.add_parser("run", help="send and receive").add_argument(
        "--every", type=float, default=0, help="repeat every SECONDS"
    )
    actions.add_parser("unconfirmed", help="instructions not confirmed").add_argument(
        "--overdue", action="store_true", help="only those past ETCNET_BANK_CONFIRM_HOURS"
    )
    actions.add_parser("chase", help="send the overdue instructions again")
    actions.add_parser("recoveries", help="accounts in recovery").add_argument(
        "--open", action="store_true"
    )
    repay = actions.add_parser("repay", help="the holder repays what the account owes")
    repay.add_argument("recovery", type=int)
    repay.add_argument("--amount-fen", type=int, required=True)
    repay.add_argument("--outlet", default="", help="paid in cash at this outlet")
    files = actions.add_parser("files", help="what was sent to and received from the banks")
    files.add_argument("--state", choices=TransferState.values)
    files.add_argument("--limit", type=int, default=50)
    actions.add_parser("keys", help="the banks' shared keys in the vault (KCVs, never keys)")


def _age(since: dt.datetime) -> str:
    seconds = int((timezone.now() - since).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    out = command.stdout
    action = options["bank_action"]
    try:
        if action in ("debit", "usage"):
            make = debits.make_debit_files if action == "debit" else debits.make_usage_files
            for row in make(options["date"], actor=ACTOR):
                out.write(f"{row.name}: {row.lines} lines, {row.amount_fen} fen, {row.state}")
        elif action == "instruct":
            made = settlement.make_instructions(options["date"], actor=ACTOR)
            out.write(f"{made.name}: {made.lines} instructions, {made.amount_fen} fen"
                      if made else "every net position is zero: nothing to instruct")  # fmt: skip
        elif action in ("send", "receive", "run"):
            while True:
                _pass(command, action, options.get("bank"))
                if not options.get("every"):
                    break
                time.sleep(options["every"])
        elif action == "unconfirmed":
            rows = settlement.overdue() if options["overdue"] else settlement.unconfirmed()
            for i in rows:
                since = getattr(i, "since", None) or i.file.created_at
                sent = timezone.localtime(i.file.created_at)
                out.write(
                    f"{i.reference} {i.direction:3} {i.amount_fen} fen  {i.payer_account} →"
                    f" {i.payee_account}  sent {sent:%Y-%m-%d %H:%M}, age {_age(since)},"
                    f" chased {i.chased}"
                )
        elif action == "chase":
            chased = settlement.chase(actor=ACTOR)
            out.write(f"{chased.name}: {chased.lines} instructions sent again"
                      if chased else "nothing overdue")  # fmt: skip
        elif action == "recoveries":
            _recoveries(command, options["open"])
        elif action == "repay":
            done = debits.repay(options["recovery"], amount_fen=options["amount_fen"],
                                outlet_code=options["outlet"], actor=ACTOR)  # fmt: skip
            out.write(f"recovery {done.pk}: paid, the account's cards leave list type 4")
        elif action == "files":
            found = BankFile.objects.all()
            if options["state"]:
                found = found.filter(state=options["state"])
            for f in found[: options["limit"]]:
                error = f"  ({f.last_error[:80]})" if f.last_error else ""
                out.write(
                    f"{timezone.localtime(f.created_at):%Y-%m-%d %H:%M} {f.direction:3}"
                    f" {f.kind:8} {f.name} {f.state} lines {f.lines} tries {f.attempts}{error}"
                )
        else:
            for key in vault.shared_keys():
                out.write(f"{key['bank']} {key['issuer']} v{key['version']} {key['alg']}"
                          f" {key['name']} KCV {key['kcv']}")  # fmt: skip
    except debits.BankError as error:
        raise CommandError(str(error)) from None
    except (ConfigError, signing.SignerUnavailable, transport.BankUnavailable) as error:
        raise CommandError(str(error)) from None


def _pass(command: BaseCommand, action: str, bank: str | None) -> None:
    if action in ("send", "run"):
        sent = transport.send(bank=bank, actor=ACTOR)
        if sent.acked or sent.refused or sent.failed:
            command.stdout.write(
                f"sent: {sent.acked} acknowledged, {sent.refused} refused, "
                f"{len(sent.failed)} not answered (resent later)"
            )
    if action in ("receive", "run"):
        got = transport.receive(bank=bank, actor=ACTOR)
        if got.applied or got.duplicates or got.refused or got.quarantined:
            command.stdout.write(
                f"received: {got.applied} applied, {got.duplicates} again, {got.refused}"
                f" refused, {got.quarantined} kept unverified"
            )
        for failure in got.failed:
            command.stderr.write(f"receive: {failure}")


def _recoveries(command: BaseCommand, only_open: bool) -> None:
    rows = Recovery.objects.all()
    if only_open:
        rows = rows.filter(state=Recovery.State.OPEN)
    numbers = dict(
        Account.objects.filter(pk__in=rows.values("account_id")).values_list("pk", "number")
    )
    for r in rows:
        closed = f", closed by {r.closed_by}" if r.closed_at else ""
        command.stdout.write(
            f"{r.pk} account {numbers.get(r.account_id)} owes {r.owed_fen} fen (of"
            f" {r.total_fen}) {r.state}, since {timezone.localtime(r.opened_at):%Y-%m-%d %H:%M}"
            f"{closed}"
        )
