import datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from etcnet.core.codes import PlateColor
from etcnet.core.validators import (
    PLATE_SHAPE_COLORS,
    Checked,
    Issue,
    check_document,
    check_mobile,
    check_plate,
    check_resident_id,
    check_uscc,
    check_vin,
    gettext_noop,
    organization_code_check_char,
    resident_id_check_char,
    uscc_check_char,
    vin_check_digit,
)

TODAY = datetime.date(2026, 1, 1)


def codes(checked: Checked) -> list[str]:
    return [issue.code for issue in checked.errors]


def messages(checked: Checked) -> list[str]:
    return [issue.message for issue in checked.errors]


# --- Issue / Checked --------------------------------------------------------------------


def test_issue_formats_its_template() -> None:
    issue = Issue("id.length", gettext_noop("has {length} characters"), {"length": 17})
    assert issue.message == "has 17 characters"
    assert issue.as_dict() == {"code": "id.length", "message": "has 17 characters"}


def test_checked_as_json_has_exactly_the_public_keys() -> None:
    checked = check_resident_id(" 360426199101010071 ")
    assert checked.as_json() == {
        "kind": "id",
        "value": " 360426199101010071 ",
        "valid": True,
        "normalized": "360426199101010071",
        "errors": [],
    }


# --- Resident ID ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "birth_date", "sex", "region"),
    [
        ("360426199101010071", "1991-01-01", "M", "360426"),
        ("120103198806018241", "1988-06-01", "F", "120103"),
        ("11010519491231002X", "1949-12-31", "F", "110105"),
    ],
)
def test_resident_id_official_vectors(number: str, birth_date: str, sex: str, region: str) -> None:
    checked = check_resident_id(number, today=TODAY)
    assert checked.valid
    assert checked.normalized == number
    assert dict(checked.details) == {"birth_date": birth_date, "sex": sex, "region": region}


def test_resident_id_lower_case_x_and_spaces_normalise() -> None:
    checked = check_resident_id(" 110105 19491231 002x", today=TODAY)
    assert checked.valid
    assert checked.normalized == "11010519491231002X"


def test_resident_id_wrong_check_character_names_the_expected_one() -> None:
    checked = check_resident_id("360426199101010072", today=TODAY)
    assert not checked.valid
    assert checked.normalized is None
    assert checked.as_json()["errors"] == [
        {
            "code": "id.checksum",
            "message": "The check character is 2 but should be 1; a digit was probably mistyped.",
        }
    ]


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        ("", "id.required", "An ID number is required."),
        ("  ", "id.required", "An ID number is required."),
        (
            "360426910101007",
            "id.legacy_15",
            "15-digit legacy ID numbers are no longer accepted; ask for the 18-digit number.",
        ),
        ("36042619910101007", "id.length", "An ID number has 18 characters, not 17."),
        ("3604261991010100711", "id.length", "An ID number has 18 characters, not 19."),
        (
            "36042619910101007A",
            "id.format",
            "An ID number is 17 digits followed by a digit or X; got 36042619910101007A.",
        ),
        (
            "3604261991O101007X",
            "id.format",
            "An ID number is 17 digits followed by a digit or X; got 3604261991O101007X.",
        ),
    ],
)
def test_resident_id_shape_errors(number: str, code: str, message: str) -> None:
    checked = check_resident_id(number, today=TODAY)
    assert codes(checked) == [code]
    assert messages(checked) == [message]


def _id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def test_resident_id_unknown_region() -> None:
    number = _id("99999919910101007")
    checked = check_resident_id(number, today=TODAY)
    assert codes(checked) == ["id.region"]
    assert messages(checked) == ["999999 is not a known region code."]


def test_resident_id_impossible_date() -> None:
    number = _id("36042619910230007")
    checked = check_resident_id(number, today=TODAY)
    assert codes(checked) == ["id.birth_date"]
    assert messages(checked) == ["19910230 is not a valid birth date."]


def test_resident_id_birth_date_in_the_future() -> None:
    number = _id("36042620260102007")
    assert check_resident_id(number, today=datetime.date(2026, 1, 2)).valid
    checked = check_resident_id(number, today=datetime.date(2026, 1, 1))
    assert codes(checked) == ["id.birth_date"]
    assert messages(checked) == ["The birth date 2026-01-02 is impossible."]


def test_resident_id_birth_date_before_1900() -> None:
    checked = check_resident_id(_id("36042618991231007"), today=TODAY)
    assert codes(checked) == ["id.birth_date"]


def test_resident_id_reports_every_independent_problem() -> None:
    checked = check_resident_id("999999199102300072", today=TODAY)
    assert codes(checked) == ["id.region", "id.birth_date", "id.checksum"]


def test_resident_id_accepts_codes_of_abolished_counties() -> None:
    # 110103 崇文区 was merged in 2010; people born there keep their number
    assert check_resident_id(_id("11010319800101001"), today=TODAY).valid


def test_resident_id_full_width_digits_normalise() -> None:
    checked = check_resident_id("３６０４２６１９９１０１０１００７１", today=TODAY)
    assert checked.normalized == "360426199101010071"


REGIONS = ["110105", "120103", "310115", "360426", "440305", "510104", "650102"]

valid_ids = st.builds(
    lambda region, birth, sequence: _id(f"{region}{birth:%Y%m%d}{sequence:03d}"),
    st.sampled_from(REGIONS),
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=TODAY),
    st.integers(min_value=0, max_value=999),
)


@given(valid_ids, st.sampled_from("0123456789X"))
def test_generated_ids_validate_and_a_changed_check_char_does_not(number: str, other: str) -> None:
    assert check_resident_id(number, today=TODAY).valid
    assume(other != number[-1])
    checked = check_resident_id(number[:-1] + other, today=TODAY)
    assert codes(checked) == ["id.checksum"]


@given(valid_ids)
def test_resident_id_normalisation_is_idempotent(number: str) -> None:
    messy = f" {number[:6]} {number[6:14]} {number[14:].lower()} "
    first = check_resident_id(messy, today=TODAY)
    assert first.normalized == number
    assert check_resident_id(number, today=TODAY).normalized == number


CHECKS = {
    "id": lambda text: check_resident_id(text, today=TODAY),
    "uscc": check_uscc,
    "vin": check_vin,
    "plate": check_plate,
    "phone": check_mobile,
    "passport": lambda text: check_document(103, text),
}


@given(st.sampled_from(sorted(CHECKS)), st.text())
def test_checks_never_raise_and_normalising_is_idempotent(kind: str, text: str) -> None:
    checked = CHECKS[kind](text)
    assert checked.valid == (checked.normalized is not None)
    if checked.normalized is not None:
        again = CHECKS[kind](checked.normalized)
        assert again.valid
        assert again.normalized == checked.normalized


@given(
    st.sampled_from(sorted(CHECKS)),
    st.sampled_from(
        [
            "360426199101010071",
            "91110108551385082Q",
            "WDBEA30D3HA391172",
            "粤BD12345",
            "13800138000",
            "E12345678",
        ]
    ),
    st.sampled_from(["", " ", "  ", "\u3000"]),
)
def test_surrounding_spaces_do_not_matter(kind: str, value: str, pad: str) -> None:
    plain = CHECKS[kind](value)
    padded = CHECKS[kind](f"{pad}{value.lower()}{pad}")
    assert padded.normalized == plain.normalized
    assert [i.code for i in padded.errors] == [i.code for i in plain.errors]


# --- USCC -------------------------------------------------------------------------------


def test_uscc_vector() -> None:
    checked = check_uscc("91110108551385082Q")
    assert checked.valid
    assert dict(checked.details) == {"region": "110108"}


def test_uscc_lower_case_and_spaces_normalise() -> None:
    assert check_uscc(" 9111 0108 5513 8508 2q ").normalized == "91110108551385082Q"


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        ("", "uscc.required", "A credit code is required."),
        (
            "9111010855138508",
            "uscc.length",
            "A unified social credit code has 18 characters, not 16.",
        ),
        (
            "9111010855138508IO",
            "uscc.format",
            "I, O cannot appear in a unified social credit code "
            "(digits and letters except I, O, S, V, Z).",
        ),
        (
            "91A10108551385082Q",
            "uscc.format",
            "Characters 3 to 8 must be a region code of six digits, not A10108.",
        ),
        ("91310115MA1H8R7C6D", "uscc.checksum", "The check character is D but should be 7."),
    ],
)
def test_uscc_errors(value: str, code: str, message: str) -> None:
    checked = check_uscc(value)
    assert codes(checked) == [code]
    assert messages(checked) == [message]


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

valid_usccs = st.builds(
    lambda head, region, body: head + region + body + uscc_check_char(head + region + body),
    st.text(USCC_ALPHABET, min_size=2, max_size=2),
    st.sampled_from(REGIONS),
    st.text(USCC_ALPHABET, min_size=9, max_size=9),
)


@given(valid_usccs, st.sampled_from(USCC_ALPHABET))
def test_generated_usccs_validate_and_a_changed_check_char_does_not(code: str, other: str) -> None:
    assert check_uscc(code).valid
    assert check_uscc(code.lower()).normalized == code
    assume(other != code[-1])
    assert codes(check_uscc(code[:-1] + other)) == ["uscc.checksum"]


# --- VIN --------------------------------------------------------------------------------


def test_vin_vectors() -> None:
    assert check_vin("WDBEA30D3HA391172").valid
    assert vin_check_digit("1FACP45E0LF192944") == "X"
    checked = check_vin("1facp45exlf192944")
    assert checked.valid
    assert checked.normalized == "1FACP45EXLF192944"
    assert dict(checked.details) == {"wmi": "1FA", "check_digit": "X"}


def test_vin_wrong_check_digit_is_the_only_error() -> None:
    checked = check_vin("1FACP45E7LF192944")
    assert checked.as_json()["errors"] == [
        {
            "code": "vin.check_digit",
            "message": "The check digit (position 9) is 7 but should be X.",
        }
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", [("vin.required", "A VIN is required.")]),
        ("WDBEA30D3HA39117", [("vin.length", "A VIN has 17 characters, not 16.")]),
        (
            "WDBEA30D3HA39117I",
            [
                (
                    "vin.forbidden_char",
                    "A VIN never contains I (position 17); it is probably 1 or 0.",
                )
            ],
        ),
        (
            "ODBEA30D3HA39117Q",
            [
                (
                    "vin.forbidden_char",
                    "A VIN never contains O (position 1); it is probably 1 or 0.",
                ),
                (
                    "vin.forbidden_char",
                    "A VIN never contains Q (position 17); it is probably 1 or 0.",
                ),
            ],
        ),
        (
            "WDBEA30D3HA39117*",
            [
                (
                    "vin.format",
                    "* (position 17) cannot appear in a VIN: only digits and capital letters.",
                )
            ],
        ),
    ],
)
def test_vin_errors(value: str, expected: list[tuple[str, str]]) -> None:
    checked = check_vin(value)
    assert [(issue.code, issue.message) for issue in checked.errors] == expected


VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"

valid_vins = st.builds(
    lambda text: text[:8] + vin_check_digit(text[:8] + "0" + text[9:]) + text[9:],
    st.text(VIN_ALPHABET, min_size=17, max_size=17),
)


@given(valid_vins, st.sampled_from("0123456789X"))
def test_generated_vins_validate_and_a_changed_check_digit_does_not(vin: str, other: str) -> None:
    assert check_vin(vin).valid
    assert check_vin(vin.lower()).normalized == vin
    assume(other != vin[8])
    assert codes(check_vin(vin[:8] + other + vin[9:])) == ["vin.check_digit"]


# --- Plates -----------------------------------------------------------------------------

PLATE_EXAMPLES = {
    "ordinary": "京A12345",
    "new_energy_small": "粤BD12345",
    "new_energy_large": "粤B12345F",
    "trailer": "鲁C1234挂",
    "coach": "苏E1234学",
    "police": "浙A1234警",
    "hong_kong_macao": "粤Z1234港",
    "consulate": "沪A1234领",
    "embassy": "使123456",
    "armed_police": "WJ京12345",
    "civil_aviation": "民航12345",
}


def test_every_shape_has_an_example() -> None:
    assert set(PLATE_EXAMPLES) == set(PLATE_SHAPE_COLORS)


def test_shape_colour_table() -> None:
    assert {shape: [c.value for c in colors] for shape, colors in PLATE_SHAPE_COLORS.items()} == {
        "embassy": [2],
        "armed_police": [3],
        "civil_aviation": [3],
        "hong_kong_macao": [2],
        "consulate": [2],
        "trailer": [1],
        "coach": [1],
        "police": [3],
        "new_energy_small": [4],
        "new_energy_large": [5],
        "ordinary": [0, 1, 2],
    }


@pytest.mark.parametrize(
    ("shape", "color"),
    [(shape, color) for shape in PLATE_EXAMPLES for color in PlateColor],
)
def test_plate_shape_by_colour(shape: str, color: PlateColor) -> None:
    plate = PLATE_EXAMPLES[shape]
    checked = check_plate(plate, color.value)
    allowed = PLATE_SHAPE_COLORS[shape]
    if color in allowed:
        assert checked.valid
        assert checked.normalized == plate
        assert checked.details["shape"] == shape
    else:
        assert codes(checked) == ["plate.color_mismatch"]
        assert checked.errors[0].params["color"] == int(color)
        assert checked.errors[0].params["allowed"] == ",".join(str(int(c)) for c in allowed)


@pytest.mark.parametrize("shape", list(PLATE_EXAMPLES))
def test_plate_shape_without_colour(shape: str) -> None:
    checked = check_plate(PLATE_EXAMPLES[shape])
    assert checked.valid
    assert checked.details["shape"] == shape


def test_plate_details_and_normalisation() -> None:
    checked = check_plate(" 京a·12345 ", 0)
    assert checked.normalized == "京A12345"
    assert dict(checked.details) == {"shape": "ordinary", "province": "京"}
    assert check_plate("粤B-D1234•5").normalized == "粤BD12345"
    assert dict(check_plate("使123456").details) == {"shape": "embassy"}
    assert dict(check_plate("WJ川1234X").details) == {"shape": "armed_police", "province": "川"}


@pytest.mark.parametrize(
    ("plate", "shape"),
    [
        ("粤BD12345", "new_energy_small"),
        ("粤BA1234X", None),  # small: the last 4 are digits
        ("粤BK12345", "new_energy_small"),  # K: non-pure electric
        ("粤BL12345", None),  # L is in neither set
        ("粤BDI2345", None),  # no I in serials
        ("粤B12345A", "new_energy_large"),  # A: pure electric
        ("粤B12345L", None),
        ("粤B1234AD", None),  # large: the first 5 are digits
        ("粤BF1234", "ordinary"),  # 7 characters: an ordinary plate
    ],
)
def test_new_energy_serial_rules(plate: str, shape: str | None) -> None:
    # D A B C E (pure electric) / F G H J K (other): position 1 small, position 6 large
    checked = check_plate(plate)
    assert checked.details.get("shape") == shape
    assert checked.valid == (shape is not None)


def test_plate_color_mismatch_message() -> None:
    checked = check_plate("鲁C1234挂", 0)
    assert checked.as_json()["errors"] == [
        {
            "code": "plate.color_mismatch",
            "message": (
                "The colour blue is not allowed for a plate of shape trailer; allowed: yellow."
            ),
        }
    ]


@pytest.mark.parametrize(
    ("plate", "color", "expected"),
    [
        ("", None, [("plate.required", "A plate number is required.")]),
        ("港A12345", None, [("plate.province", "港 is not a province abbreviation.")]),
        ("WJ港12345", None, [("plate.province", "港 is not a province abbreviation.")]),
        ("AB12345", None, [("plate.province", "A is not a province abbreviation.")]),
        (
            "京AI2345",
            None,
            [("plate.format", "京AI2345 does not have the shape of a licence plate.")],
        ),
        (
            "京A1234",
            None,
            [("plate.format", "京A1234 does not have the shape of a licence plate.")],
        ),
        (
            "京12345A",
            None,
            [("plate.format", "京12345A does not have the shape of a licence plate.")],
        ),
        ("京A12345", 8, [("plate.color_unknown", "8 is not a plate colour code.")]),
        (
            "京A1234",
            99,
            [
                ("plate.format", "京A1234 does not have the shape of a licence plate."),
                ("plate.color_unknown", "99 is not a plate colour code."),
            ],
        ),
        (
            "京A12345",
            9,
            [
                (
                    "plate.color_mismatch",
                    "The colour undetermined is not allowed for a plate of shape ordinary; "
                    "allowed: blue, yellow, black.",
                )
            ],
        ),
    ],
)
def test_plate_errors(plate: str, color: int | None, expected: list[tuple[str, str]]) -> None:
    checked = check_plate(plate, color)
    assert [(issue.code, issue.message) for issue in checked.errors] == expected


def test_all_31_provinces_accepted() -> None:
    provinces = "京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新"
    assert len(provinces) == 31
    assert all(check_plate(f"{p}A12345", 0).valid for p in provinces)


# --- Mobile -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "8613800138000",
        "0086 13800138000",
    ],
)
def test_mobile_normalises(value: str) -> None:
    checked = check_mobile(value)
    assert checked.valid
    assert checked.kind == "phone"
    assert checked.normalized == "13800138000"


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        ("", "phone.required", "A mobile number is required."),
        (
            "12800138000",
            "phone.format",
            "12800138000 is not a mainland mobile number (11 digits, 13…19…).",
        ),
        (
            "1380013800",
            "phone.format",
            "1380013800 is not a mainland mobile number (11 digits, 13…19…).",
        ),
        (
            "010-12345678",
            "phone.format",
            "01012345678 is not a mainland mobile number (11 digits, 13…19…).",
        ),
    ],
)
def test_mobile_errors(value: str, code: str, message: str) -> None:
    checked = check_mobile(value)
    assert codes(checked) == [code]
    assert messages(checked) == [message]


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_mobile_idempotent(number: str) -> None:
    checked = check_mobile(f"+86 {number[:3]}-{number[3:7]}-{number[7:]}")
    assert checked.normalized == number
    assert check_mobile(number).normalized == number


# --- Documents --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_type", "value", "normalized"),
    [
        (101, "360426199101010071", "360426199101010071"),
        (102, "南字第123456号", "南字第123456号"),
        (103, "e12345678", "E12345678"),
        (104, "H12345678", "H12345678"),
        (104, "M1234567890", "M1234567890"),
        (105, "12345678", "12345678"),
        (105, "1234567890", "1234567890"),
        (106, "武字第1234号", "武字第1234号"),
        (107, "USA110070010002", "USA110070010002"),
        (107, "934156198001010012", "934156198001010012"),
        (108, _id("81000019910101002"), _id("81000019910101002")),
        (108, _id("83000019910101002"), _id("83000019910101002")),
        (201, "91110108551385082Q", "91110108551385082Q"),
        (202, "55138508-2", "55138508-2"),
        (202, "551385082", "55138508-2"),
        (203, "91110108551385082Q", "91110108551385082Q"),
        (203, "110108000000016", "110108000000016"),
        (204, "91110108551385082Q", "91110108551385082Q"),
        (205, "91110108551385082Q", "91110108551385082Q"),
    ],
)
def test_documents_valid(doc_type: int, value: str, normalized: str) -> None:
    checked = check_document(doc_type, value)
    assert checked.kind == "document"
    assert checked.valid, checked.errors
    assert checked.normalized == normalized
    assert checked.details["doc_type"] == doc_type


def test_organization_code_check_char() -> None:
    # the body of 91110108551385082Q's organisation code
    assert organization_code_check_char("55138508") == "2"


@pytest.mark.parametrize(
    ("doc_type", "value", "code", "message"),
    [
        (999, "x", "document.type", "999 is not a known document type."),
        (103, " ", "document.required", "A document number is required."),
        (202, "", "document.required", "A document number is required."),
        (
            103,
            "E12",
            "document.format",
            "E12 does not have the shape of a passport: 5 to 17 letters or digits.",
        ),
        (
            104,
            "C12345678",
            "document.format",
            "C12345678 does not have the shape of a mainland travel permit for Hong Kong and "
            "Macao residents: H or M followed by 8 or 10 digits.",
        ),
        (
            202,
            "5513850",
            "document.format",
            "5513850 does not have the shape of a organisation code certificate: "
            "8 digits or capital letters, a dash, a digit or X.",
        ),
        (202, "55138508-3", "document.checksum", "The check character is 3 but should be 2."),
        (101, "360426199101010072", "id.checksum", None),
        (201, "91310115MA1H8R7C6D", "uscc.checksum", None),
        (108, _id("36042619910101007"), "id.region", "360426 is not a known region code."),
    ],
)
def test_document_errors(doc_type: int, value: str, code: str, message: str | None) -> None:
    checked = check_document(doc_type, value)
    assert checked.kind == "document"
    assert not checked.valid
    assert codes(checked) == [code]
    if message is not None:
        assert messages(checked) == [message]
