"""Money as integer fen (分, 0.01 CNY).

Amounts are ``int`` fen everywhere; yuan strings exist only at the edges
(``parse_yuan`` / ``format_yuan``). A yuan string with more than two decimals is
rejected, never rounded. Every division goes through ``divide`` with a named
rounding rule, and splits use the largest-remainder method so that the parts add
back exactly to the whole (clearing depends on it). Cash pays to the whole yuan by
one rule, ``round_cash`` (``CASH_ROUNDING``), which the fee engine, the terminal and
the center's checks share.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum
from typing import NewType

__all__ = [
    "CASH_ROUNDING",
    "MAX_CASH_ROUND_UP_FEN",
    "MAX_FEN",
    "Fen",
    "MoneyError",
    "Rounding",
    "apply_basis_points",
    "divide",
    "format_yuan",
    "parse_yuan",
    "round_cash",
    "split_largest_remainder",
]

Fen = NewType("Fen", int)

#: The largest magnitude a ``BigIntegerField`` holds; amounts beyond it are refused.
MAX_FEN = 2**63 - 1

# ASCII digits only: ``\d`` would also accept full-width and other Unicode digits.
_YUAN_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)


class MoneyError(ValueError):
    """A yuan amount that cannot be taken as exact fen. ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_yuan(text: str) -> Fen:
    """Parse a yuan string such as ``"12.34"`` into fen (1234).

    Accepts an optional leading ``-``, digits, and at most two decimals; surrounding
    whitespace is ignored. Refuses (``MoneyError``) empty input, exponents, commas,
    a leading ``+``, a bare ``.`` and more than two decimals — those are never rounded.
    """
    stripped = text.strip()
    if not stripped:
        raise MoneyError("money.required", "an amount in yuan is required")
    match = _YUAN_RE.fullmatch(stripped)
    if match is None:
        raise MoneyError(
            "money.format",
            f"{stripped!r} is not a yuan amount; write it like 12.34",
        )
    sign, whole, decimals = match.groups()
    if decimals is not None and len(decimals) > 2:
        raise MoneyError(
            "money.precision",
            f"{stripped!r} has more than two decimals; amounts are exact to the fen",
        )
    fen = int(whole) * 100 + int((decimals or "").ljust(2, "0"))
    if fen > MAX_FEN:
        raise MoneyError("money.range", f"{stripped!r} is too large")
    return Fen(-fen if sign else fen)


def format_yuan(fen: int) -> str:
    """Format fen as a yuan string with exactly two decimals: 1234 → ``"12.34"``."""
    whole, cents = divmod(abs(fen), 100)
    sign = "-" if fen < 0 else ""
    return f"{sign}{whole}.{cents:02d}"


class Rounding(Enum):
    """How ``divide`` rounds an inexact quotient."""

    HALF_UP = "half_up"  # nearest; ties away from zero
    HALF_EVEN = "half_even"  # nearest; ties to the even neighbour (banker's)
    DOWN = "down"  # toward zero
    UP = "up"  # away from zero
    FLOOR = "floor"  # toward negative infinity
    CEILING = "ceiling"  # toward positive infinity


def divide(numerator: int, denominator: int, *, rounding: Rounding) -> int:
    """Return numerator / denominator rounded by ``rounding``, in exact integer arithmetic.

    Raises ``ZeroDivisionError`` for a zero denominator.
    """
    if denominator == 0:
        raise ZeroDivisionError("division by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    quotient, remainder = divmod(numerator, denominator)  # floor division
    if remainder == 0:
        return quotient
    # The exact value lies strictly between quotient and quotient + 1.
    negative = numerator < 0
    if rounding is Rounding.FLOOR:
        return quotient
    if rounding is Rounding.CEILING:
        return quotient + 1
    if rounding is Rounding.DOWN:
        return quotient + 1 if negative else quotient
    if rounding is Rounding.UP:
        return quotient if negative else quotient + 1
    twice = 2 * remainder
    if twice < denominator:
        return quotient
    if twice > denominator:
        return quotient + 1
    if rounding is Rounding.HALF_UP:
        return quotient if negative else quotient + 1
    if rounding is Rounding.HALF_EVEN:
        return quotient if quotient % 2 == 0 else quotient + 1
    raise ValueError(f"unknown rounding {rounding!r}")  # pragma: no cover


def apply_basis_points(amount: int, bp: int, *, rounding: Rounding) -> int:
    """Return ``amount`` × ``bp`` / 10000 (bp = basis points; 9500 = 95 %)."""
    return divide(amount * bp, 10000, rounding=rounding)


#: Cash and mobile payments pay the toll rounded to the whole yuan, half-up (Part 1):
#: 1.49 yuan pays 1.00, 1.50 pays 2.00.
CASH_ROUNDING = Rounding.HALF_UP
#: The most ``round_cash`` adds to an amount: half a yuan (1.50 → 2.00). A cash
#: record that asks more than its fee plus this is not the rule's.
MAX_CASH_ROUND_UP_FEN = 50
_FEN_PER_YUAN = 100


def round_cash(fen: int) -> int:
    """``fen`` as cash pays it: to the whole yuan by ``CASH_ROUNDING`` (149 → 100, 150 → 200)."""
    return divide(fen, _FEN_PER_YUAN, rounding=CASH_ROUNDING) * _FEN_PER_YUAN


def split_largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` into parts proportional to ``weights`` that sum exactly to ``total``.

    Each part is its exact share rounded down, then the units left over go one each to
    the parts with the largest remainders (ties to the earlier index). A negative
    total is split as the mirror image of its absolute value, so a reversal splits
    exactly like the original. Zero weights get zero.
    """
    if not weights:
        raise ValueError("weights must not be empty")
    if any(weight < 0 for weight in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("at least one weight must be positive")
    if total < 0:
        return [-part for part in split_largest_remainder(-total, weights)]
    parts: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        part, remainder = divmod(total * weight, weight_sum)
        parts.append(part)
        remainders.append(remainder)
    left_over = total - sum(parts)
    # Fewer units are left over than there are non-zero remainders, so zero-weight
    # parts (remainder 0) are never chosen.
    order = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    for index in order[:left_over]:
        parts[index] += 1
    return parts
