"""Pure rules of plate pre-selection (seed 004): serials and pools, the virtual
keyboard, working days, opening hours, the 90-second window, passwords and the
four user types. No Django here; the services apply these rules.

Serials follow GA 36-2018 (docs/plates.md): an ordinary small-car serial is five
characters from the digits and the letters without I and O; a small new-energy
serial is six, the first D (pure electric) or F (other new energy), the second a
letter or digit, the last four digits.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import random
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from etcnet.core.validators import PLATE_PROVINCES, Issue, gettext_noop

LETTERS = "".join(c for c in string.ascii_uppercase if c not in "IO")
DIGITS = string.digits
SERIAL_CHARS = DIGITS + LETTERS


class PlateKind(enum.StrEnum):
    ORDINARY = "ordinary"  # 小型汽车号牌, blue, 5-character serial
    NEW_ENERGY = "new_energy"  # 小型新能源汽车号牌, gradient green, 6-character serial


#: For each kind, the characters each serial position may hold.
POSITION_ALPHABETS: Mapping[PlateKind, tuple[str, ...]] = {
    PlateKind.ORDINARY: (SERIAL_CHARS,) * 5,
    PlateKind.NEW_ENERGY: ("DF", SERIAL_CHARS, DIGITS, DIGITS, DIGITS, DIGITS),
}


def serial_length(kind: PlateKind) -> int:
    return len(POSITION_ALPHABETS[kind])


class PoolError(ValueError):
    """A pool definition that cannot be used; ``issue`` names the problem."""

    def __init__(self, field: str, issue: Issue) -> None:
        super().__init__(issue.message)
        self.field = field
        self.issue = issue


def check_serial(kind: PlateKind, serial: str) -> list[Issue]:
    """The problems of a serial for a plate kind (empty when it is well formed)."""
    alphabets = POSITION_ALPHABETS[kind]
    if len(serial) != len(alphabets):
        return [
            Issue(
                "serial.length",
                gettext_noop("The number must have {length} characters after the prefix."),
                {"length": len(alphabets)},
            )
        ]
    issues = []
    for position, (char, allowed) in enumerate(zip(serial, alphabets, strict=True), start=1):
        if char not in allowed:
            issues.append(
                Issue(
                    "serial.char",
                    gettext_noop("{char} may not stand at position {position} of the number."),
                    {"char": char, "position": position},
                )
            )
    return issues


# --- Pool patterns ----------------------------------------------------------------------
# A pattern gives each serial position: `#` a digit, `@` a letter (never I or O),
# `*` a digit or letter, `[...]` a set of characters, or a literal character.
# Example: "@####" is a letter and four digits, "D*####" new-energy pure electric.

_CLASSES = {"#": DIGITS, "@": LETTERS, "*": SERIAL_CHARS}


def parse_pattern(kind: PlateKind, pattern: str) -> tuple[str, ...]:
    """The characters each position of ``pattern`` allows, already narrowed to what
    the plate kind allows there. Raises ``PoolError`` when the pattern cannot make
    a single valid serial."""
    positions: list[str] = []
    text = pattern.strip().upper()
    i = 0
    while i < len(text):
        char = text[i]
        if char in _CLASSES:
            positions.append(_CLASSES[char])
        elif char == "[":
            end = text.find("]", i)
            if end == -1:
                raise _pattern_error(pattern, gettext_noop("A [ has no closing ]."))
            positions.append(_expand_set(pattern, text[i + 1 : end]))
            i = end
        elif char in SERIAL_CHARS or char in "IO":
            positions.append(char)
        else:
            raise _pattern_error(
                pattern, gettext_noop("{char} is not a pattern character."), char=char
            )
        i += 1
    alphabets = POSITION_ALPHABETS[kind]
    if len(positions) != len(alphabets):
        raise _pattern_error(
            pattern,
            gettext_noop("A pattern of this plate kind has {length} positions."),
            length=len(alphabets),
        )
    narrowed = []
    for position, (wanted, allowed) in enumerate(zip(positions, alphabets, strict=True), start=1):
        if set(wanted) & set("IO"):
            raise _pattern_error(
                pattern, gettext_noop("Plate numbers never contain I or O."), position=position
            )
        kept = "".join(c for c in wanted if c in allowed)
        if not kept:
            raise _pattern_error(
                pattern,
                gettext_noop("Position {position} allows no character of this plate kind."),
                position=position,
            )
        narrowed.append(kept)
    return tuple(narrowed)


def _expand_set(pattern: str, body: str) -> str:
    """The characters of a ``[...]`` set; ``A-H`` or ``0-4`` is a range, which
    skips I and O (a listed I or O is refused like a literal one)."""
    chars: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            start, end = body[i], body[i + 2]
            if start > end:
                raise _pattern_error(
                    pattern,
                    gettext_noop("The range {range} runs backwards."),
                    range=body[i : i + 3],
                )
            chars += [chr(c) for c in range(ord(start), ord(end) + 1) if chr(c) not in "IO"]
            i += 3
        else:
            chars.append(body[i])
            i += 1
    if not chars:
        raise _pattern_error(pattern, gettext_noop("A [ ] set is empty."))
    return "".join(dict.fromkeys(chars))


def _pattern_error(pattern: str, template: str, **params: str | int) -> PoolError:
    return PoolError("patterns", Issue("pool.pattern", template, {"pattern": pattern, **params}))


def compile_rules(field: str, rules: Iterable[str]) -> list[re.Pattern[str]]:
    """Reserved or forbidden rules: regular expressions searched in the serial."""
    compiled = []
    for rule in rules:
        try:
            compiled.append(re.compile(rule))
        except re.error as exc:
            raise PoolError(
                field,
                Issue(
                    "pool.rule",
                    gettext_noop("{rule} is not a valid regular expression: {reason}."),
                    {"rule": rule, "reason": str(exc)},
                ),
            ) from None
    return compiled


@dataclass(frozen=True)
class GeneratedPool:
    available: tuple[str, ...]
    reserved: tuple[str, ...]
    forbidden_count: int


def generate_pool(
    kind: PlateKind,
    patterns: Sequence[str],
    *,
    reserved: Sequence[str] = (),
    forbidden: Sequence[str] = (),
    limit: int = 1_000_000,
) -> GeneratedPool:
    """Every serial the patterns make, in order and without repeats, split into the
    ones offered and the ones held back. Forbidden serials are never made."""
    if not patterns:
        raise PoolError(
            "patterns", Issue("pool.no_patterns", gettext_noop("Give at least one pattern."))
        )
    parsed = [parse_pattern(kind, p) for p in patterns]
    size = sum(pattern_size(p) for p in parsed)
    if size > limit:
        raise PoolError(
            "patterns",
            Issue(
                "pool.too_large",
                gettext_noop("The patterns make {size} numbers; at most {limit} per pool."),
                {"size": size, "limit": limit},
            ),
        )
    held = compile_rules("reserved", reserved)
    banned = compile_rules("forbidden", forbidden)
    available: list[str] = []
    kept: list[str] = []
    seen: set[str] = set()
    dropped = 0
    for serial in itertools.chain.from_iterable(_expand(p) for p in parsed):
        if serial in seen:
            continue
        seen.add(serial)
        if any(rule.search(serial) for rule in banned):
            dropped += 1
        elif any(rule.search(serial) for rule in held):
            kept.append(serial)
        else:
            available.append(serial)
    return GeneratedPool(tuple(available), tuple(kept), dropped)


def pattern_size(positions: Sequence[str]) -> int:
    """How many serials a parsed pattern makes."""
    total = 1
    for chars in positions:
        total *= len(chars)
    return total


def _expand(positions: Sequence[str]) -> Iterator[str]:
    for chars in itertools.product(*positions):
        yield "".join(chars)


def plate_prefix(province: str, authority: str) -> str:
    """The plate prefix of an issuing authority: province abbreviation + letter."""
    if province not in PLATE_PROVINCES or len(province) != 1:
        raise ValueError(f"{province!r} is not a province abbreviation")
    if len(authority) != 1 or authority not in string.ascii_uppercase:
        raise ValueError(f"{authority!r} is not an issuing-authority letter")
    return province + authority


# --- The virtual keyboard ---------------------------------------------------------------


def keyboard_order(seed: str, kind: PlateKind, position: int) -> str:
    """The keys of one position in the order this session shows them: shuffled per
    selection session and per position, the same on every reload."""
    keys = list(POSITION_ALPHABETS[kind][position])
    random.Random(f"{seed}:{position}").shuffle(keys)
    return "".join(keys)


# The order of serial characters in the database: digits before capital letters,
# as in the C collation and the usual locale collations alike.
_SORT_ORDER = DIGITS + string.ascii_uppercase


def prefix_successor(prefix: str) -> str | None:
    """The smallest string after every serial that starts with ``prefix`` (None
    when there is none), so ``prefix <= serial < successor`` is an index range
    on any collation, where ``LIKE 'prefix%'`` needs the C collation."""
    chars = list(prefix)
    while chars:
        index = _SORT_ORDER.index(chars[-1])
        if index + 1 < len(_SORT_ORDER):
            chars[-1] = _SORT_ORDER[index + 1]
            return "".join(chars)
        chars.pop()
    return None


def next_characters(available: Iterable[str], prefix: str) -> frozenset[str]:
    """The characters that may follow ``prefix`` and still lead to an available
    serial (the database does the same with an index range in selectors)."""
    at = len(prefix)
    return frozenset(s[at] for s in available if s.startswith(prefix) and len(s) > at)


# --- Working days -----------------------------------------------------------------------


def is_working_day(day: dt.date, overrides: Mapping[dt.date, bool]) -> bool:
    """Monday to Friday, unless the calendar says otherwise (public holidays off,
    weekend days worked in their place)."""
    if day in overrides:
        return overrides[day]
    return day.weekday() < 5


def add_working_days(start: dt.date, days: int, overrides: Mapping[dt.date, bool]) -> dt.date:
    """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    day = start
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        if is_working_day(day, overrides):
            counted += 1
    return day


# --- Opening hours ----------------------------------------------------------------------


@dataclass(frozen=True)
class Closed:
    """Why the selection system refuses to start, as the seed's users see it."""

    code: str
    template: str
    params: Mapping[str, str]


def closed_reason(
    now: dt.datetime,
    *,
    opens: dt.time,
    closes: dt.time,
    maintenance: Iterable[tuple[dt.datetime, dt.datetime]],
) -> Closed | None:
    """None while selection is open at ``now`` (local time, aware); otherwise why not.
    Maintenance windows are checked first: they may fall inside opening hours."""
    for start, end in maintenance:
        if start <= now < end:
            return Closed(
                "maintenance",
                gettext_noop(
                    "The selection system is under maintenance until {until}; "
                    "please come back then."
                ),
                {"until": end.strftime("%Y-%m-%d %H:%M")},
            )
    moment = now.time()
    if not opens <= moment < closes:
        return Closed(
            "not_open",
            gettext_noop(
                "Plate selection is open from {opens} to {closes} every day; it is not open now."
            ),
            {"opens": opens.strftime("%H:%M"), "closes": closes.strftime("%H:%M")},
        )
    return None


# --- The self-composed window -----------------------------------------------------------


class WindowState(enum.StrEnum):
    EARLY = "early"  # before the window closes: only a tampered page submits then
    DUE = "due"  # at or after the close, within the grace for the network
    LATE = "late"  # long after: the window lapsed


def window_state(
    submitted: dt.datetime, closes: dt.datetime, *, grace: dt.timedelta
) -> WindowState:
    if submitted < closes:
        return WindowState.EARLY
    if submitted <= closes + grace:
        return WindowState.DUE
    return WindowState.LATE


# --- Passwords --------------------------------------------------------------------------


def password_issues(password: str) -> list[Issue]:
    """The platform's strength rules, on top of Django's validators: 8 to 20
    characters, letters and digits both, no spaces."""
    issues = []
    if not 8 <= len(password) <= 20:
        issues.append(
            Issue("password.length", gettext_noop("The password must have 8 to 20 characters."))
        )
    if not (
        any(c.isascii() and c.isalpha() for c in password) and any(c.isdigit() for c in password)
    ):
        issues.append(
            Issue(
                "password.mix",
                gettext_noop("The password must contain both letters and digits."),
            )
        )
    if any(c.isspace() for c in password):
        issues.append(Issue("password.space", gettext_noop("The password may not contain spaces.")))
    return issues


# --- User types -------------------------------------------------------------------------


class UserType(enum.StrEnum):
    VEHICLE_OWNER = "vehicle_owner"  # 车主用户
    DRIVER = "driver"  # 驾驶人用户
    LEARNER = "learner"  # 初次申领机动车驾驶证学员
    NEW_VEHICLE_OWNER = "new_vehicle_owner"  # 新车车主用户


class Service(enum.StrEnum):
    BIND_LICENCE = "bind_licence"
    QUERY_RECORDS = "query_records"
    VIOLATIONS = "violations"
    PRESELECT_PLATE = "preselect_plate"
    EXAM_BOOKING = "exam_booking"
    CHANGE_CONTACT = "change_contact"


#: What each user type may use (seed 004). etcnet runs plate pre-selection; the
#: other services belong to the traffic-management platform and are listed so a
#: user knows what the account type carries.
SERVICES: Mapping[UserType, frozenset[Service]] = {
    UserType.VEHICLE_OWNER: frozenset(Service),
    UserType.DRIVER: frozenset(Service),
    UserType.LEARNER: frozenset({Service.EXAM_BOOKING, Service.PRESELECT_PLATE}),
    UserType.NEW_VEHICLE_OWNER: frozenset({Service.PRESELECT_PLATE}),
}

#: The local record a user type needs before it may register: an owner or driver
#: must hold a vehicle or licence registered here with the same mobile number, a
#: learner a first licence application; a new-vehicle owner must hold neither a
#: vehicle nor a licence.
REQUIRED_RECORD: Mapping[UserType, str | None] = {
    UserType.VEHICLE_OWNER: "vehicle",
    UserType.DRIVER: "licence",
    UserType.LEARNER: "learner",
    UserType.NEW_VEHICLE_OWNER: None,
}
