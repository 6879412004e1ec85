"""`etcnet exchange …`: the front server towards the national center.

etcnet exchange certificate register FILE --kind national|bank|self
etcnet exchange certificate list
etcnet exchange queue | send | receive      one pass of each
etcnet exchange run [--every SECONDS]       queue, send, receive (forever with --every)
etcnet exchange transfers [--state S]       what was sent and received
etcnet exchange national-sim --dir D --peer-cert F   the simulated national center
                                            (a process of its own: etcnet.exchange.national)
etcnet exchange statement --kind K [--counterparty C] --period P --out DIR
                                            a signed statement (zip) for a counterparty
etcnet exchange verify FILE [--party ID]    FILE against FILE.sig and the registered certificates
etcnet exchange anchor | anchors            sign the audit chain's head | prove the anchors
etcnet exchange bank …                      the banks (etcnet.exchange.banks.command)
etcnet exchange bank-sim --dir D --peer-cert F       a simulated bank
                                            (a process of its own: etcnet.exchange.banksim)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from etcnet.exchange import anchors, link, signing, sm2
from etcnet.exchange.banks import command as bank_command
from etcnet.exchange.models import PartyCertificate, PartyKind, Transfer, TransferState


class Command(BaseCommand):
    help = "The exchange with the national center: certificates, the outbox, the inbox."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        cert = sub.add_parser("certificate", help="counterparts' SM2 certificates")
        cert_sub = cert.add_subparsers(dest="cert_action", required=True)
        register = cert_sub.add_parser("register", help="register a counterpart's certificate")
        register.add_argument("file")
        register.add_argument("--kind", required=True, choices=PartyKind.values)
        cert_sub.add_parser("list", help="the registered certificates")
        for name, text in (
            ("queue", "sign and store what is to be sent"),
            ("send", "send what is due"),
            ("receive", "fetch, take and answer what waits for us"),
        ):
            sub.add_parser(name, help=text)
        go = sub.add_parser("run", help="queue, send and receive")
        go.add_argument("--every", type=float, default=0, help="repeat every SECONDS")
        transfers = sub.add_parser("transfers", help="what was sent and received")
        transfers.add_argument("--state", choices=TransferState.values)
        transfers.add_argument("--limit", type=int, default=50)
        statement = sub.add_parser("statement", help="a counterparty's statement, signed")
        statement.add_argument("--kind", required=True)
        statement.add_argument("--counterparty", default="")
        statement.add_argument("--period", required=True, help="YYYY-MM-DD or YYYY-MM")
        statement.add_argument("--out", required=True, help="the folder the zip goes to")
        sub.add_parser("anchor", help="the audit chain's head signed by the signature server")
        sub.add_parser("anchors", help="prove the audit chain's signed anchors")
        verify = sub.add_parser("verify", help="a file against FILE.sig")
        verify.add_argument("file")
        verify.add_argument("--party", default=None, help="the party that must have signed")
        bank_command.add_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "bank":
            bank_command.handle(self, options)
        elif action == "certificate":
            if options["cert_action"] == "register":
                self._register(Path(options["file"]), options["kind"])
            else:
                self._certificates()
        elif action == "statement":
            self._statement(options)
        elif action == "anchor":
            self._pass("anchor")
        elif action == "anchors":
            self._anchors()
        elif action == "verify":
            self._verify(Path(options["file"]), options["party"])
        elif action == "transfers":
            self._transfers(options["state"], options["limit"])
        elif action == "run":
            while True:
                self._pass("queue", "send", "receive", "anchor")
                if not options["every"]:
                    break
                time.sleep(options["every"])
        else:
            self._pass(action)

    def _statement(self, options: dict[str, Any]) -> None:
        from etcnet.clearing.reports.tables import FilterError, Period
        from etcnet.clearing.statements import NoStatement
        from etcnet.exchange import statements

        try:
            period = Period.parse(options["period"])
            found = statements.signed(period, options["kind"], options["counterparty"])
        except FilterError as error:
            raise CommandError(f"--{error.field}: {error.message}") from None
        except NoStatement:
            raise CommandError(
                f"{options['kind']} {options['counterparty']}: no position in {options['period']}"
            ) from None
        except signing.SignerUnavailable as error:
            raise CommandError(str(error)) from None
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        (out / found.filename).write_bytes(found.data)
        self.stdout.write(f"{out / found.filename}: PDF and Excel, each with its signature")

    def _anchors(self) -> None:
        proof = anchors.verify()
        if not proof.ok:
            raise CommandError("; ".join(proof.failures[:5]))
        self.stdout.write(f"{proof.anchors} anchor(s) proved: signed by the signature server,"
                          " each still the chain's hash at its seq")  # fmt: skip

    def _verify(self, path: Path, party: str | None) -> None:
        try:
            cert = signing.verify_file(path, party=party)
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror}") from None
        except sm2.SignatureError as error:
            raise CommandError(f"{path}: {error}") from None
        self.stdout.write(
            f"{path}: signed by {cert.party} ({cert.party_name}), certificate {cert.serial}"
        )

    def _register(self, path: Path, kind: str) -> None:
        try:
            row = signing.register(path.read_bytes(), kind=kind, actor="etcnet exchange")
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror}") from None
        except sm2.SignatureError as error:
            raise CommandError(f"{path}: {error}") from None
        self.stdout.write(
            f"registered: {row.party} ({row.party_name}) certificate {row.serial}, "
            f"valid to {timezone.localtime(row.not_after):%Y-%m-%d}, SM3 {row.fingerprint}"
        )

    def _certificates(self) -> None:
        for row in PartyCertificate.objects.all():
            ends = timezone.localtime(row.not_after)
            revoked = " revoked" if row.revoked_at else ""
            self.stdout.write(
                f"{row.party} {row.kind:8} {row.serial} valid to {ends:%Y-%m-%d}{revoked}"
                f"  {row.party_name}"
            )

    def _pass(self, *steps: str) -> None:
        try:
            for step in steps:
                if step == "anchor":
                    anchored = anchors.anchor()
                    if anchored is not None:
                        self.stdout.write(
                            f"anchored seq {anchored.last_seq} {anchored.head_hash[:16]}…"
                        )
                elif step == "queue":
                    made = link.queue()
                    if made:
                        self.stdout.write(f"queued {made} message(s)")
                elif step == "send":
                    sent = link.send()
                    if sent.acked or sent.refused or sent.failed:
                        self.stdout.write(
                            f"sent: {sent.acked} acknowledged, {sent.refused} refused, "
                            f"{len(sent.failed)} not answered (resent later)"
                        )
                else:
                    got = link.receive()
                    if got.applied or got.duplicates or got.refused or got.quarantined:
                        self.stdout.write(
                            f"received: {got.applied} applied, {got.duplicates} again (answered"
                            f" 5), {got.refused} refused, {got.quarantined} kept unverified"
                        )
                    for failure in got.failed:
                        self.stderr.write(f"receive: {failure}")
        except (signing.SignerUnavailable, link.LinkUnavailable) as error:
            raise CommandError(str(error)) from None

    def _transfers(self, state: str | None, limit: int) -> None:
        rows = Transfer.objects.all()
        if state:
            rows = rows.filter(state=state)
        for t in rows[:limit]:
            answered = f" answered {t.response_code}" if t.response_code else ""
            error = f"  ({t.last_error[:80]})" if t.last_error else ""
            self.stdout.write(
                f"{timezone.localtime(t.created_at):%Y-%m-%d %H:%M} {t.direction:3} {t.kind:12}"
                f" {t.sender_id}#{t.message_id} {t.state}{answered} tries {t.attempts}{error}"
            )
