"""The toll terminal's lane work: sign-in, shifts, reading a card and OBU with
the checks of seed 001/002, the fee, and the transactions themselves (exit
purchase, entry write), each committed to the terminal's store before the
screen says success.

A purchase is stored as an *intent* (card, ATC, amount, PSAM sequence) just
before the DEBIT (8054) is sent. If the card leaves the reader before its
answer arrives, or the process dies, the intent stays open: the next read of
that card settles it from the card itself — its purse log says whether the
debit happened, GET TRANSACTION PROVE (805A) gives the TAC — and either
completes the transaction record or abandons the intent. So a card is never
debited twice and never debited without a record.

Pure: no Django. The web layer (``etcnet.terminal.web``) and the tests drive it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from etcnet.core.money import Rounding, divide
from etcnet.core.validators import gettext_noop
from etcnet.lists.versionfile import key_id, public_key_from_text
from etcnet.network.bundle import Interval, Network, Node, Owner
from etcnet.network.engine import EXEMPT_KINDS, FeeEngine, FeeError, FeeResult, Method, Payment
from etcnet.smartcard import ops
from etcnet.smartcard.codec import hexu
from etcnet.smartcard.files import Card0019, FileFormatError, ObuFeeFile
from etcnet.smartcard.transport import Transport, TransportError
from etcnet.terminal.outbox import CenterUnavailable, Outbox, open_store
from etcnet.terminal.reference import ReferenceData, StatusListCheck
from etcnet.terminal.statuslist import CompactStatusList, ListRefused

__all__ = [
    "CARD_PAYMENTS",
    "FALLBACK_PAYMENTS",
    "Committed",
    "Grey",
    "LaneError",
    "LaneTerminal",
    "Person",
    "Quote",
    "Reading",
    "Shift",
    "ShiftTotals",
]

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


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _from_iso(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


class LaneTerminal:
    """One handheld or lane PC. ``store`` is its SQLite file; ``psam`` opens its
    PSAM; ``verify_password(password, verifier)`` checks a cached verifier."""

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
        self.clock = clock
        self.offline_login_days = offline_login_days
        self._engine: tuple[str, FeeEngine] | None = None

    def close(self) -> None:
        self.outbox.close()
        self.reference.close()
        self._db.close()

    # -- local journal ---------------------------------------------------------

    def _journal(self, db: sqlite3.Connection, username: str, action: str, **detail: Any) -> None:
        db.execute(
            "INSERT INTO journal (at_utc, username, action, detail) VALUES (?, ?, ?, ?)",
            (_iso(self.clock()), username, action, json.dumps(detail, ensure_ascii=False)),
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

    # -- sign-in ---------------------------------------------------------------

    def sign_in(self, username: str, password: str, *, role: str = "toll_collector") -> Person:
        """Checked by the center; when it cannot be reached, against the verifier
        kept from this user's last online sign-in here (collectors, within
        ``offline_login_days``) or the downloaded verifiers (station masters)."""
        username = username.strip()
        if not username or not password:
            raise LaneError(
                "login_missing",
                gettext_noop("Enter the staff number and password."),
                field="username",
            )
        try:
            found = self.center.login(username, password)
        except CenterUnavailable:
            return self._offline_sign_in(username, password, role=role)
        if found is None or role not in found.get("roles", ()):
            self._db.execute("BEGIN IMMEDIATE")
            self._journal(self._db, username, "login_refused", role=role, online=True)
            self._db.execute("COMMIT")
            raise LaneError(
                "login_refused",
                gettext_noop("Wrong staff number or password, or not allowed for this task."),
                field="password",
            )
        person = Person(
            username=str(found["username"]),
            name=str(found.get("name") or found["username"]),
            roles=tuple(found["roles"]),
        )
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "INSERT INTO users (username, name, roles, verifier, online_login_utc)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET name = excluded.name,"
            " roles = excluded.roles, verifier = excluded.verifier,"
            " online_login_utc = excluded.online_login_utc",
            (
                person.username,
                person.name,
                json.dumps(person.roles),
                str(found["verifier"]),
                _iso(self.clock()),
            ),
        )
        self._journal(self._db, person.username, "login", role=role, online=True)
        self._db.execute("COMMIT")
        return person

    def _offline_sign_in(self, username: str, password: str, *, role: str) -> Person:
        row = self._db.execute(
            "SELECT name, roles, verifier, online_login_utc FROM users WHERE username = ?",
            (username,),
        ).fetchone()
        candidates: list[tuple[str, tuple[str, ...], str]] = []
        if row is not None:
            last = _from_iso(row[3])
            recent = last is not None and self.clock() - last <= dt.timedelta(
                days=self.offline_login_days
            )
            if recent:
                candidates.append((row[0], tuple(json.loads(row[1])), row[2]))
        if role == "station_master":
            for user in (self.reference.get("verifiers") or {}).get("users", []):
                if user.get("username") == username:
                    candidates.append(
                        (username, tuple(user.get("roles", ())), str(user.get("verifier", "")))
                    )
        for name, roles, verifier in candidates:
            if role in roles and verifier and self._verify(password, verifier):
                self._db.execute("BEGIN IMMEDIATE")
                self._journal(self._db, username, "login", role=role, online=False)
                self._db.execute("COMMIT")
                return Person(username=username, name=name, roles=roles, offline=True)
        self._db.execute("BEGIN IMMEDIATE")
        self._journal(self._db, username, "login_refused", role=role, online=False)
        self._db.execute("COMMIT")
        raise LaneError(
            "login_offline_refused",
            gettext_noop(
                "The center cannot be reached and this sign-in cannot be checked here: "
                "only a user who signed in on this terminal in the last {days} days can "
                "work offline."
            ),
            field="password",
            days=self.offline_login_days,
        )

    def authorise(self, username: str, password: str) -> Person:
        """站长权限: a station master's staff number and password."""
        return self.sign_in(username, password, role="station_master")

    # -- station, lanes, shifts ------------------------------------------------

    def station(self) -> dict[str, Any]:
        doc = self.reference.get("station")
        if not doc:
            raise LaneError(
                "no_station_data",
                gettext_noop(
                    "This terminal has no station data yet: connect it to the center once."
                ),
            )
        return doc

    def lanes(self, direction: str) -> list[dict[str, Any]]:
        """The lanes this terminal may work in ``direction`` that are enabled
        (seed: 前提：已在系统配置中启用出口车道)."""
        doc = self.reference.get("station") or {}
        return [
            lane
            for lane in doc.get("lanes", [])
            if lane.get("allowed") and lane.get("enabled") and lane.get("direction") == direction
        ]

    def start_shift(self, person: Person, *, lane: int) -> Shift:
        """上班 on a lane; a collector's open shift on this terminal is ended first."""
        if not any(lane == item["number"] for d in ("entry", "exit") for item in self.lanes(d)):
            raise LaneError(
                "lane_not_enabled",
                gettext_noop("Lane {lane} is not an enabled lane of this terminal."),
                field="lane",
                lane=lane,
            )
        now = self.clock()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE shifts SET ended_utc = ? WHERE username = ? AND ended_utc IS NULL",
                (_iso(now), person.username),
            )
            (count,) = self._db.execute("SELECT COUNT(*) FROM shifts").fetchone()
            shift_no = f"{now.astimezone(LOCAL):%Y%m%d}-{int(count) + 1}"
            self._db.execute(
                "INSERT INTO shifts (shift_no, username, lane, started_utc) VALUES (?, ?, ?, ?)",
                (shift_no, person.username, lane, _iso(now)),
            )
            self._journal(self._db, person.username, "shift_started", shift=shift_no, lane=lane)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return Shift(shift_no, person.username, lane, now, None)

    def current_shift(self, username: str) -> Shift | None:
        row = self._db.execute(
            "SELECT shift_no, username, lane, started_utc, ended_utc FROM shifts"
            " WHERE username = ? AND ended_utc IS NULL ORDER BY id DESC LIMIT 1",
            (username,),
        ).fetchone()
        return _shift(row) if row else None

    def end_shift(self, shift_no: str) -> ShiftTotals:
        """交班: closes the shift and returns its totals."""
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "UPDATE shifts SET ended_utc = ? WHERE shift_no = ? AND ended_utc IS NULL",
            (_iso(self.clock()), shift_no),
        )
        totals = self.shift_totals(shift_no)
        self._journal(
            self._db,
            totals.shift.username,
            "shift_ended",
            shift=shift_no,
            count=totals.count,
            total_fen=totals.total_fen,
        )
        self._db.execute("COMMIT")
        return totals

    def shift_totals(self, shift_no: str) -> ShiftTotals:
        row = self._db.execute(
            "SELECT shift_no, username, lane, started_utc, ended_utc FROM shifts"
            " WHERE shift_no = ?",
            (shift_no,),
        ).fetchone()
        if row is None:
            raise LaneError("no_shift", gettext_noop("Start a shift first (上班)."))
        by_payment: dict[int, tuple[int, int]] = {}
        count = specials = 0
        for record in self.outbox.records_where("shift", shift_no):
            if record.get("direction") == "entry":
                continue
            count += 1
            specials += bool(record.get("special_case"))
            kind = int(record["payment_type"])
            n, fen = by_payment.get(kind, (0, 0))
            by_payment[kind] = (n + 1, fen + int(record["payable_fen"]))
        return ShiftTotals(
            shift=_shift(row),
            count=count,
            total_fen=sum(fen for _, fen in by_payment.values()),
            by_payment=dict(sorted(by_payment.items())),
            specials=specials,
        )

    # -- the fee engine on the downloaded tariff ----------------------------------

    def engine(self) -> FeeEngine:
        doc = self.reference.get("tariff") or {}
        version, network = doc.get("version"), doc.get("network")
        if not version or not network:
            raise LaneError(
                "no_tariff",
                gettext_noop("This terminal has no tariff yet: connect it to the center once."),
            )
        if self._engine is None or self._engine[0] != version:
            built = Network.from_rows(
                owners=[Owner(*row) for row in network["owners"]],
                nodes=[Node(*row) for row in network["nodes"]],
                intervals=[Interval(*row) for row in network["intervals"]],
                fees=[tuple(row) for row in network["fees"]],
                open_fees=[tuple(row) for row in network["open_fees"]],
            )
            self._engine = (version, FeeEngine(built, discount_bp=int(doc["discount_bp"])))
        return self._engine[1]

    def _node_by_hex(self, network: str, station: int) -> Node | None:
        code = f"{network}{station:04X}"
        for node in self.engine().network.nodes.values():
            if node.hex.upper() == code and node.kind == "station":
                return node
        return None

    # -- reading -----------------------------------------------------------------

    def read(self, card_t: Transport, obu_t: Transport | None = None) -> Reading:
        """读卡: the card (and OBU), an interrupted purchase of this card settled
        first, then the checks of seed 001: card–OBU–vehicle consistency,
        validity dates, the status list."""
        try:
            card = ops.read_card(card_t)
            obu = ops.read_obu(obu_t) if obu_t is not None else None
        except (TransportError, ops.CardError, FileFormatError, OSError) as error:
            raise LaneError(
                "read_failed",
                gettext_noop("The card could not be read ({error}); place it again."),
                error=str(error),
            ) from error
        if card.f0015 is None:
            raise LaneError("card_blank", gettext_noop("This card is not issued."))
        recovered, recovered_seq = self._settle_intents(card_t, card.card_no)
        if recovered:
            card = ops.read_card(card_t)
        f = card.f0015
        assert f is not None
        today = self.clock().astimezone(LOCAL).date()
        problems: list[Problem] = []
        listed: StatusListCheck = self.status_list
        list_types = {"card": listed.lookup("card", card.card_no)}
        if list_types["card"]:
            problems.append(
                Problem(
                    "status_list",
                    gettext_noop("The card is on the status list (types {types})."),
                    {"types": ", ".join(str(t) for t in list_types["card"])},
                )
            )
        if not f.start_date <= today <= f.expiry_date:
            problems.append(
                Problem(
                    "expired",
                    gettext_noop("The card is valid from {start} to {end}."),
                    {"start": f.start_date.isoformat(), "end": f.expiry_date.isoformat()},
                )
            )
        reading: dict[str, Any] = {}
        if obu is not None:
            if obu.system is None or obu.vehicle is None:
                raise LaneError("obu_blank", gettext_noop("This OBU is not issued."))
            list_types["obu"] = listed.lookup("obu", obu.obu_no)
            if list_types["obu"]:
                problems.append(
                    Problem(
                        "status_list",
                        gettext_noop("The OBU is on the status list (types {types})."),
                        {"types": ", ".join(str(t) for t in list_types["obu"])},
                    )
                )
            if not obu.activated or not obu.system.signed_date <= today <= obu.system.expiry_date:
                problems.append(
                    Problem(
                        "expired", gettext_noop("The OBU is not active or out of its validity.")
                    )
                )
            v = obu.vehicle
            if (v.plate, int(v.plate_color)) != (f.plate, int(f.plate_color)) or (
                f.vehicle_class is not None and int(v.vehicle_class) != int(f.vehicle_class)
            ):
                problems.append(
                    Problem(
                        "mismatch",
                        gettext_noop("Card and OBU do not match (卡签不一致): {card} / {obu}."),
                        {"card": f.plate, "obu": v.plate},
                    )
                )
            reading = {
                "obu_no": obu.obu_no,
                "obu_plate": v.plate,
                "obu_plate_color": int(v.plate_color),
                "obu_vehicle_class": int(v.vehicle_class),
                "obu_expiry_date": obu.system.expiry_date,
            }
        return Reading(
            card_no=card.card_no,
            card_type=int(f.card_type),
            balance=card.balance,
            plate=f.plate,
            plate_color=int(f.plate_color),
            vehicle_class=int(f.vehicle_class) if f.vehicle_class is not None else None,
            start_date=f.start_date,
            expiry_date=f.expiry_date,
            entry=self._entry_of(card.f0019),
            list_types=list_types,
            problems=tuple(problems),
            recovered=recovered,
            recovered_seq=recovered_seq,
            card_0015_head=card.raw_0015[:20],
            **reading,
        )

    def _entry_of(self, f0019: Card0019 | None) -> Entry | None:
        if f0019 is None or f0019.lane_status not in ENTRY_STATUSES:
            return None
        node = self._node_by_hex(f0019.network, f0019.station)
        if node is None:
            return None
        return Entry(
            node_id=node.node_id,
            name=node.name,
            hex=node.hex,
            lane=f0019.lane,
            time=dt.datetime.fromtimestamp(f0019.time, dt.UTC),
            vehicle_class=f0019.vehicle_class,
        )

    # -- the fee -----------------------------------------------------------------

    def quote(
        self,
        reading: Reading,
        *,
        plate: str,
        plate_color: int,
        vehicle_class: int,
        vehicle_kind: int = 0,
        axles: int | None = None,
        total_weight_kg: int | None = None,
        use_entry: bool = True,
    ) -> Quote:
        """算费 at this station for the vehicle as the collector sees it. The
        closed-road fee without the gantries' path is the minimum fee (or, with
        no entry, the farthest entry's): both need the station master."""
        station = self.station()["station"]
        entry = reading.entry.node_id if (use_entry and reading.entry) else None
        try:
            fee = self.engine().trip(
                exit=station["node_id"],
                vehicle_class=vehicle_class,
                entry=entry,
                payment=Payment.ETC,
                vehicle_kind=vehicle_kind,
                axles=axles,
                total_mass_kg=total_weight_kg,
            )
        except FeeError as error:
            raise LaneError(
                "fee_failed", gettext_noop("The fee cannot be computed: {error}"), error=str(error)
            ) from error
        specials = [p.code for p in reading.problems]
        if (plate.strip(), plate_color) != (reading.plate, reading.plate_color) or (
            reading.vehicle_class is not None and reading.vehicle_class != vehicle_class
        ):
            specials.append("mismatch")
        if fee.method is Method.EXEMPT:
            specials.append("exempt")
        if fee.method is Method.FARTHEST_ENTRY:
            specials.append("no_entry")
        needs_authorisation = fee.method in (Method.MINIMUM, Method.FARTHEST_ENTRY)
        if fee.method is Method.MINIMUM:
            specials.append("minimum_fee")
        insufficient = (
            reading.card_type == STORED_VALUE
            and not reading.card_refused
            and fee.payable_fen > reading.balance
        )
        if insufficient:
            specials.append("insufficient_balance")
        payment = FREE if fee.method is Method.EXEMPT else reading.card_type
        return Quote(
            fee=fee,
            station_name=station["name"],
            station_hex=station["hex"],
            needs_authorisation=needs_authorisation,
            special_cases=tuple(dict.fromkeys(specials)),
            insufficient_balance=insufficient,
            payment_type=payment,
        )

    # -- transactions ------------------------------------------------------------

    def exit(
        self,
        card_t: Transport,
        reading: Reading,
        quote: Quote,
        *,
        collector: Person,
        shift: Shift,
        plate: str,
        plate_color: int,
        vehicle_kind: int = 0,
        axles: int | None = None,
        total_weight_kg: int | None = None,
        weight_limit_kg: int | None = None,
        station_hex: str | None = None,
        authorised_by: Person | None = None,
        payment_type: int | None = None,
        reason: str = "",
        photo_jpeg: bytes | None = None,
        obu_t: Transport | None = None,
    ) -> Committed:
        """提交数据 / 数据保存: the purchase (stored value: the payable amount;
        debit card: a zero-amount composite purchase with TAC), the exit info in
        0019, and the record in the store — or, when the card cannot pay, the
        record with the fallback payment type. ``station_hex`` is what the
        collector typed to confirm (single-card flow)."""
        station = self.station()["station"]
        if station_hex is not None and station_hex.strip().upper() != station["hex"].upper():
            raise LaneError(
                "hex_mismatch",
                gettext_noop("The station hex code does not match: check it and type it again."),
                field="station_hex",
            )
        if quote.needs_authorisation and (
            authorised_by is None or "station_master" not in authorised_by.roles
        ):
            raise LaneError(
                "authorisation_needed",
                gettext_noop("Minimum-fee charging needs the station master's authorisation."),
                field="master_username",
            )
        if quote.needs_reason and not reason.strip():
            raise LaneError(
                "reason_needed",
                gettext_noop("Give the reason for this special case; it is kept for audit."),
                field="reason",
            )
        if vehicle_kind == 21 and not photo_jpeg:
            raise LaneError(
                "inspection_photo_needed",
                gettext_noop("A green-channel vehicle needs the inspection photo."),
                field="photo",
            )
        pay = quote.payment_type if payment_type is None else payment_type
        card_can_pay = not reading.card_refused and not quote.insufficient_balance
        if pay in CARD_PAYMENTS and not card_can_pay:
            raise LaneError(
                "card_cannot_pay",
                gettext_noop("This card cannot pay: choose cash or a mobile payment."),
                field="payment_type",
            )
        if pay not in (*CARD_PAYMENTS, *FALLBACK_PAYMENTS, FREE) or (
            pay == FREE and quote.fee.method is not Method.EXEMPT
        ):
            raise LaneError(
                "bad_payment_type",
                gettext_noop("Choose a payment type of the list."),
                field="payment_type",
            )
        if pay in CARD_PAYMENTS and pay != reading.card_type:
            pay = reading.card_type
        fee = quote.fee
        when = self.clock()
        local = when.astimezone(LOCAL)
        lane = shift.lane
        base: dict[str, Any] = {
            "direction": "exit",
            "lane": lane,
            "exit_time": local.isoformat(),
            "entry_station": fee.entry or "",
            "entry_time": reading.entry.time.isoformat() if reading.entry else None,
            "card_no": reading.card_no,
            "obu_no": reading.obu_no,
            "plate": plate.strip(),
            "plate_color": plate_color,
            "vehicle_class": fee.vehicle_class,
            "vehicle_kind": vehicle_kind,
            "method": fee.method.value,
            "fee_fen": fee.fee_fen,
            "discount_fen": fee.discount_fen,
            "payable_fen": fee.payable_fen,
            "intervals": [charge.as_json() for charge in fee.intervals],
            "payment_type": pay,
            "axles": axles,
            "total_weight_kg": total_weight_kg,
            "weight_limit_kg": weight_limit_kg,
            "overweight": bool(
                fee.overweight
                or (weight_limit_kg and total_weight_kg and total_weight_kg > weight_limit_kg)
            ),
            "special_case": quote.special_cases[0] if quote.special_cases else "",
            "special_reason": _reason(quote, reading, fee, reason),
            "collector": collector.username,
            "shift": shift.shift_no,
            "authorised_by": authorised_by.username if authorised_by else "",
            "photo_jpeg": _b64(photo_jpeg),
        }
        # A free passage is still closed on a card that may be used: a zero-amount
        # composite purchase writes the exit, so the entry is not charged again.
        by_card = pay in CARD_PAYMENTS or (pay == FREE and not reading.card_refused)
        if not by_card:
            if pay != FREE:
                # Cash or a mobile payment: the toll without the ETC discount,
                # rounded half-up to the yuan (Part 1).
                base["discount_fen"] = 0
                base["payable_fen"] = divide(fee.fee_fen, 100, rounding=Rounding.HALF_UP) * 100
            seq = self._commit(base, username=collector.username)
            return Committed(seq, int(base["payable_fen"]), pay, "", None)
        amount = fee.payable_fen if pay == STORED_VALUE else 0
        exit_record = Card0019(
            network=station["hex"][:4],
            station=int(station["hex"][4:8], 16),
            lane=lane,
            time=int(when.timestamp()),
            vehicle_class=fee.vehicle_class,
            lane_status=EXIT_OPEN if fee.method is Method.OPEN else EXIT_CLOSED,
            plate=plate.strip(),
            plate_color=plate_color,
            axles=axles or 0,
            total_weight_kg=total_weight_kg or 0,
        )
        return self._purchase(
            card_t,
            reading,
            base,
            amount=amount,
            record0019=exit_record,
            when=local,
            username=collector.username,
            obu_t=obu_t,
            fee=fee,
        )

    def entry(
        self,
        card_t: Transport,
        reading: Reading,
        *,
        collector: Person,
        shift: Shift,
        plate: str,
        plate_color: int,
        vehicle_class: int,
        vehicle_kind: int = 0,
        axles: int | None = None,
        total_weight_kg: int | None = None,
        photo_jpeg: bytes | None = None,
        obu_t: Transport | None = None,
    ) -> Committed:
        """入口: the entry info written into 0019 by a zero-amount composite
        purchase (as real entry lanes do), and the entry recorded; with an OBU
        (read with the card), a fresh fee file (EF04) carrying the entry."""
        if reading.card_refused:
            raise LaneError(
                "card_cannot_enter",
                gettext_noop("This card is refused here: {problems}."),
                problems=", ".join(p.code for p in reading.problems),
            )
        station = self.station()["station"]
        when = self.clock()
        local = when.astimezone(LOCAL)
        base: dict[str, Any] = {
            "direction": "entry",
            "lane": shift.lane,
            "exit_time": local.isoformat(),
            "entry_station": station["node_id"],
            "entry_time": local.isoformat(),
            "card_no": reading.card_no,
            "obu_no": reading.obu_no,
            "plate": plate.strip(),
            "plate_color": plate_color,
            "vehicle_class": vehicle_class,
            "vehicle_kind": vehicle_kind,
            "method": "entry",
            "fee_fen": 0,
            "payable_fen": 0,
            "payment_type": reading.card_type,
            "axles": axles,
            "total_weight_kg": total_weight_kg,
            "collector": collector.username,
            "shift": shift.shift_no,
            "photo_jpeg": _b64(photo_jpeg),
        }
        record = Card0019(
            network=station["hex"][:4],
            station=int(station["hex"][4:8], 16),
            lane=shift.lane,
            time=int(when.timestamp()),
            vehicle_class=vehicle_class,
            lane_status=ENTRY_CLOSED_ETC,
            plate=plate.strip(),
            plate_color=plate_color,
            axles=axles or 0,
            total_weight_kg=total_weight_kg or 0,
        )
        return self._purchase(
            card_t,
            reading,
            base,
            amount=0,
            record0019=record,
            when=local,
            username=collector.username,
            obu_t=obu_t,
        )

    def _write_obu(
        self,
        obu_t: Transport,
        reading: Reading,
        record0019: Card0019,
        committed: Committed,
        *,
        fee: FeeResult | None,
        username: str,
    ) -> Committed:
        """After the record is committed: the trip into the OBU's EF04 (§2.4). At
        an entry a fresh block; at an exit the trip's block with this station's
        charge added (a block of another trip is started afresh). A failure loses
        nothing — the transaction stands — and is journalled and shown."""
        station_hex = self.station()["station"]["hex"]
        try:
            chip = ops.read_obu(obu_t)
            if chip.obu_no != reading.obu_no:
                raise ops.OperationError(f"OBU {chip.obu_no} is not {reading.obu_no}")
            before = ops.read_obu_fee(obu_t) if fee is not None else None
            block = _fee_block(
                before,
                record0019,
                reading,
                fee=fee,
                committed=committed,
                user_type=chip.vehicle.user_type if chip.vehicle else 0,
                province=station_hex[:2],
            )
            ops.write_obu_fee(obu_t, block)
        except (TransportError, ops.CardError, ops.OperationError, FileFormatError, OSError) as e:
            self._db.execute("BEGIN IMMEDIATE")
            self._journal(
                self._db,
                username,
                "obu_write_failed",
                seq=committed.seq,
                obu_no=reading.obu_no,
                error=str(e),
            )
            self._db.execute("COMMIT")
            return replace(committed, obu_write="failed")
        return replace(committed, obu_write="written")

    def _purchase(
        self,
        card_t: Transport,
        reading: Reading,
        base: dict[str, Any],
        *,
        amount: int,
        record0019: Card0019,
        when: dt.datetime,
        username: str,
        obu_t: Transport | None = None,
        fee: FeeResult | None = None,
    ) -> Committed:
        """The card's purchase and its record; then, with the OBU read with the
        card, the trip into its EF04 (``fee`` None: an entry)."""
        if self._open_intent(reading.card_no) is not None:
            raise Grey(
                "grey_open",
                gettext_noop(
                    "An interrupted purchase of this card is not settled yet: read the card again."
                ),
            )
        intent_id: list[int] = []

        def remember(intent: ops.PurchaseIntent) -> None:
            if intent.card_no != reading.card_no:
                raise LaneError(
                    "other_card",
                    gettext_noop("Another card is in the reader: place card {card_no}."),
                    card_no=reading.card_no,
                )
            body = {"intent": _intent_json(intent), "record": base}
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "INSERT INTO intents (card_no, atc, body, created_utc) VALUES (?, ?, ?, ?)",
                (
                    intent.card_no,
                    intent.offline_atc,
                    json.dumps(body, ensure_ascii=False),
                    _iso(self.clock()),
                ),
            )
            self._db.execute("COMMIT")
            intent_id.append(int(cursor.lastrowid or 0))

        try:
            result = ops.purchase(
                card_t,
                self._psam(),
                amount=amount,
                when=when.replace(tzinfo=None),
                trans_type=ops.COMPOSITE_TRANS_TYPE,
                record0019=record0019,
                before_debit=remember,
            )
        except (TransportError, ops.CardError, ops.OperationError, OSError) as error:
            if intent_id:
                self._db.execute("BEGIN IMMEDIATE")
                self._journal(
                    self._db,
                    username,
                    "purchase_interrupted",
                    card_no=reading.card_no,
                    error=str(error),
                )
                self._db.execute("COMMIT")
                raise Grey(
                    "grey",
                    gettext_noop(
                        "The card left the reader during the purchase. Place card {card_no} "
                        "again and read it: the terminal settles the purchase from the card "
                        "itself, without charging twice."
                    ),
                    card_no=reading.card_no,
                ) from error
            if isinstance(error, ops.CardError) and error.sw == 0x9401:
                raise LaneError(
                    "insufficient_balance",
                    gettext_noop("The balance is not enough: choose cash or a mobile payment."),
                    field="payment_type",
                ) from error
            raise LaneError(
                "purchase_failed",
                gettext_noop("The card refused the purchase ({error}); nothing was charged."),
                error=str(error),
            ) from error
        record = {**base, **_purchase_fields(result)}
        seq = self._commit(record, username=username, intent=intent_id[0])
        committed = Committed(
            seq,
            int(str(base["payable_fen"])),
            int(str(base["payment_type"])),
            record["tac"],
            result.balance_after,
            terminal_seq=int(record["terminal_trans_seq"]),
        )
        if obu_t is None or not reading.obu_no:
            return committed
        return self._write_obu(obu_t, reading, record0019, committed, fee=fee, username=username)

    def _commit(
        self,
        record: Mapping[str, Any],
        *,
        username: str,
        intent: int | None = None,
        state: str = "completed",
    ) -> int:
        offset = self.outbox.status().clock_offset_ms
        full = {**record, "clock_offset_ms": -offset if offset is not None else 0}
        now = self.clock()

        def also(db: sqlite3.Connection, seq: int) -> None:
            if intent is not None:
                db.execute(
                    "UPDATE intents SET state = ?, resolved_utc = ?, seq = ? WHERE id = ?",
                    (state, _iso(now), seq, intent),
                )
            self._journal(
                db,
                username,
                f"{record['direction']}_recorded",
                seq=seq,
                card_no=record.get("card_no", ""),
                payable_fen=record.get("payable_fen", 0),
                special_case=record.get("special_case", ""),
            )

        return self.outbox.commit(lambda seq: full, now=now, also=also)

    # -- interrupted purchases -----------------------------------------------------

    def _open_intent(self, card_no: str) -> tuple[int, dict[str, Any]] | None:
        row = self._db.execute(
            "SELECT id, body FROM intents WHERE card_no = ? AND state = 'open' ORDER BY id LIMIT 1",
            (card_no,),
        ).fetchone()
        return (int(row[0]), json.loads(row[1])) if row else None

    def open_intents(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM intents WHERE state = 'open'").fetchone()
        return int(count)

    def _settle_intents(self, card_t: Transport, card_no: str) -> tuple[str, int | None]:
        """The card is back: did the interrupted DEBIT happen? Its log says (the
        ATC, amount, PSAM number); 805A gives the TAC. Completed → the record is
        committed as it would have been; not debited → the intent is abandoned."""
        found = self._open_intent(card_no)
        if found is None:
            return "", None
        intent_id, body = found
        intent = body["intent"]
        log = ops.read_log(card_t)
        debited = any(
            entry.atc == intent["offline_atc"]
            and entry.amount == intent["amount"]
            and entry.trans_type == intent["trans_type"]
            and hexu(entry.terminal) == intent["terminal_no"]
            for entry in log
        )
        username = str(body["record"].get("collector", ""))
        if not debited:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE intents SET state = 'abandoned', resolved_utc = ? WHERE id = ?",
                (_iso(self.clock()), intent_id),
            )
            self._journal(
                self._db, username, "purchase_abandoned", card_no=card_no, atc=intent["offline_atc"]
            )
            self._db.execute("COMMIT")
            return "abandoned", None
        proof = ops.transaction_prove(
            card_t, atc=intent["offline_atc"], trans_type=intent["trans_type"]
        )
        record = dict(body["record"])
        record.update(
            amount_fen=intent["amount"],
            trans_type=intent["trans_type"],
            terminal_trans_seq=int(intent["terminal_seq"], 16),
            tac=proof[1].hex().upper() if proof else "",
            special_case=record.get("special_case") or "grey_completed",
            special_reason=(
                (record.get("special_reason") or "")
                + " | interrupted purchase completed from the card's log (ATC "
                + str(intent["offline_atc"])
                + (", TAC by 805A)" if proof else ", TAC no longer on the card)")
            ).strip(" |"),
        )
        seq = self._commit(record, username=username, intent=intent_id)
        return "completed", seq

    # -- sync --------------------------------------------------------------------

    def sync(self) -> dict[str, Any]:
        """One round with the center: upload what is due, refresh the reference
        data, bring the status list up to date."""
        reports = self.outbox.sync_all(self.center, now=self.clock)
        refresh = self.reference.refresh(self.center, now=self.clock(), clock=self.clock)
        if refresh.updated and not refresh.failed and not any(r.error for r in reports):
            self.outbox.mark_contact(self.clock(), clock_offset_ms=refresh.clock_offset_ms)
        return {"uploads": reports, "refresh": refresh, "lists": self.sync_status_list()}

    # -- the status list ---------------------------------------------------------

    def list_age(self, now: dt.datetime) -> dt.timedelta | None:
        """How old the status list held is: since its version was published at
        the center (the version number is that minute, Asia/Shanghai)."""
        version = self.status_list.version
        if version is None:
            return None
        published = dt.datetime.strptime(version, "%Y%m%d%H%M").replace(tzinfo=LOCAL)
        return max(now - published, dt.timedelta(0))

    def _pinned_list_key(self) -> dict[str, Ed25519PublicKey]:
        pinned = self.reference.get(LIST_KEY)
        if pinned is None:
            return {}
        return {str(pinned["key_id"]): public_key_from_text(str(pinned["public_key"]))}

    def sync_status_list(self) -> dict[str, Any]:
        """Downloads and applies what the center's plan names: the increments
        after the version held, or a full version first when the list holds
        none, was refused an increment, or fell too far behind. The center's
        signing key is pinned the first time; a different key later is refused
        (the operator resets it by removing the terminal's list key). Never
        raises for the network or a refused file: the list stays as it was."""
        lists = self.status_list
        applied: list[str] = []
        try:
            plan = self.center.list_plan(None if lists.needs_full else lists.version)
            key_id_, key_text = str(plan["key_id"]), str(plan["public_key"])
            pinned = self.reference.get(LIST_KEY)
            if pinned is None:
                key = public_key_from_text(key_text)
                if key_id(key) != key_id_:
                    raise ListSyncError("the center's key and its id do not match")
                self.reference.put(
                    LIST_KEY, {"key_id": key_id_, "public_key": key_text}, now=self.clock()
                )
                lists.trust(key_id_, key)
            elif pinned["key_id"] != key_id_:
                raise ListSyncError(
                    f"the center signs with key {key_id_}, not the pinned {pinned['key_id']}"
                )
            if plan["full_needed"] or lists.version is None:
                full = plan.get("full")
                if not full:
                    raise ListSyncError("the center has no full version yet")
                lists.install_full(self.center.list_file("full", str(full["number"])))
                applied.append(f"full {full['number']}")
            for step in plan["increments"]:
                if lists.version is not None and str(step["number"]) <= lists.version:
                    continue
                lists.apply_increment(self.center.list_file("increment", str(step["number"])))
                applied.append(str(step["number"]))
        except (CenterUnavailable, ListRefused, ListSyncError) as error:
            return self._list_synced(applied, str(error))
        except (KeyError, TypeError, ValueError) as error:
            return self._list_synced(applied, f"bad plan: {error}")
        return self._list_synced(applied, "")

    def _list_synced(self, applied: list[str], error: str) -> dict[str, Any]:
        """The outcome of a list sync, kept for the screen and ``/status.json``."""
        report = {"applied": applied, "version": self.status_list.version, "error": error}
        now = self.clock()
        self.reference.put(LIST_SYNC, {**report, "at": _iso(now)}, now=now)
        return report


def _shift(row: Sequence[Any]) -> Shift:
    started = _from_iso(row[3])
    assert started is not None
    return Shift(str(row[0]), str(row[1]), int(row[2]), started, _from_iso(row[4]))


def _b64(raw: bytes | None) -> str:
    return base64.b64encode(raw).decode() if raw else ""


def _intent_json(intent: ops.PurchaseIntent) -> dict[str, Any]:
    return {
        "card_no": intent.card_no,
        "trans_type": intent.trans_type,
        "amount": intent.amount,
        "when": intent.when.isoformat(),
        "balance_before": intent.balance_before,
        "offline_atc": intent.offline_atc,
        "terminal_no": hexu(intent.terminal_no),
        "terminal_seq": hexu(intent.terminal_seq),
    }


def _purchase_fields(result: ops.PurchaseResult) -> dict[str, Any]:
    return {
        "amount_fen": result.amount,
        "trans_type": result.trans_type,
        "terminal_trans_seq": int.from_bytes(result.terminal_seq, "big"),
        "tac": result.tac.hex().upper(),
    }


#: The largest value of a 3-byte counter in EF04.
_MAX3 = 0xFFFFFF


def _fee_block(
    before: ObuFeeFile | None,
    record0019: Card0019,
    reading: Reading,
    *,
    fee: FeeResult | None,
    committed: Committed,
    user_type: int,
    province: str,
) -> ObuFeeFile:
    """The EF04 block after this transaction. ``fee`` None is an entry."""
    digest = bytes.fromhex(committed.tac) + committed.terminal_seq.to_bytes(4, "big")
    start = ObuFeeFile(
        entry_0019=record0019.encode()[:39],
        card_0015=reading.card_0015_head,
        user_type=user_type,
        province_count=1,
        digest=digest,
    )
    if fee is None:
        return start
    trip = before
    same_trip = (
        trip is not None
        and trip.entry is not None
        and reading.entry is not None
        and trip.entry.time == int(reading.entry.time.timestamp())
    )
    if not same_trip or trip is None:
        trip = start
    paid = committed.payable_fen
    provinces = dict(trip.provinces)
    provinces[province] = min(provinces.get(province, 0) + paid, _MAX3)
    return replace(
        start,
        province_count=max(trip.province_count, len(provinces)),
        receivable_fen=min(trip.receivable_fen + fee.fee_fen, _MAX3),
        actual_fen=min(trip.actual_fen + paid, _MAX3),
        successes=min(trip.successes + 1, 0xFFFF),
        mileage_m=min(trip.mileage_m + fee.length_m, _MAX3),
        no_card_count=trip.no_card_count,
        province_entry=trip.province_entry,
        province_receivable_fen=min(trip.province_receivable_fen + fee.fee_fen, _MAX3),
        province_successes=min(trip.province_successes + 1, 0xFF),
        province_actual_fen=min(trip.province_actual_fen + paid, _MAX3),
        provinces=tuple(provinces.items()),
    )


def _reason(quote: Quote, reading: Reading, fee: FeeResult, typed: str) -> str:
    parts = [typed.strip()] if typed.strip() else []
    if len(quote.special_cases) > 1:
        parts.append("cases: " + ", ".join(quote.special_cases))
    if reading.list_types.get("card") or reading.list_types.get("obu"):
        parts.append(
            "status list: "
            + ", ".join(
                f"{medium} {list(types)}" for medium, types in reading.list_types.items() if types
            )
        )
    if fee.reason:
        parts.append(fee.reason)
    if fee.method is Method.EXEMPT and fee.vehicle_kind in {int(k) for k in EXEMPT_KINDS}:
        parts.append(f"exempt 车种 {fee.vehicle_kind}")
    return " | ".join(parts)[:200]
