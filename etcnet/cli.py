"""The `etcnet` command.

    etcnet check KIND VALUE [--plate-color CODE]   validate an ID, USCC, VIN, plate or phone
    etcnet classify --category ... [...]           toll vehicle class (JT/T 489-2019)
    etcnet crypto derive|purchase ...              PBOC / SM4 key and MAC computations
    etcnet card show FILE                          decode an emulated card, OBU or PSAM
    etcnet ledger check                            prove the ledger's invariants
    etcnet fee --network DIR --exit NODE --class N compute a toll on a bundle (no database)
    etcnet fee table --network DIR --out FILE.csv  the minimum-fee table of a bundle
    etcnet network import|export DIR               a network bundle in or out of the database
    etcnet center serve [--host H] [--port P]      run the center (waitress)
    etcnet center demo [--host H] [--port P]       migrate, load demo data, serve
    etcnet manage COMMAND ...                      any Django management command
    etcnet COMMAND ...                             the same, for commands without a clash

`check`, `classify`, `crypto` and `card` are pure and need no database or settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

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
    _django_setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    if args.action == "demo":
        call_command("load_demo")
    from waitress import serve

    from etcnet.wsgi import application

    print(f"etcnet center on http://{args.host}:{args.port}/  (API docs: /api/v1/docs)", flush=True)
    serve(
        application,
        host=args.host,
        port=args.port,
        threads=args.threads,
        ident="etcnet",
        # Five photos of at most ETCNET_UPLOAD_MAX_BYTES each, and the form around them.
        max_request_body_size=64 * 1024 * 1024,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
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
    if command == "manage":
        return _manage(rest)
    return _manage(args)


if __name__ == "__main__":
    sys.exit(main())
