"""ISO 7816-4 command and response APDUs (short length only) and status words.

``Command.parse`` is strict: the bytes must be exactly one of the four short cases
(1: header; 2: header + Le; 3: header + Lc + data; 4: header + Lc + data + Le), and
anything else raises ``ApduError`` saying what is wrong. Extended length is not used
by ETC cards, OBUs or PSAMs and is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "STATUS_WORDS",
    "SW_OK",
    "ApduError",
    "Command",
    "Response",
    "from_hex",
    "status_meaning",
    "to_hex",
]

SW_OK = 0x9000

#: Status words met on ETC cards, OBU ESAMs and PSAMs (ISO 7816-4 and PBOC JR/T 0025).
STATUS_WORDS: dict[int, str] = {
    0x9000: "success",
    0x6281: "part of the returned data may be corrupted",
    0x6282: "end of file reached before Le bytes",
    0x6700: "wrong length (Lc or Le)",
    0x6981: "command incompatible with the file structure",
    0x6982: "security status not satisfied (PIN or authentication required)",
    0x6983: "authentication method blocked (PIN locked)",
    0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied (wrong state or sequence)",
    0x6986: "command not allowed (no current EF)",
    0x6988: "secure messaging data object incorrect (MAC wrong)",
    0x6A80: "incorrect data in the command",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A86: "incorrect parameters P1-P2",
    0x6A88: "referenced data (key) not found",
    0x6B00: "wrong parameters (offset outside the file)",
    0x6D00: "instruction code not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
    0x9302: "MAC invalid",
    0x9303: "application permanently locked",
    0x9401: "insufficient balance",
    0x9402: "transaction counter at its maximum",
    0x9403: "key index not supported",
    0x9406: "required MAC not available",
}


def status_meaning(sw: int) -> str:
    """A readable meaning for a status word, including the 61xx/6Cxx/63Cx families."""
    if sw in STATUS_WORDS:
        return STATUS_WORDS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"success, {sw2 or 256} more response bytes available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le; exactly {sw2} bytes available"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    return f"unknown status {sw:04X}"


class ApduError(ValueError):
    """A command or response APDU that is malformed; the message names what is wrong."""


_HEX_RE = re.compile(r"[0-9A-Fa-f]*")


def from_hex(text: str, *, field: str, length: int | None = None) -> bytes:
    """Parse hex (spaces allowed, either case); ``ValueError`` naming ``field``."""
    compact = "".join(str(text).split())
    if not _HEX_RE.fullmatch(compact):
        raise ValueError(f"{field}: {text!r} is not hexadecimal")
    if len(compact) % 2:
        raise ValueError(f"{field}: odd number of hex digits ({len(compact)})")
    raw = bytes.fromhex(compact)
    if length is not None and len(raw) != length:
        raise ValueError(
            f"{field}: must be {length} bytes ({2 * length} hex digits), got {len(raw)}"
        )
    return raw


def to_hex(raw: bytes) -> str:
    return raw.hex().upper()


def _byte(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ApduError(f"{name} must be one byte (0..255), got {value!r}")


@dataclass(frozen=True)
class Command:
    """A command APDU. ``le`` None = no Le byte; ``le`` 256 is encoded as ``00``."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _byte(name, getattr(self, name))
        if not isinstance(self.data, bytes):
            raise ApduError(f"data must be bytes, got {type(self.data).__name__}")
        if len(self.data) > 255:
            raise ApduError(f"data has {len(self.data)} bytes; a short APDU carries at most 255")
        if self.le is not None and (
            isinstance(self.le, bool) or not isinstance(self.le, int) or not 1 <= self.le <= 256
        ):
            raise ApduError(f"Le must be between 1 and 256 (256 is sent as 00), got {self.le!r}")

    @property
    def case(self) -> int:
        """The ISO 7816-4 case: 1 no data no Le, 2 Le only, 3 data only, 4 both."""
        if self.data:
            return 3 if self.le is None else 4
        return 1 if self.le is None else 2

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def encode(self) -> bytes:
        out = self.header
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))
        return out

    def hex(self) -> str:
        return to_hex(self.encode())

    @classmethod
    def parse(cls, raw: bytes) -> Command:
        """Parse a short command APDU; ``ApduError`` for anything that is not a case 1–4."""
        if not isinstance(raw, bytes | bytearray):
            raise ApduError(f"an APDU is bytes, got {type(raw).__name__}")
        raw = bytes(raw)
        if len(raw) < 4:
            raise ApduError(f"an APDU needs the 4 header bytes CLA INS P1 P2; got {len(raw)} bytes")
        cla, ins, p1, p2 = raw[:4]
        if len(raw) == 4:
            return cls(cla, ins, p1, p2)
        if len(raw) == 5:
            return cls(cla, ins, p1, p2, le=raw[4] or 256)
        lc = raw[4]
        if lc == 0:
            raise ApduError("Lc is 00: extended-length APDUs are not supported")
        body = raw[5:]
        if len(body) == lc:
            return cls(cla, ins, p1, p2, body)
        if len(body) == lc + 1:
            return cls(cla, ins, p1, p2, body[:lc], le=body[lc] or 256)
        raise ApduError(
            f"Lc mismatch: Lc says {lc} data bytes but {len(body)} bytes follow it "
            f"(expected {lc}, or {lc + 1} with Le)"
        )


@dataclass(frozen=True)
class Response:
    """A response APDU: data and the status word SW1 SW2."""

    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    @property
    def meaning(self) -> str:
        return status_meaning(self.sw)

    def encode(self) -> bytes:
        return self.data + bytes((self.sw1, self.sw2))

    @classmethod
    def parse(cls, raw: bytes) -> Response:
        if not isinstance(raw, bytes | bytearray):
            raise ApduError(f"a response is bytes, got {type(raw).__name__}")
        if len(raw) < 2:
            raise ApduError(f"a response needs the 2 status bytes SW1 SW2; got {len(raw)} bytes")
        return cls(bytes(raw[:-2]), raw[-2], raw[-1])

    @classmethod
    def status(cls, sw: int, data: bytes = b"") -> Response:
        return cls(data, sw >> 8, sw & 0xFF)
