"""计重信息: the axles and total weight as the collector typed them, checked before
anything touches the card, and the weight limit of reference §5 by axle count.

Every lane transaction (the fee, the exit, the entry) goes through ``weighing``,
whatever screen typed the values, so a weight of ``-100``, ``abc`` or ``1.5``
never reaches the card's DEBIT or the center. An overweight truck is not
refused — trucks pay by class (§5) — it is flagged for the collector to see
before confirming, and the record carries the limit and the flag.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from etcnet.core.codes import VehicleCategory, VehicleClass
from etcnet.core.validators import gettext_noop
from etcnet.network.engine import OVERWEIGHT_LIMITS_KG
from etcnet.terminal.lane._base import LaneError

__all__ = [
    "AXLES_RANGE",
    "WEIGHT_RANGE_KG",
    "Weighing",
    "weighing",
    "weight_limit_kg",
]

#: What a weighbridge at a toll station can sensibly report, in whole kilograms:
#: lighter than a small car or heavier than any road vehicle is a typing error.
WEIGHT_RANGE_KG = (1_000, 100_000)
#: Axles of a road vehicle (a 2-axle car or truck up to a long semi-trailer train).
AXLES_RANGE = (2, 10)

_WHOLE = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class Weighing:
    """The checked 计重信息: ``weight_limit_kg`` is the §5 limit by axles for a
    truck (None for other vehicles or without axles), ``overweight`` whether
    the total weight is above it."""

    axles: int | None = None
    total_weight_kg: int | None = None
    weight_limit_kg: int | None = None
    overweight: bool = False


def weight_limit_kg(axles: int) -> int:
    """Reference §5: 2 axles 18,000 kg, 3 → 25,000, 4 → 31,000, 5 → 43,000,
    6 or more → 49,000."""
    return OVERWEIGHT_LIMITS_KG[min(max(axles, 2), 6)]


def _is_truck(vehicle_class: int | None) -> bool:
    if vehicle_class is None:
        return False
    try:
        return VehicleClass(vehicle_class).category is VehicleCategory.TRUCK
    except ValueError:
        return False


def _whole(value: int | str | None, *, field: str, code: str, message: str) -> int | None:
    """The typed value as a whole number, None when left empty. A bool, a float
    or text that is not plain digits (``-100``, ``1.5``, ``1e4``, ``abc``, full-width
    digits, an emoji) is refused naming the field, with what was typed."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise LaneError(code, message, field=field, value=str(value)[:20])
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text:
        return None
    if not _WHOLE.fullmatch(text):
        raise LaneError(code, message, field=field, value=text[:20])
    return int(text)


def weighing(
    axles: int | str | None,
    total_weight_kg: int | str | None,
    *,
    vehicle_class: int | None,
) -> Weighing:
    """Checks the typed 计重信息 and gives the §5 limit and the overweight flag.

    Both may be left empty. Given, the weight is whole kilograms within
    ``WEIGHT_RANGE_KG`` and the axles within ``AXLES_RANGE``; a weight needs the
    axles (the limit depends on them). Raises ``LaneError`` naming the field
    (``total_weight_kg`` or ``axles``); checks the weight first, the field the
    collector types first."""
    weight = _whole(
        total_weight_kg,
        field="total_weight_kg",
        code="weight_not_whole",
        message=gettext_noop('The total weight is whole kilograms, such as 18000, not "{value}".'),
    )
    if weight is not None and not WEIGHT_RANGE_KG[0] <= weight <= WEIGHT_RANGE_KG[1]:
        raise LaneError(
            "weight_out_of_range",
            gettext_noop("The total weight must be between {low} and {high} kg, not {value}."),
            field="total_weight_kg",
            low=f"{WEIGHT_RANGE_KG[0]:,}",
            high=f"{WEIGHT_RANGE_KG[1]:,}",
            value=f"{weight:,}",
        )
    count = _whole(
        axles,
        field="axles",
        code="axles_not_whole",
        message=gettext_noop('The axles are a whole number, such as 3, not "{value}".'),
    )
    if count is not None and not AXLES_RANGE[0] <= count <= AXLES_RANGE[1]:
        raise LaneError(
            "axles_out_of_range",
            gettext_noop("A vehicle has between {low} and {high} axles, not {value}."),
            field="axles",
            low=AXLES_RANGE[0],
            high=AXLES_RANGE[1],
            value=count,
        )
    if weight is not None and count is None:
        raise LaneError(
            "axles_needed",
            gettext_noop("Give the axles with the total weight: the weight limit depends on them."),
            field="axles",
        )
    if count is None or not _is_truck(vehicle_class):
        return Weighing(axles=count, total_weight_kg=weight)
    limit = weight_limit_kg(count)
    return Weighing(
        axles=count,
        total_weight_kg=weight,
        weight_limit_kg=limit,
        overweight=weight is not None and weight > limit,
    )
