"""The OBU ESAM: system and vehicle files by secure messaging, the fee file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from etcnet.smartcard.apdu import Command, Response
from etcnet.smartcard.codec import hexu
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.emulator._base import (
    FID_MF,
    FID_OBU_DF,
    OK,
    StateFileError,
    _binary_read,
    _decoded,
    _Device,
    _fcp,
    _get_challenge,
    _hex,
    _key16,
    _secure_write,
    _sw,
)
from etcnet.smartcard.files import (
    ObuFeeFile,
    ObuSystemFile,
    ObuVehicleFile,
    blank_obu_system,
    is_blank_obu_system,
)


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
