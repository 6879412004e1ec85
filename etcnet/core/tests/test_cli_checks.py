import io
import json

import pytest

from etcnet.core.cli_checks import check_main, classify_main


def run_check(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = check_main(list(argv), out)
    return status, out.getvalue()


def run_classify(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = classify_main(list(argv), out)
    return status, out.getvalue()


def test_check_valid_id_prints_one_json_line() -> None:
    status, output = run_check("id", "11010519491231002x")
    assert status == 0
    assert output == (
        '{"kind": "id", "value": "11010519491231002x", "valid": true, '
        '"normalized": "11010519491231002X", "errors": []}\n'
    )


def test_check_invalid_uscc() -> None:
    status, output = run_check("uscc", "91310115MA1H8R7C6D")
    assert status == 1
    assert json.loads(output) == {
        "kind": "uscc",
        "value": "91310115MA1H8R7C6D",
        "valid": False,
        "normalized": None,
        "errors": [
            {"code": "uscc.checksum", "message": "The check character is D but should be 7."}
        ],
    }


def test_check_imported_vin_with_bad_check_digit_is_invalid() -> None:
    status, output = run_check("vin", "1FACP45E1LF192944")
    assert status == 1
    assert json.loads(output)["errors"] == [
        {"code": "vin.check_digit", "message": "The check digit (position 9) is 1 but should be X."}
    ]


def test_check_plate_with_colour_keeps_chinese_unescaped() -> None:
    status, output = run_check("plate", "京A12345", "--plate-color", "4")
    assert status == 1
    assert output == (
        '{"kind": "plate", "value": "京A12345", "valid": false, "normalized": null, '
        '"errors": [{"code": "plate.color_mismatch", "message": "The colour gradient green is '
        'not allowed for a plate of shape ordinary; allowed: blue, yellow, black."}]}\n'
    )


def test_check_plate_valid_and_negative_colour_code() -> None:
    assert run_check("plate", "粤BD12345", "--plate-color", "4")[0] == 0
    status, output = run_check("plate", "粤BD12345", "--plate-color", "-1")
    assert status == 1
    assert json.loads(output)["errors"] == [
        {"code": "plate.color_unknown", "message": "-1 is not a plate colour code."}
    ]


def test_check_phone() -> None:
    status, output = run_check("phone", "+86 138-0013-8000")
    assert status == 0
    assert json.loads(output)["normalized"] == "13800138000"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ([], "the following arguments are required: KIND, VALUE"),
        (["id"], "the following arguments are required: VALUE"),
        (["passport", "E12345678"], "argument KIND: invalid choice: 'passport'"),
        (
            ["plate", "京A12345", "--plate-color", "blue"],
            "--plate-color must be a number, not 'blue'",
        ),
        (
            ["id", "360426199101010071", "--plate-color", "0"],
            "--plate-color is only allowed with KIND plate",
        ),
        (["id", "1", "2"], "unrecognized arguments: 2"),
    ],
)
def test_check_usage_errors(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, output = run_check(*argv)
    assert status == 2
    assert output == ""
    assert error in capsys.readouterr().err


def test_check_help_returns_zero() -> None:
    status, output = run_check("--help")
    assert status == 0
    assert output.startswith("usage: etcnet check [-h] [--plate-color CODE] KIND VALUE\n")


def test_classify_prints_the_class() -> None:
    status, output = run_classify("--category", "passenger", "--seats", "7", "--length-mm", "4800")
    assert status == 0
    assert output == (
        '{"class": 1, "name": "1类客车", "name_en": "class 1 passenger vehicle", '
        '"category": "passenger", "rule": "passenger: length 4800 mm < 6000 mm and 7 seats <= 9"}\n'
    )


def test_classify_truck_by_axles() -> None:
    status, output = run_classify("--category", "truck", "--axles", "7")
    assert status == 0
    assert json.loads(output) == {
        "class": 16,
        "name": "6类货车",
        "name_en": "class 6 truck",
        "category": "truck",
        "rule": "truck: 7 axles > 6, classed as 6 axles",
    }


def test_classify_error_prints_null_class() -> None:
    status, output = run_classify("--category", "special", "--axles", "2", "--length-mm", "7000")
    assert status == 1
    assert output == (
        '{"class": null, "errors": [{"code": "class.missing", '
        '"message": "total mass is needed to classify a special-operation vehicle."}]}\n'
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ([], "the following arguments are required: --category"),
        (["--category", "bus"], "argument --category: invalid choice: 'bus'"),
        (["--category", "truck", "--axles", "two"], "argument --axles: invalid int value: 'two'"),
    ],
)
def test_classify_usage_errors(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, output = run_classify(*argv)
    assert status == 2
    assert output == ""
    assert error in capsys.readouterr().err


def test_classify_help_returns_zero() -> None:
    status, output = run_classify("-h")
    assert status == 0
    assert "--total-mass-kg N" in output
