"""Validators for identifiers met at ETC issuance: resident ID, USCC, VIN, plate, phone.

Every ``check_*`` function takes raw input and returns a ``Checked``; none raises on
bad input. An invalid value carries one ``Issue`` per problem found, each with a
stable dotted ``code`` and an English message template (marked for translation with
``gettext_noop``; the web layer translates ``template`` and formats it with
``params``). The rules and etcnet's choices are listed in ``docs/codes.md``.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from stdnum import numdb
from stdnum.cn import uscc

from etcnet.core.codes import IdDocType, PlateColor, VehicleCategory, VehicleClass

__all__ = [
    "HMT_RESIDENCE_PERMIT_REGIONS",
    "PLATE_PROVINCES",
    "PLATE_SHAPE_COLORS",
    "Checked",
    "Issue",
    "check_document",
    "check_mobile",
    "check_plate",
    "check_resident_id",
    "check_uscc",
    "check_vin",
    "gettext_noop",
    "organization_code_check_char",
    "resident_id_check_char",
    "uscc_check_char",
    "vin_check_digit",
]


def gettext_noop(message: str) -> str:
    """Mark ``message`` for Django's makemessages without translating it here."""
    return message


# Parameters that carry codes, and what kind of code: messages keep codes in
# their parameters so each edge can show labels in its own language.
PARAM_KINDS: Mapping[str, str] = {
    "color": "plate_color",
    "allowed": "plate_colors",
    "shape": "plate_shape",
    "document": "doc_type",
    "category": "category",
    "attribute": "attributes",
    "attributes": "attributes",
    "pattern": "text",
    "declared_class": "vehicle_class",
    "expected_class": "vehicle_class",
}

# Vehicle attributes named in classification messages.
ATTRIBUTE_LABELS: Mapping[str, str] = {
    "seats": gettext_noop("seats"),
    "length_mm": gettext_noop("length"),
    "axles": gettext_noop("axles"),
    "total_mass_kg": gettext_noop("total mass"),
}

LabelFunction = Callable[[str, str], str]


def english_label(kind: str, code: str) -> str:
    """The English label of one code of a kind; an unknown code is shown as is."""
    try:
        if kind in ("plate_color", "plate_colors"):
            return PlateColor(int(code)).label_en
        if kind == "doc_type":
            return IdDocType(int(code)).label_en
        if kind == "category":
            return VehicleCategory(code).label_en
        if kind == "vehicle_class":
            return VehicleClass(int(code)).label_en
    except ValueError:
        return code
    if kind == "plate_shape":
        return PLATE_SHAPE_LABELS.get(code, code)
    if kind == "attributes":
        return ATTRIBUTE_LABELS.get(code, code)
    return code


def display_params(
    params: Mapping[str, str | int],
    label: LabelFunction,
    separator: str = ", ",
    kinds: Mapping[str, str] = PARAM_KINDS,
) -> dict[str, str | int]:
    """Parameters ready for a template: codes replaced by labels, lists joined."""
    shown: dict[str, str | int] = {}
    for name, value in params.items():
        kind = kinds.get(name)
        if kind is None:
            shown[name] = value
        elif kind in ("plate_colors", "attributes"):
            shown[name] = separator.join(
                label(kind, part) for part in str(value).split(",") if part
            )
        else:
            shown[name] = label(kind, str(value))
    return shown


@dataclass(frozen=True)
class Issue:
    """One problem with a value: a stable ``code`` and an English message template."""

    code: str
    template: str
    params: Mapping[str, str | int] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """The message in English (the Django edge renders it in the user's language)."""
        return self.template.format(**display_params(self.params, english_label))

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Checked:
    """The result of a check: the raw value, its normal form (None if invalid), issues."""

    kind: str
    value: str
    normalized: str | None
    errors: tuple[Issue, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "value": self.value,
            "valid": self.valid,
            "normalized": self.normalized,
            "errors": [issue.as_dict() for issue in self.errors],
        }


def _result(
    kind: str,
    value: str,
    normalized: str,
    errors: list[Issue],
    details: Mapping[str, object] | None = None,
) -> Checked:
    if errors:
        return Checked(kind=kind, value=value, normalized=None, errors=tuple(errors))
    return Checked(kind=kind, value=value, normalized=normalized, details=dict(details or {}))


def _normalize(value: str, drop: str = "") -> str:
    # NFKC folds full-width letters and digits typed with a Chinese input method
    # (Ａ１) to ASCII; Chinese characters are unchanged.
    text = unicodedata.normalize("NFKC", value)
    return "".join(char for char in text if not char.isspace() and char not in drop).upper()


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


# --- Resident identity card (GB 11643) -------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
# Birth dates before this are treated as impossible for a living vehicle owner.
_EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)

#: Region codes of 港澳台居民居住证 numbers (which otherwise follow GB 11643).
HMT_RESIDENCE_PERMIT_REGIONS = frozenset({"810000", "820000", "830000"})


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character for 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def _known_region(code: str) -> bool:
    # Any county code in python-stdnum's table is accepted, whatever the birth year:
    # numbers keep the code of a county abolished or created later (ric.validate
    # would refuse those).
    results = numdb.get("cn/loc").info(code)
    return any("county" in props for _part, props in results)


def _check_gb11643(
    value: str, *, kind: str, today: datetime.date | None, region_ok: Callable[[str], bool]
) -> Checked:
    number = _normalize(value)
    errors: list[Issue] = []
    if not number:
        errors.append(Issue("id.required", gettext_noop("An ID number is required.")))
        return _result(kind, value, number, errors)
    if len(number) == 15 and _is_ascii_digits(number):
        errors.append(
            Issue(
                "id.legacy_15",
                gettext_noop(
                    "15-digit legacy ID numbers are no longer accepted; "
                    "ask for the 18-digit number."
                ),
            )
        )
        return _result(kind, value, number, errors)
    if len(number) != 18:
        errors.append(
            Issue(
                "id.length",
                gettext_noop("An ID number has 18 characters, not {length}."),
                {"length": len(number)},
            )
        )
        return _result(kind, value, number, errors)
    if not _is_ascii_digits(number[:17]) or not (_is_ascii_digits(number[17]) or number[17] == "X"):
        errors.append(
            Issue(
                "id.format",
                gettext_noop("An ID number is 17 digits followed by a digit or X; got {value}."),
                {"value": number},
            )
        )
        return _result(kind, value, number, errors)

    region = number[:6]
    if not region_ok(region):
        errors.append(
            Issue(
                "id.region",
                gettext_noop("{region} is not a known region code."),
                {"region": region},
            )
        )
    birth_date: datetime.date | None
    try:
        birth_date = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        birth_date = None
    if birth_date is None:
        errors.append(
            Issue(
                "id.birth_date",
                gettext_noop("{date} is not a valid birth date."),
                {"date": number[6:14]},
            )
        )
    elif birth_date > (today or datetime.date.today()) or birth_date < _EARLIEST_BIRTH_DATE:
        errors.append(
            Issue(
                "id.birth_date",
                gettext_noop("The birth date {date} is impossible."),
                {"date": birth_date.isoformat()},
            )
        )
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        errors.append(
            Issue(
                "id.checksum",
                gettext_noop(
                    "The check character is {found} but should be {expected}; "
                    "a digit was probably mistyped."
                ),
                {"found": number[17], "expected": expected},
            )
        )
    details = {
        "birth_date": birth_date.isoformat() if birth_date else None,
        "sex": "M" if int(number[16]) % 2 else "F",
        "region": region,
    }
    return _result(kind, value, number, errors, details)


def check_resident_id(value: str, *, today: datetime.date | None = None) -> Checked:
    """Check an 18-character resident ID number (居民身份证号码, GB 11643).

    ``today`` (default: the current date) bounds the birth date. details: birth_date
    (ISO), sex ("M"/"F"), region (the 6-digit code).
    """
    return _check_gb11643(value, kind="id", today=today, region_ok=_known_region)


# --- Unified social credit code (GB 32100) ---------------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a USCC."""
    return uscc.calc_check_digit(first17)


def check_uscc(value: str) -> Checked:
    """Check a unified social credit code (统一社会信用代码, GB 32100).

    Positions 1–2 (registering authority, entity type) may be letters of the code
    alphabet (e.g. N for 农村集体经济组织), positions 3–8 must be the digits of a region
    code. details: region.
    """
    code = _normalize(value)
    errors: list[Issue] = []
    if not code:
        errors.append(Issue("uscc.required", gettext_noop("A credit code is required.")))
        return _result("uscc", value, code, errors)
    if len(code) != 18:
        errors.append(
            Issue(
                "uscc.length",
                gettext_noop("A unified social credit code has 18 characters, not {length}."),
                {"length": len(code)},
            )
        )
        return _result("uscc", value, code, errors)
    bad = sorted({char for char in code if char not in _USCC_ALPHABET})
    if bad:
        errors.append(
            Issue(
                "uscc.format",
                gettext_noop(
                    "{chars} cannot appear in a unified social credit code "
                    "(digits and letters except I, O, S, V, Z)."
                ),
                {"chars": ", ".join(bad)},
            )
        )
        return _result("uscc", value, code, errors)
    if not _is_ascii_digits(code[2:8]):
        errors.append(
            Issue(
                "uscc.format",
                gettext_noop(
                    "Characters 3 to 8 must be a region code of six digits, not {region}."
                ),
                {"region": code[2:8]},
            )
        )
        return _result("uscc", value, code, errors)
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        errors.append(
            Issue(
                "uscc.checksum",
                gettext_noop("The check character is {found} but should be {expected}."),
                {"found": code[17], "expected": expected},
            )
        )
    return _result("uscc", value, code, errors, {"region": code[2:8]})


# --- Vehicle identification number (GB 16735 / ISO 3779) -------------------------------

_VIN_VALUES = {
    **{str(digit): digit for digit in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_check_digit(vin: str) -> str:
    """The check digit (position 9) of a 17-character VIN made of valid characters."""
    total = sum(_VIN_VALUES[char] * weight for char, weight in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def check_vin(value: str) -> Checked:
    """Check a 17-character VIN (车辆识别代号).

    When the VIN is otherwise well formed, a wrong check digit yields exactly one
    issue, ``vin.check_digit``: the issuance service accepts imported vehicles (whose
    VINs need not carry a check digit) on that condition. details: wmi, check_digit.
    """
    vin = _normalize(value)
    errors: list[Issue] = []
    if not vin:
        errors.append(Issue("vin.required", gettext_noop("A VIN is required.")))
        return _result("vin", value, vin, errors)
    if len(vin) != 17:
        errors.append(
            Issue(
                "vin.length",
                gettext_noop("A VIN has 17 characters, not {length}."),
                {"length": len(vin)},
            )
        )
        return _result("vin", value, vin, errors)
    for position, char in enumerate(vin, start=1):
        if char in "IOQ":
            errors.append(
                Issue(
                    "vin.forbidden_char",
                    gettext_noop(
                        "A VIN never contains {char} (position {position}); it is probably 1 or 0."
                    ),
                    {"char": char, "position": position},
                )
            )
        elif char not in _VIN_VALUES:
            errors.append(
                Issue(
                    "vin.format",
                    gettext_noop(
                        "{char} (position {position}) cannot appear in a VIN: "
                        "only digits and capital letters."
                    ),
                    {"char": char, "position": position},
                )
            )
    if errors:
        return _result("vin", value, vin, errors)
    expected = vin_check_digit(vin)
    if vin[8] != expected:
        errors.append(
            Issue(
                "vin.check_digit",
                gettext_noop("The check digit (position 9) is {found} but should be {expected}."),
                {"found": vin[8], "expected": expected},
            )
        )
    return _result("vin", value, vin, errors, {"wmi": vin[:3], "check_digit": expected})


# --- Licence plate (GA 36-2018) ---------------------------------------------------------

#: The 31 mainland province abbreviations that begin an ordinary plate.
PLATE_PROVINCES = "京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新"

_P = f"[{PLATE_PROVINCES}]"
_SERIAL = "[A-HJ-NP-Z0-9]"  # serial characters: letters without I and O, digits
_NEV = "[DABCEFGHJK]"  # D A B C E pure electric, F G H J K other new-energy

#: Each plate shape, the pattern of its normalised text, and the colours it allows.
_PLATE_SHAPES: tuple[tuple[str, re.Pattern[str], tuple[PlateColor, ...]], ...] = (
    ("embassy", re.compile(r"使[0-9]{6}"), (PlateColor.BLACK,)),
    ("armed_police", re.compile(f"WJ{_P}{_SERIAL}{{4,5}}"), (PlateColor.WHITE,)),
    ("civil_aviation", re.compile(f"民航{_SERIAL}{{5}}"), (PlateColor.WHITE,)),
    ("hong_kong_macao", re.compile(f"粤Z{_SERIAL}{{4}}[港澳]"), (PlateColor.BLACK,)),
    ("consulate", re.compile(f"{_P}[A-Z][0-9]{{4}}领"), (PlateColor.BLACK,)),
    ("trailer", re.compile(f"{_P}[A-Z]{_SERIAL}{{4}}挂"), (PlateColor.YELLOW,)),
    ("coach", re.compile(f"{_P}[A-Z]{_SERIAL}{{4}}学"), (PlateColor.YELLOW,)),
    ("police", re.compile(f"{_P}[A-Z]{_SERIAL}{{4}}警"), (PlateColor.WHITE,)),
    (
        "new_energy_small",
        re.compile(f"{_P}[A-Z]{_NEV}{_SERIAL}[0-9]{{4}}"),
        (PlateColor.GRADIENT_GREEN,),
    ),
    (
        "new_energy_large",
        re.compile(f"{_P}[A-Z][0-9]{{5}}{_NEV}"),
        (PlateColor.YELLOW_GREEN,),
    ),
    (
        "ordinary",
        re.compile(f"{_P}[A-Z]{_SERIAL}{{5}}"),
        (PlateColor.BLUE, PlateColor.YELLOW, PlateColor.BLACK),
    ),
)

#: Plate shape → the colours allowed with it (documented in docs/codes.md).
PLATE_SHAPE_COLORS: Mapping[str, tuple[PlateColor, ...]] = {
    shape: colors for shape, _pattern, colors in _PLATE_SHAPES
}

# English names of the shapes, for messages.
PLATE_SHAPE_LABELS: Mapping[str, str] = {
    "embassy": gettext_noop("embassy"),
    "armed_police": gettext_noop("armed police"),
    "civil_aviation": gettext_noop("civil aviation"),
    "hong_kong_macao": gettext_noop("Hong Kong / Macao cross-border"),
    "consulate": gettext_noop("consulate"),
    "trailer": gettext_noop("trailer"),
    "coach": gettext_noop("driving school"),
    "police": gettext_noop("police"),
    "new_energy_small": gettext_noop("small new-energy"),
    "new_energy_large": gettext_noop("large new-energy"),
    "ordinary": gettext_noop("ordinary"),
}

_PLATE_SEPARATORS = "·•-"


def _plate_province(plate: str) -> tuple[str | None, Issue | None]:
    """The province of a plate, or the issue with its leading character."""
    if plate.startswith(("使", "民航")):
        return None, None
    index = 2 if plate.startswith("WJ") else 0
    char = plate[index : index + 1]
    if not char:
        return None, None  # too short: reported as plate.format
    if char in PLATE_PROVINCES:
        return char, None
    return None, Issue(
        "plate.province",
        gettext_noop("{char} is not a province abbreviation."),
        {"char": char},
    )


def check_plate(value: str, color: int | None = None) -> Checked:
    """Check a licence plate number, and its colour code when ``color`` is given.

    Separators (· • -) and spaces are dropped. With ``color`` None only the shape is
    checked. details: shape (see ``PLATE_SHAPE_COLORS``), province (when the plate has one).
    """
    plate = _normalize(value, _PLATE_SEPARATORS)
    errors: list[Issue] = []
    if not plate:
        errors.append(Issue("plate.required", gettext_noop("A plate number is required.")))
        return _result("plate", value, plate, errors)

    province, province_issue = _plate_province(plate)
    shape: str | None = None
    allowed: tuple[PlateColor, ...] = ()
    if province_issue is not None:
        errors.append(province_issue)
    else:
        for name, pattern, colors in _PLATE_SHAPES:
            if pattern.fullmatch(plate):
                shape, allowed = name, colors
                break
        if shape is None:
            errors.append(
                Issue(
                    "plate.format",
                    gettext_noop("{plate} does not have the shape of a licence plate."),
                    {"plate": plate},
                )
            )

    if color is not None:
        try:
            plate_color = PlateColor.from_code(color)
        except ValueError:
            errors.append(
                Issue(
                    "plate.color_unknown",
                    gettext_noop("{color} is not a plate colour code."),
                    {"color": color},
                )
            )
        else:
            if shape is not None and plate_color not in allowed:
                errors.append(
                    Issue(
                        "plate.color_mismatch",
                        gettext_noop(
                            "The colour {color} is not allowed for a plate of shape {shape}; "
                            "allowed: {allowed}."
                        ),
                        {
                            "shape": shape,
                            "color": int(plate_color),
                            "allowed": ",".join(str(int(c)) for c in allowed),
                        },
                    )
                )

    details: dict[str, object] = {"shape": shape}
    if province is not None:
        details["province"] = province
    return _result("plate", value, plate, errors, details)


# --- Mobile phone -----------------------------------------------------------------------

_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")


def check_mobile(value: str) -> Checked:
    """Check a mainland mobile number (11 digits, 1[3-9]…); kind "phone".

    Spaces and dashes are dropped, and a leading +86, 0086 or 86 (before 11 digits).
    """
    number = _normalize(value, "-")
    errors: list[Issue] = []
    if not number:
        errors.append(Issue("phone.required", gettext_noop("A mobile number is required.")))
        return _result("phone", value, number, errors)
    for prefix in ("+86", "0086"):
        if number.startswith(prefix):
            number = number[len(prefix) :]
            break
    else:
        if len(number) == 13 and number.startswith("86"):
            number = number[2:]
    if not _MOBILE_RE.fullmatch(number):
        errors.append(
            Issue(
                "phone.format",
                gettext_noop("{number} is not a mainland mobile number (11 digits, 13…19…)."),
                {"number": number},
            )
        )
    return _result("phone", value, number, errors)


# --- Identity documents -----------------------------------------------------------------

_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CODE_BODY = re.compile(r"[0-9A-Z]{8}")


def organization_code_check_char(body: str) -> str:
    """The GB 11714 check character for the 8-character body of an organisation code."""
    total = sum(
        int(char, 36) * weight for char, weight in zip(body, _ORG_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


# Shapes of the documents that carry no check character (docs/codes.md).
_DOCUMENT_SHAPES: Mapping[IdDocType, tuple[re.Pattern[str], str]] = {
    IdDocType.MILITARY_OFFICER: (
        re.compile(r"[0-9A-Z\u4e00-\u9fff]{4,20}"),
        gettext_noop("4 to 20 Chinese characters, letters or digits"),
    ),
    IdDocType.PASSPORT: (re.compile(r"[0-9A-Z]{5,17}"), gettext_noop("5 to 17 letters or digits")),
    IdDocType.HK_MACAO_PERMIT: (
        re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?"),
        gettext_noop("H or M followed by 8 or 10 digits"),
    ),
    IdDocType.TAIWAN_PERMIT: (re.compile(r"[0-9]{8}(?:[0-9]{2})?"), gettext_noop("8 or 10 digits")),
    IdDocType.ARMED_POLICE_OFFICER: (
        re.compile(r"[0-9A-Z\u4e00-\u9fff]{4,20}"),
        gettext_noop("4 to 20 Chinese characters, letters or digits"),
    ),
    IdDocType.FOREIGNER_PERMANENT_RESIDENCE: (
        re.compile(r"[A-Z]{3}[0-9]{12}|9[0-9]{16}[0-9X]"),
        gettext_noop("3 letters and 12 digits (until 2017), or 18 characters starting with 9"),
    ),
    IdDocType.BUSINESS_LICENSE: (
        re.compile(r"[0-9]{15}"),
        gettext_noop("a 15-digit registration number or an 18-character credit code"),
    ),
}


def _check_organization_code(value: str) -> Checked:
    code = _normalize(value, "-")
    errors: list[Issue] = []
    if len(code) != 9 or not _ORG_CODE_BODY.fullmatch(code[:8]) or code[8] not in "0123456789X":
        errors.append(
            Issue(
                "document.format",
                gettext_noop("{value} does not have the shape of a {document}: {pattern}."),
                {
                    "value": code,
                    "document": int(IdDocType.ORGANIZATION_CODE),
                    "pattern": gettext_noop("8 digits or capital letters, a dash, a digit or X"),
                },
            )
        )
        return _result("document", value, code, errors)
    expected = organization_code_check_char(code[:8])
    if code[8] != expected:
        errors.append(
            Issue(
                "document.checksum",
                gettext_noop("The check character is {found} but should be {expected}."),
                {"found": code[8], "expected": expected},
            )
        )
    return _result("document", value, f"{code[:8]}-{code[8]}", errors)


def check_document(doc_type: int, value: str) -> Checked:
    """Check an identity document number of type ``doc_type`` (an ``IdDocType`` code).

    Resident IDs, credit codes, residence permits and organisation codes are checked
    with their check characters; the other documents by shape only. The result has
    kind "document" and details["doc_type"].
    """
    try:
        document = IdDocType.from_code(doc_type)
    except ValueError:
        issue = Issue(
            "document.type",
            gettext_noop("{doc_type} is not a known document type."),
            {"doc_type": str(doc_type)},
        )
        return Checked(kind="document", value=value, normalized=None, errors=(issue,))
    checked = _check_document(document, value)
    details = {**checked.details, "doc_type": document.value} if checked.valid else {}
    return replace(checked, kind="document", details=details)


def _check_document(document: IdDocType, value: str) -> Checked:
    if document is IdDocType.RESIDENT_ID:
        return check_resident_id(value)
    if document is IdDocType.HMT_RESIDENCE_PERMIT:
        return _check_gb11643(
            value,
            kind="document",
            today=None,
            region_ok=HMT_RESIDENCE_PERMIT_REGIONS.__contains__,
        )
    if document in (
        IdDocType.USCC_CERTIFICATE,
        IdDocType.PUBLIC_INSTITUTION,
        IdDocType.SOCIAL_ORGANIZATION,
    ):
        return check_uscc(value)
    number = _normalize(value)
    if not number:
        issue = Issue("document.required", gettext_noop("A document number is required."))
        return Checked(kind="document", value=value, normalized=None, errors=(issue,))
    if document is IdDocType.ORGANIZATION_CODE:
        return _check_organization_code(value)
    if document is IdDocType.BUSINESS_LICENSE and len(number) == 18:
        return check_uscc(value)
    pattern, shape = _DOCUMENT_SHAPES[document]
    if pattern.fullmatch(number):
        return Checked(kind="document", value=value, normalized=number)
    issue = Issue(
        "document.format",
        gettext_noop("{value} does not have the shape of a {document}: {pattern}."),
        {"value": number, "document": int(document), "pattern": shape},
    )
    return Checked(kind="document", value=value, normalized=None, errors=(issue,))
