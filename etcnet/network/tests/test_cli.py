"""``etcnet fee`` on a bundle: JSON out, exit codes 0 / 1 / 2.

The bundle is the worked network of ``test_engine`` (see its docstring for the fees).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from etcnet.network.bundle import write_bundle
from etcnet.network.cli import fee_main
from etcnet.network.tests.test_engine import worked_network


@pytest.fixture
def bundle(tmp_path: Path) -> str:
    write_bundle(worked_network(), tmp_path / "bundle")
    return str(tmp_path / "bundle")


def run(*argv: str) -> tuple[int, dict[str, object] | None]:
    out = io.StringIO()
    status = fee_main(list(argv), out)
    text = out.getvalue()
    return status, json.loads(text) if text.strip() else None


def test_a_trip_with_its_path(bundle):
    # AJ + JK + KB = 1,230 + 2,450 + 980 = 4,660 fen; ETC 233; payable 4,427.
    status, body = run(
        "--network", bundle, "--entry", "A", "--exit", "B", "--class", "1", "--path", "AJ,JK,KB"
    )

    assert status == 0
    assert body is not None
    assert (body["method"], body["fee_fen"], body["discount_fen"], body["payable_fen"]) == (
        "path",
        4_660,
        233,
        4_427,
    )
    assert body["length_m"] == 43_000
    assert body["intervals"] == [
        {"interval_id": "AJ", "owner_id": "O1", "fee_fen": 1_230, "length_m": 10_000},
        {"interval_id": "JK", "owner_id": "O1", "fee_fen": 2_450, "length_m": 25_000},
        {"interval_id": "KB", "owner_id": "O2", "fee_fen": 980, "length_m": 8_000},
    ]


def test_cash_without_a_path_pays_the_minimum_rounded_to_the_yuan(bundle):
    # Minimum A→B class 11: AJ + JB = 1,850 + 3,000 = 4,850 fen → 49 yuan in cash.
    status, body = run(
        "--network", bundle, "--entry", "A", "--exit", "B", "--class", "11", "--payment", "cash"
    )

    assert status == 0
    assert body is not None
    assert (body["method"], body["exit_fee_type"], body["fee_fen"], body["payable_fen"]) == (
        "minimum",
        6,
        4_850,
        4_900,
    )


def test_no_entry_applies_the_farthest_entry_rule(bundle):
    status, body = run("--network", bundle, "--exit", "B", "--class", "1")

    assert status == 0
    assert body is not None
    assert (body["method"], body["entry"], body["fee_fen"], body["payable_fen"]) == (
        "farthest-entry",
        "D",
        7_660,
        7_277,
    )


def test_open_road_and_vehicle_status(bundle):
    _, open_road = run("--network", bundle, "--exit", "P", "--class", "15")
    _, green = run(
        "--network", bundle, "--entry", "A", "--exit", "B", "--class", "11",
        "--vehicle-status", "21",
    )  # fmt: skip

    assert open_road is not None
    assert green is not None
    assert (open_road["method"], open_road["fee_fen"], open_road["payable_fen"]) == (
        "open",
        2_300,
        2_185,
    )
    assert (green["method"], green["payable_fen"], green["vehicle_kind"]) == ("exempt", 0, 21)


def test_chinese_text_is_not_escaped(tmp_path, capsys):
    network = worked_network()
    write_bundle(network, tmp_path / "b")
    out = io.StringIO()
    fee_main(["--network", str(tmp_path / "b"), "--exit", "Z", "--class", "1"], out)
    assert "\\u" not in out.getvalue()


A_TO_B = ["--exit", "B", "--entry", "A", "--class", "1"]


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--exit", "Z", "--class", "1"], "fee.unknown_node"),
        (["--exit", "B", "--entry", "Z", "--class", "1"], "fee.unknown_node"),
        ([*A_TO_B, "--path", "AJ,KB"], "fee.path_not_connected"),
        ([*A_TO_B, "--path", "JK,KB"], "fee.path_not_joined"),
        ([*A_TO_B, "--path", "AJ,XX"], "fee.unknown_interval"),
        (["--exit", "B", "--class", "5"], "fee.unknown_class"),
        (["--exit", "B", "--class", "12"], "fee.unknown_class"),
        (["--exit", "B", "--class", "1", "--vehicle-status", "77"], "fee.unknown_vehicle_kind"),
    ],
)  # fmt: skip
def test_trips_that_cannot_be_charged_exit_1(bundle, capsys, argv, code):
    status, body = run("--network", bundle, *argv)

    assert status == 1
    assert body is not None
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
    assert error["message"]
    assert error["message"] in capsys.readouterr().err


def test_a_bad_bundle_exits_1_with_every_problem(bundle, capsys):
    intervals = Path(bundle) / "intervals.csv"
    lines = intervals.read_text(encoding="utf-8").splitlines()
    lines[2] = "AJ,A,J,0,O9,G-AJ"  # line 3: zero length and unknown owner
    intervals.write_text("\n".join(lines) + "\n", encoding="utf-8")

    status, body = run("--network", bundle, "--exit", "B", "--class", "1")

    assert status == 1
    assert body is not None
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "bundle.invalid"
    assert {(p["file"], p["line"], p["column"], p["code"]) for p in error["problems"]} == {
        ("intervals.csv", 3, "length_m", "bundle.bad_length"),
        ("intervals.csv", 3, "owner_id", "bundle.unknown_owner"),
    }
    err = capsys.readouterr().err
    assert "intervals.csv:3:length_m: bundle.bad_length" in err
    assert "intervals.csv:3:owner_id: bundle.unknown_owner" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--network", "x", "--class", "1"],  # no --exit
        ["--network", "x", "--exit", "B", "--class", "1", "--payment", "alipay"],
        ["table", "--network", "x"],  # no --out
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    status, body = run(*argv)
    assert (status, body) == (2, None)
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys):
    out = io.StringIO()
    assert fee_main(["--help"], out) == 0
    assert "--vehicle-status" in out.getvalue()


def test_table_writes_the_minimum_fee_table(bundle, tmp_path):
    target = tmp_path / "min.csv"

    status, body = run("table", "--network", bundle, "--out", str(target))

    assert status == 0
    assert body == {"out": str(target), "rows": 36, "classes": [1, 11, 15]}
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["entry", "exit", "vehicle_class", "fee_fen", "length_m"]
    assert rows[1] == ["A", "B", "1", "3230", "50000"]
    assert len(rows) == 37


def test_table_on_a_bad_bundle_exits_1(tmp_path):
    status, body = run("table", "--network", str(tmp_path / "none"), "--out", str(tmp_path / "o"))
    assert status == 1
    assert body is not None
    assert body["error"]["code"] == "bundle.invalid"  # type: ignore[index]
    assert not (tmp_path / "o").exists()


def test_junctions_paths_without_entry_and_bad_paths_on_exempt_trips_are_errors() -> None:
    import io
    import json
    from pathlib import Path

    from etcnet.network.cli import fee_main

    demo = str(Path(__file__).resolve().parents[1] / "demo_bundle")

    def run(*args: str) -> tuple[int, dict]:
        out = io.StringIO()
        status = fee_main(["--network", demo, *args], out)
        return status, json.loads(out.getvalue())

    status, body = run("--exit", "J1201008", "--entry", "S1201048", "--class", "1")
    assert (status, body["error"]["code"]) == (1, "fee.not_station")
    status, body = run("--exit", "S1201049", "--path", "S004012001004110", "--class", "1")
    assert (status, body["error"]["code"]) == (1, "fee.path_without_entry")
    status, body = run(
        "--entry",
        "S1201048",
        "--exit",
        "S1201049",
        "--path",
        "XX,YY",
        "--class",
        "1",
        "--vehicle-status",
        "21",
    )
    assert (status, body["error"]["code"]) == (1, "fee.unknown_interval")


def test_a_class_that_is_not_a_number_is_an_unknown_class() -> None:
    import io
    import json
    from pathlib import Path

    from etcnet.network.cli import fee_main

    out = io.StringIO()
    demo = str(Path(__file__).resolve().parents[1] / "demo_bundle")
    status = fee_main(["--network", demo, "--exit", "S1201049", "--class", "abc"], out)
    assert (status, json.loads(out.getvalue())["error"]["code"]) == (1, "fee.unknown_class")
