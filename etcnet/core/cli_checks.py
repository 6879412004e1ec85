"""The engineer commands ``etcnet check`` and ``etcnet classify``.

Each prints one JSON object and a newline to ``out`` and returns the exit status:
0 valid / classified, 1 invalid / not classifiable, 2 usage error (message on stderr).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from etcnet.core.classification import ClassificationError, classify
from etcnet.core.cliutil import EXIT_USAGE
from etcnet.core.cliutil import Parser as _Parser
from etcnet.core.cliutil import ParserExit as _Exit
from etcnet.core.cliutil import print_json as _print_json
from etcnet.core.codes import VehicleCategory
from etcnet.core.validators import (
    Checked,
    check_mobile,
    check_plate,
    check_resident_id,
    check_uscc,
    check_vin,
)

__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_USAGE", "check_main", "classify_main"]

EXIT_OK = 0
EXIT_INVALID = 1

_CHECKERS: dict[str, Callable[[str], Checked]] = {
    "id": check_resident_id,
    "uscc": check_uscc,
    "vin": check_vin,
    "phone": check_mobile,
}
_KINDS = ("id", "uscc", "vin", "plate", "phone")


def check_main(argv: Sequence[str], out: TextIO) -> int:
    """``etcnet check KIND VALUE [--plate-color CODE]``; ``argv`` excludes "check"."""
    parser = _Parser(
        out=out,
        prog="etcnet check",
        description="Check an identifier and print the result as JSON.",
    )
    parser.add_argument(
        "kind", choices=_KINDS, metavar="KIND", help="what VALUE is: " + ", ".join(_KINDS)
    )
    parser.add_argument(
        "value", metavar="VALUE", help="the value to check (quote it if it has spaces)"
    )
    parser.add_argument(
        "--plate-color",
        metavar="CODE",
        help="plate colour code (0 blue, 1 yellow, …), only with KIND plate",
    )
    try:
        args = parser.parse_args(list(argv))
        color: int | None = None
        if args.plate_color is not None:
            if args.kind != "plate":
                parser.error("--plate-color is only allowed with KIND plate")
            try:
                color = int(args.plate_color)
            except ValueError:
                parser.error(f"--plate-color must be a number, not {args.plate_color!r}")
    except _Exit as stop:
        return stop.status
    kind: str = args.kind
    value: str = args.value
    checked = check_plate(value, color) if kind == "plate" else _CHECKERS[kind](value)
    _print_json(out, checked.as_json())
    return EXIT_OK if checked.valid else EXIT_INVALID


def classify_main(argv: Sequence[str], out: TextIO) -> int:
    """``etcnet classify --category C [--seats N] [--length-mm N] [--axles N] [--total-mass-kg N]``.

    ``argv`` excludes "classify".
    """
    parser = _Parser(
        out=out,
        prog="etcnet classify",
        description="Classify a vehicle by JT/T 489-2019 and print the class as JSON.",
    )
    parser.add_argument(
        "--category", required=True, choices=[category.value for category in VehicleCategory]
    )
    parser.add_argument("--seats", type=int, metavar="N", help="approved persons (核定载人数)")
    parser.add_argument("--length-mm", type=int, metavar="N", help="vehicle length in mm")
    parser.add_argument("--axles", type=int, metavar="N", help="number of axles")
    parser.add_argument(
        "--total-mass-kg", type=int, metavar="N", help="maximum permitted total mass in kg"
    )
    try:
        args = parser.parse_args(list(argv))
    except _Exit as stop:
        return stop.status
    try:
        result = classify(
            args.category,
            seats=args.seats,
            length_mm=args.length_mm,
            axles=args.axles,
            total_mass_kg=args.total_mass_kg,
        )
    except ClassificationError as error:
        _print_json(out, {"class": None, "errors": [error.as_dict()]})
        return EXIT_INVALID
    _print_json(
        out,
        {
            "class": result.vehicle_class.value,
            "name": result.name,
            "name_en": result.name_en,
            "category": result.vehicle_class.category.value,
            "rule": result.rule,
        },
    )
    return EXIT_OK
