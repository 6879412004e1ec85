"""What every part of the lane terminal shares: payment and lane-status codes, the
store's schema, the errors, the center it talks to, the records the screens
exchange, and the terminal's state (store, journal, photos).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from etcnet.core.validators import gettext_noop
from etcnet.lists.versionfile import public_key_from_text
from etcnet.network.engine import FeeEngine, FeeResult
from etcnet.smartcard.transport import Transport
from etcnet.terminal.outbox import Outbox, open_store
from etcnet.terminal.reference import ReferenceData
from etcnet.terminal.statuslist import CompactStatusList

LOCAL = ZoneInfo("Asia/Shanghai")

#: Exit payment types (reference §6.3): 22 储值卡, 23 记账卡; the fallbacks a
#: collector may choose when the card cannot pay: 1 cash, 10 Alipay, 11 WeChat;
#: 0 free passage (exempt vehicles).
STORED_VALUE, DEBIT, CASH, FREE = 22, 23, 1, 0
CARD_PAYMENTS = (STORED_VALUE, DEBIT)
FALLBACK_PAYMENTS = (CASH, 10, 11)

#: 0019 lane status (reference §1.4): closed-road entries, and the exit statuses written here.
ENTRY_STATUSES = (0x01, 0x03)
EXIT_CLOSED, EXIT_OPEN = 0x04, 0x06
ENTRY_CLOSED_ETC = 0x03

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    verifier TEXT NOT NULL,
    online_login_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shifts (
    id INTEGER PRIMARY KEY,
    shift_no TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    lane INTEGER NOT NULL,
    started_utc TEXT NOT NULL,
    ended_utc TEXT
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY,
    card_no TEXT NOT NULL,
    atc INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    body TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    resolved_utc TEXT,
    seq INTEGER
);
CREATE INDEX IF NOT EXISTS intents_open ON intents (card_no, state);
CREATE TABLE IF NOT EXISTS photos (
    token TEXT PRIMARY KEY,
    jpeg BLOB NOT NULL,
    created_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY,
    at_utc TEXT NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


#: The largest clock offset (ms) at which the terminal still does card work: the
#: center's default limit (ETCNET_CLEARING_CLOCK_LIMIT_MS), past which clearing
#: holds a record with code 16 (车道对时错误). ``--clock-max-ms`` sets another.
CLOCK_MAX_MS = 300_000

#: Where the pinned key of the center's status-list signatures is kept.
LIST_KEY = "list-key"
#: The outcome of the last status-list sync.
LIST_SYNC = "list-sync"


class ListSyncError(Exception):
    """The status list could not be brought up to date (and was left as it was)."""


class LaneError(Exception):
    """Something the collector must see and resolve: a stable ``code``, an
    English ``message`` (translated by the screen) with ``params``, and the
    ``field`` of the form it concerns, if any."""

    def __init__(self, code: str, message: str, *, field: str = "", **params: Any) -> None:
        super().__init__(message.format(**params) if params else message)
        self.code = code
        self.message = message
        self.field = field
        self.params = params


class Grey(LaneError):
    """The card left the reader while the DEBIT was under way: read it again."""


class Center(Protocol):
    def upload(self, upload_key: str, records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        """POST records (see ``Outbox``)."""
        ...

    def download(self, what: str) -> Mapping[str, Any]:
        """A reference document (see ``ReferenceData``)."""
        ...

    def login(self, username: str, password: str) -> Mapping[str, Any] | None:
        """The user's roles and verifier, None when refused; CenterUnavailable."""
        ...

    def list_plan(self, held: str | None) -> Mapping[str, Any]:
        """What to download to bring the status list from ``held`` up to date."""
        ...

    def list_file(self, kind: str, number: str) -> bytes:
        """A status-list version file (``full`` or ``increment``)."""
        ...


@dataclass(frozen=True, slots=True)
class Person:
    username: str
    name: str
    roles: tuple[str, ...]
    offline: bool = False


@dataclass(frozen=True, slots=True)
class Shift:
    shift_no: str
    username: str
    lane: int
    started_utc: dt.datetime
    ended_utc: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ShiftTotals:
    shift: Shift
    count: int
    total_fen: int
    by_payment: dict[int, tuple[int, int]]  # payment type -> (count, fen)
    specials: int


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # a SpecialCase value
    message: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Entry:
    node_id: str
    name: str
    hex: str
    lane: int
    time: dt.datetime
    vehicle_class: int


@dataclass(frozen=True, slots=True)
class Reading:
    """A card (and OBU) as read, with what the checks found."""

    card_no: str
    card_type: int
    balance: int
    plate: str
    plate_color: int
    vehicle_class: int | None
    start_date: dt.date
    expiry_date: dt.date
    entry: Entry | None
    obu_no: str = ""
    obu_plate: str = ""
    obu_plate_color: int | None = None
    obu_vehicle_class: int | None = None
    obu_expiry_date: dt.date | None = None
    list_types: dict[str, tuple[int, ...]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    recovered: str = ""  # "completed" or "abandoned" when an interrupted purchase was settled
    recovered_seq: int | None = None
    #: Bytes 1–20 of the card's 0015, copied into the OBU's fee file (EF04).
    card_0015_head: bytes = bytes(20)
    #: The status-list version the card and OBU were checked against (None when
    #: the terminal held none); the transaction records carry it.
    list_version: str | None = None

    @property
    def card_refused(self) -> bool:
        """The card may not pay: listed or expired (the vehicle pays otherwise)."""
        return any(p.code in ("status_list", "expired") for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {
            "card_no": self.card_no,
            "card_type": self.card_type,
            "balance": self.balance,
            "plate": self.plate,
            "plate_color": self.plate_color,
            "vehicle_class": self.vehicle_class,
            "expiry_date": self.expiry_date.isoformat(),
            "obu_no": self.obu_no,
            "entry": None
            if self.entry is None
            else {
                "node_id": self.entry.node_id,
                "name": self.entry.name,
                "time": self.entry.time.isoformat(),
            },
            "list_types": {k: list(v) for k, v in self.list_types.items()},
            "problems": [p.code for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class Quote:
    """算费: the fee and what the collector must still do before committing."""

    fee: FeeResult
    station_name: str
    station_hex: str
    needs_authorisation: bool
    special_cases: tuple[str, ...]
    insufficient_balance: bool
    payment_type: int  # the card's type, or FREE; a fallback when the card cannot pay
    #: The tariff version (the tariff download's ``version``) the fee was
    #: computed with; the exit record carries it.
    tariff_version: str | None = None
    #: 计重信息 as checked (``lane.weighing``): the §5 limit by axles for a truck,
    #: and whether the vehicle is over it (超限) — shown before the collector confirms.
    axles: int | None = None
    total_weight_kg: int | None = None
    weight_limit_kg: int | None = None
    overweight: bool = False

    @property
    def needs_reason(self) -> bool:
        """A special case other than the authorised minimum fee needs the collector's reason."""
        return any(code != "minimum_fee" for code in self.special_cases)


@dataclass(frozen=True, slots=True)
class Committed:
    seq: int
    payable_fen: int
    payment_type: int
    tac: str
    balance_after: int | None
    terminal_seq: int = 0  # the PSAM's transaction serial of the purchase
    #: The OBU's fee file (EF04): "written", "failed" (the record stands; the
    #: collector is told), or "" when no OBU took part.
    obu_write: str = ""


@dataclass(frozen=True, slots=True)
class ExitRequest:
    """提交数据: an exit as the collector confirms it — the card in the reader (and
    the OBU read with it), its reading and quote, who works, the vehicle as seen,
    and the answers to the quote (station master, fallback payment, reason).
    ``station_hex`` is what the collector typed to confirm (single-card flow).
    ``axles`` and ``total_weight_kg`` may be the text as typed: the exit checks
    them (``lane.weighing``) before the card is touched, and takes the weight
    limit from the axles (reference §5)."""

    card_t: Transport
    reading: Reading
    quote: Quote
    collector: Person
    shift: Shift
    plate: str
    plate_color: int
    vehicle_kind: int = 0
    axles: int | str | None = None
    total_weight_kg: int | str | None = None
    station_hex: str | None = None
    authorised_by: Person | None = None
    payment_type: int | None = None
    reason: str = ""
    photo_jpeg: bytes | None = None
    obu_t: Transport | None = None


@dataclass(frozen=True, slots=True)
class LaneClock:
    """The terminal's clock against the center's (docs/clock.md): ``offset_ms`` is
    center minus terminal as measured on the last exchange with the center (None:
    never measured), at ``measured_utc`` (terminal clock); ``max_ms`` the largest
    offset at which card work is done.

    Every time the terminal records is its own clock corrected by the offset
    (``correct``), so the center (and, through it, the Beidou receiver) sets the
    time of the lane's records, the card's 0019 and its purse log; each record
    carries the offset it was corrected by (``clock_offset_ms``, terminal minus
    center, as the center has always read it)."""

    offset_ms: int | None
    measured_utc: dt.datetime | None
    max_ms: int

    @property
    def measured(self) -> bool:
        return self.offset_ms is not None

    @property
    def beyond(self) -> bool:
        """Off by more than the maximum: no card work."""
        return self.offset_ms is not None and abs(self.offset_ms) > self.max_ms

    @property
    def record_offset_ms(self) -> int:
        """What a record carries: terminal minus center (0 before the first
        measurement, when ``refusal`` lets nothing be recorded)."""
        return -self.offset_ms if self.offset_ms is not None else 0

    def correct(self, system: dt.datetime) -> dt.datetime:
        """The terminal's clock reading ``system`` as the center's time."""
        return system + dt.timedelta(milliseconds=self.offset_ms or 0)

    def refusal(self, *, card: bool, entry: bool = False) -> LaneError | None:
        """Why a transaction may not be made now, or None. Never measured: no
        transaction at all (the terminal has not met the center, so its times
        cannot be trusted, and it holds no station data anyway). Beyond the
        maximum: no card work (a purchase, an exit or entry written to the
        card); cash and mobile payments go on, corrected, and the center
        holds their records with code 16."""
        if self.offset_ms is None:
            return LaneError(
                "clock_unknown",
                gettext_noop(
                    "This terminal has not compared its clock with the center's yet: "
                    "connect it to the center (sync) before the first transaction."
                ),
            )
        if card and self.beyond:
            return LaneError(
                "clock_off",
                gettext_noop(
                    "Card work is refused: this terminal's clock is {offset_ms} ms off the "
                    "center's, more than the {max_ms} ms allowed. Sync with the center or have "
                    "the clock set; meanwhile no card can be written."
                )
                if entry
                else gettext_noop(
                    "Card work is refused: this terminal's clock is {offset_ms} ms off the "
                    "center's, more than the {max_ms} ms allowed. Take cash or a mobile "
                    "payment, and sync with the center or have the clock set."
                ),
                field="" if entry else "payment_type",
                offset_ms=abs(self.offset_ms or 0),
                max_ms=self.max_ms,
            )
        return None


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _from_iso(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


class LaneBase:
    """The terminal's state: its store, outbox, reference data, status list and
    clock; the local journal and the photos waiting for their transaction."""

    def __init__(
        self,
        *,
        terminal_id: str,
        store: str | Path,
        center: Center,
        psam: Callable[[], Transport],
        verify_password: Callable[[str, str], bool],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        offline_login_days: int = 7,
        status_list: CompactStatusList | None = None,
        clock_max_ms: int = CLOCK_MAX_MS,
    ) -> None:
        self.terminal_id = terminal_id
        self.center = center
        self.outbox = Outbox(store, terminal_id=terminal_id)
        self.reference = ReferenceData(store)
        #: The status list, in versions (docs/lists.md); beside the store as
        #: ``<store>.lists/``, or shared with another ``LaneTerminal`` of the process.
        if status_list is None:  # (an empty list is falsy: never `status_list or …`)
            status_list = CompactStatusList.open(
                Path(store).with_suffix(".lists"),
                trusted_keys=self._pinned_list_key(),
                clock=clock,
            )
        self.status_list = status_list
        self._db = open_store(store, _SCHEMA)
        self._psam = psam
        self._verify = verify_password
        #: The machine's own clock: for timing only (the outbox's backoff, the
        #: age of downloads, measuring the offset). What the terminal records
        #: takes ``now()``, the center's time.
        self.clock = clock
        self.clock_max_ms = clock_max_ms
        self.offline_login_days = offline_login_days
        self._engine: tuple[str, FeeEngine] | None = None

    def close(self) -> None:
        self.outbox.close()
        self.reference.close()
        self._db.close()

    # -- the clock ----------------------------------------------------------------

    def lane_clock(self) -> LaneClock:
        """The offset from the center as last measured, and the maximum."""
        offset, measured = self.outbox.clock()
        return LaneClock(offset, measured, self.clock_max_ms)

    def now(self) -> dt.datetime:
        """The center's time by this terminal's clock: what the terminal records."""
        return self.lane_clock().correct(self.clock())

    # -- local journal ---------------------------------------------------------

    def _journal(self, db: sqlite3.Connection, username: str, action: str, **detail: Any) -> None:
        db.execute(
            "INSERT INTO journal (at_utc, username, action, detail) VALUES (?, ?, ?, ?)",
            (_iso(self.now()), username, action, json.dumps(detail, ensure_ascii=False)),
        )

    def journal(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT at_utc, username, action, detail FROM journal ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {"at": _from_iso(r[0]), "username": r[1], "action": r[2], "detail": json.loads(r[3])}
            for r in rows
        ]

    # -- photos taken before the transaction is committed --------------------------

    def keep_photo(self, jpeg: bytes) -> str:
        """提交图片数据: the photo kept until the transaction takes it (a day at most)."""
        token = secrets.token_hex(12)
        now = self.clock()
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "DELETE FROM photos WHERE created_utc < ?", (_iso(now - dt.timedelta(days=1)),)
        )
        self._db.execute(
            "INSERT INTO photos (token, jpeg, created_utc) VALUES (?, ?, ?)",
            (token, jpeg, _iso(now)),
        )
        self._db.execute("COMMIT")
        return token

    def photo(self, token: str) -> bytes | None:
        row = self._db.execute("SELECT jpeg FROM photos WHERE token = ?", (token,)).fetchone()
        return bytes(row[0]) if row else None

    def _pinned_list_key(self) -> dict[str, Ed25519PublicKey]:
        pinned = self.reference.get(LIST_KEY)
        if pinned is None:
            return {}
        return {str(pinned["key_id"]): public_key_from_text(str(pinned["public_key"]))}


def _shift(row: Sequence[Any]) -> Shift:
    started = _from_iso(row[3])
    assert started is not None
    return Shift(str(row[0]), str(row[1]), int(row[2]), started, _from_iso(row[4]))


def _b64(raw: bytes | None) -> str:
    return base64.b64encode(raw).decode() if raw else ""
