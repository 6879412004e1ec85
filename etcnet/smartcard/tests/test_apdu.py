import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcnet.smartcard.apdu import ApduError, Command, Response, from_hex, status_meaning

h = bytes.fromhex


@pytest.mark.parametrize(
    ("raw", "case", "data", "le"),
    [
        ("00A40000", 1, "", None),
        ("805C000204", 2, "", 4),
        ("00B0960000", 2, "", 256),
        ("00A40000021001", 3, "1001", None),
        ("805003020B01000004D24301010000010F", 4, "01000004D2430101000001", 15),
    ],
)
def test_parse_the_four_short_cases(raw: str, case: int, data: str, le: int | None) -> None:
    command = Command.parse(h(raw))
    assert command.case == case
    assert command.data == h(data)
    assert command.le == le
    assert command.encode() == h(raw)
    assert command.hex() == raw.upper()


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=255),
    st.one_of(st.none(), st.integers(1, 256)),
)
def test_encode_parse_round_trip(
    cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None
) -> None:
    command = Command(cla, ins, p1, p2, data, le)
    assert Command.parse(command.encode()) == command


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("00A400", "needs the 4 header bytes CLA INS P1 P2; got 3 bytes"),
        ("00A400000210", "Lc mismatch: Lc says 2 data bytes but 1 bytes follow"),
        ("00A40000021001AABB", "Lc mismatch: Lc says 2 data bytes but 4 bytes follow"),
        ("00A400000000", "extended-length"),
    ],
)
def test_malformed_apdus_are_rejected_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(ApduError, match=message):
        Command.parse(h(raw))


def test_five_bytes_are_always_case_2() -> None:
    assert Command.parse(h("00A4000002")).le == 2
    assert Command.parse(h("00B0950000")).le == 256


def test_command_fields_are_checked() -> None:
    with pytest.raises(ApduError, match="p1 must be one byte"):
        Command(0x00, 0xA4, 256, 0)
    with pytest.raises(ApduError, match="at most 255"):
        Command(0x00, 0xD6, 0, 0, bytes(256))
    with pytest.raises(ApduError, match="Le must be between 1 and 256"):
        Command(0x00, 0xB0, 0, 0, le=0)


def test_response_parse_and_status() -> None:
    response = Response.parse(h("000027109000"))
    assert (response.data, response.sw1, response.sw2, response.sw, response.ok) == (
        h("00002710"),
        0x90,
        0x00,
        0x9000,
        True,
    )
    refused = Response.parse(h("9401"))
    assert not refused.ok
    assert refused.meaning == "insufficient balance"
    with pytest.raises(ApduError, match="needs the 2 status bytes"):
        Response.parse(h("90"))


@pytest.mark.parametrize(
    ("sw", "meaning"),
    [
        (0x9000, "success"),
        (0x6110, "success, 16 more response bytes available (GET RESPONSE)"),
        (0x6C2B, "wrong Le; exactly 43 bytes available"),
        (0x63C2, "verification failed, 2 tries left"),
        (0x6281, "part of the returned data may be corrupted"),
        (0x6700, "wrong length (Lc or Le)"),
        (0x6982, "security status not satisfied (PIN or authentication required)"),
        (0x6983, "authentication method blocked (PIN locked)"),
        (0x6985, "conditions of use not satisfied (wrong state or sequence)"),
        (0x6988, "secure messaging data object incorrect (MAC wrong)"),
        (0x6A80, "incorrect data in the command"),
        (0x6A81, "function not supported"),
        (0x6A82, "file or application not found"),
        (0x6A83, "record not found"),
        (0x6A86, "incorrect parameters P1-P2"),
        (0x6B00, "wrong parameters (offset outside the file)"),
        (0x6D00, "instruction code not supported"),
        (0x6E00, "class not supported"),
        (0x9302, "MAC invalid"),
        (0x9303, "application permanently locked"),
        (0x9401, "insufficient balance"),
        (0x9403, "key index not supported"),
        (0x9406, "required MAC not available"),
        (0x1234, "unknown status 1234"),
    ],
)
def test_status_meaning(sw: int, meaning: str) -> None:
    assert status_meaning(sw) == meaning


def test_from_hex() -> None:
    assert from_hex("a1 b2c3D4", field="--random", length=4) == h("A1B2C3D4")
    with pytest.raises(ValueError, match="--random: odd number of hex digits"):
        from_hex("A1B", field="--random")
    with pytest.raises(ValueError, match="--dpk: 'XYZ1' is not hexadecimal"):
        from_hex("XYZ1", field="--dpk")
    with pytest.raises(ValueError, match=r"--dpk: must be 16 bytes \(32 hex digits\), got 2"):
        from_hex("A1B2", field="--dpk", length=16)
