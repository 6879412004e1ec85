import pytest

from etcnet.core.classification import Classification, ClassificationError, classify
from etcnet.core.codes import VehicleCategory, VehicleClass


@pytest.mark.parametrize(
    ("seats", "length_mm", "expected"),
    [
        (5, 4800, VehicleClass.PASSENGER_1),
        (9, 5999, VehicleClass.PASSENGER_1),
        (10, 5999, VehicleClass.PASSENGER_2),
        (19, 5999, VehicleClass.PASSENGER_2),
        (9, 6000, VehicleClass.PASSENGER_3),
        (19, 6000, VehicleClass.PASSENGER_3),
        (20, 6000, VehicleClass.PASSENGER_3),
        (39, 12000, VehicleClass.PASSENGER_3),
        (40, 12000, VehicleClass.PASSENGER_4),
        (40, 6000, VehicleClass.PASSENGER_4),
    ],
)
def test_passenger_boundaries(seats: int, length_mm: int, expected: VehicleClass) -> None:
    assert classify("passenger", seats=seats, length_mm=length_mm).vehicle_class is expected


def test_passenger_result_carries_names_and_rule() -> None:
    # given a 7-seat car 4.8 m long, when classified, then it is 1类客车
    assert classify(VehicleCategory.PASSENGER, seats=7, length_mm=4800) == Classification(
        vehicle_class=VehicleClass.PASSENGER_1,
        name="1类客车",
        name_en="class 1 passenger vehicle",
        rule="passenger: length 4800 mm < 6000 mm and 7 seats <= 9",
    )


def test_passenger_ignores_truck_attributes() -> None:
    result = classify("passenger", seats=7, length_mm=4800, axles=-3, total_mass_kg=0)
    assert result.vehicle_class is VehicleClass.PASSENGER_1


@pytest.mark.parametrize(
    ("category", "length_mm", "total_mass_kg", "expected"),
    [
        ("truck", 5999, 4499, VehicleClass.TRUCK_1),
        ("truck", 6000, 4499, VehicleClass.TRUCK_2),
        ("truck", 5999, 4500, VehicleClass.TRUCK_2),
        ("truck", 6000, 4500, VehicleClass.TRUCK_2),
        ("special", 5999, 4499, VehicleClass.SPECIAL_1),
        ("special", 6000, 4499, VehicleClass.SPECIAL_2),
        ("special", 5999, 4500, VehicleClass.SPECIAL_2),
    ],
)
def test_two_axle_boundaries_use_or(
    category: str, length_mm: int, total_mass_kg: int, expected: VehicleClass
) -> None:
    result = classify(category, axles=2, length_mm=length_mm, total_mass_kg=total_mass_kg)
    assert result.vehicle_class is expected


def test_two_axle_rule_text() -> None:
    result = classify("truck", axles=2, length_mm=5999, total_mass_kg=4500)
    assert result == Classification(
        vehicle_class=VehicleClass.TRUCK_2,
        name="2类货车",
        name_en="class 2 truck",
        rule="truck: 2 axles, total mass 4500 kg >= 4500 kg",
    )


@pytest.mark.parametrize(
    ("axles", "truck", "special"),
    [
        (3, VehicleClass.TRUCK_3, VehicleClass.SPECIAL_3),
        (4, VehicleClass.TRUCK_4, VehicleClass.SPECIAL_4),
        (5, VehicleClass.TRUCK_5, VehicleClass.SPECIAL_5),
        (6, VehicleClass.TRUCK_6, VehicleClass.SPECIAL_6),
        (7, VehicleClass.TRUCK_6, VehicleClass.SPECIAL_6),
        (12, VehicleClass.TRUCK_6, VehicleClass.SPECIAL_6),
    ],
)
def test_axle_classes(axles: int, truck: VehicleClass, special: VehicleClass) -> None:
    # length and mass are not needed beyond 2 axles
    assert classify("truck", axles=axles).vehicle_class is truck
    assert classify("special", axles=axles).vehicle_class is special


def test_seven_axles_rule_text() -> None:
    result = classify("truck", axles=7)
    assert (result.name, result.rule) == ("6类货车", "truck: 7 axles > 6, classed as 6 axles")


@pytest.mark.parametrize(
    ("category", "attributes", "code", "message"),
    [
        (
            "bus",
            {},
            "class.category",
            "bus is not a vehicle category (passenger, truck or special).",
        ),
        (
            "passenger",
            {},
            "class.missing",
            "seats, length is needed to classify a passenger vehicle.",
        ),
        (
            "passenger",
            {"seats": 7},
            "class.missing",
            "length is needed to classify a passenger vehicle.",
        ),
        ("truck", {}, "class.missing", "axles is needed to classify a truck."),
        (
            "special",
            {"axles": 2, "length_mm": 5000},
            "class.missing",
            "total mass is needed to classify a special-operation vehicle.",
        ),
        (
            "passenger",
            {"seats": 20, "length_mm": 5999},
            "class.impossible",
            "A passenger vehicle shorter than 6000 mm (5999 mm) cannot have 20 seats; "
            "check the length and seats.",
        ),
        (
            "passenger",
            {"seats": 0, "length_mm": 4000},
            "class.impossible",
            "seats must be positive, not 0.",
        ),
        (
            "passenger",
            {"seats": 5, "length_mm": -1},
            "class.impossible",
            "length must be positive, not -1.",
        ),
        ("truck", {"axles": 1}, "class.impossible", "A truck has at least 2 axles, not 1."),
        ("truck", {"axles": 0}, "class.impossible", "axles must be positive, not 0."),
        (
            "truck",
            {"axles": 2, "length_mm": 5000, "total_mass_kg": 0},
            "class.impossible",
            "total mass must be positive, not 0.",
        ),
    ],
)
def test_classification_errors(
    category: str, attributes: dict[str, int], code: str, message: str
) -> None:
    with pytest.raises(ClassificationError) as caught:
        classify(category, **attributes)
    error = caught.value
    assert error.code == code
    assert error.message == message
    assert str(error) == message
    assert error.as_dict() == {"code": code, "message": message}
    assert isinstance(error, ValueError)


def test_the_two_axle_rule_names_only_the_conditions_that_held() -> None:
    heavy_short = classify("special", axles=2, length_mm=5000, total_mass_kg=4500)
    long_light = classify("truck", axles=2, length_mm=7200, total_mass_kg=3000)
    both = classify("truck", axles=2, length_mm=7200, total_mass_kg=12000)
    assert heavy_short.rule == "special: 2 axles, total mass 4500 kg >= 4500 kg"
    assert long_light.rule == "truck: 2 axles, length 7200 mm >= 6000 mm"
    assert (
        both.rule == "truck: 2 axles, length 7200 mm >= 6000 mm and total mass 12000 kg >= 4500 kg"
    )
