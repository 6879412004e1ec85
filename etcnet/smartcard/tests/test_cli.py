import datetime
import io
import json
from pathlib import Path

import pytest

from etcnet.smartcard import ops
from etcnet.smartcard.cli import card_main, crypto_main
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.emulator import SoftCard
from etcnet.smartcard.tests import MASTERS, blank_obu, issue_card, make_0015, make_psam
from etcnet.smartcard.transport import EmulatorTransport

WHEN = datetime.datetime(2024, 5, 1, 8, 30, 15)

EXAMPLE = [
    "purchase",
    "--alg", "3des",
    "--dpk", "6B32F0DF503785F5230AA36A885C1DF8",
    "--dtk", "E1590E1259D2019BFCCE2FC78ED3561F",
    "--random", "A1B2C3D4",
    "--atc", "0005",
    "--terminal-seq", "00000123",
    "--amount", "1234",
    "--trans-type", "09",
    "--terminal", "430101000001",
    "--time", "20200101120000",
]  # fmt: skip


def run(main: object, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out)  # type: ignore[operator]
    return status, out.getvalue()


def test_purchase_prints_the_worked_example_as_json() -> None:
    status, output = run(crypto_main, *EXAMPLE)
    assert status == 0
    assert output == (
        '{"session_key": "3E402B168F5E011A", "mac1": "A82C7D47", '
        '"mac2": "C2AD3F27", "tac": "11093965"}\n'
    )


def test_purchase_accepts_lower_case_hex() -> None:
    argv = [arg.lower() if arg.isalnum() else arg for arg in EXAMPLE]
    assert run(crypto_main, *argv) == run(crypto_main, *EXAMPLE)


def test_derive_two_levels_gives_the_example_dpk() -> None:
    status, output = run(
        crypto_main,
        "derive",
        "--alg", "3des",
        "--master", "11223344556677888877665544332211",
        "--factor", "BAFEC4CFBAFEC4CF",
        "--factor", "1900232500052902",
    )  # fmt: skip
    assert (status, output) == (0, "6B32F0DF503785F5230AA36A885C1DF8\n")


def test_derive_one_level() -> None:
    status, output = run(
        crypto_main,
        "derive",
        "--alg", "3des",
        "--master", "11223344556677888877665544332211",
        "--factor", "BAFEC4CFBAFEC4CF",
    )  # fmt: skip
    assert status == 0
    assert len(output.strip()) == 32
    assert output.strip() == output.strip().upper()
    assert output.strip() != "6B32F0DF503785F5230AA36A885C1DF8"


def test_sm4_purchase_and_derive() -> None:
    status, output = run(crypto_main, *[("sm4" if arg == "3des" else arg) for arg in EXAMPLE])
    assert status == 0
    payload = json.loads(output)
    assert list(payload) == ["session_key", "mac1", "mac2", "tac"]
    assert len(payload["session_key"]) == 32
    status, output = run(
        crypto_main, "derive", "--alg", "sm4", "--master", "00" * 16, "--factor", "00" * 8
    )
    assert status == 0
    assert len(output.strip()) == 32


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["derive", "--alg", "3des", "--master", "11" * 16], "required: --factor"),
        (["derive", "--alg", "des", "--master", "11" * 16, "--factor", "00" * 8], "invalid choice"),
        (
            ["derive", "--alg", "3des", "--master", "11" * 8, "--factor", "00" * 8],
            "--master: must be 16 bytes (32 hex digits), got 8",
        ),
        (
            ["derive", "--alg", "3des", "--master", "11" * 16, "--factor", "0G" * 8],
            "--factor: '0G0G0G0G0G0G0G0G' is not hexadecimal",
        ),
        (
            ["derive", "--alg", "3des", "--master", "11" * 16, "--factor", "000"],
            "--factor: odd number of hex digits (3)",
        ),
        ([], "the following arguments are required: action"),
        (["encrypt"], "invalid choice: 'encrypt'"),
    ],
)
def test_usage_errors_return_2_with_a_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, output = run(crypto_main, *argv)
    assert (status, output) == (2, "")
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--dpk", "6B32F0DF503785F5", "--dpk: must be 16 bytes (32 hex digits), got 8"),
        ("--random", "A1B2C3", "--random: must be 4 bytes (8 hex digits), got 3"),
        ("--terminal", "4301010000", "--terminal: must be 6 bytes (12 hex digits), got 5"),
        ("--amount", "12.34", "--amount: '12.34' is not a whole number of fen"),
        ("--amount", "4294967296", "--amount: 4294967296 fen does not fit in 4 bytes"),
        ("--time", "202001011200", "--time: '202001011200' is not YYYYMMDDhhmmss"),
        ("--time", "20201301120000", "--time: '20201301120000' is not a valid date and time"),
        ("--trans-type", "0909", "--trans-type: must be 1 bytes (2 hex digits), got 2"),
    ],
)
def test_purchase_refuses_bad_values(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    argv = list(EXAMPLE)
    argv[argv.index(option) + 1] = value
    assert run(crypto_main, *argv) == (2, "")
    assert capsys.readouterr().err == f"etcnet crypto purchase: error: {message}\n"


def test_purchase_missing_argument(capsys: pytest.CaptureFixture[str]) -> None:
    argv = EXAMPLE[: EXAMPLE.index("--time")]
    assert run(crypto_main, *argv) == (2, "")
    assert "the following arguments are required: --time" in capsys.readouterr().err


def test_help_goes_to_out() -> None:
    status, output = run(crypto_main, "derive", "--help")
    assert status == 0
    assert "usage: etcnet crypto derive" in output


def test_card_show_decodes_a_card_without_keys(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=12_34)
    status, output = run(card_main, "show", str(card.path))
    assert status == 0
    shown = json.loads(output)
    assert shown["device"] == "card"
    assert shown["card_no"] == "43011900232500052902"
    assert shown["balance_fen"] == 1234
    assert shown["file_0015"]["plate"] == "湘A12345"
    assert shown["file_0016"]["name"] == "张*"
    assert (shown["offline_atc"], shown["online_atc"], shown["log"]) == (0, 0, [])
    for key in (card.keys.dpk, card.keys.dlk, card.keys.dtk, card.keys.damk):
        assert key.hex().upper() not in output
    assert "keys" not in shown
    assert "pin" not in shown


def test_card_show_decodes_an_obu_and_a_psam(tmp_path: Path) -> None:
    status, output = run(card_main, "show", str(blank_obu(tmp_path).path))
    assert status == 0
    assert json.loads(output) == {
        "device": "obu",
        "obu_no": "4301190220052902",
        "alg": "3des",
        "system_file": None,
        "vehicle_file": None,
        "fee_file": None,
        "tamper_flag": "00",
        "activated": False,
    }
    psam = make_psam(tmp_path)
    status, output = run(card_main, "show", str(psam.path))
    assert status == 0
    assert json.loads(output) == {
        "device": "psam",
        "terminal_no": "430101000001",
        "sequence": 1,
        "purchase_keys": [{"alg": "3des", "key_version": 1}, {"alg": "sm4", "key_version": 1}],
    }
    assert "11223344556677888877665544332211" not in output


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such state file"), ("[]", "not an etcnet device state file")],
)
def test_card_show_missing_or_malformed_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "x.json"
    if content is not None:
        path.write_text(content)
    assert run(card_main, "show", str(path)) == (2, "")
    assert message in capsys.readouterr().err


def test_card_show_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(card_main, "show") == (2, "")
    assert "required: file" in capsys.readouterr().err


def test_card_show_of_a_blank_unit_and_after_a_purchase(tmp_path: Path) -> None:
    f0015 = make_0015()
    blank = SoftCard.blank(
        tmp_path / "blank.json",
        internal_no=f0015.internal_no,
        network=f0015.network,
        keys=MASTERS.derived(Alg.TDES, f0015.issuer_factor, f0015.serial),
        alg=Alg.TDES,
    )
    shown = json.loads(run(card_main, "show", str(blank.path))[1])
    assert (shown["card_no"], shown["file_0015"], shown["file_0016"]) == (
        "43011900232500052902",
        None,
        None,
    )

    card = issue_card(tmp_path, balance=100)
    ops.purchase(
        EmulatorTransport(card), EmulatorTransport(make_psam(tmp_path)), amount=40, when=WHEN
    )
    shown = json.loads(run(card_main, "show", str(card.path))[1])
    assert shown["balance_fen"] == 60
    assert shown["log"] == [
        {
            "atc": 0,
            "overdraft_limit": 0,
            "amount": 40,
            "trans_type": 9,
            "terminal": "430101000001",
            "when": "2024-05-01T08:30:15",
        }
    ]


def test_card_show_masks_the_holder_unless_revealed(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=0)
    holder = json.loads(run(card_main, "show", "--reveal", str(card.path))[1])["file_0016"]

    status, output = run(card_main, "show", str(card.path))

    assert status == 0
    masked = json.loads(output)["file_0016"]
    assert holder["name"] == "张三"
    assert len(holder["id_number"]) > 8
    assert (masked["name"], masked["id_number"]) == (
        "张*",
        holder["id_number"][:4] + "*" * (len(holder["id_number"]) - 8) + holder["id_number"][-4:],
    )
    assert holder["name"] not in output
    assert holder["id_number"] not in output
    assert {k: v for k, v in masked.items() if k not in ("name", "id_number")} == {
        k: v for k, v in holder.items() if k not in ("name", "id_number")
    }
