"""The engineer command ``etcnet fee``: fees on a network bundle, no database needed.

    etcnet fee --network DIR --exit NODE --class CODE [--entry NODE] [--path ID,ID,...]
               [--payment etc|cash] [--vehicle-status CODE]
    etcnet fee table --network DIR --out FILE.csv

The first prints the fee of one trip as JSON (without ``--entry``: the missing-entry
rule); the second writes the minimum-fee table (``entry,exit,vehicle_class,fee_fen,
length_m``). Exit status: 0 done; 1 a bad bundle or a trip that cannot be charged (JSON
``{"error": {"code", "message"}}`` on ``out``, the message on stderr); 2 usage error.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from etcnet.core.cliutil import EXIT_USAGE
from etcnet.core.cliutil import Parser as _Parser
from etcnet.core.cliutil import ParserExit as _Exit
from etcnet.core.cliutil import print_json as _print_json
from etcnet.network.bundle import BundleError, Network, read_bundle
from etcnet.network.engine import FeeEngine, FeeError, Payment

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "TABLE_HEADER", "fee_main"]

EXIT_OK = 0
EXIT_ERROR = 1
TABLE_HEADER = ("entry", "exit", "vehicle_class", "fee_fen", "length_m")


def _fail(out: TextIO, code: str, message: str, *details: str, **extra: object) -> int:
    _print_json(out, {"error": {"code": code, "message": message, **extra}})
    sys.stderr.write(f"etcnet fee: {message}\n")
    for line in details:
        sys.stderr.write(f"  {line}\n")
    return EXIT_ERROR


def _load(out: TextIO, folder: str) -> Network | int:
    try:
        return read_bundle(folder)
    except BundleError as error:
        return _fail(
            out,
            "bundle.invalid",
            str(error),
            *(f"{p.file}:{p.line}:{p.column}: {p.code}: {p.message}" for p in error.problems),
            problems=[p.as_json() for p in error.problems],
        )


def fee_main(argv: Sequence[str], out: TextIO) -> int:
    """``etcnet fee ...`` and ``etcnet fee table ...``; ``argv`` excludes "fee"."""
    args = list(argv)
    if args and args[0] == "table":
        return _table_main(args[1:], out)
    parser = _Parser(
        out=out,
        prog="etcnet fee",
        description="Compute the fee of a trip on a network bundle and print it as JSON "
        "(also: etcnet fee table --network DIR --out FILE.csv).",
    )
    parser.add_argument("--network", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--exit", required=True, metavar="NODE", help="exit node id")
    parser.add_argument(
        "--class",
        dest="vehicle_class",
        required=True,
        metavar="CODE",
        help="vehicle class (JT/T 489-2019: 1-4, 11-16, 21-26)",
    )
    parser.add_argument(
        "--entry", metavar="NODE", help="entry node id; without it the farthest-entry rule"
    )
    parser.add_argument(
        "--path", metavar="ID,ID,...", help="the intervals driven, in order, comma-separated"
    )
    parser.add_argument("--payment", choices=[p.value for p in Payment], default=Payment.ETC.value)
    parser.add_argument(
        "--vehicle-status", type=int, default=0, metavar="CODE", help="车种 code (0 ordinary)"
    )
    try:
        parsed = parser.parse_args(args)
    except _Exit as stop:
        return stop.status
    path: list[str] | None = None
    if parsed.path is not None:
        path = [part.strip() for part in parsed.path.split(",") if part.strip()]
    network = _load(out, parsed.network)
    if isinstance(network, int):
        return network
    try:
        result = FeeEngine(network).trip(
            exit=parsed.exit,
            vehicle_class=parsed.vehicle_class,
            entry=parsed.entry,
            path=path,
            payment=Payment(parsed.payment),
            vehicle_kind=parsed.vehicle_status,
        )
    except FeeError as error:
        return _fail(out, error.code, error.message)
    _print_json(out, result.as_json())
    return EXIT_OK


def _table_main(argv: Sequence[str], out: TextIO) -> int:
    parser = _Parser(
        out=out,
        prog="etcnet fee table",
        description="Write the minimum-fee table of a network bundle as CSV.",
    )
    parser.add_argument("--network", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--out", required=True, metavar="FILE.csv", help="where to write")
    try:
        parsed = parser.parse_args(list(argv))
    except _Exit as stop:
        return stop.status
    network = _load(out, parsed.network)
    if isinstance(network, int):
        return network
    try:
        engine = FeeEngine(network)
    except FeeError as error:
        return _fail(out, error.code, error.message)
    target = Path(parsed.out)
    rows = 0
    try:
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(TABLE_HEADER)
            for vehicle_class in network.classes:
                table = engine.minimum_arrays(vehicle_class)
                writer.writerows(table.rows())
                rows += len(table.fee_fen)
    except OSError as error:
        return _fail(out, "fee.cannot_write", f"cannot write {target}: {error.strerror}")
    _print_json(out, {"out": str(target), "rows": rows, "classes": list(network.classes)})
    return EXIT_OK
