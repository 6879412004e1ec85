"""The `etcnet` command.

    etcnet check KIND VALUE [--plate-color CODE]   validate an ID, USCC, VIN, plate or phone
    etcnet classify --category ... [...]           toll vehicle class (JT/T 489-2019)
    etcnet crypto derive|purchase ...              PBOC / SM4 key and MAC computations
    etcnet card show FILE                          decode an emulated card, OBU or PSAM
    etcnet ledger check                            prove the ledger's invariants
    etcnet fee --network DIR --exit NODE --class N compute a toll on a bundle (no database)
    etcnet fee table --network DIR --out FILE.csv  the minimum-fee table of a bundle
    etcnet network import|export DIR               a network bundle in or out of the database
    etcnet lists publish|import|versions           status-list versions (docs/lists.md)
    etcnet plates expire|pool|pools                plate pre-selection job, pools (docs/plates.md)
    etcnet audit seal [--every S] | verify         the audit trail's hash chain (docs/audit.md)
    etcnet tolling_partitions [--ahead N] [--detach-before DAY] [--list]   the store's days
    etcnet center serve [--host H] [--port P]      run the center (waitress)
    etcnet center demo [--host H] [--port P]       migrate, load demo data, serve
    etcnet signer init|serve|renew|certificate|status   the signature server (SM2)
    etcnet exchange national-sim --dir D --peer-cert F  a simulated national center
    etcnet exchange bank-sim --dir D --peer-cert F     a simulated bank (docs/banks.md)
    etcnet exchange run|queue|send|receive|transfers|certificate   the front server
    etcnet clock check [--every S] | show | ntp-sim   the center's time source (docs/clock.md)
    etcnet terminal serve --center URL --terminal-id ID   a handheld / lane PC (local web UI)
    etcnet manage COMMAND ...                      any Django management command
    etcnet COMMAND ...                             the same, for commands without a clash

`check`, `classify`, `crypto` and `card` are pure and need no database or settings.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

USAGE = __doc__ or ""


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etcnet.settings")
    import django

    django.setup()


def _manage(argv: Sequence[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etcnet.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["etcnet", *argv])
    return 0


def _center(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="etcnet center", description="Run the etcnet center.")
    sub = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("serve", "serve the center"),
        ("demo", "migrate, load the demo data and serve"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", default=os.environ.get("ETCNET_HOST", "127.0.0.1"))
        p.add_argument("--port", type=int, default=int(os.environ.get("ETCNET_PORT", "8000")))
        p.add_argument("--threads", type=int, default=8)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.action == "demo":
        # The demo's Beidou receiver is simulated on this port (docs/clock.md).
        os.environ.setdefault("ETCNET_TIME_SOURCE", DEMO_TIME_SOURCE)
    _django_setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from etcnet.tolling import partitions

    # The transaction store's day partitions through two weeks ahead (PostgreSQL;
    # nothing on SQLite). A daily timer runs `etcnet tolling_partitions` as well.
    partitions.ensure()
    if args.action == "demo":
        call_command("load_demo")
    from waitress import serve

    from etcnet.wsgi import application

    print(f"etcnet center on http://{args.host}:{args.port}/  (API docs: /api/v1/docs)", flush=True)
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        if args.action == "demo":
            _demo_helpers(args.host, args.port, helpers)
        serve(
            application,
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="etcnet",
            # Five photos of at most ETCNET_UPLOAD_MAX_BYTES each, and the form around them.
            max_request_body_size=64 * 1024 * 1024,
        )
    finally:
        for helper in helpers:
            helper.terminate()
    return 0


#: Where `make demo` runs its simulated Beidou receiver (an SNTP server).
DEMO_TIME_SOURCE = "127.0.0.1:12300"


def _demo_clock() -> list[subprocess.Popen[bytes]]:
    """The demo's time source: a simulated Beidou receiver whose time is 40 ms
    ahead of this machine's clock, when ETCNET_TIME_SOURCE is the demo's, and the
    center reading it every minute (the operators' panel on /tolling/ and /clock/)."""
    from django.conf import settings

    clock = [sys.executable, "-m", "etcnet.cli", "clock"]
    helpers = []
    if settings.ETCNET_TIME_SOURCE == DEMO_TIME_SOURCE:
        host, port = DEMO_TIME_SOURCE.split(":")
        sim = ["ntp-sim", "--host", host, "--port", port, "--offset-ms", "40"]
        helpers.append(subprocess.Popen([*clock, *sim]))
    if settings.ETCNET_TIME_SOURCE:
        helpers.append(subprocess.Popen([*clock, "check", "--every", "60"]))
    return helpers


def _demo_helpers(host: str, port: int, helpers: list[subprocess.Popen[bytes]]) -> None:
    """The demo's processes beside the center, each added to `helpers` as it starts."""
    helpers.append(_demo_terminal(host, port))
    # The status-list schedule: an increment every 5 minutes, a full version daily.
    helpers.append(
        subprocess.Popen([sys.executable, "-m", "etcnet.cli", "lists", "publish", "--every", "300"])
    )
    # The signature server, the simulated national center and the exchange loop.
    from etcnet.demo import exchange as demo_exchange

    demo_exchange.start(helpers)
    # Plate pre-selection: lapsed locks, overdue numbers, the 24-hour cancellation.
    helpers.append(
        subprocess.Popen([sys.executable, "-m", "etcnet.cli", "plates", "expire", "--every", "60"])
    )
    # The audit trail's sealer: events hash-chained within seconds (docs/audit.md).
    helpers.append(
        subprocess.Popen([sys.executable, "-m", "etcnet.cli", "audit", "seal", "--every", "10"])
    )
    helpers.extend(_demo_clock())


def _demo_terminal(host: str, port: int) -> subprocess.Popen[bytes]:
    """The demo handheld beside the center, as its own process: it syncs with
    the center once the center answers."""
    from django.conf import settings

    terminal_port = port + 100
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etcnet.cli",
            "terminal",
            "serve",
            "--center",
            f"http://{host}:{port}",
            "--terminal-id",
            "HH-DEMO",
            "--data",
            str(settings.DATA_DIR / "terminal-HH-DEMO"),
            "--cards",
            str(settings.ETCNET_CARD_DIR),
            "--port",
            str(terminal_port),
            "--sync-interval",
            "5",
        ]
    )
    print(
        f"etcnet terminal HH-DEMO on http://127.0.0.1:{terminal_port}/  "
        "(sign in as collector / etcnet-demo; station master: master)",
        flush=True,
    )
    return process


def _terminal(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="etcnet terminal", description="Run a toll terminal (handheld or lane PC)."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("serve", help="serve the collector's web UI on this machine")
    p.add_argument("--center", required=True, help="the center's URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--terminal-id", required=True)
    p.add_argument(
        "--secret-file",
        help="file holding the terminal's secret (default: $ETCNET_TERMINAL_SECRET, "
        "else <data>/secret)",
    )
    p.add_argument("--data", help="the terminal's folder (default var/terminal-<id>)")
    p.add_argument("--cards", default="var/cards", help="folder of emulated cards and OBUs")
    p.add_argument("--psam", help="the PSAM state file (default <cards>/psam-<id>.json)")
    p.add_argument("--reader", default="", help="a PC/SC reader name instead of emulated cards")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--sync-interval", type=float, default=10.0, help="seconds between syncs")
    p.add_argument("--clock-warn-ms", type=int, default=2000)
    from etcnet.terminal.lane import CLOCK_MAX_MS

    p.add_argument(
        "--clock-max-ms",
        type=int,
        default=CLOCK_MAX_MS,
        help="refuse card work when the clock is further off the center's than this "
        "(default: the center's default ETCNET_CLEARING_CLOCK_LIMIT_MS; docs/clock.md)",
    )
    p.add_argument("--reference-warn-hours", type=int, default=24)
    p.add_argument(
        "--list-warn-minutes",
        type=int,
        default=30,
        help="warn the collector when the status list is older than this",
    )
    p.add_argument("--offline-login-days", type=int, default=7)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from pathlib import Path

    data = Path(args.data or f"var/terminal-{args.terminal_id}").resolve()
    data.mkdir(parents=True, exist_ok=True)
    secret = os.environ.get("ETCNET_TERMINAL_SECRET", "")
    secret_file = Path(args.secret_file) if args.secret_file else data / "secret"
    if not secret:
        if not secret_file.exists():
            print(
                f"etcnet terminal: no secret: set ETCNET_TERMINAL_SECRET or write it to "
                f"{secret_file} (etcnet terminal_register prints it once)",
                file=sys.stderr,
            )
            return 2
        secret = secret_file.read_text().strip()
    cards = Path(args.cards).resolve()
    psam = Path(args.psam or cards / f"psam-{args.terminal_id}.json")
    if not psam.exists():
        print(f"etcnet terminal: no PSAM state file at {psam}", file=sys.stderr)
        return 2
    os.environ["ETCNET_TERMINAL_DATA"] = str(data)
    os.environ["DJANGO_SETTINGS_MODULE"] = "etcnet.terminal.web.settings"
    import threading

    import django

    django.setup()
    from django.contrib.auth.hashers import check_password
    from waitress import serve

    from etcnet.smartcard.transport import open_emulated
    from etcnet.terminal.center import HttpCenter
    from etcnet.terminal.lane import LaneTerminal
    from etcnet.terminal.web import runtime
    from etcnet.terminal.web.wsgi import application

    def build(timeout_s: float, status_list: Any = None) -> LaneTerminal:
        return LaneTerminal(
            terminal_id=args.terminal_id,
            store=data / "terminal.sqlite3",
            center=HttpCenter(
                args.center, terminal_id=args.terminal_id, secret=secret, timeout_s=timeout_s
            ),
            psam=lambda: open_emulated(psam),
            verify_password=check_password,
            offline_login_days=args.offline_login_days,
            status_list=status_list,
            clock_max_ms=args.clock_max_ms,
        )

    ui = build(5.0)
    runtime.install(
        runtime.Runtime(
            lane=ui,
            cards_dir=cards if cards.is_dir() else None,
            reader_name=args.reader,
            clock_warn_ms=args.clock_warn_ms,
            reference_warn_hours=args.reference_warn_hours,
            lock=threading.RLock(),
            list_warn_minutes=args.list_warn_minutes,
        )
    )
    status = ui.outbox.status()
    print(
        f"etcnet terminal {args.terminal_id} on http://{args.host}:{args.port}/  "
        f"(center {args.center}; store {data}; {status.waiting} waiting to upload)",
        flush=True,
    )
    # The sync loop's terminal shares the pages' status list: one structure in
    # memory, whose new versions the pages see at once.
    runtime.start_sync(build(10.0, ui.status_list), interval_s=args.sync_interval)
    serve(application, host=args.host, port=args.port, threads=4, ident="etcnet-terminal")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        # A process of its own (not a test calling main): every file it makes
        # (databases and their -wal/-shm, media, keys, cards, the terminal's
        # store, list files) is readable by its owner only.
        os.umask(0o077)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "check":
        from etcnet.core.cli_checks import check_main

        return check_main(rest, sys.stdout)
    if command == "classify":
        from etcnet.core.cli_checks import classify_main

        return classify_main(rest, sys.stdout)
    if command == "crypto":
        from etcnet.smartcard.cli import crypto_main

        return crypto_main(rest, sys.stdout)
    if command == "card":
        from etcnet.smartcard.cli import card_main

        return card_main(rest, sys.stdout)
    if command == "fee":
        from etcnet.network.cli import fee_main

        return fee_main(rest, sys.stdout)
    if command == "center":
        return _center(rest)
    if command == "exchange" and rest[:1] == ["national-sim"]:
        from etcnet.exchange.national import main as national_main

        return national_main(rest[1:], sys.stdout)
    if command == "exchange" and rest[:1] == ["bank-sim"]:
        from etcnet.exchange.banksim import main as bank_main

        return bank_main(rest[1:], sys.stdout)
    if command == "signer":
        from etcnet.exchange.signer import main as signer_main

        return signer_main(rest, sys.stdout)
    if command == "terminal":
        return _terminal(rest)
    if command == "manage":
        return _manage(rest)
    return _manage(args)


if __name__ == "__main__":
    sys.exit(main())
