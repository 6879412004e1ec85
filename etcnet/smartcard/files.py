"""User-card and OBU files: frozen dataclasses that encode to and decode from bytes.

Layouts are those of ETC.md Part 2 §1.2–§1.5 (card) and §2.1–§2.2 (OBU); where the
reference is silent the choice is etcnet's and listed in ``docs/smartcard.md``. Every
field is validated on encode (and so on decode, which builds through the same
checks); a refusal is a ``FileFormatError`` naming the field.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, Literal, Self

from etcnet.core.codes import CardType, CodeEnum, PlateColor, VehicleClass
from etcnet.smartcard.codec import (
    FileFormatError,
    bcd_date,
    bcd_decode,
    bcd_encode,
    bcd_time,
    decode_ascii,
    decode_bcd_date,
    decode_bcd_datetime,
    decode_text,
    encode_ascii,
    encode_text,
    hexu,
    uint_decode,
    uint_encode,
)

__all__ = [
    "CAPP_RECORD_ID",
    "CAPP_RECORD_LENGTH",
    "Card0015",
    "Card0016",
    "Card0019",
    "Card0019Legacy",
    "FileFormatError",
    "ObuFeeFile",
    "ObuSystemFile",
    "ObuVehicleFile",
    "PurseLogRecord",
    "TamperFlag",
    "blank_0015",
    "blank_obu_system",
    "card_no_of",
    "describe",
    "is_blank_0015",
    "is_blank_obu_system",
]

#: 复合消费应用标识 and the record length byte of file 0019.
CAPP_RECORD_ID = 0xAA
CAPP_RECORD_LENGTH = 0x29


def _need_len(raw: bytes, length: int, name: str, *, at_least: bool = False) -> bytes:
    if not isinstance(raw, bytes | bytearray):
        raise FileFormatError(name, f"raw file must be bytes, got {type(raw).__name__}")
    if len(raw) < length if at_least else len(raw) != length:
        need = f"at least {length}" if at_least else str(length)
        raise FileFormatError(name, f"must be {need} bytes, got {len(raw)}")
    return bytes(raw)


def _raw_bytes(value: bytes, length: int, *, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise FileFormatError(name, f"must be bytes, got {type(value).__name__}")
    if len(value) != length:
        raise FileFormatError(name, f"must be {length} bytes, got {len(value)}")
    return value


def _code(table: type[Any], value: int, *, name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FileFormatError(name, f"must be a {table.__name__} code, got {value!r}")
    try:
        return table.from_code(int(value))
    except ValueError as error:
        raise FileFormatError(name, str(error)) from None


def _date(value: datetime.date, *, name: str) -> bytes:
    if isinstance(value, datetime.datetime):
        raise FileFormatError(name, "must be a date, not a datetime")
    return bcd_date(value, field=name)


def _unix(value: int, *, name: str) -> bytes:
    return uint_encode(value, 4, field=name)


# --- user card -----------------------------------------------------------------------


def card_no_of(raw0015: bytes) -> str:
    """The 20-digit card number (network 4 + internal number 16) of a raw 0015 file,
    whether personalised or blank."""
    raw = _need_len(raw0015, 20, "0015", at_least=True)
    return bcd_decode(raw[10:12], field="network") + bcd_decode(raw[12:20], field="internal_no")


def is_blank_0015(raw0015: bytes) -> bool:
    """True for a unit in stock: nothing but the card number in 0015."""
    return not any(raw0015[:10]) and not any(raw0015[20:])


def blank_0015(network: str, internal_no: str) -> bytes:
    """A unit in stock: a zeroed 50-byte 0015 that carries only its card number."""
    raw = bytearray(50)
    raw[10:12] = bcd_encode(network, 2, field="network")
    raw[12:20] = bcd_encode(internal_no, 8, field="internal_no")
    return bytes(raw)


@dataclass(frozen=True)
class Card0015:
    """0015 卡发行基本数据文件 (§1.2), written as the 50-byte "4X" layout.

    ``decode`` also reads the classic 43-byte layout (version high nibble not 4 or 5):
    byte 41 is then the binding flag and byte 42 the plate colour, and there is no
    vehicle class (``vehicle_class`` None, ``binding_flag`` set). etcnet writes only
    the 4X layout; ``reserved`` is bytes 43–49, kept as read."""

    issuer_id: bytes
    card_type: CardType
    version: int
    network: str
    internal_no: str
    start_date: datetime.date
    expiry_date: datetime.date
    plate: str
    user_type: int
    plate_color: PlateColor
    vehicle_class: VehicleClass | None
    reserved: bytes = bytes(7)
    binding_flag: int | None = None

    LENGTH = 50
    CLASSIC_LENGTH = 43

    @property
    def card_no(self) -> str:
        """The public 20-digit card number: network (4) + internal number (16)."""
        return self.network + self.internal_no

    @property
    def serial(self) -> bytes:
        """The card application serial (8 bytes BCD), the second diversification factor."""
        return bcd_encode(self.internal_no, 8, field="internal_no")

    @property
    def issuer_factor(self) -> bytes:
        """The first diversification factor: the issuer identifier's first 4 bytes twice."""
        return self.issuer_id[:4] * 2

    @property
    def is_4x(self) -> bool:
        return self.version >> 4 in (4, 5)

    def encode(self) -> bytes:
        if not self.is_4x:
            raise FileFormatError(
                "version",
                "etcnet writes the 4X layout; the high nibble must be 4 or 5, "
                f"got {self.version:02X}",
            )
        if self.vehicle_class is None:
            raise FileFormatError("vehicle_class", "the 4X layout needs a vehicle class")
        if self.binding_flag is not None:
            raise FileFormatError("binding_flag", "exists only in the classic layout")
        raw = b"".join(
            (
                _raw_bytes(self.issuer_id, 8, name="issuer_id"),
                uint_encode(
                    _code(CardType, self.card_type, name="card_type"), 1, field="card_type"
                ),
                uint_encode(self.version, 1, field="version"),
                bcd_encode(self.network, 2, field="network"),
                bcd_encode(self.internal_no, 8, field="internal_no"),
                _date(self.start_date, name="start_date"),
                _date(self.expiry_date, name="expiry_date"),
                encode_text(self.plate, 12, field="plate"),
                uint_encode(self.user_type, 1, field="user_type"),
                uint_encode(
                    _code(PlateColor, self.plate_color, name="plate_color"), 1, field="plate_color"
                ),
                uint_encode(
                    _code(VehicleClass, self.vehicle_class, name="vehicle_class"),
                    1,
                    field="vehicle_class",
                ),
                _raw_bytes(self.reserved, 7, name="reserved"),
            )
        )
        if self.expiry_date < self.start_date:
            raise FileFormatError("expiry_date", "must not be before start_date")
        return raw

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        raw = _need_len(raw, cls.CLASSIC_LENGTH, "0015", at_least=True)
        version = raw[9]
        common: dict[str, Any] = {
            "issuer_id": raw[0:8],
            "card_type": _code(CardType, raw[8], name="card_type"),
            "version": version,
            "network": bcd_decode(raw[10:12], field="network"),
            "internal_no": bcd_decode(raw[12:20], field="internal_no"),
            "start_date": decode_bcd_date(raw[20:24], field="start_date"),
            "expiry_date": decode_bcd_date(raw[24:28], field="expiry_date"),
            "plate": decode_text(raw[28:40], field="plate"),
            "user_type": raw[40],
        }
        if version >> 4 in (4, 5):
            reserved = raw[43:50] if len(raw) >= cls.LENGTH else bytes(7)
            return cls(
                **common,
                plate_color=_code(PlateColor, raw[41], name="plate_color"),
                vehicle_class=_code(VehicleClass, raw[42], name="vehicle_class"),
                reserved=reserved,
            )
        return cls(
            **common,
            plate_color=_code(PlateColor, raw[42], name="plate_color"),
            vehicle_class=None,
            binding_flag=raw[41],
        )


@dataclass(frozen=True)
class Card0016:
    """0016 持卡人基本数据文件 (§1.3), 55 bytes in the MF."""

    holder_flag: int
    staff_flag: int
    name: str
    id_number: str
    id_type: int

    LENGTH = 55

    def encode(self) -> bytes:
        return b"".join(
            (
                uint_encode(self.holder_flag, 1, field="holder_flag"),
                uint_encode(self.staff_flag, 1, field="staff_flag"),
                encode_text(self.name, 20, field="name"),
                encode_text(self.id_number, 32, field="id_number"),
                uint_encode(self.id_type, 1, field="id_type"),
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        raw = _need_len(raw, cls.LENGTH, "0016")
        return cls(
            holder_flag=raw[0],
            staff_flag=raw[1],
            name=decode_text(raw[2:22], field="name"),
            id_number=decode_text(raw[22:54], field="id_number"),
            id_type=raw[54],
        )


def _capp_header(raw: bytes, name: str) -> bytes:
    raw = _need_len(raw, 43, name)
    if raw[0] != CAPP_RECORD_ID:
        raise FileFormatError("record_id", f"must be AA, got {raw[0]:02X}")
    if raw[1] != CAPP_RECORD_LENGTH:
        raise FileFormatError("record_length", f"must be 29, got {raw[1]:02X}")
    return raw


@dataclass(frozen=True)
class Card0019:
    """0019 复合消费文件, the 43-byte CAPP record, 2019 layout (§1.4).

    Times are UNIX seconds as on the card; ``gantry`` is the 3-byte gantry hex code;
    ``vehicle_class`` and ``plate_color`` are raw bytes (0 in a never-used record)."""

    lock_flag: int = 0
    network: str = "0000"
    station: int = 0
    lane: int = 0
    time: int = 0
    vehicle_class: int = 0
    lane_status: int = 0
    gantry: bytes = bytes(3)
    gantry_time: int = 0
    plate: str = ""
    plate_color: int = 0
    axles: int = 0
    total_weight_kg: int = 0
    vehicle_status: int = 0xFF
    cumulative_fee: int = 0

    LENGTH = 43

    def encode(self) -> bytes:
        if self.lock_flag not in (0, 1):
            raise FileFormatError(
                "lock_flag", f"must be 0 (unlocked) or 1 (locked), got {self.lock_flag}"
            )
        return b"".join(
            (
                bytes((CAPP_RECORD_ID, CAPP_RECORD_LENGTH)),
                uint_encode(self.lock_flag, 1, field="lock_flag"),
                bcd_encode(self.network, 2, field="network"),
                uint_encode(self.station, 2, field="station"),
                uint_encode(self.lane, 1, field="lane"),
                _unix(self.time, name="time"),
                uint_encode(self.vehicle_class, 1, field="vehicle_class"),
                uint_encode(self.lane_status, 1, field="lane_status"),
                _raw_bytes(self.gantry, 3, name="gantry"),
                _unix(self.gantry_time, name="gantry_time"),
                encode_text(self.plate, 12, field="plate"),
                uint_encode(self.plate_color, 1, field="plate_color"),
                uint_encode(self.axles, 1, field="axles"),
                uint_encode(self.total_weight_kg, 3, field="total_weight_kg"),
                uint_encode(self.vehicle_status, 1, field="vehicle_status"),
                uint_encode(self.cumulative_fee, 4, field="cumulative_fee"),
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        raw = _capp_header(raw, "0019")
        return cls(
            lock_flag=raw[2],
            network=bcd_decode(raw[3:5], field="network"),
            station=uint_decode(raw[5:7]),
            lane=raw[7],
            time=uint_decode(raw[8:12]),
            vehicle_class=raw[12],
            lane_status=raw[13],
            gantry=raw[14:17],
            gantry_time=uint_decode(raw[17:21]),
            plate=decode_text(raw[21:33], field="plate"),
            plate_color=raw[33],
            axles=raw[34],
            total_weight_kg=uint_decode(raw[35:38]),
            vehicle_status=raw[38],
            cumulative_fee=uint_decode(raw[39:43]),
        )

    @staticmethod
    def decode_legacy(raw: bytes) -> Card0019Legacy:
        """Read a record in the pre-2019 layout."""
        return Card0019Legacy.decode(raw)


@dataclass(frozen=True)
class Card0019Legacy:
    """0019 in the pre-2019 layout (§1.4, [R3] ParseUtil.pare19)."""

    lock_flag: int = 0
    entry_network: str = "0000"
    entry_station: int = 0
    lane: int = 0
    time: int = 0
    vehicle_class: int = 0
    status: int = 0
    marker_stations: bytes = bytes(9)
    operator_no: int = 0
    shift: int = 0
    plate: str = ""
    exit_station: bytes = bytes(4)

    LENGTH = 43

    def encode(self) -> bytes:
        return b"".join(
            (
                bytes((CAPP_RECORD_ID, CAPP_RECORD_LENGTH)),
                uint_encode(self.lock_flag, 1, field="lock_flag"),
                bcd_encode(self.entry_network, 2, field="entry_network"),
                uint_encode(self.entry_station, 2, field="entry_station"),
                uint_encode(self.lane, 1, field="lane"),
                _unix(self.time, name="time"),
                uint_encode(self.vehicle_class, 1, field="vehicle_class"),
                uint_encode(self.status, 1, field="status"),
                _raw_bytes(self.marker_stations, 9, name="marker_stations"),
                uint_encode(self.operator_no, 3, field="operator_no"),
                uint_encode(self.shift, 1, field="shift"),
                encode_text(self.plate, 12, field="plate"),
                _raw_bytes(self.exit_station, 4, name="exit_station"),
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        raw = _capp_header(raw, "0019")
        return cls(
            lock_flag=raw[2],
            entry_network=bcd_decode(raw[3:5], field="entry_network"),
            entry_station=uint_decode(raw[5:7]),
            lane=raw[7],
            time=uint_decode(raw[8:12]),
            vehicle_class=raw[12],
            status=raw[13],
            marker_stations=raw[14:23],
            operator_no=uint_decode(raw[23:26]),
            shift=raw[26],
            plate=decode_text(raw[27:39], field="plate"),
            exit_station=raw[39:43],
        )


@dataclass(frozen=True)
class PurseLogRecord:
    """One 23-byte e-purse transaction-log record (PBOC): ATC(2) overdraft limit(3)
    amount(4) type(1) terminal(6) date(4) time(3). ``when`` is the terminal's local time."""

    atc: int
    overdraft_limit: int
    amount: int
    trans_type: int
    terminal: bytes
    when: datetime.datetime

    LENGTH = 23

    def encode(self) -> bytes:
        if not isinstance(self.when, datetime.datetime):
            raise FileFormatError("when", "must be a datetime")
        return b"".join(
            (
                uint_encode(self.atc, 2, field="atc"),
                uint_encode(self.overdraft_limit, 3, field="overdraft_limit"),
                uint_encode(self.amount, 4, field="amount"),
                uint_encode(self.trans_type, 1, field="trans_type"),
                _raw_bytes(self.terminal, 6, name="terminal"),
                bcd_date(self.when, field="when"),
                bcd_time(self.when),
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        raw = _need_len(raw, cls.LENGTH, "log record")
        return cls(
            atc=uint_decode(raw[0:2]),
            overdraft_limit=uint_decode(raw[2:5]),
            amount=uint_decode(raw[5:9]),
            trans_type=raw[9],
            terminal=raw[10:16],
            when=decode_bcd_datetime(raw[16:20], raw[20:23], field="when"),
        )


# --- OBU -----------------------------------------------------------------------------


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


def describe(value: object) -> dict[str, Any]:
    """A file as JSON-ready data: enums by value, dates ISO, bytes upper-case hex."""
    out: dict[str, Any] = {}
    for item in fields(value):  # type: ignore[arg-type]
        out[item.name] = _jsonable(getattr(value, item.name))
    return out


def _jsonable(value: object) -> Any:
    if isinstance(value, bytes):
        return hexu(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, IntEnum):
        return int(value)
    return value
