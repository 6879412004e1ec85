import sys
import types
from pathlib import Path

import pytest

from etcnet.smartcard.apdu import ApduError
from etcnet.smartcard.tests import issue_card
from etcnet.smartcard.transport import (
    PCSC_MISSING,
    EmulatorTransport,
    PcscTransport,
    Transport,
    TransportError,
)

h = bytes.fromhex


def test_emulator_transport_is_a_transport(tmp_path: Path) -> None:
    transport = EmulatorTransport(issue_card(tmp_path))
    assert isinstance(transport, Transport)
    assert transport.transmit(h("00A40000021001")) == h("6F04830210019000")
    assert transport.transmit(h("00A4000C021001")) == h("9000")


def test_emulator_transport_rejects_a_malformed_apdu(tmp_path: Path) -> None:
    with pytest.raises(ApduError, match="needs the 4 header bytes"):
        EmulatorTransport(issue_card(tmp_path)).transmit(h("00A4"))


def test_pcsc_without_pyscard_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "smartcard", None)
    with pytest.raises(RuntimeError) as missing:
        PcscTransport("ACS ACR122U 00 00")
    assert str(missing.value) == PCSC_MISSING
    assert str(missing.value) == (
        "PC/SC support needs the optional 'pcsc' extra: pip install etcnet[pcsc]"
    )


class FakeConnection:
    def __init__(self, script: dict[bytes, tuple[list[int], int, int]]) -> None:
        self.script = script
        self.sent: list[bytes] = []

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def transmit(self, apdu: list[int]) -> tuple[list[int], int, int]:
        self.sent.append(bytes(apdu))
        return self.script[bytes(apdu)]


class FakeReader:
    def __init__(self, name: str, connection: FakeConnection) -> None:
        self.name = name
        self.connection = connection

    def __str__(self) -> str:
        return self.name

    def createConnection(self) -> FakeConnection:
        return self.connection


def install_fake_pyscard(monkeypatch: pytest.MonkeyPatch, reader: FakeReader) -> None:
    package = types.ModuleType("smartcard")
    system = types.ModuleType("smartcard.System")
    system.readers = lambda: [reader]  # type: ignore[attr-defined]
    package.System = system  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "smartcard", package)
    monkeypatch.setitem(sys.modules, "smartcard.System", system)


def test_pcsc_follows_61xx_and_6cxx(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = FakeConnection(
        {
            h("00A40000021001"): ([], 0x61, 0x02),
            h("00C0000002"): ([0x6F, 0x00], 0x90, 0x00),
            h("00B0950032"): ([], 0x6C, 0x2B),
            h("00B095002B"): ([0x11] * 43, 0x90, 0x00),
        }
    )
    install_fake_pyscard(monkeypatch, FakeReader("Reader 0", connection))
    transport = PcscTransport("Reader 0")
    assert transport.transmit(h("00A40000021001")) == h("6F009000")
    assert transport.transmit(h("00B0950032")) == bytes([0x11] * 43) + h("9000")
    assert connection.sent == [
        h("00A40000021001"),
        h("00C0000002"),
        h("00B0950032"),
        h("00B095002B"),
    ]
    transport.close()


def test_pcsc_unknown_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_pyscard(monkeypatch, FakeReader("Reader 0", FakeConnection({})))
    with pytest.raises(
        TransportError, match=r"no PC/SC reader named 'Reader 9' \(available: Reader 0\)"
    ):
        PcscTransport("Reader 9")
