"""Software devices that answer real APDUs: a user card, an OBU ESAM and a PSAM.

Each device keeps its persistent state (files, purse, counters, keys) in a JSON
state file and rewrites it atomically (temporary file + ``os.replace``) after every
state-changing command, so an emulated card survives restarts and can be carried
from one process to another. What a real chip forgets at power-off — the selected
file, a pending purchase or load, the last challenge, a verified PIN — lives only in
memory: loading the file again is a fresh power-up.

A device never raises on a bad command: it answers the status word a card would
(``6700`` wrong length, ``6985`` wrong state, ``9302`` MAC invalid…) and changes
nothing. The state-file format and the APDU set of each device are documented in
``docs/smartcard.md``.

The state file holds the device's keys, as the chip does: treat it like the card.
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

from etcnet.core.codes import CardType
from etcnet.smartcard import crypto
from etcnet.smartcard.apdu import ApduError, Command, Response
from etcnet.smartcard.codec import FileFormatError, decode_bcd_datetime, hexu
from etcnet.smartcard.crypto import LOAD_TRANS_TYPE, Alg, CardKeys
from etcnet.smartcard.files import (
    Card0015,
    Card0016,
    Card0019,
    ObuFeeFile,
    ObuSystemFile,
    ObuVehicleFile,
    PurseLogRecord,
    blank_0015,
    blank_obu_system,
    card_no_of,
    describe,
    is_blank_0015,
    is_blank_obu_system,
)

__all__ = [
    "DEFAULT_PIN",
    "LOG_RECORDS",
    "MAX_BALANCE",
    "SoftCard",
    "SoftObu",
    "SoftPsam",
    "StateFileError",
    "default_key_index",
    "load_device",
]

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


class SoftCard(_Device):
    """A user card (储值卡 or 记账卡): MF with 0016, ADF 1001 with 0015, 0019, the
    e-purse and its transaction log. See docs/smartcard.md for the APDU set."""

    KIND = "card"
    COMMANDS: ClassVar[dict[int, tuple[int, str]]] = {
        0xA4: (0x00, "_select"),
        0xB0: (0x00, "_read_binary"),
        0xB2: (0x00, "_read_record"),
        0x84: (0x00, "_get_challenge"),
        0x20: (0x00, "_verify"),
        0x5C: (0x80, "_get_balance"),
        0x50: (0x80, "_initialize"),
        0xDC: (0x80, "_update_capp_cache"),
        0x54: (0x80, "_debit"),
        0x52: (0x80, "_credit"),
        0x5A: (0x80, "_get_transaction_prove"),
        0xD6: (0x04, "_update_binary"),
    }

    def __init__(
        self,
        path: Path,
        *,
        alg: Alg,
        keys: CardKeys,
        last_prove: dict[str, Any] | None = None,
        f0015: bytes,
        f0016: bytes,
        f0019: bytes,
        balance: int,
        offline_atc: int,
        online_atc: int,
        overdraft_limit: int,
        log: list[bytes],
        pin: str,
        pin_tries_left: int,
        key_version: int,
        key_index: int,
    ) -> None:
        super().__init__(path)
        self.alg = alg
        self.keys = keys
        self.mf_files: dict[int, bytearray] = {SFI_0016: bytearray(f0016)}
        self.adf_files: dict[int, bytearray] = {SFI_0015: bytearray(f0015)}
        self.f0019 = f0019
        self.balance = balance
        self.offline_atc = offline_atc
        self.online_atc = online_atc
        self.overdraft_limit = overdraft_limit
        self.log = log
        self.pin = pin
        self.pin_tries_left = pin_tries_left
        self.key_version = key_version
        self.key_index = key_index
        #: The MAC2 and TAC of the last purchase, by its ATC: what GET TRANSACTION
        #: PROVE (805A) answers when a terminal lost the DEBIT's answer.
        self.last_prove = last_prove
        # Power-on state.
        self.in_adf = False
        self.current_ef: int | None = None
        self.challenge: bytes | None = None
        self._challenge_in_use: bytes | None = None
        self.pending: dict[str, Any] | None = None
        self.pin_ok = False

    # -- construction and state -------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        card_file_0015: Card0015,
        keys: CardKeys,
        alg: Alg,
        pin: str = DEFAULT_PIN,
        balance: int = 0,
        card_file_0016: Card0016 | None = None,
        overdraft_limit: int = 0,
        key_version: int = 1,
    ) -> SoftCard:
        """A personalised card with ``balance`` fen (0 for a debit card); saved at once."""
        if card_file_0015.card_type == CardType.DEBIT and balance:
            raise ValueError("a debit card (记账卡) holds no balance")
        if not 0 <= balance <= MAX_BALANCE:
            raise ValueError(f"balance must be between 0 and {MAX_BALANCE} fen")
        card = cls(
            cls._new_path(path),
            alg=alg,
            keys=keys,
            f0015=card_file_0015.encode(),
            f0016=card_file_0016.encode() if card_file_0016 else bytes(Card0016.LENGTH),
            f0019=Card0019().encode(),
            balance=balance,
            offline_atc=0,
            online_atc=0,
            overdraft_limit=overdraft_limit,
            log=[],
            pin=_checked_pin(pin),
            pin_tries_left=PIN_TRIES,
            key_version=key_version,
            key_index=default_key_index(alg),
        )
        card.save()
        return card

    @classmethod
    def blank(
        cls,
        path: str | os.PathLike[str],
        *,
        internal_no: str,
        network: str,
        keys: CardKeys,
        alg: Alg,
        pin: str = DEFAULT_PIN,
        key_version: int = 1,
    ) -> SoftCard:
        """A unit in stock: files zeroed except the card number in 0015; keys loaded."""
        card = cls(
            cls._new_path(path),
            alg=alg,
            keys=keys,
            f0015=blank_0015(network, internal_no),
            f0016=bytes(Card0016.LENGTH),
            f0019=Card0019().encode(),
            balance=0,
            offline_atc=0,
            online_atc=0,
            overdraft_limit=0,
            log=[],
            pin=_checked_pin(pin),
            pin_tries_left=PIN_TRIES,
            key_version=key_version,
            key_index=default_key_index(alg),
        )
        card.save()
        return card

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SoftCard:
        target, state = cls._load_state(path)
        try:
            purse = state["purse"]
            keys = state["keys"]
            files = state["files"]
            return cls(
                target,
                alg=Alg(state["alg"]),
                keys=CardKeys(
                    dpk=bytes.fromhex(keys["dpk"]),
                    dlk=bytes.fromhex(keys["dlk"]),
                    dtk=bytes.fromhex(keys["dtk"]),
                    damk=bytes.fromhex(keys["damk"]),
                ),
                f0015=_hex(files, "0015", Card0015.LENGTH),
                f0016=_hex(files, "0016", Card0016.LENGTH),
                f0019=_hex(files, "0019", Card0019.LENGTH),
                balance=int(purse["balance"]),
                offline_atc=int(purse["offline_atc"]),
                online_atc=int(purse["online_atc"]),
                overdraft_limit=int(purse["overdraft_limit"]),
                log=[bytes.fromhex(item) for item in state["log"]],
                pin=str(state["pin"]),
                pin_tries_left=int(state["pin_tries_left"]),
                key_version=int(state["key_version"]),
                key_index=int(state["key_index"]),
                last_prove=state.get("last_prove"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StateFileError(f"{target}: malformed card state ({error})") from None

    def state(self) -> dict[str, Any]:
        return {
            "alg": self.alg.value,
            "files": {
                "0015": hexu(bytes(self.adf_files[SFI_0015])),
                "0016": hexu(bytes(self.mf_files[SFI_0016])),
                "0019": hexu(self.f0019),
            },
            "purse": {
                "balance": self.balance,
                "offline_atc": self.offline_atc,
                "online_atc": self.online_atc,
                "overdraft_limit": self.overdraft_limit,
            },
            "log": [hexu(record) for record in self.log],
            "keys": {
                "dpk": hexu(self.keys.dpk),
                "dlk": hexu(self.keys.dlk),
                "dtk": hexu(self.keys.dtk),
                "damk": hexu(self.keys.damk),
            },
            "pin": self.pin,
            "pin_tries_left": self.pin_tries_left,
            "key_version": self.key_version,
            "key_index": self.key_index,
            "last_prove": self.last_prove,
        }

    def describe(self) -> dict[str, Any]:
        """Readable JSON-ready state without key material or the PIN."""
        raw0015 = bytes(self.adf_files[SFI_0015])
        return {
            "device": self.KIND,
            "card_no": card_no_of(raw0015),
            "alg": self.alg.value,
            "key_index": f"{self.key_index:02X}",
            "key_version": self.key_version,
            "file_0015": None if is_blank_0015(raw0015) else _decoded(Card0015.decode, raw0015),
            "file_0016": _decoded(Card0016.decode, bytes(self.mf_files[SFI_0016])),
            "file_0019": _decoded(Card0019.decode, self.f0019),
            "balance_fen": self.balance,
            "offline_atc": self.offline_atc,
            "online_atc": self.online_atc,
            "overdraft_limit_fen": self.overdraft_limit,
            "pin_tries_left": self.pin_tries_left,
            "log": [_decoded(PurseLogRecord.decode, record) for record in self.log],
        }

    @property
    def card_no(self) -> str:
        return card_no_of(bytes(self.adf_files[SFI_0015]))

    @property
    def is_debit(self) -> bool:
        return self.adf_files[SFI_0015][8] == CardType.DEBIT

    def reformat_blank(self) -> None:
        """Recycling: back to a unit in stock (files zeroed, card number kept).

        Counters and keys stay (an ATC never goes back); the log is cleared. Refused
        while the purse holds money: the center moves or refunds it first."""
        if self.balance:
            raise ValueError(f"the card still holds {self.balance} fen; move or refund it first")
        raw0015 = bytes(self.adf_files[SFI_0015])
        self.adf_files[SFI_0015] = bytearray(
            blank_0015(card_no_of(raw0015)[:4], card_no_of(raw0015)[4:])
        )
        self.mf_files[SFI_0016] = bytearray(Card0016.LENGTH)
        self.f0019 = Card0019().encode()
        self.log = []
        self.pin_tries_left = PIN_TRIES
        self.save()

    # -- dispatch ---------------------------------------------------------------------

    def process(self, command: Command) -> Response:
        # A pending purchase survives only UPDATE CAPP DATA CACHE and the DEBIT; a
        # pending load only the CREDIT. A challenge is good for the next command only.
        self._challenge_in_use, self.challenge = self.challenge, None
        keeps_pending = (command.cla, command.ins) in ((0x80, 0xDC), (0x80, 0x54), (0x80, 0x52))
        if not keeps_pending:
            self.pending = None
        return super().process(command)

    def _power_state_reset_after_error(self) -> None:
        self.challenge = None
        self.pending = None

    def _files(self) -> dict[int, bytearray]:
        return self.adf_files if self.in_adf else self.mf_files

    def _select(self, command: Command) -> Response:
        if command.p1 != 0x00 or command.p2 not in (0x00, 0x0C):
            return _sw(0x6A86)
        if command.case not in (3, 4) or len(command.data) != 2:
            return _sw(0x6700)
        fid = int.from_bytes(command.data, "big")
        fcp = b"" if command.p2 == 0x0C else _fcp(fid)
        if fid == FID_MF:
            self.in_adf, self.current_ef, self.pin_ok = False, None, False
            return _sw(OK, fcp)
        if fid == FID_ADF:
            self.in_adf, self.current_ef, self.pin_ok = True, None, False
            return _sw(OK, fcp)
        if fid in (0x0015, 0x0016) and fid in self._files():
            self.current_ef = fid
            return _sw(OK, fcp)
        return _sw(0x6A82)

    def _read_binary(self, command: Command) -> Response:
        if command.p1 & 0x80 and (command.p1 & 0x1F) == SFI_0019 and self.in_adf:
            return _sw(0x6981)
        return _binary_read(self._files(), command, self.current_ef)

    def _read_record(self, command: Command) -> Response:
        if command.p2 & 0x07 != 0x04:
            return _sw(0x6A86)
        sfi = command.p2 >> 3
        if not self.in_adf or sfi not in (SFI_0019, SFI_LOG):
            return _sw(0x6A82)
        if command.case != 2 or command.le is None:
            return _sw(0x6700)
        records = [self.f0019] if sfi == SFI_0019 else self.log
        if not 1 <= command.p1 <= len(records):
            return _sw(0x6A83)
        record = records[command.p1 - 1]
        if command.le not in (len(record), 256):
            return _sw(0x6C00 | len(record))
        return _sw(OK, record)

    def _get_challenge(self, command: Command) -> Response:
        response, self.challenge = _get_challenge(self, command)
        return response

    def _verify(self, command: Command) -> Response:
        if command.p1 != 0x00 or command.p2 != 0x00:
            return _sw(0x6A86)
        if command.case != 3 or not 2 <= len(command.data) <= 12:
            return _sw(0x6700)
        if self.pin_tries_left <= 0:
            return _sw(0x6983)
        if hmac.compare_digest(command.data, self.pin.encode("ascii")):
            self.pin_ok = True
            if self.pin_tries_left != PIN_TRIES:
                self.pin_tries_left = PIN_TRIES
                self.save()
            return _sw(OK)
        self.pin_ok = False
        self.pin_tries_left -= 1
        self.save()
        return _sw(0x63C0 | self.pin_tries_left)

    def _get_balance(self, command: Command) -> Response:
        if command.p1 != 0x00 or command.p2 != 0x02:
            return _sw(0x6A86)
        if command.case != 2 or command.le != 4:
            return _sw(0x6700)
        if not self.in_adf:
            return _sw(0x6985)
        return _sw(OK, self.balance.to_bytes(4, "big"))

    def _initialize(self, command: Command) -> Response:
        if command.p2 != 0x02 or command.p1 not in (0x00, 0x01, 0x03):
            return _sw(0x6A86)
        expected_le = 0x10 if command.p1 == 0x00 else 0x0F
        if command.case != 4 or len(command.data) != 11 or command.le not in (expected_le, 256):
            return _sw(0x6700)
        if not self.in_adf:
            return _sw(0x6985)
        key_index = command.data[0]
        amount = int.from_bytes(command.data[1:5], "big")
        terminal = command.data[5:11]
        if key_index != self.key_index:
            return _sw(0x9403)
        if command.p1 == 0x00:
            return self._initialize_load(amount, terminal)
        if self.offline_atc >= 0xFFFF:
            return _sw(0x9402)
        if amount > self.balance:
            return _sw(0x9401)
        random = self.random(4)
        self.pending = {
            "kind": "purchase",
            "trans_type": TRANS_COMPOSITE if command.p1 == 0x03 else TRANS_PURCHASE,
            "amount": amount,
            "terminal": terminal,
            "random": random,
            "atc": self.offline_atc,
            "cache": None,
        }
        return _sw(
            OK,
            self.balance.to_bytes(4, "big")
            + self.offline_atc.to_bytes(2, "big")
            + self.overdraft_limit.to_bytes(3, "big")
            + bytes((self.key_version, self.alg.card_alg_id))
            + random,
        )

    def _initialize_load(self, amount: int, terminal: bytes) -> Response:
        if self.is_debit:
            return _sw(0x6A81)
        if not self.pin_ok:
            return _sw(0x6982)
        if self.online_atc >= 0xFFFF:
            return _sw(0x9402)
        if amount == 0 or self.balance + amount > MAX_BALANCE:
            return _sw(0x6A80)
        random = self.random(4)
        session_key = crypto.load_session_key(self.alg, self.keys.dlk, random, self.online_atc)
        mac1 = crypto.load_mac1(
            self.alg, session_key, self.balance, amount, LOAD_TRANS_TYPE, terminal
        )
        self.pending = {
            "kind": "load",
            "amount": amount,
            "terminal": terminal,
            "session_key": session_key,
            "atc": self.online_atc,
        }
        return _sw(
            OK,
            self.balance.to_bytes(4, "big")
            + self.online_atc.to_bytes(2, "big")
            + bytes((self.key_version, self.alg.card_alg_id))
            + random
            + mac1,
        )

    def _update_capp_cache(self, command: Command) -> Response:
        pending = self.pending
        if command.p1 != 0xAA or command.p2 != (SFI_0019 << 3):
            return _sw(0x6A86)
        if command.case != 3 or len(command.data) != Card0019.LENGTH:
            return _sw(0x6700)
        if pending is None or pending["kind"] != "purchase":
            return _sw(0x6985)
        if pending["trans_type"] != TRANS_COMPOSITE:
            self.pending = None
            return _sw(0x6985)
        if command.data[0] != 0xAA:
            return _sw(0x6A80)
        pending["cache"] = command.data
        return _sw(OK)

    def _debit(self, command: Command) -> Response:
        pending, self.pending = self.pending, None
        if command.p1 != 0x01 or command.p2 != 0x00:
            return _sw(0x6A86)
        if command.case not in (3, 4) or len(command.data) != 15:
            return _sw(0x6700)
        if pending is None or pending["kind"] != "purchase":
            return _sw(0x6985)
        seq, date4, time3, mac1 = (
            command.data[0:4],
            command.data[4:8],
            command.data[8:11],
            command.data[11:15],
        )
        when = _when(date4, time3)
        if when is None:
            return _sw(0x6A80)
        amount, trans_type, terminal = pending["amount"], pending["trans_type"], pending["terminal"]
        session_key = crypto.purchase_session_key(
            self.alg, self.keys.dpk, pending["random"], pending["atc"], seq
        )
        expected = crypto.purchase_mac1(self.alg, session_key, amount, trans_type, terminal, when)
        if not hmac.compare_digest(expected, mac1):
            return _sw(0x9302)
        if amount > self.balance:
            return _sw(0x9401)
        self.balance -= amount
        self.offline_atc += 1
        self._log(pending["atc"], amount, trans_type, terminal, when)
        if pending["cache"] is not None:
            self.f0019 = pending["cache"]
        mac2 = crypto.purchase_mac2(self.alg, session_key, amount)
        tac = crypto.purchase_tac(self.alg, self.keys.dtk, amount, trans_type, terminal, seq, when)
        self.last_prove = {
            "atc": pending["atc"],
            "trans_type": trans_type,
            "mac2": hexu(mac2),
            "tac": hexu(tac),
        }
        self.save()
        return _sw(OK, tac + mac2)

    def _get_transaction_prove(self, command: Command) -> Response:
        """GET TRANSACTION PROVE (PBOC 805A): P2 the transaction type, data the ATC
        of the purchase; MAC2 and TAC of that purchase, or 9406 when the card no
        longer holds them (only the last purchase's are kept)."""
        if command.p1 != 0x00:
            return _sw(0x6A86)
        if command.case not in (3, 4) or len(command.data) != 2:
            return _sw(0x6700)
        if not self.in_adf:
            return _sw(0x6985)
        proof = self.last_prove
        atc = int.from_bytes(command.data, "big")
        if proof is None or proof["atc"] != atc or proof["trans_type"] != command.p2:
            return _sw(0x9406)
        return _sw(OK, bytes.fromhex(proof["mac2"]) + bytes.fromhex(proof["tac"]))

    def _credit(self, command: Command) -> Response:
        pending, self.pending = self.pending, None
        if command.p1 != 0x00 or command.p2 != 0x00:
            return _sw(0x6A86)
        if command.case not in (3, 4) or len(command.data) != 11:
            return _sw(0x6700)
        if pending is None or pending["kind"] != "load":
            return _sw(0x6985)
        when = _when(command.data[0:4], command.data[4:7])
        if when is None:
            return _sw(0x6A80)
        amount, terminal, atc = pending["amount"], pending["terminal"], pending["atc"]
        expected = crypto.load_mac2(
            self.alg, pending["session_key"], amount, LOAD_TRANS_TYPE, terminal, when
        )
        if not hmac.compare_digest(expected, command.data[7:11]):
            return _sw(0x9302)
        self.balance += amount
        self.online_atc += 1
        self._log(atc, amount, LOAD_TRANS_TYPE, terminal, when)
        self.save()
        tac = crypto.load_tac(
            self.alg, self.keys.dtk, self.balance, atc, amount, LOAD_TRANS_TYPE, terminal, when
        )
        return _sw(OK, tac)

    def _log(
        self, atc: int, amount: int, trans_type: int, terminal: bytes, when: datetime.datetime
    ) -> None:
        record = PurseLogRecord(
            atc=atc,
            overdraft_limit=self.overdraft_limit,
            amount=amount,
            trans_type=trans_type,
            terminal=terminal,
            when=when,
        ).encode()
        self.log = [record, *self.log][:LOG_RECORDS]

    def _update_binary(self, command: Command) -> Response:
        response, changed = _secure_write(
            self._files(),
            command,
            self.current_ef,
            challenge=self._challenge_in_use,
            alg=self.alg,
            key=self.keys.damk,
        )
        if changed:
            self.save()
        return response

    _challenge_in_use: bytes | None = None


def _checked_pin(pin: str) -> str:
    if not (isinstance(pin, str) and pin.isascii() and pin.isdigit() and 2 <= len(pin) <= 12):
        raise ValueError("a PIN is 2 to 12 ASCII digits")
    return pin


class SoftObu(_Device):
    """An OBU ESAM: MF/EF01 system file (with the tamper flag at byte 26) and
    DF01/EF01 vehicle file, updated by secure messaging with the OBU's update key;
    DF01/EF04, the cumulative fee file lanes write with a plain UPDATE BINARY."""

    KIND = "obu"
    COMMANDS: ClassVar[dict[int, tuple[int, str]]] = {
        0xA4: (0x00, "_select"),
        0xB0: (0x00, "_read_binary"),
        0x84: (0x00, "_get_challenge"),
        0xD6: (0x04, "_update_binary"),
    }
    #: The system file as read (27 meaningful bytes, the rest reserved; §2.1).
    SYSTEM_SIZE = 99
    #: DF01/EF04: the fee block at 314 and the province block up to 485 (§2.4).
    FEE_FILE_SIZE = 512

    def __init__(
        self,
        path: Path,
        *,
        alg: Alg,
        update_key: bytes,
        system: bytes,
        vehicle: bytes,
        fee_file: bytes | None = None,
    ) -> None:
        super().__init__(path)
        self.alg = alg
        self.update_key = update_key
        self.mf_files: dict[int, bytearray] = {1: bytearray(system)}
        self.df_files: dict[int, bytearray] = {
            1: bytearray(vehicle),
            4: bytearray(fee_file if fee_file is not None else bytes(self.FEE_FILE_SIZE)),
        }
        self.in_df = False
        self.current_ef: int | None = None
        self.challenge: bytes | None = None
        self._challenge_in_use: bytes | None = None

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        system: ObuSystemFile,
        vehicle: ObuVehicleFile | None,
        update_key: bytes,
        alg: Alg,
    ) -> SoftObu:
        raw = system.encode()
        obu = cls(
            cls._new_path(path),
            alg=alg,
            update_key=_key16(update_key),
            system=raw + bytes(cls.SYSTEM_SIZE - len(raw)),
            vehicle=vehicle.encode() if vehicle else bytes(ObuVehicleFile.LENGTH),
        )
        obu.save()
        return obu

    @classmethod
    def blank(
        cls, path: str | os.PathLike[str], *, contract_serial: str, update_key: bytes, alg: Alg
    ) -> SoftObu:
        """A unit in stock: files zeroed except the contract serial; not activated."""
        raw = blank_obu_system(contract_serial)
        obu = cls(
            cls._new_path(path),
            alg=alg,
            update_key=_key16(update_key),
            system=raw + bytes(cls.SYSTEM_SIZE - len(raw)),
            vehicle=bytes(ObuVehicleFile.LENGTH),
        )
        obu.save()
        return obu

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SoftObu:
        target, state = cls._load_state(path)
        try:
            files = state["files"]
            return cls(
                target,
                alg=Alg(state["alg"]),
                update_key=_hex(state["keys"], "update", 16),
                system=_hex(files, "system", cls.SYSTEM_SIZE),
                vehicle=_hex(files, "vehicle", ObuVehicleFile.LENGTH),
                # State files written before EF04 existed read as a never-written one.
                fee_file=_hex(files, "fee", cls.FEE_FILE_SIZE) if "fee" in files else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StateFileError(f"{target}: malformed OBU state ({error})") from None

    def state(self) -> dict[str, Any]:
        return {
            "alg": self.alg.value,
            "files": {
                "system": hexu(bytes(self.mf_files[1])),
                "vehicle": hexu(bytes(self.df_files[1])),
                "fee": hexu(bytes(self.df_files[4])),
            },
            "keys": {"update": hexu(self.update_key)},
        }

    @property
    def contract_serial(self) -> str:
        return bytes(self.mf_files[1][10:18]).hex()

    @property
    def tamper_flag(self) -> int:
        return self.mf_files[1][ObuSystemFile.TAMPER_OFFSET]

    def describe(self) -> dict[str, Any]:
        system = bytes(self.mf_files[1][: ObuSystemFile.LENGTH])
        return {
            "device": self.KIND,
            "obu_no": self.contract_serial,
            "alg": self.alg.value,
            "system_file": None
            if is_blank_obu_system(system)
            else _decoded(ObuSystemFile.decode, system),
            "vehicle_file": _decoded(ObuVehicleFile.decode, bytes(self.df_files[1])),
            "fee_file": _decoded(ObuFeeFile.decode, self._fee_block())
            if any(self._fee_block())
            else None,
            "tamper_flag": f"{self.tamper_flag:02X}",
            "activated": self.tamper_flag == 0x01,
        }

    def reformat_blank(self) -> None:
        """Recycling: files zeroed (contract serial kept), tamper flag 00."""
        raw = blank_obu_system(self.contract_serial)
        self.mf_files[1] = bytearray(raw + bytes(self.SYSTEM_SIZE - len(raw)))
        self.df_files[1] = bytearray(ObuVehicleFile.LENGTH)
        self.df_files[4] = bytearray(self.FEE_FILE_SIZE)
        self.save()

    def _fee_block(self) -> bytes:
        at = ObuFeeFile.OFFSET
        return bytes(self.df_files[4][at : at + ObuFeeFile.LENGTH])

    def process(self, command: Command) -> Response:
        self._challenge_in_use, self.challenge = self.challenge, None
        if command.ins == 0xD6 and command.cla == 0x00:
            return self._plain_update(command)
        return super().process(command)

    def _plain_update(self, command: Command) -> Response:
        """UPDATE BINARY without line protection: EF04 only (a lane writes the fee
        block); any other file answers 6982, security status not satisfied."""
        if command.p1 & 0x80:
            if command.p1 & 0x60:
                return _sw(0x6A86)
            sfi, offset = command.p1 & 0x1F, command.p2
        else:
            if self.current_ef is None:
                return _sw(0x6986)
            sfi, offset = self.current_ef, (command.p1 << 8) | command.p2
        if not self.in_df or sfi != 4:
            return _sw(0x6982)
        if command.case != 3 or not command.data:
            return _sw(0x6700)
        content = self.df_files[4]
        if offset + len(command.data) > len(content):
            return _sw(0x6B00)
        content[offset : offset + len(command.data)] = command.data
        self.save()
        return _sw(OK)

    def _power_state_reset_after_error(self) -> None:
        self.challenge = None

    def _select(self, command: Command) -> Response:
        if command.p1 != 0x00 or command.p2 not in (0x00, 0x0C):
            return _sw(0x6A86)
        if command.case not in (3, 4) or len(command.data) != 2:
            return _sw(0x6700)
        fid = int.from_bytes(command.data, "big")
        fcp = b"" if command.p2 == 0x0C else _fcp(fid)
        if fid == FID_MF:
            self.in_df, self.current_ef = False, None
        elif fid == FID_OBU_DF:
            self.in_df, self.current_ef = True, None
        elif fid == 0xEF01:
            self.current_ef = 1
        elif fid == 0xEF04 and self.in_df:
            self.current_ef = 4
        else:
            return _sw(0x6A82)
        return _sw(OK, fcp)

    def _files(self) -> dict[int, bytearray]:
        return self.df_files if self.in_df else self.mf_files

    def _read_binary(self, command: Command) -> Response:
        return _binary_read(self._files(), command, self.current_ef)

    def _get_challenge(self, command: Command) -> Response:
        response, self.challenge = _get_challenge(self, command)
        return response

    def _update_binary(self, command: Command) -> Response:
        response, changed = _secure_write(
            self._files(),
            command,
            self.current_ef,
            challenge=self._challenge_in_use,
            alg=self.alg,
            key=self.update_key,
        )
        if changed:
            self.save()
        return response


def _key16(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != 16:
        raise ValueError("a key is 16 bytes")
    return key


class SoftPsam(_Device):
    """A lane PSAM: terminal number (file 0016), terminal transaction sequence, and the
    purchase master keys, from which it derives each card's DPK to compute MAC1 (8070)
    and check MAC2 (8072). It never holds load, TAC or maintenance keys."""

    KIND = "psam"
    COMMANDS: ClassVar[dict[int, tuple[int, str]]] = {
        0xA4: (0x00, "_select"),
        0xB0: (0x00, "_read_binary"),
        0x70: (0x80, "_init_mac1"),
        0x72: (0x80, "_verify_mac2"),
    }

    def __init__(
        self,
        path: Path,
        *,
        terminal_no: bytes,
        sequence: int,
        purchase_keys: dict[tuple[Alg, int], bytes],
    ) -> None:
        super().__init__(path)
        self.terminal_no = terminal_no
        self.sequence = sequence
        self.purchase_keys = purchase_keys
        self.pending: dict[str, Any] | None = None

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        terminal_no: bytes,
        purchase_keys: dict[tuple[Alg, int], bytes],
        sequence: int = 1,
    ) -> SoftPsam:
        """A PSAM with its terminal number and purchase master keys by (alg, key version)."""
        if not isinstance(terminal_no, bytes) or len(terminal_no) != 6:
            raise ValueError("a terminal number is 6 bytes")
        if not 0 <= sequence <= 0xFFFFFFFF:
            raise ValueError("the terminal transaction sequence is 4 bytes")
        psam = cls(
            cls._new_path(path),
            terminal_no=terminal_no,
            sequence=sequence,
            purchase_keys={key: _key16(value) for key, value in purchase_keys.items()},
        )
        psam.save()
        return psam

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SoftPsam:
        target, state = cls._load_state(path)
        try:
            keys = {
                (Alg(entry["alg"]), int(entry["key_version"])): _hex(entry, "master", 16)
                for entry in state["purchase_keys"]
            }
            return cls(
                target,
                terminal_no=_hex(state, "terminal_no", 6),
                sequence=int(state["sequence"]),
                purchase_keys=keys,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StateFileError(f"{target}: malformed PSAM state ({error})") from None

    def state(self) -> dict[str, Any]:
        return {
            "terminal_no": hexu(self.terminal_no),
            "sequence": self.sequence,
            "purchase_keys": [
                {"alg": alg.value, "key_version": version, "master": hexu(master)}
                for (alg, version), master in sorted(
                    self.purchase_keys.items(), key=lambda item: (item[0][0].value, item[0][1])
                )
            ],
        }

    def describe(self) -> dict[str, Any]:
        return {
            "device": self.KIND,
            "terminal_no": hexu(self.terminal_no),
            "sequence": self.sequence,
            "purchase_keys": [
                {"alg": alg.value, "key_version": version}
                for alg, version in sorted(
                    self.purchase_keys, key=lambda item: (item[0].value, item[1])
                )
            ],
        }

    def _select(self, command: Command) -> Response:
        if command.p1 != 0x00 or command.p2 not in (0x00, 0x0C):
            return _sw(0x6A86)
        if command.case not in (3, 4) or len(command.data) != 2:
            return _sw(0x6700)
        fid = int.from_bytes(command.data, "big")
        if fid not in (FID_MF, FID_ADF, FID_OBU_DF):
            return _sw(0x6A82)
        return _sw(OK, b"" if command.p2 == 0x0C else _fcp(fid))

    def _read_binary(self, command: Command) -> Response:
        return _binary_read({SFI_0016: bytearray(self.terminal_no)}, command, None)

    def _init_mac1(self, command: Command) -> Response:
        self.pending = None
        if command.p1 != 0x00 or command.p2 != 0x00:
            return _sw(0x6A86)
        if command.case not in (3, 4) or len(command.data) != 0x24:
            return _sw(0x6700)
        data = command.data
        random, atc, amount = data[0:4], data[4:6], int.from_bytes(data[6:10], "big")
        trans_type = data[10]
        when = _when(data[11:15], data[15:18])
        key_version, alg_id = data[18], data[19]
        serial, factor = data[20:28], data[28:36]
        if when is None:
            return _sw(0x6A80)
        try:
            alg = Alg.from_card_alg_id(alg_id)
        except ValueError:
            return _sw(0x9403)
        master = self.purchase_keys.get((alg, key_version))
        if master is None:
            return _sw(0x9403)
        if self.sequence > 0xFFFFFFFF:
            return _sw(0x9402)
        seq = self.sequence.to_bytes(4, "big")
        dpk = crypto.derive(alg, master, factor, serial)
        session_key = crypto.purchase_session_key(alg, dpk, random, atc, seq)
        mac1 = crypto.purchase_mac1(alg, session_key, amount, trans_type, self.terminal_no, when)
        self.sequence += 1
        self.save()
        self.pending = {"alg": alg, "session_key": session_key, "amount": amount}
        return _sw(OK, seq + mac1)

    def _verify_mac2(self, command: Command) -> Response:
        pending, self.pending = self.pending, None
        if command.p1 != 0x00 or command.p2 != 0x00:
            return _sw(0x6A86)
        if command.case != 3 or len(command.data) != 4:
            return _sw(0x6700)
        if pending is None:
            return _sw(0x6985)
        expected = crypto.purchase_mac2(pending["alg"], pending["session_key"], pending["amount"])
        if not hmac.compare_digest(expected, command.data):
            return _sw(0x6988)
        return _sw(OK)


Device = SoftCard | SoftObu | SoftPsam


def load_device(path: str | os.PathLike[str]) -> Device:
    """Load whichever device the state file holds."""
    target = Path(path)
    kind = _read_state(target).get("device")
    loaders: dict[str, Callable[[str | os.PathLike[str]], Device]] = {
        SoftCard.KIND: SoftCard.load,
        SoftObu.KIND: SoftObu.load,
        SoftPsam.KIND: SoftPsam.load,
    }
    loader = loaders.get(str(kind))
    if loader is None:
        raise StateFileError(f"{target}: unknown device kind {kind!r}")
    return loader(target)
