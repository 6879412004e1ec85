"""`etcnet audit seal [--every SECONDS]`: seal the audit events appended since the
last seal into the hash chain; `etcnet audit verify`: recompute the chain from
seq 1 and check it against the checkpoints, exit 1 naming the first event that
fails (docs/audit.md).

`seal` is safe to run any number of times and from several hosts at once (one
seals, the other waits); with `--every` it repeats, and stops with exit 1 if the
chain's head no longer matches its last checkpoint. `verify` only reads."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from etcnet.core import chain


class Command(BaseCommand):
    help = "Seal the audit trail into its hash chain, verify the chain."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        seal = sub.add_parser(
            "seal", help="number and hash the events appended since the last seal"
        )
        seal.add_argument("--every", type=int, default=0, help="repeat every SECONDS")
        sub.add_parser("verify", help="recompute the chain from seq 1; exit 1 at the first break")

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        if options["action"] == "seal":
            self._seal(options["every"])
        else:
            self._verify()

    def _seal(self, every: int) -> None:
        if every < 0:
            raise CommandError("--every must be a number of seconds")
        while True:
            try:
                sealed = chain.seal()
            except chain.ChainBroken as error:
                raise CommandError(str(error)) from None
            # A repeating sealer stays quiet while there is nothing to seal.
            if sealed.count or not every or self.verbosity > 1:
                self.stdout.write(_sealed(sealed))
            if not every:
                return
            time.sleep(every)

    def _verify(self) -> None:
        proof = chain.verify()
        if proof.failure is not None:
            self.stdout.write(
                f"{proof.checked:,} event(s) verified (seq 1 to {proof.checked})"
                " before the first failure"
                if proof.checked
                else "no event verified before the first failure"
            )
            raise CommandError(f"audit chain broken at {proof.failure}")
        if proof.checked:
            self.stdout.write(
                f"audit chain verified: {proof.checked:,} event(s), seq 1 to {proof.head_seq},"
                f" {proof.checkpoints:,} checkpoint(s) agree"
            )
            self.stdout.write(f"head: seq {proof.head_seq} {proof.head_hash}")
        else:
            self.stdout.write("audit chain verified: nothing sealed yet")
        if proof.unsealed:
            assert proof.oldest_unsealed is not None
            oldest = timezone.localtime(proof.oldest_unsealed)
            self.stdout.write(
                f"unsealed: {proof.unsealed:,} event(s) waiting for `etcnet audit seal`"
                f" (the oldest from {oldest:%Y-%m-%d %H:%M:%S})"
            )
        else:
            self.stdout.write("unsealed: none")


def _sealed(sealed: chain.Sealed) -> str:
    if not sealed.count:
        head = f"seq {sealed.head_seq} {sealed.head_hash}" if sealed.head_seq else "empty"
        return f"nothing to seal; head {head}"
    first = sealed.head_seq - sealed.count + 1
    seqs = f"seq {first} to {sealed.head_seq}" if sealed.count > 1 else f"seq {first}"
    return f"sealed {sealed.count:,} event(s): {seqs}, head {sealed.head_hash}"
