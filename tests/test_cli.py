"""The `etcnet` console script as operators call it: exit codes and JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ETCNET = str(Path(sys.executable).with_name("etcnet"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ETCNET, *args], capture_output=True, text=True, timeout=60)


def test_check_valid_id_prints_json_and_exits_0():
    result = run("check", "id", "11010519491231002x")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "kind": "id",
        "value": "11010519491231002x",
        "valid": True,
        "normalized": "11010519491231002X",
        "errors": [],
    }


def test_check_invalid_vin_exits_1_with_the_error():
    result = run("check", "vin", "WDBEA30D4HA391172")
    body = json.loads(result.stdout)
    assert result.returncode == 1
    assert body["valid"] is False
    assert [e["code"] for e in body["errors"]] == ["vin.check_digit"]


def test_check_plate_with_colour():
    assert run("check", "plate", "粤BD12345", "--plate-color", "4").returncode == 0
    wrong = run("check", "plate", "粤BD12345", "--plate-color", "0")
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["errors"][0]["code"] == "plate.color_mismatch"


@pytest.mark.parametrize(
    "args",
    [("check",), ("check", "iban", "x"), ("check", "plate", "京A12345", "--plate-color", "blue")],
)
def test_check_usage_errors_exit_2(args):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr


def test_classify_prints_the_class():
    result = run(
        "classify",
        "--category",
        "truck",
        "--axles",
        "2",
        "--length-mm",
        "7200",
        "--total-mass-kg",
        "12000",
    )
    assert result.returncode == 0
    body = json.loads(result.stdout)
    assert (body["class"], body["name"]) == (12, "2类货车")


def test_classify_missing_attribute_exits_1():
    result = run("classify", "--category", "passenger", "--seats", "5")
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"][0]["code"] == "class.missing"


def test_django_commands_stay_reachable(tmp_path):
    env = {"ETCNET_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [ETCNET, "manage", "check"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
