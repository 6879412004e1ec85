"""What the card and OBU files share: field checks and the JSON view of a file."""

from __future__ import annotations

import datetime
from dataclasses import fields
from enum import IntEnum
from typing import Any

from etcnet.smartcard.codec import (
    FileFormatError,
    bcd_date,
    hexu,
    uint_encode,
)

#: 复合消费应用标识 and the record length byte of file 0019.
CAPP_RECORD_ID = 0xAA
CAPP_RECORD_LENGTH = 0x29


def _need_len(raw: bytes, length: int, name: str, *, at_least: bool = False) -> bytes:
    if not isinstance(raw, bytes | bytearray):
        raise FileFormatError(name, f"raw file must be bytes, got {type(raw).__name__}")
    if len(raw) < length if at_least else len(raw) != length:
        need = f"at least {length}" if at_least else str(length)
        raise FileFormatError(name, f"must be {need} bytes, got {len(raw)}")
    return bytes(raw)


def _raw_bytes(value: bytes, length: int, *, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise FileFormatError(name, f"must be bytes, got {type(value).__name__}")
    if len(value) != length:
        raise FileFormatError(name, f"must be {length} bytes, got {len(value)}")
    return value


def _code(table: type[Any], value: int, *, name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FileFormatError(name, f"must be a {table.__name__} code, got {value!r}")
    try:
        return table.from_code(int(value))
    except ValueError as error:
        raise FileFormatError(name, str(error)) from None


def _date(value: datetime.date, *, name: str) -> bytes:
    if isinstance(value, datetime.datetime):
        raise FileFormatError(name, "must be a date, not a datetime")
    return bcd_date(value, field=name)


def _unix(value: int, *, name: str) -> bytes:
    return uint_encode(value, 4, field=name)


def describe(value: object) -> dict[str, Any]:
    """A file as JSON-ready data: enums by value, dates ISO, bytes upper-case hex."""
    out: dict[str, Any] = {}
    for item in fields(value):  # type: ignore[arg-type]
        out[item.name] = _jsonable(getattr(value, item.name))
    return out


def _jsonable(value: object) -> Any:
    if isinstance(value, bytes):
        return hexu(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, IntEnum):
        return int(value)
    return value
