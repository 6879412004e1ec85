"""Byte-level encodings of card and OBU files: BCD, GB2312 text, integers, hex.

Every encoder takes the name of the field it encodes and raises ``FileFormatError``
naming it, so a refusal says which field of which file is wrong. Multi-byte integers
are big-endian, as everywhere in the reference (ETC.md Part 2 conventions).
"""

from __future__ import annotations

import datetime

__all__ = [
    "FileFormatError",
    "bcd_date",
    "bcd_decode",
    "bcd_encode",
    "bcd_time",
    "decode_ascii",
    "decode_bcd_date",
    "decode_bcd_datetime",
    "decode_text",
    "encode_ascii",
    "encode_text",
    "hexu",
    "uint_decode",
    "uint_encode",
]


class FileFormatError(ValueError):
    """A field that cannot be encoded into (or decoded from) its file layout."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def hexu(raw: bytes) -> str:
    """Upper-case hex, the only hex etcnet prints."""
    return raw.hex().upper()


def uint_encode(value: int, length: int, *, field: str) -> bytes:
    """``value`` as an unsigned big-endian integer of ``length`` bytes."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FileFormatError(field, f"must be an integer, got {type(value).__name__}")
    limit = 1 << (8 * length)
    if not 0 <= value < limit:
        raise FileFormatError(field, f"must be between 0 and {limit - 1}, got {value}")
    return value.to_bytes(length, "big")


def uint_decode(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def bcd_encode(digits: str, length: int, *, field: str) -> bytes:
    """``digits`` (exactly ``2 * length`` decimal digits) as packed BCD."""
    if not isinstance(digits, str):
        raise FileFormatError(field, f"must be a string of digits, got {type(digits).__name__}")
    if len(digits) != 2 * length or not (digits.isascii() and digits.isdigit()):
        raise FileFormatError(field, f"must be {2 * length} decimal digits, got {digits!r}")
    return bytes.fromhex(digits)


def bcd_decode(raw: bytes, *, field: str) -> str:
    """Packed BCD back to its digits; a nibble above 9 is refused."""
    text = raw.hex()
    if not text.isdigit():
        raise FileFormatError(field, f"{hexu(raw)} is not packed BCD")
    return text


def bcd_date(value: datetime.date, *, field: str) -> bytes:
    """A date as 4 bytes of BCD ``yyyymmdd``."""
    if not isinstance(value, datetime.date):
        raise FileFormatError(field, f"must be a date, got {type(value).__name__}")
    return bytes.fromhex(f"{value.year:04d}{value.month:02d}{value.day:02d}")


def bcd_time(value: datetime.datetime) -> bytes:
    """A time of day as 3 bytes of BCD ``hhmmss``."""
    return bytes.fromhex(f"{value.hour:02d}{value.minute:02d}{value.second:02d}")


def decode_bcd_date(raw: bytes, *, field: str) -> datetime.date:
    digits = bcd_decode(raw, field=field)
    try:
        return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise FileFormatError(field, f"{digits} is not a valid yyyymmdd date") from None


def decode_bcd_datetime(date4: bytes, time3: bytes, *, field: str) -> datetime.datetime:
    """BCD ``yyyymmdd`` + ``hhmmss`` as a naive datetime (the terminal's local time)."""
    day = decode_bcd_date(date4, field=field)
    digits = bcd_decode(time3, field=field)
    try:
        return datetime.datetime(
            day.year, day.month, day.day, int(digits[:2]), int(digits[2:4]), int(digits[4:6])
        )
    except ValueError:
        raise FileFormatError(field, f"{digits} is not a valid hhmmss time") from None


def encode_text(value: str, length: int, *, field: str, encoding: str = "gb2312") -> bytes:
    """Text in GB2312 (default), zero-padded to ``length`` bytes.

    A NUL character is refused: NULs are the padding, so they could not be read back.
    """
    if not isinstance(value, str):
        raise FileFormatError(field, f"must be text, got {type(value).__name__}")
    if "\x00" in value:
        raise FileFormatError(field, "must not contain NUL characters")
    try:
        raw = value.encode(encoding)
    except UnicodeEncodeError as error:
        bad = value[error.start : error.end]
        raise FileFormatError(field, f"{bad!r} cannot be written in {encoding.upper()}") from None
    if len(raw) > length:
        raise FileFormatError(
            field, f"{value!r} takes {len(raw)} bytes in {encoding.upper()}; at most {length} fit"
        )
    return raw + bytes(length - len(raw))


def decode_text(raw: bytes, *, field: str, encoding: str = "gb2312") -> str:
    """Text up to the first NUL (the zero padding)."""
    head = raw.split(b"\x00", 1)[0]
    try:
        return head.decode(encoding)
    except UnicodeDecodeError:
        raise FileFormatError(field, f"{hexu(raw)} is not {encoding.upper()} text") from None


def encode_ascii(value: str, length: int, *, field: str) -> bytes:
    return encode_text(value, length, field=field, encoding="ascii")


def decode_ascii(raw: bytes, *, field: str) -> str:
    return decode_text(raw, field=field, encoding="ascii")
