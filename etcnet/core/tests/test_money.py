from fractions import Fraction
from math import ceil, floor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcnet.core.money import (
    CASH_ROUNDING,
    MAX_CASH_ROUND_UP_FEN,
    MoneyError,
    Rounding,
    apply_basis_points,
    divide,
    format_yuan,
    parse_yuan,
    round_cash,
    split_largest_remainder,
)

# --- parse_yuan / format_yuan -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12.34", 1234),
        ("12", 1200),
        ("0.5", 50),
        ("-3.10", -310),
        ("  7.05 ", 705),
        ("0", 0),
        ("-0.01", -1),
        ("000.10", 10),
    ],
)
def test_parse_yuan_accepts_up_to_two_decimals(text: str, fen: int) -> None:
    # given a yuan string, when parsed, then it is exact fen
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "money.required"),
        ("   ", "money.required"),
        ("abc", "money.format"),
        ("1e3", "money.format"),
        ("1E3", "money.format"),
        ("1,000.00", "money.format"),
        ("12.", "money.format"),
        (".5", "money.format"),
        ("+5", "money.format"),
        ("--5", "money.format"),
        ("1 000", "money.format"),
        ("１２", "money.format"),  # full-width digits are not taken silently
        ("1.234", "money.precision"),
        ("1.230", "money.precision"),
        ("92233720368547758.08", "money.range"),
    ],
)
def test_parse_yuan_rejects(text: str, code: str) -> None:
    # given a malformed or over-precise amount, when parsed, then it is refused, not rounded
    with pytest.raises(MoneyError) as caught:
        parse_yuan(text)
    assert caught.value.code == code


def test_parse_yuan_error_message_names_the_input() -> None:
    with pytest.raises(MoneyError) as caught:
        parse_yuan("1.234")
    assert str(caught.value) == "'1.234' has more than two decimals; amounts are exact to the fen"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("fen", "text"),
    [(1234, "12.34"), (-5, "-0.05"), (0, "0.00"), (100, "1.00"), (-310, "-3.10"), (7, "0.07")],
)
def test_format_yuan(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_parse_format_round_trip(fen: int) -> None:
    assert parse_yuan(format_yuan(fen)) == fen


# --- divide -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "rounding", "expected"),
    [
        (5, 2, Rounding.HALF_UP, 3),
        (-5, 2, Rounding.HALF_UP, -3),
        (5, 2, Rounding.HALF_EVEN, 2),
        (7, 2, Rounding.HALF_EVEN, 4),
        (-5, 2, Rounding.HALF_EVEN, -2),
        (7, 3, Rounding.DOWN, 2),
        (-7, 3, Rounding.DOWN, -2),
        (7, 3, Rounding.UP, 3),
        (-7, 3, Rounding.UP, -3),
        (-7, 3, Rounding.FLOOR, -3),
        (7, 3, Rounding.FLOOR, 2),
        (-7, 3, Rounding.CEILING, -2),
        (7, -3, Rounding.CEILING, -2),
        (-7, -3, Rounding.DOWN, 2),
        (6, 3, Rounding.UP, 2),
        (7, 3, Rounding.HALF_UP, 2),
        (8, 3, Rounding.HALF_UP, 3),
    ],
)
def test_divide_examples(
    numerator: int, denominator: int, rounding: Rounding, expected: int
) -> None:
    assert divide(numerator, denominator, rounding=rounding) == expected


def test_divide_by_zero_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        divide(1, 0, rounding=Rounding.DOWN)


def _reference(value: Fraction, rounding: Rounding) -> int:
    if rounding is Rounding.FLOOR:
        return floor(value)
    if rounding is Rounding.CEILING:
        return ceil(value)
    if rounding is Rounding.DOWN:
        return floor(value) if value >= 0 else ceil(value)
    if rounding is Rounding.UP:
        return ceil(value) if value >= 0 else floor(value)
    if rounding is Rounding.HALF_EVEN:
        return round(value)  # Fraction.__round__ is half-even
    # HALF_UP: ties away from zero
    magnitude = floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=-(10**6), max_value=10**6).filter(lambda d: d != 0),
    st.sampled_from(list(Rounding)),
)
def test_divide_agrees_with_fractions(numerator: int, denominator: int, rounding: Rounding) -> None:
    expected = _reference(Fraction(numerator, denominator), rounding)
    assert divide(numerator, denominator, rounding=rounding) == expected


def test_apply_basis_points_etc_discount() -> None:
    # given a class 1 car toll of 35.55 yuan and the 95 % ETC rate (9500 bp)
    # when the ETC fee is computed, half up
    fee = apply_basis_points(3555, 9500, rounding=Rounding.HALF_UP)
    # then 3555 × 0.95 = 3377.25 fen → 3377 fen
    assert fee == 3377
    assert apply_basis_points(3555, 9500, rounding=Rounding.CEILING) == 3378
    assert apply_basis_points(-3555, 9500, rounding=Rounding.HALF_UP) == -3377


# --- split_largest_remainder ------------------------------------------------------------


def test_split_over_three_owners() -> None:
    # given a 100.00 yuan toll over sections of 1, 1 and 1 km, when split
    parts = split_largest_remainder(10000, [1, 1, 1])
    # then the first owner takes the extra fen and the parts add up
    assert parts == [3334, 3333, 3333]


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [50, 30, 20], [50, 30, 20]),
        (10, [1, 1, 1], [4, 3, 3]),
        (2, [1, 1, 1], [1, 1, 0]),
        (7, [0, 2, 5], [0, 2, 5]),
        (5, [0, 1, 1], [0, 3, 2]),
        (0, [3, 4], [0, 0]),
        (-10, [1, 1, 1], [-4, -3, -3]),
        (11, [3, 7], [3, 8]),  # 3.3 / 7.7: the larger remainder (0.7) gets the extra fen
    ],
)
def test_split_examples(total: int, weights: list[int], expected: list[int]) -> None:
    assert split_largest_remainder(total, weights) == expected


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([], "weights must not be empty"),
        ([1, -1], "weights must not be negative"),
        ([0, 0], "at least one weight must be positive"),
    ],
)
def test_split_refuses_bad_weights(weights: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_largest_remainder(100, weights)


@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20).filter(any),
)
def test_split_sums_to_total_and_stays_within_one_of_share(total: int, weights: list[int]) -> None:
    parts = split_largest_remainder(total, weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * weight, weight_sum)) < 1
        if weight == 0:
            assert part == 0


# --- round_cash -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee_fen", "cash_fen"),
    [(0, 0), (1, 0), (49, 0), (50, 100), (149, 100), (150, 200), (1_235, 1_200), (1_250, 1_300)],
)
def test_cash_pays_to_the_whole_yuan_half_up(fee_fen: int, cash_fen: int) -> None:
    # given a toll in fen, when paid in cash, then it is rounded to the yuan, ties up
    assert CASH_ROUNDING is Rounding.HALF_UP
    assert round_cash(fee_fen) == cash_fen


@given(st.integers(min_value=0, max_value=10**12))
def test_cash_rounding_moves_an_amount_by_at_most_half_a_yuan(fee_fen: int) -> None:
    # the rule's bound, which the center checks uploaded cash records against
    cash = round_cash(fee_fen)
    assert cash % 100 == 0
    assert -MAX_CASH_ROUND_UP_FEN < cash - fee_fen <= MAX_CASH_ROUND_UP_FEN
