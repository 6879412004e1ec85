"""计重信息 as the collector types it (``etcnet.terminal.lane.weighing``): whole
kilograms in a sane range, the axles, the reference §5 limit by axles for a
truck, and the overweight flag — a wrong value refused naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from etcnet.terminal.lane import LaneError
from etcnet.terminal.lane.weighing import Weighing, weighing, weight_limit_kg

CAR, TRUCK_2, TRUCK_6 = 1, 12, 16


@pytest.mark.parametrize(
    ("axles", "limit"),
    [(2, 18_000), (3, 25_000), (4, 31_000), (5, 43_000), (6, 49_000), (7, 49_000), (10, 49_000)],
)
def test_the_weight_limit_by_axles_is_reference_section_5(axles, limit):
    assert weight_limit_kg(axles) == limit


def test_a_truck_within_its_limit_is_not_overweight():
    assert weighing("3", "25000", vehicle_class=TRUCK_2) == Weighing(
        axles=3, total_weight_kg=25_000, weight_limit_kg=25_000, overweight=False
    )


def test_an_overweight_truck_is_flagged_not_refused():
    assert weighing(" 2 ", "18001", vehicle_class=TRUCK_2) == Weighing(
        axles=2, total_weight_kg=18_001, weight_limit_kg=18_000, overweight=True
    )
    assert weighing(6, 49_500, vehicle_class=TRUCK_6).overweight is True


def test_a_passenger_car_has_no_truck_limit():
    assert weighing("2", "2100", vehicle_class=CAR) == Weighing(axles=2, total_weight_kg=2_100)


def test_a_truck_weighed_without_a_weight_gets_its_limit_only():
    assert weighing("4", "", vehicle_class=TRUCK_2) == Weighing(
        axles=4, total_weight_kg=None, weight_limit_kg=31_000, overweight=False
    )


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_left_empty_is_no_weighing(empty):
    assert weighing(empty, empty, vehicle_class=TRUCK_2) == Weighing()


@pytest.mark.parametrize(
    "typed",
    ["-100", "abc", "1.5", "18000.0", "1e4", "18,000", "🚚", "１８０００", "+18000", "0x4650"],
)
def test_a_weight_that_is_not_whole_kilograms_is_refused_naming_the_field(typed):
    with pytest.raises(LaneError) as refused:
        weighing("2", typed, vehicle_class=TRUCK_2)
    error = refused.value
    assert (error.code, error.field, error.params) == (
        "weight_not_whole",
        "total_weight_kg",
        {"value": typed},
    )
    assert str(error) == f'The total weight is whole kilograms, such as 18000, not "{typed}".'


@pytest.mark.parametrize(
    ("typed", "shown"), [("0", "0"), ("999", "999"), ("100001", "100,001"), (-100, "-100")]
)
def test_a_weight_out_of_range_is_refused(typed, shown):
    with pytest.raises(LaneError) as refused:
        weighing("2", typed, vehicle_class=TRUCK_2)
    assert (refused.value.code, refused.value.field) == ("weight_out_of_range", "total_weight_kg")
    assert str(refused.value) == (
        f"The total weight must be between 1,000 and 100,000 kg, not {shown}."
    )


@pytest.mark.parametrize("typed", [True, 1.5, b"18000", object()])
def test_a_weight_of_another_type_is_refused(typed: Any):
    with pytest.raises(LaneError) as refused:
        weighing(2, typed, vehicle_class=TRUCK_2)
    assert (refused.value.code, refused.value.field) == ("weight_not_whole", "total_weight_kg")


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("two", "axles_not_whole"),
        ("2.0", "axles_not_whole"),
        ("-2", "axles_not_whole"),
        ("1", "axles_out_of_range"),
        ("11", "axles_out_of_range"),
        (0, "axles_out_of_range"),
    ],
)
def test_bad_axles_are_refused_naming_the_field(typed, code):
    with pytest.raises(LaneError) as refused:
        weighing(typed, "18000", vehicle_class=TRUCK_2)
    assert (refused.value.code, refused.value.field) == (code, "axles")


def test_a_weight_needs_the_axles():
    with pytest.raises(LaneError) as refused:
        weighing("", "18000", vehicle_class=TRUCK_2)
    assert (refused.value.code, refused.value.field) == ("axles_needed", "axles")


def test_the_weight_is_checked_first_the_field_typed_first():
    with pytest.raises(LaneError) as refused:
        weighing("x", "y", vehicle_class=TRUCK_2)
    assert refused.value.field == "total_weight_kg"
