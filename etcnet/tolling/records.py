"""The upload record's strict schema: what a terminal may send, read without guessing.

Every field has a type, a range or a length and, where it is a code, its allowed
values. Nothing is coerced: a float is not fen, a text is not a number, a card
number one digit too long is not cut to fit. `read` answers a `Record` whose
`issues` name every field that broke its rule; such a field is stored empty and
the payload is kept as it came (the caller decides what to do with the record).

The fields that prove a card debit — the card number, the purchase's amount,
transaction type, PSAM sequence, TAC and the time the card signed — are
`PROOF_FIELDS`: when they are readable, the TAC can be verified and the debit
posted even if another field of the record is not.

Pure: no Django, no database (mypy strict).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_SEQ = 2**63 - 1
_SMALL = (0, 32_767)
_PURSE = (0, 2**32 - 1)  # a card's 4-byte purse and amounts
_INT32 = (-(2**31), 2**31 - 1)

DIRECTIONS = ("entry", "exit")
SPECIAL_CASES = (
    "status_list",
    "expired",
    "mismatch",
    "no_entry",
    "insufficient_balance",
    "exempt",
    "minimum_fee",
    "grey_completed",
)
#: Heaviest vehicle a lane may record (kg), and the most axles.
MAX_WEIGHT_KG = 200_000
MAX_AXLES = 20
MAX_INTERVALS = 1_000

PROOF_FIELDS = frozenset(
    {"card_no", "amount_fen", "trans_type", "terminal_trans_seq", "tac", "exit_time"}
)

_DIGITS = re.compile(r"[0-9]*")
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")


_NO_VALUE = object()
_BEIJING = dt.timezone(dt.timedelta(hours=8))


class _Bad(ValueError):
    """A field broke its rule: `code` is the machine code, the message says why.
    `proof` is a value the field can still prove a card debit with (the record
    stays rejected; the TAC decides whether the debit happened)."""

    def __init__(self, code: str, message: str, proof: Any = _NO_VALUE) -> None:
        super().__init__(message)
        self.code = code
        self.proof = proof


@dataclass(frozen=True)
class Issue:
    field: str
    code: str
    message: str

    def text(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class Record:
    """A record's columns as stored, and what was wrong with it."""

    seq: int
    values: dict[str, Any]
    issues: list[Issue] = field(default_factory=list)
    #: Proof fields that broke their rule but still read as a value a TAC can
    #: verify (a time without its offset, read as Beijing time).
    proof_values: set[str] = field(default_factory=set)

    @property
    def proof_readable(self) -> bool:
        return not any(
            issue.field in PROOF_FIELDS and issue.field not in self.proof_values
            for issue in self.issues
        )


def _int(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        # bool is an int in Python, never in a record; a float is never fen.
        if type(value) is not int:
            raise _Bad("not_integer", f"expected a whole number, got {_shown(value)}")
        if not low <= value <= high:
            raise _Bad("out_of_range", f"{value} is outside {low}..{high}")
        return value

    return check


def _text(max_length: int, pattern: re.Pattern[str] | None = None) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad("not_text", f"expected text, got {_shown(value)}")
        if len(value) > max_length:
            raise _Bad("too_long", f"{len(value)} characters, at most {max_length}")
        if "\x00" in value:
            raise _Bad("bad_character", "contains a NUL character")
        if pattern is not None and not pattern.fullmatch(value):
            raise _Bad("bad_format", f"{_shown(value)} is not in the expected format")
        return value

    return check


def _card_no(value: Any) -> str:
    text = _text(20, _DIGITS)(value)
    if text and len(text) != 20:
        raise _Bad("bad_format", "a card number has 20 digits")
    return text


def _tac(value: Any) -> str:
    text = _text(8)(value)
    if text and not _HEX8.fullmatch(text):
        raise _Bad("bad_format", "a TAC is 8 hexadecimal digits")
    return text.upper()


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise _Bad("not_time", f"expected an ISO 8601 time, got {_shown(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Bad("not_time", f"{_shown(value)} is not an ISO 8601 time") from None
    if not 1900 <= parsed.year <= 2999:
        raise _Bad("out_of_range", f"year {parsed.year} is outside 1900..2999")
    if parsed.tzinfo is None:
        # The card signs Beijing time without a zone: read so, the TAC can still
        # prove the debit, though the record breaks the contract.
        raise _Bad(
            "no_offset", "times carry their UTC offset", proof=parsed.replace(tzinfo=_BEIJING)
        )
    return parsed


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise _Bad("unknown_value", f"{_shown(value)} is not one of {', '.join(choices)}")
        return str(value)

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("not_boolean", f"expected true or false, got {_shown(value)}")
    return value


def _intervals(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
        raise _Bad("not_list", "expected a list of interval objects")
    if len(value) > MAX_INTERVALS:
        raise _Bad("too_long", f"{len(value)} intervals, at most {MAX_INTERVALS}")
    return value


def _photo(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad("not_text", f"expected base64 text, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


@dataclass(frozen=True)
class _Field:
    check: Callable[[Any], Any]
    default: Any  # what is stored when the field is absent, null or unreadable
    required: bool = False
    nullable: bool = True  # JSON null means "absent"


# name in the record -> (column, rule). Unknown names are ignored: a newer
# terminal may send more than this center reads.
SCHEMA: dict[str, tuple[str, _Field]] = {
    "direction": ("direction", _Field(_choice(DIRECTIONS), "exit")),
    "lane": ("lane_number", _Field(_int(*_SMALL), 0, required=True)),
    "exit_time": ("exit_time", _Field(_time, None, required=True)),
    "clock_offset_ms": ("clock_offset_ms", _Field(_int(*_INT32), 0)),
    "entry_station": ("entry_station", _Field(_text(20), "")),
    "entry_time": ("entry_time", _Field(_time, None)),
    "card_no": ("card_no", _Field(_card_no, "")),
    "obu_no": ("obu_no", _Field(_text(16, _DIGITS), "")),
    "plate": ("plate", _Field(_text(12), "")),
    "plate_color": ("plate_color", _Field(_int(*_SMALL), None)),
    "vehicle_class": ("vehicle_class", _Field(_int(*_SMALL), 0, required=True)),
    "vehicle_kind": ("vehicle_kind", _Field(_int(*_SMALL), 0)),
    "method": ("method", _Field(_text(16), "", required=True)),
    "fee_fen": ("fee_fen", _Field(_int(*_PURSE), 0, required=True)),
    "discount_fen": ("discount_fen", _Field(_int(*_PURSE), 0)),
    "payable_fen": ("payable_fen", _Field(_int(*_PURSE), 0, required=True)),
    "intervals": ("intervals", _Field(_intervals, [])),
    "payment_type": ("payment_type", _Field(_int(*_SMALL), 0, required=True)),
    "amount_fen": ("amount_fen", _Field(_int(*_PURSE), 0)),
    "trans_type": ("trans_type", _Field(_int(0, 255), None)),
    "terminal_trans_seq": ("terminal_trans_seq", _Field(_int(*_PURSE), None)),
    # The card's own 2-byte offline transaction counter (the ATC of the DEBIT): with
    # the card number it names one debit of the purse, whichever lane uploads it.
    "card_trans_no": ("card_trans_no", _Field(_int(0, 65_535), None)),
    "tac": ("tac", _Field(_tac, "")),
    "collector": ("collector", _Field(_text(20), "")),
    "shift": ("shift", _Field(_text(20), "")),
    "authorised_by": ("authorised_by", _Field(_text(20), "")),
    "axles": ("axles", _Field(_int(0, MAX_AXLES), None)),
    "total_weight_kg": ("total_weight_kg", _Field(_int(0, MAX_WEIGHT_KG), None)),
    "weight_limit_kg": ("weight_limit_kg", _Field(_int(0, MAX_WEIGHT_KG), None)),
    "overweight": ("overweight", _Field(_bool, False)),
    "special_case": ("special_case", _Field(_choice(("", *SPECIAL_CASES)), "")),
    "special_reason": ("special_reason", _Field(_text(200), "")),
    "photo_jpeg": ("photo", _Field(_photo, "")),
    "list_version": ("list_version", _Field(_text(12, _DIGITS), "")),
    "tariff_version": ("tariff_version", _Field(_text(13), "")),
    "balance_before_fen": ("balance_before_fen", _Field(_int(*_PURSE), None)),
}


# The schema flattened for `read`, which runs for every record of every upload.
_RULES: tuple[tuple[str, str, Callable[[Any], Any], Any, bool], ...] = tuple(
    (name, column, rule.check, rule.default, rule.required)
    for name, (column, rule) in SCHEMA.items()
)


def read_seq(record: Any) -> int | None:
    """The record's own key, or None when it has no usable one."""
    if not isinstance(record, Mapping):
        return None
    seq = record.get("seq")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        return None
    return seq


def read(record: Mapping[str, Any], seq: int) -> Record:
    """Every column of the record, each checked by its rule."""
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    proof_values: set[str] = set()
    get = record.get
    for name, column, check, default, required in _RULES:
        value = get(name)
        if value is None or (value == "" and default is None):
            if required:
                issues.append(Issue(name, "required", "this field is required"))
            values[column] = default
            continue
        try:
            values[column] = check(value)
        except _Bad as bad:
            issues.append(Issue(name, bad.code, str(bad)))
            if bad.proof is not _NO_VALUE and name in PROOF_FIELDS:
                values[column] = bad.proof
                proof_values.add(name)
            else:
                values[column] = default
    values["intervals"] = list(values["intervals"])
    values["card_network"] = values["card_no"][:4]
    return Record(seq=seq, values=values, issues=issues, proof_values=proof_values)
