"""Pure issuance rules: step input parsing and automatic approval. No ORM.

Both the pages and the API hand the raw values of a step to `parse_customer` or
`parse_vehicle`; one parser means one set of rules and one set of error codes
whichever way a clerk works.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from etcnet.core.classification import ClassificationError, classify
from etcnet.core.codes import (
    CustomerType,
    IdDocType,
    PlateColor,
    UseNature,
    VehicleCategory,
    VehicleClass,
    VehicleUserType,
)
from etcnet.core.errors import FieldIssue
from etcnet.core.validators import (
    check_document,
    check_mobile,
    check_plate,
    check_vin,
    gettext_noop,
)

REQUIRED = gettext_noop("This field is required.")
NOT_A_NUMBER = gettext_noop("Enter a whole number.")
OUT_OF_RANGE = gettext_noop("Enter a value from {min} to {max}.")
NOT_A_DATE = gettext_noop("Enter a date as YYYY-MM-DD.")
NOT_A_CHOICE = gettext_noop("Choose one of the listed values.")
TOO_LONG = gettext_noop("Use at most {max} characters.")
BAD_CHARACTERS = gettext_noop("Remove spaces and special characters.")

# Names, addresses and models: letters of any script, digits and the punctuation
# that real names and addresses use. The seed warns against spaces and special
# characters, which break downstream systems.
_TEXT = re.compile(r"^[\w\u00b7\u2022.()（）#\-、/,，]+$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_ENGINE_NO = re.compile(r"^[A-Z0-9\-*/]{1,32}$")


def _acceptable_text(value: str) -> bool:
    """No special characters; spaces only single, between words of a Latin-script
    text ("JOHN SMITH", "BMW X5"). A space inside Chinese text is a typo."""
    if _TEXT.match(value):
        return True
    words = value.split(" ")
    return not _CJK.search(value) and all(word and _TEXT.match(word) for word in words)


@dataclass
class _Parser:
    raw: Mapping[str, Any]
    issues: list[FieldIssue]

    def _value(self, name: str) -> str:
        value = self.raw.get(name)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else ""
        return str(value).strip()

    def missing(self, name: str) -> None:
        self.issues.append(FieldIssue(name, "required", REQUIRED))

    def text(self, name: str, *, max_len: int, required: bool = True) -> str:
        value = self._value(name)
        if not value:
            if required:
                self.missing(name)
            return ""
        if len(value) > max_len:
            self.issues.append(FieldIssue(name, "too_long", TOO_LONG, {"max": max_len}))
        elif not _acceptable_text(value):
            self.issues.append(FieldIssue(name, "bad_characters", BAD_CHARACTERS))
        return value

    def integer(self, name: str, *, low: int, high: int, required: bool = True) -> int | None:
        value = self._value(name)
        if not value:
            if required:
                self.missing(name)
            return None
        if not re.fullmatch(r"-?\d+", value):
            self.issues.append(FieldIssue(name, "not_a_number", NOT_A_NUMBER))
            return None
        number = int(value)
        if not low <= number <= high:
            self.issues.append(
                FieldIssue(name, "out_of_range", OUT_OF_RANGE, {"min": low, "max": high})
            )
            return None
        return number

    def choice(self, name: str, enum: Any, *, required: bool = True) -> Any:
        value = self._value(name)
        if not value:
            if required:
                self.missing(name)
            return None
        for member in enum:
            if str(member.value) == value:
                return member
        self.issues.append(FieldIssue(name, "invalid_choice", NOT_A_CHOICE))
        return None

    def date(self, name: str, *, today: dt.date) -> dt.date | None:
        value = self._value(name)
        if not value:
            self.missing(name)
            return None
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError:
            self.issues.append(FieldIssue(name, "not_a_date", NOT_A_DATE))
            return None
        if parsed > today:
            self.issues.append(
                FieldIssue(name, "future_date", gettext_noop("The date cannot be in the future."))
            )
            return None
        return parsed

    def flag(self, name: str) -> bool:
        return self._value(name).lower() in {"1", "true", "on", "yes"}


@dataclass(frozen=True)
class CustomerData:
    customer_type: CustomerType
    name: str
    id_type: IdDocType
    id_number: str
    address: str
    department: str
    agent_name: str
    agent_id_type: IdDocType | None
    agent_id_number: str

    def as_fields(self) -> dict[str, Any]:
        return {
            "customer_type": int(self.customer_type),
            "name": self.name,
            "id_type": int(self.id_type),
            "id_number": self.id_number,
            "address": self.address,
            "department": self.department,
            "agent_name": self.agent_name,
            "agent_id_type": int(self.agent_id_type) if self.agent_id_type else None,
            "agent_id_number": self.agent_id_number,
        }


def _document_number(
    p: _Parser, type_field: str, number_field: str, *, organization: bool
) -> tuple[IdDocType | None, str]:
    doc_type = p.choice(type_field, IdDocType)
    number = p._value(number_field)
    if doc_type is not None and doc_type.for_organization != organization:
        p.issues.append(
            FieldIssue(
                type_field,
                "wrong_document_type",
                gettext_noop("This document type is not for this kind of customer."),
            )
        )
        doc_type = None
    if not number:
        p.missing(number_field)
        return doc_type, ""
    if doc_type is None:
        return None, number
    checked = check_document(int(doc_type), number)
    if not checked.valid:
        p.issues.extend(FieldIssue.from_issue(number_field, issue) for issue in checked.errors)
        return doc_type, number
    return doc_type, checked.normalized or number


def parse_customer(raw: Mapping[str, Any]) -> tuple[CustomerData | None, list[FieldIssue]]:
    """The customer step. Returns clean data, or None and every problem found."""
    p = _Parser(raw, [])
    customer_type = p.choice("customer_type", CustomerType)
    organization = customer_type == CustomerType.ORGANIZATION
    name = p.text("name", max_len=100)
    id_type, id_number = _document_number(p, "id_type", "id_number", organization=organization)
    address = p.text("address", max_len=200)
    department = agent_name = agent_number = ""
    agent_type = None
    if organization:
        department = p.text("department", max_len=100)
        agent_name = p.text("agent_name", max_len=50)
        agent_type, agent_number = _document_number(
            p, "agent_id_type", "agent_id_number", organization=False
        )
    if p.issues or customer_type is None or id_type is None:
        return None, p.issues
    return (
        CustomerData(
            customer_type=customer_type,
            name=name,
            id_type=id_type,
            id_number=id_number,
            address=address,
            department=department,
            agent_name=agent_name,
            agent_id_type=agent_type,
            agent_id_number=agent_number,
        ),
        [],
    )


@dataclass(frozen=True)
class VehicleData:
    plate: str
    plate_color: PlateColor
    category: VehicleCategory
    toll_class: VehicleClass
    user_type: VehicleUserType
    use_nature: UseNature
    brand_model: str
    vin: str
    vin_imported: bool
    vin_check_digit_waived: bool
    engine_no: str
    register_date: dt.date
    issue_date: dt.date
    owner_name: str
    seats: int
    length_mm: int
    width_mm: int
    height_mm: int
    total_mass_kg: int
    curb_mass_kg: int
    approved_load_kg: int
    axles: int
    wheels: int
    contact_name: str
    contact_phone: str

    def as_fields(self) -> dict[str, Any]:
        fields = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "vin_check_digit_waived"
        }
        for name in ("plate_color", "toll_class", "user_type"):
            fields[name] = int(fields[name])
        fields["category"] = str(self.category.value)
        fields["use_nature"] = str(self.use_nature.value)
        return fields


def parse_vehicle(
    raw: Mapping[str, Any], *, today: dt.date
) -> tuple[VehicleData | None, list[FieldIssue]]:
    """The vehicle step. Returns clean data, or None and every problem found.

    A VIN whose only fault is its check digit is accepted when the clerk marks
    the vehicle imported (imported vehicles may carry such VINs);
    `vin_check_digit_waived` tells the service to audit that.
    """
    p = _Parser(raw, [])
    plate_color = p.choice("plate_color", PlateColor)
    plate_raw = p._value("plate")
    plate = ""
    if not plate_raw:
        p.missing("plate")
    else:
        checked = check_plate(plate_raw, int(plate_color) if plate_color is not None else None)
        if checked.valid:
            plate = checked.normalized or plate_raw
        else:
            p.issues.extend(FieldIssue.from_issue("plate", issue) for issue in checked.errors)
    category = p.choice("category", VehicleCategory)
    toll_class = p.choice("toll_class", VehicleClass)
    user_type = p.choice("user_type", VehicleUserType, required=False) or VehicleUserType(0)
    use_nature = p.choice("use_nature", UseNature)
    brand_model = p.text("brand_model", max_len=64)

    vin_imported = p.flag("vin_imported")
    vin_waived = False
    vin = ""
    vin_raw = p._value("vin")
    if not vin_raw:
        p.missing("vin")
    else:
        checked = check_vin(vin_raw)
        codes = {issue.code for issue in checked.errors}
        if checked.valid:
            vin = checked.normalized or vin_raw
        elif vin_imported and codes == {"vin.check_digit"}:
            vin = vin_raw.strip().upper()
            vin_waived = True
        else:
            p.issues.extend(FieldIssue.from_issue("vin", issue) for issue in checked.errors)

    engine_no = p._value("engine_no").upper()
    if not engine_no:
        p.missing("engine_no")
    elif not _ENGINE_NO.match(engine_no):
        p.issues.append(
            FieldIssue(
                "engine_no",
                "bad_characters",
                gettext_noop("An engine number has 1 to 32 letters, digits or dashes."),
            )
        )

    register_date = p.date("register_date", today=today)
    issue_date = p.date("issue_date", today=today)
    if register_date and issue_date and issue_date < register_date:
        p.issues.append(
            FieldIssue(
                "issue_date",
                "before_registration",
                gettext_noop("The licence cannot be issued before the vehicle was registered."),
            )
        )
    owner_name = p.text("owner_name", max_len=100)
    seats = p.integer("seats", low=1, high=99)
    length_mm = p.integer("length_mm", low=1000, high=30000)
    width_mm = p.integer("width_mm", low=500, high=4000)
    height_mm = p.integer("height_mm", low=500, high=5000)
    total_mass_kg = p.integer("total_mass_kg", low=100, high=200000)
    curb_mass_kg = p.integer("curb_mass_kg", low=100, high=200000)
    approved_load_kg = p.integer("approved_load_kg", low=0, high=200000, required=False) or 0
    axles = p.integer("axles", low=1, high=20)
    wheels = p.integer("wheels", low=2, high=80)
    if total_mass_kg and curb_mass_kg and curb_mass_kg > total_mass_kg:
        p.issues.append(
            FieldIssue(
                "curb_mass_kg",
                "curb_over_total",
                gettext_noop("The curb mass cannot exceed the total mass."),
            )
        )
    contact_name = p.text("contact_name", max_len=50)
    contact_phone = ""
    phone_raw = p._value("contact_phone")
    if not phone_raw:
        p.missing("contact_phone")
    else:
        checked = check_mobile(phone_raw)
        if checked.valid:
            contact_phone = checked.normalized or phone_raw
        else:
            p.issues.extend(FieldIssue.from_issue("contact_phone", i) for i in checked.errors)

    if p.issues:
        return None, p.issues
    values = {
        "plate": plate,
        "plate_color": plate_color,
        "category": category,
        "toll_class": toll_class,
        "user_type": user_type,
        "use_nature": use_nature,
        "brand_model": brand_model,
        "vin": vin,
        "vin_imported": vin_imported,
        "vin_check_digit_waived": vin_waived,
        "engine_no": engine_no,
        "register_date": register_date,
        "issue_date": issue_date,
        "owner_name": owner_name,
        "seats": seats,
        "length_mm": length_mm,
        "width_mm": width_mm,
        "height_mm": height_mm,
        "total_mass_kg": total_mass_kg,
        "curb_mass_kg": curb_mass_kg,
        "approved_load_kg": approved_load_kg,
        "axles": axles,
        "wheels": wheels,
        "contact_name": contact_name,
        "contact_phone": contact_phone,
    }
    # No issue means every required value was parsed.
    return VehicleData(**values), []


def required_documents(customer_type: int | None) -> list[str]:
    """The photos automatic approval requires (DocumentKind values)."""
    kinds = ["id_photo", "licence_main", "licence_supplement", "vehicle_head"]
    if customer_type == CustomerType.ORGANIZATION:
        kinds.insert(1, "entrust_letter")
    return kinds


def expected_class(vehicle: VehicleData) -> VehicleClass | FieldIssue:
    try:
        return classify(
            vehicle.category,
            seats=vehicle.seats,
            length_mm=vehicle.length_mm,
            axles=vehicle.axles,
            total_mass_kg=vehicle.total_mass_kg,
        ).vehicle_class
    except ClassificationError as error:
        return FieldIssue("toll_class", error.code, error.template, dict(error.params))


def approval_issues(
    *,
    customer_raw: Mapping[str, Any],
    vehicle_raw: Mapping[str, Any],
    phone_verified: bool,
    documents: Collection[str],
    plate_bound_elsewhere: bool,
    today: dt.date,
) -> list[FieldIssue]:
    """Automatic approval: every reason to refuse, or an empty list to approve.

    The stored step values are checked again because rules may have tightened
    since a step was saved; the clerk sees every reason at once.
    """
    issues: list[FieldIssue] = []
    if not phone_verified:
        issues.append(
            FieldIssue("phone", "phone_not_verified", gettext_noop("The phone is not verified."))
        )
    customer, customer_issues = parse_customer(customer_raw)
    issues.extend(customer_issues)
    vehicle, vehicle_issues = parse_vehicle(vehicle_raw, today=today)
    issues.extend(vehicle_issues)
    customer_type = customer.customer_type if customer else customer_raw.get("customer_type")
    for kind in required_documents(int(customer_type) if customer_type else None):
        if kind not in documents:
            issues.append(document_missing_issue(kind))
    if vehicle is not None:
        expected = expected_class(vehicle)
        if isinstance(expected, FieldIssue):
            issues.append(expected)
        elif expected != vehicle.toll_class:
            issues.append(
                FieldIssue(
                    "toll_class",
                    "class_inconsistent",
                    gettext_noop(
                        "The toll class {declared_class} does not match the vehicle: "
                        "its seats, length, axles and mass make it {expected_class}."
                    ),
                    {"declared_class": int(vehicle.toll_class), "expected_class": int(expected)},
                )
            )
    if plate_bound_elsewhere:
        issues.append(plate_bound_issue())
    return issues


def plate_bound_issue() -> FieldIssue:
    return FieldIssue(
        "plate",
        "plate_already_bound",
        gettext_noop(
            "This plate and colour already have a live ETC binding: one vehicle, one OBU, one card."
        ),
    )


def document_missing_issue(kind: str) -> FieldIssue:
    return FieldIssue(
        kind, "document_missing", gettext_noop("The photo “{photo}” is missing."), {"photo": kind}
    )
