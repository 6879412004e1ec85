"""`etcnet clock check [--every SECONDS] [--timeout S]`, `etcnet clock show`,
`etcnet clock ntp-sim [--host H] [--port P] [--offset-ms N] [--stratum N]
[--unsynchronised]`: the center's clock (docs/clock.md).

`check` reads ETCNET_TIME_SOURCE once and stores the reading (exit status 1 when
it gave none); with `--every` it keeps reading, a failed reading retried after
`RETRY_SECONDS` at most. `show` prints what the operators' panel says.
`ntp-sim` is the simulated Beidou receiver of `make demo` and the tests: an SNTP
server answering with this machine's clock plus `--offset-ms`; `--port 0` takes
a free port and prints which."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from etcnet.clock import selectors, services
from etcnet.clock.models import TimeReading
from etcnet.clock.simulator import SntpSimulator

#: After a failed reading `--every` tries again this soon (the first reading of
#: a demo may come before its simulated receiver listens).
RETRY_SECONDS = 5.0


def _said(reading: TimeReading) -> str:
    if reading.error:
        return f"{reading.source}: no reading: {reading.error}"
    return (
        f"{reading.source}: offset {reading.offset_ms:+d} ms, "
        f"delay {reading.delay_ms:.1f} ms, stratum {reading.stratum}"
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Read the time source, show the center's clock, or run the simulated receiver."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="read ETCNET_TIME_SOURCE and store the offset")
        check.add_argument(
            "--every", type=float, default=0, help="keep reading every SECONDS (60: a minute)"
        )
        check.add_argument(
            "--timeout", type=float, default=2.0, help="seconds to wait for an answer"
        )
        sub.add_parser("show", help="the clock's status, as the operators' panel says it")
        sim = sub.add_parser("ntp-sim", help="a simulated Beidou receiver (SNTP server)")
        sim.add_argument("--host", default="127.0.0.1")
        sim.add_argument("--port", type=int, default=12300, help="UDP port (0: any free one)")
        sim.add_argument(
            "--offset-ms", type=int, default=0, help="answer the system time plus this"
        )
        sim.add_argument("--stratum", type=int, default=1, choices=range(1, 16), metavar="1-15")
        sim.add_argument(
            "--unsynchronised",
            action="store_true",
            help="answer as a receiver that has lost the satellites (leap indicator 3)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "check":
            self._check(every=options["every"], timeout_s=options["timeout"])
        elif action == "show":
            self._show()
        else:
            self._simulate(options)

    def _check(self, *, every: float, timeout_s: float) -> None:
        if every < 0 or timeout_s <= 0:
            raise CommandError("--every must be 0 or more seconds and --timeout more than 0")
        try:
            reading = services.check_source(timeout_s=timeout_s)
        except services.NotConfigured as error:
            raise CommandError(str(error)) from None
        self.stdout.write(_said(reading))
        if not every:
            if reading.error:
                raise CommandError("the time source gave no reading")
            return
        while True:
            time.sleep(min(every, RETRY_SECONDS) if reading.error else every)
            reading = services.check_source(timeout_s=timeout_s)
            self.stdout.write(_said(reading))

    def _show(self) -> None:
        state = selectors.status()
        if state.unconfigured:
            self.stdout.write(
                "no time source configured (ETCNET_TIME_SOURCE): server_time is the system"
                " clock, uncorrected"
            )
            return
        if state.good is None:
            self.stdout.write(f"{state.source}: no good reading yet {state.last_error}".rstrip())
            return
        notes = [
            f"beyond the maximum of {state.max_ms} ms" if state.beyond else "",
            f"no answer for {state.silent_s} s" if state.stale else "",
            f"last error: {state.last_error}" if state.last_error else "",
        ]
        self.stdout.write(
            f"{state.source}: offset {state.good.offset_ms:+d} ms at {state.good.at.isoformat()}"
            f" (applied to server_time){''.join('; ' + n for n in notes if n)}"
        )

    def _simulate(self, options: dict[str, Any]) -> None:
        try:
            sim = SntpSimulator(
                options["host"],
                options["port"],
                offset_ms=options["offset_ms"],
                stratum=options["stratum"],
                synchronised=not options["unsynchronised"],
            )
        except OSError as error:
            where = f"{options['host']}:{options['port']}"
            raise CommandError(f"cannot listen on {where}: {error}") from None
        self.stdout.write(
            f"ntp-sim on {sim.source} (UDP), answering the system time {options['offset_ms']:+d} ms"
        )
        self.stdout.flush()
        # SIGTERM (the demo stopping its helpers) ends the loop like Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            sim.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            sim.close()
