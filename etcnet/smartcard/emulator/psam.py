"""The lane PSAM: terminal number, sequence and the purchase MAC1/MAC2."""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any, ClassVar

from etcnet.smartcard import crypto
from etcnet.smartcard.apdu import Command, Response
from etcnet.smartcard.codec import hexu
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.emulator._base import (
    FID_ADF,
    FID_MF,
    FID_OBU_DF,
    OK,
    SFI_0016,
    StateFileError,
    _binary_read,
    _Device,
    _fcp,
    _hex,
    _key16,
    _sw,
    _when,
)


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
