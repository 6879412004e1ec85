"""The engineer commands ``etcnet crypto …`` and ``etcnet card …``.

    etcnet crypto derive --alg {3des,sm4} --master HEX --factor HEX [--factor HEX ...]
    etcnet crypto purchase --alg {3des,sm4} --dpk HEX --dtk HEX --random HEX --atc HEX
        --terminal-seq HEX --amount FEN --trans-type HEX --terminal HEX --time YYYYMMDDhhmmss
    etcnet card show FILE [--reveal]

Output is upper-case hex (``derive``) or one JSON object; exit status 0, or 2 with a
message on stderr for bad hex, a wrong key length, a missing argument or an
unreadable file. ``card show`` never prints key material, and masks the holder's
name and ID number unless ``--reveal``.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from etcnet.core.cliutil import EXIT_USAGE
from etcnet.core.cliutil import Parser as _Parser
from etcnet.core.cliutil import ParserExit as _Exit
from etcnet.core.masking import mask_id_number, mask_name
from etcnet.smartcard import crypto
from etcnet.smartcard.apdu import from_hex
from etcnet.smartcard.codec import hexu
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.emulator import StateFileError, load_device

__all__ = ["EXIT_OK", "EXIT_USAGE", "card_main", "crypto_main"]

EXIT_OK = 0


def _usage(prog: str, message: str) -> int:
    sys.stderr.write(f"{prog}: error: {message}\n")
    return EXIT_USAGE


def _parse_time(text: str) -> datetime.datetime:
    if len(text) != 14 or not (text.isascii() and text.isdigit()):
        raise ValueError(f"--time: {text!r} is not YYYYMMDDhhmmss")
    try:
        return datetime.datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        raise ValueError(f"--time: {text!r} is not a valid date and time") from None


def _parse_amount(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"--amount: {text!r} is not a whole number of fen")
    amount = int(text)
    if amount > 0xFFFFFFFF:
        raise ValueError(f"--amount: {amount} fen does not fit in 4 bytes")
    return amount


def _crypto_parser(out: TextIO) -> _Parser:
    parser = _Parser(
        out=out,
        prog="etcnet crypto",
        description="ETC card cryptography (PBOC 3DES, etcnet's SM4 profile).",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    derive = sub.add_parser(
        "derive", help="diversify a master key with each factor in turn", out=out
    )
    derive.add_argument("--alg", required=True, choices=[alg.value for alg in Alg])
    derive.add_argument("--master", required=True, help="16-byte master key, hex")
    derive.add_argument(
        "--factor", required=True, action="append", help="8-byte factor, hex (repeat)"
    )
    purchase = sub.add_parser(
        "purchase", help="session key, MAC1, MAC2 and TAC of a purchase", out=out
    )
    purchase.add_argument("--alg", required=True, choices=[alg.value for alg in Alg])
    for name, help_text in (
        ("--dpk", "16-byte card purchase key, hex"),
        ("--dtk", "16-byte card TAC key, hex"),
        ("--random", "4-byte card random, hex"),
        ("--atc", "2-byte offline ATC, hex"),
        ("--terminal-seq", "4-byte terminal transaction sequence, hex"),
        ("--amount", "amount in fen"),
        ("--trans-type", "1-byte transaction type, hex (09 composite, 06 purchase)"),
        ("--terminal", "6-byte terminal number, hex"),
        ("--time", "YYYYMMDDhhmmss"),
    ):
        purchase.add_argument(name, required=True, help=help_text)
    return parser


def crypto_main(argv: Sequence[str], out: TextIO) -> int:
    """``etcnet crypto derive|purchase …``; ``argv`` excludes "crypto"."""
    parser = _crypto_parser(out)
    try:
        args = parser.parse_args(list(argv))
    except _Exit as exit_:
        return exit_.status
    prog = f"etcnet crypto {args.action}"
    alg = Alg(args.alg)
    try:
        if args.action == "derive":
            master = from_hex(args.master, field="--master", length=16)
            factors = [from_hex(f, field="--factor", length=8) for f in args.factor]
            out.write(hexu(crypto.derive(alg, master, *factors)) + "\n")
            return EXIT_OK
        dpk = from_hex(args.dpk, field="--dpk", length=16)
        dtk = from_hex(args.dtk, field="--dtk", length=16)
        random = from_hex(args.random, field="--random", length=4)
        atc = from_hex(args.atc, field="--atc", length=2)
        seq = from_hex(args.terminal_seq, field="--terminal-seq", length=4)
        amount = _parse_amount(args.amount)
        trans_type = from_hex(args.trans_type, field="--trans-type", length=1)[0]
        terminal = from_hex(args.terminal, field="--terminal", length=6)
        when = _parse_time(args.time)
    except ValueError as error:
        return _usage(prog, str(error))
    session_key = crypto.purchase_session_key(alg, dpk, random, atc, seq)
    payload = {
        "session_key": hexu(session_key),
        "mac1": hexu(crypto.purchase_mac1(alg, session_key, amount, trans_type, terminal, when)),
        "mac2": hexu(crypto.purchase_mac2(alg, session_key, amount)),
        "tac": hexu(crypto.purchase_tac(alg, dtk, amount, trans_type, terminal, seq, when)),
    }
    out.write(json.dumps(payload) + "\n")
    return EXIT_OK


def card_main(argv: Sequence[str], out: TextIO) -> int:
    """``etcnet card show FILE``: an emulated card, OBU or PSAM as readable JSON."""
    parser = _Parser(
        out=out, prog="etcnet card", description="Inspect emulated cards, OBUs and PSAMs."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    show = sub.add_parser("show", help="decode a device state file (keys are never shown)", out=out)
    show.add_argument("file")
    show.add_argument(
        "--reveal",
        action="store_true",
        help="show the holder's name and ID number in full (masked by default)",
    )
    try:
        args = parser.parse_args(list(argv))
    except _Exit as exit_:
        return exit_.status
    try:
        device = load_device(args.file)
    except StateFileError as error:
        return _usage("etcnet card show", str(error))
    described = device.describe()
    if not args.reveal:
        described = _masked(described)
    out.write(json.dumps(described, ensure_ascii=False, indent=2) + "\n")
    return EXIT_OK


def _masked(described: dict[str, Any]) -> dict[str, Any]:
    """The holder's personal data (0016: name, ID number) masked as in every list
    and log; an engineer sees it only by asking with ``--reveal``."""
    holder = described.get("file_0016")
    if not isinstance(holder, dict):
        return described
    return {
        **described,
        "file_0016": {
            **holder,
            "name": mask_name(holder.get("name")),
            "id_number": mask_id_number(holder.get("id_number")),
        },
    }
