"""How commands reach a card: ``Transport.transmit(apdu) -> response``.

Two implementations: ``EmulatorTransport`` over the software devices of
``etcnet.smartcard.emulator``, and ``PcscTransport`` over a PC/SC reader through
pyscard (the optional ``pcsc`` extra, imported only when a reader is opened).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from etcnet.smartcard.apdu import ApduError, Command
from etcnet.smartcard.emulator import Device, load_device

__all__ = [
    "PCSC_MISSING",
    "ApduError",
    "EmulatorTransport",
    "PcscTransport",
    "Transport",
    "TransportError",
    "open_emulated",
]

PCSC_MISSING = "PC/SC support needs the optional 'pcsc' extra: pip install etcnet[pcsc]"


@runtime_checkable
class Transport(Protocol):
    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; return the response data followed by SW1 SW2."""
        ...


class TransportError(OSError):
    """The card could not be reached (removed from the reader, reader gone)."""


class EmulatorTransport:
    """A transport to a software device; a malformed APDU raises ``ApduError`` here,
    before the device sees it (a real reader driver would refuse it too).

    Two transports may hold the same state file (the counter and a terminal, two
    processes): each APDU runs under an exclusive lock on the file, and when
    another holder changed the file since this one last saw it, the device is
    loaded again first — its open session (a challenge, a load or purchase
    begun) is gone, exactly as on a real card another reader talked to."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.device.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def transmit(self, apdu: bytes) -> bytes:
        Command.parse(apdu)
        with _locked(self.device.path):
            if self._stamp() != self._seen:
                self.device = load_device(self.device.path)
            response = self.device.transmit(bytes(apdu))
            self._seen = self._stamp()
        return response


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock beside the state file (POSIX; elsewhere none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_emulated(path: str | os.PathLike[str]) -> EmulatorTransport:
    """A transport to the card, OBU or PSAM whose state file is ``path``."""
    return EmulatorTransport(load_device(path))


class PcscTransport:
    """A PC/SC reader through pyscard. 61xx is followed by GET RESPONSE and 6Cxx is
    answered by sending the command again with the right Le, as T=0 readers need."""

    def __init__(self, reader_name: str) -> None:
        try:
            from smartcard.System import readers
        except ImportError:
            raise RuntimeError(PCSC_MISSING) from None
        matching = [reader for reader in readers() if str(reader) == reader_name]
        if not matching:
            available = ", ".join(str(reader) for reader in readers()) or "none"
            raise TransportError(f"no PC/SC reader named {reader_name!r} (available: {available})")
        self.reader_name = reader_name
        self._connection: Any = matching[0].createConnection()
        self._connection.connect()

    def _raw(self, apdu: bytes) -> tuple[bytes, int, int]:
        try:
            data, sw1, sw2 = self._connection.transmit(list(apdu))
        except Exception as error:  # pyscard raises its own exception classes
            raise TransportError(f"{self.reader_name}: {error}") from error
        return bytes(data), int(sw1), int(sw2)

    def transmit(self, apdu: bytes) -> bytes:
        command = Command.parse(apdu)
        data, sw1, sw2 = self._raw(bytes(apdu))
        if sw1 == 0x6C and command.le is not None:
            data, sw1, sw2 = self._raw(
                Command(
                    command.cla, command.ins, command.p1, command.p2, command.data, sw2 or 256
                ).encode()
            )
        while sw1 == 0x61:
            more, sw1, sw2 = self._raw(bytes((0x00, 0xC0, 0x00, 0x00, sw2)))
            data += more
        return data + bytes((sw1, sw2))

    def close(self) -> None:
        self._connection.disconnect()
