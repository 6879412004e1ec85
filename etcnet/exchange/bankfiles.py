"""The files exchanged with the province's banks (docs/banks.md), and the SM4 key
wrapping of the banks' shared keys.

A file is UTF-8 text, one record a line (LF), fields separated by ``|``::

    H|etcnet-bank/1|DEBIT|<file id>|<sender>|<receiver>|<date>|<count>|<total fen>
    D|1|...
    D|2|...

The header names the kind, the file (its id is its name without ``.txt``), who
sends it to whom (16-digit party ids), the business date (YYYY-MM-DD), the
number of detail lines and the sum of their amounts in fen. Each detail line
starts with its record type and its number (1, 2, … in order); its fields
are the kind's (`KINDS`). A file is read whole or not at all: the first field
that does not hold refuses it, naming its line and field.

Pure: no Django. The center (etcnet.exchange.banks) and the simulated bank
(etcnet.exchange.banksim) both read and write files with it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "FORMAT",
    "KINDS",
    "BankFile",
    "BankFileError",
    "Header",
    "Record",
    "file_id",
    "kcv",
    "read",
    "receipt",
    "unwrap_key",
    "wrap_key",
    "write",
]

FORMAT = "etcnet-bank/1"
#: The transport (docs/banks.md): the detached SM2 signature of a file or receipt,
#: the file's id, the delivery number of a file fetched from the other side.
SIGNATURE_HEADER = "X-Etcnet-Signature"
FILE_HEADER = "X-Etcnet-File"
DELIVERY_HEADER = "X-Etcnet-Delivery"
CONTENT_TYPE = "text/plain; charset=utf-8"
RECEIVED, DUPLICATE, REFUSED = "received", "duplicate", "refused"
MAX_BYTES = 512 * 1024 * 1024
_PARTY = re.compile(r"^[0-9A-Fa-f]{16}$")
_ACCOUNT = re.compile(r"^[0-9A-Za-z-]{1,32}$")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")


class BankFileError(ValueError):
    """A file that does not hold: ``line`` (1 is the header, 0 the whole file) and ``field``."""

    def __init__(self, line: int, field: str, message: str) -> None:
        where = f"line {line}, {field}" if line else field
        super().__init__(f"{where}: {message}")
        self.line = line
        self.field = field
        self.message = message


# -- field types ------------------------------------------------------------------

Parse = Callable[[str], Any]


def _int(text: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,18}", text):
        raise ValueError("not an integer")
    return int(text)


def _fen(text: str) -> int:
    """An amount in fen: an integer, never zero (a line of nothing is no line)."""
    value = _int(text)
    if value == 0:
        raise ValueError("zero fen")
    return value


def _positive(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def _account(text: str) -> str:
    if not _ACCOUNT.fullmatch(text):
        raise ValueError("1-32 letters, digits or '-'")
    return text


def _text(text: str) -> str:
    return text


def _required(text: str) -> str:
    if not text.strip():
        raise ValueError("empty")
    return text


def _hex(text: str) -> str:
    if not _HEX.fullmatch(text):
        raise ValueError("upper-case hex, whole bytes")
    return text


def _time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("a time with its offset, e.g. 2026-12-03T09:00:00+08:00")
    return value


def _one_of(*values: str) -> Parse:
    def parse(text: str) -> str:
        if text not in values:
            raise ValueError(f"one of {', '.join(values)}")
        return text

    return parse


#: Each kind: its record types, each with its fields (name, parser) after the
#: line number, and the field whose sum is the header's total ('' for none).
KINDS: dict[str, tuple[dict[str, tuple[tuple[str, Parse], ...]], str]] = {
    # The center to a bank: each debit account's tolls of the day to collect.
    "DEBIT": (
        {"D": (("account", _account), ("bank_account", _account), ("amount_fen", _fen),
               ("trips", _positive))},
        "amount_fen",
    ),
    # A bank to the center: each debit line collected (C) or refused (R, with a reason).
    "RESULT": (
        {"D": (("debit_file", _required), ("debit_line", _positive), ("account", _account),
               ("amount_fen", _fen), ("status", _one_of("C", "R")), ("reason_code", _text),
               ("reason", _text))},
        "amount_fen",
    ),
    # The center to a bank: the day's records of its cards on other provinces' roads.
    "USAGE": (
        {"D": (("card_no", _required), ("account", _account), ("time", _time),
               ("service_provider", _text), ("exit_station", _text), ("plate", _text),
               ("fee_fen", _fen), ("package", _text))},
        "fee_fen",
    ),
    # The center to the settlement bank: transfer instructions from a day's net positions.
    "TRANSFER": (
        {"D": (("reference", _required), ("payer_account", _account),
               ("payee_account", _account), ("amount_fen", _positive), ("purpose", _text))},
        "amount_fen",
    ),
    # The settlement bank to the center: each instruction executed (OK) or not (REJ).
    "CONFIRM": (
        {"D": (("transfer_file", _required), ("transfer_line", _positive),
               ("reference", _required), ("amount_fen", _positive),
               ("status", _one_of("OK", "REJ")), ("bank_reference", _text),
               ("executed_at", _time))},
        "amount_fen",
    ),
    # A bank (a non-transport issuer) to the center: its shared keys wrapped under
    # the transport key (K), and the card numbers its keys serve (C).
    "KEYS": (
        {"K": (("issuer", _required), ("key_version", _positive), ("alg", _one_of("sm4", "3des")),
               ("name", _one_of("purchase", "load", "tac", "update")), ("wrapped", _hex),
               ("kcv", _hex)),
         "C": (("card_no", _text), ("card_type", _text), ("bank_account", _text))},
        "",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Header:
    kind: str
    file_id: str
    sender: str
    receiver: str
    date: dt.date
    count: int
    total_fen: int


@dataclass(frozen=True)
class Record:
    type: str
    number: int
    fields: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


@dataclass(frozen=True)
class BankFile:
    header: Header
    records: tuple[Record, ...]


def file_id(kind: str, sender: str, receiver: str, date: dt.date, seq: int) -> str:
    """A file's id, and its name without ``.txt``: unique per sender and kind."""
    return f"{kind}_{sender}_{receiver}_{date:%Y%m%d}_{seq:06d}"


def _clean(value: Any, where: str) -> str:
    text = value.isoformat() if isinstance(value, dt.date | dt.datetime) else str(value)
    if "|" in text or "\n" in text or "\r" in text:
        raise ValueError(f"{where}: a field may hold no '|' or line break: {text!r}")
    return text


def write(
    kind: str,
    *,
    file_id: str,
    sender: str,
    receiver: str,
    date: dt.date,
    records: Iterable[Sequence[Any]],
) -> bytes:
    """The file's bytes; ``records`` are (record type, field values…) in the kind's
    field order, numbered here. The total is the sum of the kind's amount field."""
    types, amount = KINDS[kind]
    lines: list[str] = []
    total = 0
    for number, (rtype, *values) in enumerate(records, start=1):
        names = [name for name, _ in types[rtype]]
        if len(values) != len(names):
            raise ValueError(f"{kind} {rtype}: {len(names)} fields, got {len(values)}")
        if amount and amount in names:
            total += int(values[names.index(amount)])
        fields = "|".join(_clean(v, f"{kind} line {number}") for v in values)
        lines.append(f"{rtype}|{number}|{fields}")
    head = "|".join(
        [
            "H",
            FORMAT,
            kind,
            file_id,
            sender,
            receiver,
            date.isoformat(),
            str(len(lines)),
            str(total),
        ]
    )
    return ("\n".join([head, *lines]) + "\n").encode("utf-8")


def _header(line: str) -> Header:
    parts = line.split("|")
    if len(parts) != 9 or parts[0] != "H":
        raise BankFileError(1, "header", "H and 8 fields")
    _, fmt, kind, fid, sender, receiver, date, count, total = parts
    if fmt != FORMAT:
        raise BankFileError(1, "format", f"expected {FORMAT}")
    if kind not in KINDS:
        raise BankFileError(1, "kind", f"one of {', '.join(KINDS)}")
    for name, party in (("sender", sender), ("receiver", receiver)):
        if not _PARTY.fullmatch(party):
            raise BankFileError(1, name, "a party id of 16 hex digits")
    if not fid or not re.fullmatch(r"[0-9A-Za-z_-]{1,120}", fid):
        raise BankFileError(1, "file_id", "1-120 letters, digits, '_' or '-'")
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise BankFileError(1, "date", "YYYY-MM-DD") from None
    numbers = []
    for name, raw in (("count", count), ("total_fen", total)):
        try:
            numbers.append(_int(raw))
        except ValueError:
            raise BankFileError(1, name, "an integer") from None
    return Header(kind, fid, sender, receiver, day, numbers[0], numbers[1])


def read(data: bytes) -> BankFile:
    """The file, whole; raises `BankFileError` naming the first line and field that
    does not hold."""
    if len(data) > MAX_BYTES:
        raise BankFileError(0, "file", "too large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        at = data[: error.start].count(b"\n") + 1
        raise BankFileError(at, "encoding", "not UTF-8") from None
    if not text.endswith("\n"):
        raise BankFileError(0, "file", "does not end with a line break (cut short?)")
    lines = text[:-1].split("\n")
    header = _header(lines[0])
    types, amount = KINDS[header.kind]
    records: list[Record] = []
    total = 0
    for index, line in enumerate(lines[1:], start=2):
        parts = line.split("|")
        rtype = parts[0]
        if rtype not in types:
            raise BankFileError(index, "record", f"a {header.kind} line is {', '.join(types)}")
        fields = types[rtype]
        if len(parts) != len(fields) + 2:
            raise BankFileError(index, "fields", f"{len(fields) + 2} fields, found {len(parts)}")
        if parts[1] != str(index - 1):
            raise BankFileError(index, "number", f"expected {index - 1}")
        values: dict[str, Any] = {}
        for (name, parse), raw in zip(fields, parts[2:], strict=True):
            try:
                values[name] = parse(raw)
            except ValueError as error:
                raise BankFileError(index, name, f"{error}: {raw[:40]!r}") from None
        if amount and amount in values:
            total += values[amount]
        records.append(Record(rtype, index - 1, values))
    if header.count != len(records):
        raise BankFileError(1, "count", f"says {header.count}, the file has {len(records)}")
    if header.total_fen != total:
        raise BankFileError(1, "total_fen", f"says {header.total_fen}, the lines sum to {total}")
    return BankFile(header, tuple(records))


def receipt(*, file: str, sha256: str, result: str, reason: str, by: str) -> bytes:
    """What the receiver of a file answers (signed like a file): canonical JSON."""
    body = {"by": by, "file": file, "reason": reason, "result": result, "sha256": sha256}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def read_receipt(data: bytes) -> dict[str, str]:
    try:
        body = json.loads(data)
    except ValueError:
        raise ValueError("receipt: not JSON") from None
    if not isinstance(body, dict) or body.get("result") not in (RECEIVED, DUPLICATE, REFUSED):
        raise ValueError("receipt: result is one of received, duplicate, refused")
    return {k: str(body.get(k, "")) for k in ("by", "file", "reason", "result", "sha256")}


# -- shared keys, wrapped under the transport key -------------------------------------

KEY_BYTES = 16


def _sm4(key: bytes) -> Any:
    return Cipher(algorithms.SM4(key), modes.ECB())


def kcv(key: bytes) -> str:
    """The key check value: the first 3 bytes of SM4(key, 0¹²⁸), hex."""
    encryptor = _sm4(key).encryptor()
    block: bytes = encryptor.update(bytes(16)) + encryptor.finalize()
    return block[:3].hex().upper()


def wrap_key(transport: bytes, key: bytes) -> bytes:
    """``key`` encrypted under the transport key (SM4-ECB over whole blocks, as
    banks wrap keys under a zone key; a key is random, so ECB hides it)."""
    if len(transport) != KEY_BYTES or len(key) % 16:
        raise ValueError("a 16-byte transport key and a key of whole 16-byte blocks")
    encryptor = _sm4(transport).encryptor()
    wrapped: bytes = encryptor.update(key) + encryptor.finalize()
    return wrapped


def unwrap_key(transport: bytes, wrapped: bytes) -> bytes:
    """The clear key; raises ValueError when the wrapped value is not a 16-byte key."""
    if len(wrapped) != KEY_BYTES:
        raise ValueError(f"a wrapped key of {len(wrapped)} bytes, expected {KEY_BYTES}")
    decryptor = _sm4(transport).decryptor()
    clear: bytes = decryptor.update(wrapped) + decryptor.finalize()
    return clear


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)
