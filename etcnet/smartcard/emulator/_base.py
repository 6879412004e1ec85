"""What the card, the OBU and the PSAM share: constants, the state file, the
APDU dispatch of a device and the file commands they answer alike.
"""

from __future__ import annotations

import datetime
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from etcnet.smartcard import crypto
from etcnet.smartcard.apdu import ApduError, Command, Response
from etcnet.smartcard.codec import FileFormatError, decode_bcd_datetime, hexu
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.files import (
    describe,
)

STATE_FORMAT = 1
DEFAULT_PIN = "123456"
PIN_TRIES = 3
#: Records kept in the cyclic transaction log (PBOC: 10).
LOG_RECORDS = 10
#: The largest balance a card accepts from a load, in fen (etcnet's profile).
MAX_BALANCE = 0x7FFFFFFF

FID_MF = 0x3F00
FID_ADF = 0x1001
FID_OBU_DF = 0xDF01
SFI_0015 = 0x15
SFI_0016 = 0x16
SFI_LOG = 0x18
SFI_0019 = 0x19

TRANS_PURCHASE = 0x06
TRANS_COMPOSITE = 0x09


def default_key_index(alg: Alg) -> int:
    """The key index of the purchase/load keys: 01 for 3DES, 41 for SM4 (§1.5)."""
    return 0x01 if alg is Alg.TDES else 0x41


class StateFileError(ValueError):
    """A device state file that is missing, unreadable or not of the expected kind."""


def _sw(sw: int, data: bytes = b"") -> Response:
    return Response.status(sw, data)


OK = 0x9000


def _write_state(path: Path, state: dict[str, Any]) -> None:
    # Write beside the target and rename over it: a reader (or a crash) sees the
    # old state or the new one, never half a card. NamedTemporaryFile creates 0600.
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as tmp:
        json.dump(state, tmp, indent=2, sort_keys=True)
        tmp.write("\n")
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateFileError(f"{path}: no such state file") from None
    except OSError as error:
        raise StateFileError(f"{path}: cannot read ({error.strerror})") from None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as error:
        raise StateFileError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise StateFileError(f"{path}: not an etcnet device state file (format {STATE_FORMAT})")
    return state


def _hex(state: dict[str, Any], key: str, length: int | None = None) -> bytes:
    value = state[key]
    raw = bytes.fromhex(value)
    if length is not None and len(raw) != length:
        raise ValueError(f"{key} must be {length} bytes")
    return raw


def _decoded(decoder: Callable[[bytes], object], raw: bytes) -> Any:
    """A file as JSON-ready data, or its raw hex and the reason it does not decode."""
    if not any(raw):
        return None
    try:
        return describe(decoder(raw))
    except FileFormatError as error:
        return {"raw": hexu(raw), "error": str(error)}


class _Device:
    """What the three devices share: the state file and APDU dispatch."""

    KIND: ClassVar[str]
    #: INS → (expected CLA, handler name).
    COMMANDS: ClassVar[dict[int, tuple[int, str]]]

    def __init__(self, path: Path) -> None:
        self.path = path
        #: Where challenges and card randoms come from (replaceable in tests).
        self.random: Callable[[int], bytes] = secrets.token_bytes

    # -- state file -------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self) -> None:
        _write_state(self.path, {"device": self.KIND, "format": STATE_FORMAT, **self.state()})

    @classmethod
    def _load_state(cls, path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
        target = Path(path)
        state = _read_state(target)
        if state.get("device") != cls.KIND:
            raise StateFileError(f"{target}: holds a {state.get('device')!r}, not a {cls.KIND!r}")
        return target, state

    @staticmethod
    def _new_path(path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        if target.exists():
            raise FileExistsError(f"{target}: a device state file already exists")
        return target

    # -- APDUs ------------------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        """Process one command APDU; the response data followed by SW1 SW2."""
        try:
            command = Command.parse(apdu)
        except ApduError:
            self._power_state_reset_after_error()
            return _sw(0x6700).encode()
        return self.process(command).encode()

    def process(self, command: Command) -> Response:
        entry = self.COMMANDS.get(command.ins)
        if entry is None:
            self._power_state_reset_after_error()
            return _sw(0x6D00)
        cla, handler = entry
        if command.cla != cla:
            self._power_state_reset_after_error()
            return _sw(0x6E00)
        response: Response = getattr(self, handler)(command)
        return response

    def _power_state_reset_after_error(self) -> None:
        """Forget the one-command state (challenge, pending transaction)."""


def _binary_read(files: dict[int, bytearray], command: Command, current: int | None) -> Response:
    """READ BINARY by SFI (P1 bit 8) or on the current EF; short reads answer 6Cxx."""
    if command.p1 & 0x80:
        if command.p1 & 0x60:
            return _sw(0x6A86)
        sfi, offset = command.p1 & 0x1F, command.p2
    else:
        if current is None:
            return _sw(0x6986)
        sfi, offset = current, (command.p1 << 8) | command.p2
    content = files.get(sfi)
    if content is None:
        return _sw(0x6A82)
    if command.case != 2 or command.le is None:
        return _sw(0x6700)
    if offset >= len(content):
        return _sw(0x6B00)
    available = len(content) - offset
    if command.le == 256:
        return _sw(OK, bytes(content[offset : offset + min(available, 256)]))
    if command.le > available:
        return _sw(0x6C00 | available)
    return _sw(OK, bytes(content[offset : offset + command.le]))


def _secure_write(
    files: dict[int, bytearray],
    command: Command,
    current: int | None,
    *,
    challenge: bytes | None,
    alg: Alg,
    key: bytes,
) -> tuple[Response, bool]:
    """UPDATE BINARY with line protection (CLA 04): data ‖ MAC over the challenge.

    Returns the response and whether a file changed."""
    if command.p1 & 0x80:
        if command.p1 & 0x60:
            return _sw(0x6A86), False
        sfi, offset = command.p1 & 0x1F, command.p2
    else:
        if current is None:
            return _sw(0x6986), False
        sfi, offset = current, (command.p1 << 8) | command.p2
    content = files.get(sfi)
    if content is None:
        return _sw(0x6A82), False
    if command.case != 3 or len(command.data) < 5:
        return _sw(0x6700), False
    if challenge is None:
        return _sw(0x6985), False
    payload, given = command.data[:-4], command.data[-4:]
    expected = crypto.line_protection_mac(alg, key, challenge, command.encode()[:-4])
    if not hmac.compare_digest(expected, given):
        return _sw(0x6988), False
    if offset >= len(content):
        return _sw(0x6B00), False
    if offset + len(payload) > len(content):
        return _sw(0x6700), False
    content[offset : offset + len(payload)] = payload
    return _sw(OK), True


def _get_challenge(device: _Device, command: Command) -> tuple[Response, bytes | None]:
    if command.p1 or command.p2:
        return _sw(0x6A86), None
    if command.case != 2 or command.le != 4:
        return _sw(0x6700), None
    challenge = device.random(4)
    return _sw(OK, challenge), challenge


def _fcp(fid: int) -> bytes:
    # A minimal FCP template: tag 83 (file identifier).
    return bytes((0x6F, 0x04, 0x83, 0x02)) + fid.to_bytes(2, "big")


def _when(date4: bytes, time3: bytes) -> datetime.datetime | None:
    try:
        return decode_bcd_datetime(date4, time3, field="when")
    except FileFormatError:
        return None


def _checked_pin(pin: str) -> str:
    if not (isinstance(pin, str) and pin.isascii() and pin.isdigit() and 2 <= len(pin) <= 12):
        raise ValueError("a PIN is 2 to 12 ASCII digits")
    return pin


def _key16(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != 16:
        raise ValueError("a key is 16 bytes")
    return key
