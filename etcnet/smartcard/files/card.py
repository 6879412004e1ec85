"""User-card files: 0015 (issuer), 0016 (holder), 0019 (composite record) and the
purse log (ETC.md Part 2 §1.2–§1.5).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Self

from etcnet.core.codes import CardType, PlateColor, VehicleClass
from etcnet.smartcard.codec import (
    FileFormatError,
    bcd_date,
    bcd_decode,
    bcd_encode,
    bcd_time,
    decode_bcd_date,
    decode_bcd_datetime,
    decode_text,
    encode_text,
    uint_decode,
    uint_encode,
)
from etcnet.smartcard.files._base import (
    CAPP_RECORD_ID,
    CAPP_RECORD_LENGTH,
    _code,
    _date,
    _need_len,
    _raw_bytes,
    _unix,
)


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
