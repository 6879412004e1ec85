"""The user card (储值卡 / 记账卡): files, e-purse, PIN and transaction log."""

from __future__ import annotations

import datetime
import hmac
import os
from pathlib import Path
from typing import Any, ClassVar

from etcnet.core.codes import CardType
from etcnet.smartcard import crypto
from etcnet.smartcard.apdu import Command, Response
from etcnet.smartcard.codec import hexu
from etcnet.smartcard.crypto import LOAD_TRANS_TYPE, Alg, CardKeys
from etcnet.smartcard.emulator._base import (
    DEFAULT_PIN,
    FID_ADF,
    FID_MF,
    LOG_RECORDS,
    MAX_BALANCE,
    OK,
    PIN_TRIES,
    SFI_0015,
    SFI_0016,
    SFI_0019,
    SFI_LOG,
    TRANS_COMPOSITE,
    TRANS_PURCHASE,
    StateFileError,
    _binary_read,
    _checked_pin,
    _decoded,
    _Device,
    _fcp,
    _get_challenge,
    _hex,
    _secure_write,
    _sw,
    _when,
    default_key_index,
)
from etcnet.smartcard.files import (
    Card0015,
    Card0016,
    Card0019,
    PurseLogRecord,
    blank_0015,
    card_no_of,
    is_blank_0015,
)


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
