"""OBU files: the system file, the vehicle file and the fee file (ETC.md Part 2
§2.1–§2.2).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Self

from etcnet.core.codes import CodeEnum, PlateColor, VehicleClass
from etcnet.smartcard.codec import (
    FileFormatError,
    bcd_decode,
    bcd_encode,
    decode_ascii,
    decode_bcd_date,
    decode_text,
    encode_ascii,
    encode_text,
    uint_decode,
    uint_encode,
)
from etcnet.smartcard.files._base import (
    CAPP_RECORD_ID,
    _code,
    _date,
    _need_len,
    _raw_bytes,
)
from etcnet.smartcard.files.card import Card0019


class TamperFlag(CodeEnum):
    """拆卸状态, OBU system file byte 26 — etcnet's profile (docs/smartcard.md).

    00: not activated, or removed from the windscreen since activation (lanes refuse
    it: "OBU防拆失效"); 01: installed and activated by the issuer."""

    NOT_ACTIVE = (0x00, "未激活或已拆卸", "not activated, or removed since activation")
    ACTIVE = (0x01, "已激活", "installed and activated")


def is_blank_obu_system(raw: bytes) -> bool:
    """True for a unit in stock: nothing but the contract serial in the system file."""
    return not any(raw[:10]) and not any(raw[18 : ObuSystemFile.LENGTH])


def blank_obu_system(contract_serial: str) -> bytes:
    """A unit in stock: a zeroed 27-byte system file carrying only its contract serial."""
    raw = bytearray(ObuSystemFile.LENGTH)
    raw[10:18] = bcd_encode(contract_serial, 8, field="contract_serial")
    return bytes(raw)


@dataclass(frozen=True)
class ObuSystemFile:
    """MF/EF01 系统信息文件 (§2.1): 27 meaningful bytes."""

    issuer_id: bytes
    contract_type: int
    contract_version: int
    contract_serial: str
    signed_date: datetime.date
    expiry_date: datetime.date
    tamper_flag: TamperFlag = TamperFlag.NOT_ACTIVE

    LENGTH = 27
    TAMPER_OFFSET = 26

    @property
    def obu_no(self) -> str:
        """The OBU number: the 16-digit contract serial (合同序列号)."""
        return self.contract_serial

    @property
    def serial(self) -> bytes:
        """The contract serial as 8 BCD bytes: the OBU keys' diversification factor."""
        return bcd_encode(self.contract_serial, 8, field="contract_serial")

    def encode(self) -> bytes:
        raw = b"".join(
            (
                _raw_bytes(self.issuer_id, 8, name="issuer_id"),
                uint_encode(self.contract_type, 1, field="contract_type"),
                uint_encode(self.contract_version, 1, field="contract_version"),
                bcd_encode(self.contract_serial, 8, field="contract_serial"),
                _date(self.signed_date, name="signed_date"),
                _date(self.expiry_date, name="expiry_date"),
                uint_encode(
                    _code(TamperFlag, self.tamper_flag, name="tamper_flag"), 1, field="tamper_flag"
                ),
            )
        )
        if self.expiry_date < self.signed_date:
            raise FileFormatError("expiry_date", "must not be before signed_date")
        return raw

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        raw = _need_len(raw, cls.LENGTH, "EF01", at_least=True)
        return cls(
            issuer_id=raw[0:8],
            contract_type=raw[8],
            contract_version=raw[9],
            contract_serial=bcd_decode(raw[10:18], field="contract_serial"),
            signed_date=decode_bcd_date(raw[18:22], field="signed_date"),
            expiry_date=decode_bcd_date(raw[22:26], field="expiry_date"),
            tamper_flag=_code(TamperFlag, raw[26], name="tamper_flag"),
        )


_EMPTY_MASS = 0xFFFFFF


@dataclass(frozen=True)
class ObuVehicleFile:
    """DF01/EF01 车辆信息文件 (§2.2), 79 bytes, in one of two layouts.

    ``layout`` follows the class: 2015 (passenger, dimensions in decimetres stored
    from ``*_mm`` that must be whole decimetres) for classes below 0x0B, 2019
    (truck / special vehicle, millimetres, masses in kg, VIN) from 0x0B. Fields of the
    other layout must keep their defaults; ``total_mass_kg`` None is ``FFFFFF``."""

    plate: str
    plate_color: PlateColor
    vehicle_class: VehicleClass
    user_type: int = 0
    length_mm: int = 0
    width_mm: int = 0
    height_mm: int = 0
    description: str = ""
    # 2015 (passenger) only
    wheels: int = 0
    axles: int = 0
    wheelbase_dm: int = 0
    load_or_seats: int = 0
    engine_no: str = ""
    # 2019 (truck / special) only
    approved_load_kg: int = 0
    curb_weight_kg: int = 0
    total_mass_kg: int | None = field(default=None)
    seats: int = 0
    vin: str = ""

    LENGTH = 79
    _ONLY_2015 = ("wheels", "axles", "wheelbase_dm", "load_or_seats", "engine_no")
    _ONLY_2019 = ("approved_load_kg", "curb_weight_kg", "total_mass_kg", "seats", "vin")

    @property
    def layout(self) -> Literal[2015, 2019]:
        return 2019 if int(self.vehicle_class) >= 0x0B else 2015

    @classmethod
    def from_vehicle(
        cls,
        *,
        plate: str,
        plate_color: PlateColor,
        vehicle_class: VehicleClass,
        user_type: int = 0,
        length_mm: int = 0,
        width_mm: int = 0,
        height_mm: int = 0,
        description: str = "",
        wheels: int = 0,
        axles: int = 0,
        wheelbase_dm: int = 0,
        seats: int = 0,
        engine_no: str = "",
        approved_load_kg: int = 0,
        curb_weight_kg: int = 0,
        total_mass_kg: int | None = None,
        vin: str = "",
    ) -> Self:
        """The file for a vehicle, whatever its class: picks the layout, keeps only that
        layout's fields and, for the 2015 layout, rounds dimensions to the nearest
        decimetre (half up) and stores the seats in ``load_or_seats``."""
        if int(vehicle_class) >= 0x0B:
            return cls(
                plate=plate,
                plate_color=plate_color,
                vehicle_class=vehicle_class,
                user_type=user_type,
                length_mm=length_mm,
                width_mm=width_mm,
                height_mm=height_mm,
                description=description,
                approved_load_kg=approved_load_kg,
                curb_weight_kg=curb_weight_kg,
                total_mass_kg=total_mass_kg,
                seats=seats,
                vin=vin,
            )
        return cls(
            plate=plate,
            plate_color=plate_color,
            vehicle_class=vehicle_class,
            user_type=user_type,
            length_mm=(length_mm + 50) // 100 * 100,
            width_mm=(width_mm + 50) // 100 * 100,
            height_mm=(height_mm + 50) // 100 * 100,
            description=description,
            wheels=wheels,
            axles=axles,
            wheelbase_dm=wheelbase_dm,
            load_or_seats=seats,
            engine_no=engine_no,
        )

    def _check_other_layout(self) -> None:
        defaults = {f.name: f.default for f in fields(self)}
        others = self._ONLY_2019 if self.layout == 2015 else self._ONLY_2015
        for name in others:
            if getattr(self, name) != defaults[name]:
                raise FileFormatError(
                    name,
                    f"is not part of the {self.layout} layout (class {int(self.vehicle_class)})",
                )

    @staticmethod
    def _dm(value: int, length: int, name: str) -> bytes:
        if isinstance(value, int) and not isinstance(value, bool) and value % 100:
            raise FileFormatError(
                name, f"the 2015 layout stores decimetres; {value} mm is not whole"
            )
        return uint_encode(value // 100 if isinstance(value, int) else value, length, field=name)

    def encode(self) -> bytes:
        vehicle_class = _code(VehicleClass, self.vehicle_class, name="vehicle_class")
        self._check_other_layout()
        head = b"".join(
            (
                encode_text(self.plate, 12, field="plate"),
                uint_encode(
                    _code(PlateColor, self.plate_color, name="plate_color"), 2, field="plate_color"
                ),
                uint_encode(vehicle_class, 1, field="vehicle_class"),
                uint_encode(self.user_type, 1, field="user_type"),
            )
        )
        if self.layout == 2015:
            body = b"".join(
                (
                    self._dm(self.length_mm, 2, "length_mm"),
                    self._dm(self.width_mm, 1, "width_mm"),
                    self._dm(self.height_mm, 1, "height_mm"),
                    uint_encode(self.wheels, 1, field="wheels"),
                    uint_encode(self.axles, 1, field="axles"),
                    uint_encode(self.wheelbase_dm, 2, field="wheelbase_dm"),
                    uint_encode(self.load_or_seats, 3, field="load_or_seats"),
                    encode_text(self.description, 16, field="description"),
                    encode_text(self.engine_no, 16, field="engine_no"),
                    bytes(20),
                )
            )
        else:
            mass = _EMPTY_MASS if self.total_mass_kg is None else self.total_mass_kg
            if mass == _EMPTY_MASS and self.total_mass_kg is not None:
                raise FileFormatError("total_mass_kg", "FFFFFF means empty; use None")
            body = b"".join(
                (
                    uint_encode(self.length_mm, 2, field="length_mm"),
                    uint_encode(self.width_mm, 2, field="width_mm"),
                    uint_encode(self.height_mm, 2, field="height_mm"),
                    uint_encode(self.approved_load_kg, 3, field="approved_load_kg"),
                    uint_encode(self.curb_weight_kg, 3, field="curb_weight_kg"),
                    uint_encode(mass, 3, field="total_mass_kg"),
                    uint_encode(self.seats, 1, field="seats"),
                    encode_ascii(self.vin, 17, field="vin"),
                    encode_text(self.description, 16, field="description"),
                    bytes(14),
                )
            )
        return head + body

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        raw = _need_len(raw, cls.LENGTH, "DF01/EF01")
        if raw[12] != 0:
            raise FileFormatError("plate_color", f"high byte must be 00, got {raw[12]:02X}")
        common: dict[str, Any] = {
            "plate": decode_text(raw[0:12], field="plate"),
            "plate_color": _code(PlateColor, raw[13], name="plate_color"),
            "vehicle_class": _code(VehicleClass, raw[14], name="vehicle_class"),
            "user_type": raw[15],
        }
        if raw[14] < 0x0B:
            return cls(
                **common,
                length_mm=uint_decode(raw[16:18]) * 100,
                width_mm=raw[18] * 100,
                height_mm=raw[19] * 100,
                wheels=raw[20],
                axles=raw[21],
                wheelbase_dm=uint_decode(raw[22:24]),
                load_or_seats=uint_decode(raw[24:27]),
                description=decode_text(raw[27:43], field="description"),
                engine_no=decode_text(raw[43:59], field="engine_no"),
            )
        mass = uint_decode(raw[28:31])
        return cls(
            **common,
            length_mm=uint_decode(raw[16:18]),
            width_mm=uint_decode(raw[18:20]),
            height_mm=uint_decode(raw[20:22]),
            approved_load_kg=uint_decode(raw[22:25]),
            curb_weight_kg=uint_decode(raw[25:28]),
            total_mass_kg=None if mass == _EMPTY_MASS else mass,
            seats=raw[31],
            vin=decode_ascii(raw[32:49], field="vin"),
            description=decode_text(raw[49:65], field="description"),
        )


@dataclass(frozen=True)
class ObuFeeFile:
    """DF01/EF04 累计计费信息 (§2.4): the 91-byte block at offset 314 and the
    per-province block after it at 405 (20 × 4 bytes), read and written as one
    171-byte region.

    ``entry_0019`` and ``card_0015`` copy bytes 1–39 of the card's 0019 and 1–20 of
    its 0015; amounts are fen, ``mileage_m`` metres. ``provinces`` holds (province
    code, fen) pairs, the code being the two-digit 行政区划 prefix stored as BCD and a
    00 code ending the list (**etcnet's choice**, docs/smartcard.md), as is
    ``digest``: the purchase TAC followed by the PSAM transaction serial, so that a
    block can be traced to a transaction whose TAC the center verifies."""

    entry_0019: bytes = bytes(39)
    card_0015: bytes = bytes(20)
    user_type: int = 0
    province_count: int = 0
    receivable_fen: int = 0
    actual_fen: int = 0
    successes: int = 0
    mileage_m: int = 0
    no_card_count: int = 0
    province_entry: bytes = bytes(3)
    province_receivable_fen: int = 0
    province_successes: int = 0
    province_actual_fen: int = 0
    digest: bytes = bytes(8)
    provinces: tuple[tuple[str, int], ...] = ()

    #: Where the block sits in EF04 and its lengths (§2.4).
    OFFSET = 314
    BLOCK_LENGTH = 91
    PROVINCE_SLOTS = 20
    LENGTH = BLOCK_LENGTH + 4 * PROVINCE_SLOTS

    def encode(self) -> bytes:
        if len(self.provinces) > self.PROVINCE_SLOTS:
            raise FileFormatError(
                "provinces", f"at most {self.PROVINCE_SLOTS}, got {len(self.provinces)}"
            )
        slots = b"".join(
            bcd_encode(code, 1, field="provinces") + uint_encode(fen, 3, field="provinces")
            for code, fen in self.provinces
        )
        for code, _fen in self.provinces:
            if code == "00":
                raise FileFormatError("provinces", "00 is not a province code")
        return b"".join(
            (
                _raw_bytes(self.entry_0019, 39, name="entry_0019"),
                _raw_bytes(self.card_0015, 20, name="card_0015"),
                uint_encode(self.user_type, 1, field="user_type"),
                uint_encode(self.province_count, 1, field="province_count"),
                uint_encode(self.receivable_fen, 3, field="receivable_fen"),
                uint_encode(self.actual_fen, 3, field="actual_fen"),
                uint_encode(self.successes, 2, field="successes"),
                uint_encode(self.mileage_m, 3, field="mileage_m"),
                uint_encode(self.no_card_count, 1, field="no_card_count"),
                _raw_bytes(self.province_entry, 3, name="province_entry"),
                uint_encode(self.province_receivable_fen, 3, field="province_receivable_fen"),
                uint_encode(self.province_successes, 1, field="province_successes"),
                uint_encode(self.province_actual_fen, 3, field="province_actual_fen"),
                _raw_bytes(self.digest, 8, name="digest"),
                slots.ljust(4 * self.PROVINCE_SLOTS, b"\x00"),
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        raw = _need_len(raw, cls.LENGTH, "EF04")
        provinces: list[tuple[str, int]] = []
        for at in range(cls.BLOCK_LENGTH, cls.LENGTH, 4):
            if raw[at] == 0:
                break
            provinces.append(
                (bcd_decode(raw[at : at + 1], field="provinces"), uint_decode(raw[at + 1 : at + 4]))
            )
        return cls(
            entry_0019=raw[0:39],
            card_0015=raw[39:59],
            user_type=raw[59],
            province_count=raw[60],
            receivable_fen=uint_decode(raw[61:64]),
            actual_fen=uint_decode(raw[64:67]),
            successes=uint_decode(raw[67:69]),
            mileage_m=uint_decode(raw[69:72]),
            no_card_count=raw[72],
            province_entry=raw[73:76],
            province_receivable_fen=uint_decode(raw[76:79]),
            province_successes=raw[79],
            province_actual_fen=uint_decode(raw[80:83]),
            digest=raw[83:91],
            provinces=tuple(provinces),
        )

    @property
    def entry(self) -> Card0019 | None:
        """The 0019 copy as a record (its 4-byte cumulative fee is not copied), or
        None for a never-written block."""
        if self.entry_0019[0] != CAPP_RECORD_ID:
            return None
        return Card0019.decode(self.entry_0019 + bytes(4))
