"""Toll vehicle classification (收费车型) by JT/T 489-2019.

Rules (reference §4.1 and Part 1):

* 客车 (passenger): by length and approved seats. Under 6000 mm: up to 9 seats → 1,
  10–19 → 2 (20 or more is impossible for a short bus). From 6000 mm: up to 39 → 3,
  40 or more → 4.
* 货车 (truck): by axles. Two axles: under 6000 mm *and* under 4500 kg maximum
  permitted total mass → 11, otherwise (6000 mm or more, *or* 4500 kg or more) → 12.
  3, 4, 5, 6 axles → 13, 14, 15, 16; more than 6 axles → 16 (etcnet's profile).
* 专项作业车 (special-operation): as trucks, with codes 21–26; the two-axle rule uses
  "or" like trucks (etcnet's profile; the standard's wording is unconfirmed).

Attributes a category does not need are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from etcnet.core.codes import VehicleCategory, VehicleClass
from etcnet.core.validators import display_params, english_label, gettext_noop

__all__ = ["LENGTH_LIMIT_MM", "MASS_LIMIT_KG", "Classification", "ClassificationError", "classify"]

#: Vehicles shorter than this are "short" (车长 < 6000 mm).
LENGTH_LIMIT_MM = 6000
#: Two-axle trucks lighter than this are class 1 (最大允许总质量 < 4500 kg).
MASS_LIMIT_KG = 4500


@dataclass(frozen=True)
class Classification:
    """A toll class and the rule that gave it."""

    vehicle_class: VehicleClass
    name: str
    name_en: str
    rule: str


class ClassificationError(ValueError):
    """Vehicle attributes that cannot be classified. ``code`` is stable.

    Like ``validators.Issue``: ``template`` is English, marked with ``gettext_noop``,
    and is formatted with ``params``.
    """

    def __init__(
        self, code: str, template: str, params: Mapping[str, str | int] | None = None
    ) -> None:
        self.code = code
        self.template = template
        self.params: Mapping[str, str | int] = dict(params or {})
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The message in English (the Django edge renders it in the user's language)."""
        return self.template.format(**display_params(self.params, english_label))

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _result(vehicle_class: VehicleClass, rule: str) -> Classification:
    return Classification(
        vehicle_class=vehicle_class,
        name=vehicle_class.label,
        name_en=vehicle_class.label_en,
        rule=rule,
    )


def _require(category: VehicleCategory, **attributes: int | None) -> None:
    missing = [name for name, value in attributes.items() if value is None]
    if missing:
        raise ClassificationError(
            "class.missing",
            gettext_noop("{attributes} is needed to classify a {category}."),
            {"category": category.value, "attributes": ",".join(missing)},
        )
    for name, value in attributes.items():
        if value is not None and value <= 0:
            raise ClassificationError(
                "class.impossible",
                gettext_noop("{attribute} must be positive, not {value}."),
                {"attribute": name, "value": value},
            )


def _classify_passenger(seats: int, length_mm: int) -> Classification:
    if length_mm < LENGTH_LIMIT_MM:
        if seats <= 9:
            rule = f"passenger: length {length_mm} mm < 6000 mm and {seats} seats <= 9"
            return _result(VehicleClass.PASSENGER_1, rule)
        if seats <= 19:
            rule = f"passenger: length {length_mm} mm < 6000 mm and {seats} seats in 10-19"
            return _result(VehicleClass.PASSENGER_2, rule)
        raise ClassificationError(
            "class.impossible",
            gettext_noop(
                "A passenger vehicle shorter than 6000 mm ({length_mm} mm) cannot have "
                "{seats} seats; check the length and seats."
            ),
            {"length_mm": length_mm, "seats": seats},
        )
    if seats <= 39:
        rule = f"passenger: length {length_mm} mm >= 6000 mm and {seats} seats <= 39"
        return _result(VehicleClass.PASSENGER_3, rule)
    rule = f"passenger: length {length_mm} mm >= 6000 mm and {seats} seats >= 40"
    return _result(VehicleClass.PASSENGER_4, rule)


def _classify_by_axles(
    category: VehicleCategory, axles: int, length_mm: int | None, total_mass_kg: int | None
) -> Classification:
    base = 10 if category is VehicleCategory.TRUCK else 20
    word = category.value
    if axles < 2:
        raise ClassificationError(
            "class.impossible",
            gettext_noop("A {category} has at least 2 axles, not {axles}."),
            {"category": category.value, "axles": axles},
        )
    if axles == 2:
        _require(category, length_mm=length_mm, total_mass_kg=total_mass_kg)
        assert length_mm is not None  # checked by _require
        assert total_mass_kg is not None
        if length_mm < LENGTH_LIMIT_MM and total_mass_kg < MASS_LIMIT_KG:
            rule = (
                f"{word}: 2 axles, length {length_mm} mm < 6000 mm "
                f"and total mass {total_mass_kg} kg < 4500 kg"
            )
            return _result(VehicleClass(base + 1), rule)
        # Name only the conditions that hold: either one makes the class.
        held = []
        if length_mm >= LENGTH_LIMIT_MM:
            held.append(f"length {length_mm} mm >= 6000 mm")
        if total_mass_kg >= MASS_LIMIT_KG:
            held.append(f"total mass {total_mass_kg} kg >= 4500 kg")
        rule = f"{word}: 2 axles, " + " and ".join(held)
        return _result(VehicleClass(base + 2), rule)
    if axles <= 6:
        return _result(VehicleClass(base + axles), f"{word}: {axles} axles")
    return _result(VehicleClass(base + 6), f"{word}: {axles} axles > 6, classed as 6 axles")


def classify(
    category: VehicleCategory | str,
    *,
    seats: int | None = None,
    length_mm: int | None = None,
    axles: int | None = None,
    total_mass_kg: int | None = None,
) -> Classification:
    """The JT/T 489-2019 toll class of a vehicle; ``ClassificationError`` if impossible.

    ``seats`` is the approved number of persons (核定载人数), ``total_mass_kg`` the
    maximum permitted total mass (最大允许总质量).
    """
    try:
        family = VehicleCategory.from_code(str(category))
    except ValueError:
        raise ClassificationError(
            "class.category",
            gettext_noop("{category} is not a vehicle category (passenger, truck or special)."),
            {"category": str(category)},
        ) from None
    if family is VehicleCategory.PASSENGER:
        _require(family, seats=seats, length_mm=length_mm)
        assert seats is not None  # checked by _require
        assert length_mm is not None
        return _classify_passenger(seats, length_mm)
    _require(family, axles=axles)
    assert axles is not None  # checked by _require
    return _classify_by_axles(family, axles, length_mm, total_mass_kg)
