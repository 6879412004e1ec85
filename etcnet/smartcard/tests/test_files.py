import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcnet.core.codes import CardType, PlateColor, VehicleClass
from etcnet.smartcard.files import (
    Card0015,
    Card0016,
    Card0019,
    Card0019Legacy,
    FileFormatError,
    ObuFeeFile,
    ObuSystemFile,
    ObuVehicleFile,
    PurseLogRecord,
    TamperFlag,
    blank_0015,
    card_no_of,
)
from etcnet.smartcard.tests import make_0015, make_0016, make_obu_system, make_obu_vehicle

h = bytes.fromhex

PLATE_CHARS = (
    "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼学警挂"
    "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
)
NAME_CHARS = "张王李赵刘陈杨黄周吴三四伟芳娜秀英敏静丽强磊军洋"


def gb_text(alphabet: str, max_bytes: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, max_size=max_bytes).filter(
        lambda text: len(text.encode("gb2312")) <= max_bytes
    )


def digits(count: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=count, max_size=count)


def byte() -> st.SearchStrategy[int]:
    return st.integers(0, 255)


def uint(size: int) -> st.SearchStrategy[int]:
    return st.integers(0, (1 << (8 * size)) - 1)


dates = st.dates(datetime.date(1990, 1, 1), datetime.date(2099, 12, 31))


@st.composite
def date_pairs(draw: st.DrawFn) -> tuple[datetime.date, datetime.date]:
    first, second = draw(dates), draw(dates)
    return min(first, second), max(first, second)


@st.composite
def cards_0015(draw: st.DrawFn) -> Card0015:
    start, expiry = draw(date_pairs())
    return Card0015(
        issuer_id=draw(st.binary(min_size=8, max_size=8)),
        card_type=draw(st.sampled_from(CardType)),
        version=draw(st.integers(0x40, 0x5F)),
        network=draw(digits(4)),
        internal_no=draw(digits(16)),
        start_date=start,
        expiry_date=expiry,
        plate=draw(gb_text(PLATE_CHARS, 12)),
        user_type=draw(byte()),
        plate_color=draw(st.sampled_from(PlateColor)),
        vehicle_class=draw(st.sampled_from(VehicleClass)),
        reserved=draw(st.binary(min_size=7, max_size=7)),
    )


@given(cards_0015())
def test_0015_round_trip(card: Card0015) -> None:
    raw = card.encode()
    assert len(raw) == 50
    assert Card0015.decode(raw) == card
    assert card_no_of(raw) == card.card_no == card.network + card.internal_no


def test_0015_byte_layout() -> None:
    raw = make_0015().encode()
    assert raw.hex().upper() == (
        "BAFEC4CF43010001"  # issuer: 湖南 + 43010001
        "16"  # 储值卡
        "40"  # version 4X
        "4301"
        "1900232500052902"
        "20200101"
        "20300101"
        "CFE6413132333435"
        "00000000"  # 湘A12345, zero-padded to 12
        "00"  # user type
        "00"  # plate colour (4X: byte 41)
        "01"  # vehicle class (4X: byte 42)
        "00000000000000"
    )
    card = make_0015()
    assert card.card_no == "43011900232500052902"
    assert card.issuer_factor == h("BAFEC4CFBAFEC4CF")
    assert card.serial == h("1900232500052902")


def test_0015_classic_43_byte_layout_is_read_by_version() -> None:
    raw = bytearray(make_0015().encode()[:43])
    raw[9] = 0x10  # classic version
    raw[41] = 0x01  # 绑定标识
    raw[42] = 0x01  # colour: yellow
    card = Card0015.decode(bytes(raw))
    assert card.vehicle_class is None
    assert card.binding_flag == 1
    assert card.plate_color is PlateColor.YELLOW
    assert card.plate == "湘A12345"
    with pytest.raises(FileFormatError) as refused:
        card.encode()
    assert refused.value.field == "version"


def test_0015_4x_card_read_as_43_bytes() -> None:
    card = make_0015(reserved=h("01020304050607"))
    decoded = Card0015.decode(card.encode()[:43])
    assert decoded == make_0015()


def test_blank_0015_carries_only_the_card_number() -> None:
    raw = blank_0015("4301", "1900232500052902")
    assert len(raw) == 50
    assert card_no_of(raw) == "43011900232500052902"
    assert not any(raw[:10])
    assert not any(raw[20:])


@st.composite
def cards_0016(draw: st.DrawFn) -> Card0016:
    return Card0016(
        holder_flag=draw(byte()),
        staff_flag=draw(byte()),
        name=draw(gb_text(NAME_CHARS, 20)),
        id_number=draw(st.text(alphabet="0123456789X", max_size=32)),
        id_type=draw(byte()),
    )


@given(cards_0016())
def test_0016_round_trip(card: Card0016) -> None:
    raw = card.encode()
    assert len(raw) == 55
    assert Card0016.decode(raw) == card


def test_0016_byte_layout() -> None:
    raw = make_0016().encode()
    assert raw[2:6] == h("D5C5C8FD")  # 张三
    assert raw[22:40] == b"11010519491231002X"


@st.composite
def records_0019(draw: st.DrawFn) -> Card0019:
    return Card0019(
        lock_flag=draw(st.integers(0, 1)),
        network=draw(digits(4)),
        station=draw(uint(2)),
        lane=draw(byte()),
        time=draw(uint(4)),
        vehicle_class=draw(byte()),
        lane_status=draw(byte()),
        gantry=draw(st.binary(min_size=3, max_size=3)),
        gantry_time=draw(uint(4)),
        plate=draw(gb_text(PLATE_CHARS, 12)),
        plate_color=draw(byte()),
        axles=draw(byte()),
        total_weight_kg=draw(uint(3)),
        vehicle_status=draw(byte()),
        cumulative_fee=draw(uint(4)),
    )


@given(records_0019())
def test_0019_round_trip(record: Card0019) -> None:
    raw = record.encode()
    assert raw[:2] == h("AA29")
    assert len(raw) == 43
    assert Card0019.decode(raw) == record


def test_0019_byte_layout() -> None:
    record = Card0019(
        network="4301",
        station=0x1234,
        lane=3,
        time=1_700_000_000,
        vehicle_class=11,
        lane_status=0x03,
        gantry=h("3C3038"),
        gantry_time=1_700_000_060,
        plate="湘A12345",
        plate_color=1,
        axles=2,
        total_weight_kg=18000,
        vehicle_status=0xFF,
        cumulative_fee=2500,
    )
    assert record.encode().hex().upper() == (
        "AA290043011234036553F1000B033C30386553F13CCFE6413132333435000000000102004650FF000009C4"
    )


@st.composite
def legacy_records(draw: st.DrawFn) -> Card0019Legacy:
    return Card0019Legacy(
        lock_flag=draw(byte()),
        entry_network=draw(digits(4)),
        entry_station=draw(uint(2)),
        lane=draw(byte()),
        time=draw(uint(4)),
        vehicle_class=draw(byte()),
        status=draw(byte()),
        marker_stations=draw(st.binary(min_size=9, max_size=9)),
        operator_no=draw(uint(3)),
        shift=draw(byte()),
        plate=draw(gb_text(PLATE_CHARS, 12)),
        exit_station=draw(st.binary(min_size=4, max_size=4)),
    )


@given(legacy_records())
def test_0019_legacy_round_trip(record: Card0019Legacy) -> None:
    raw = record.encode()
    assert Card0019.decode_legacy(raw) == record


def test_0019_decode_refuses_a_record_that_is_not_aa() -> None:
    with pytest.raises(FileFormatError) as refused:
        Card0019.decode(h("AB29") + bytes(41))
    assert refused.value.field == "record_id"


@st.composite
def log_records(draw: st.DrawFn) -> PurseLogRecord:
    when = draw(st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2099, 12, 31)))
    return PurseLogRecord(
        atc=draw(uint(2)),
        overdraft_limit=draw(uint(3)),
        amount=draw(uint(4)),
        trans_type=draw(byte()),
        terminal=draw(st.binary(min_size=6, max_size=6)),
        when=when.replace(microsecond=0),
    )


@given(log_records())
def test_log_record_round_trip(record: PurseLogRecord) -> None:
    raw = record.encode()
    assert len(raw) == 23
    assert PurseLogRecord.decode(raw) == record


def test_log_record_byte_layout() -> None:
    record = PurseLogRecord(
        atc=5,
        overdraft_limit=0,
        amount=1234,
        trans_type=0x09,
        terminal=h("430101000001"),
        when=datetime.datetime(2020, 1, 1, 12, 0, 0),
    )
    assert record.encode().hex().upper() == "0005000000000004D20943010100000120200101120000"


@st.composite
def obu_systems(draw: st.DrawFn) -> ObuSystemFile:
    signed, expiry = draw(date_pairs())
    return ObuSystemFile(
        issuer_id=draw(st.binary(min_size=8, max_size=8)),
        contract_type=draw(byte()),
        contract_version=draw(byte()),
        contract_serial=draw(digits(16)),
        signed_date=signed,
        expiry_date=expiry,
        tamper_flag=draw(st.sampled_from(TamperFlag)),
    )


@given(obu_systems())
def test_obu_system_round_trip(system: ObuSystemFile) -> None:
    raw = system.encode()
    assert len(raw) == 27
    assert raw[26] == system.tamper_flag
    assert ObuSystemFile.decode(raw) == system
    assert ObuSystemFile.decode(raw + bytes(72)) == system


PASSENGER = [c for c in VehicleClass if c < 0x0B]
TRUCK_OR_SPECIAL = [c for c in VehicleClass if c >= 0x0B]
COLOURS = [c for c in PlateColor if c <= 0xFF]


@st.composite
def vehicles_2015(draw: st.DrawFn) -> ObuVehicleFile:
    return ObuVehicleFile(
        plate=draw(gb_text(PLATE_CHARS, 12)),
        plate_color=draw(st.sampled_from(COLOURS)),
        vehicle_class=draw(st.sampled_from(PASSENGER)),
        user_type=draw(byte()),
        length_mm=draw(uint(2)) * 100,
        width_mm=draw(byte()) * 100,
        height_mm=draw(byte()) * 100,
        description=draw(gb_text(NAME_CHARS, 16)),
        wheels=draw(byte()),
        axles=draw(byte()),
        wheelbase_dm=draw(uint(2)),
        load_or_seats=draw(uint(3)),
        engine_no=draw(st.text(alphabet="ABCDEF0123456789", max_size=16)),
    )


@st.composite
def vehicles_2019(draw: st.DrawFn) -> ObuVehicleFile:
    return ObuVehicleFile(
        plate=draw(gb_text(PLATE_CHARS, 12)),
        plate_color=draw(st.sampled_from(COLOURS)),
        vehicle_class=draw(st.sampled_from(TRUCK_OR_SPECIAL)),
        user_type=draw(byte()),
        length_mm=draw(uint(2)),
        width_mm=draw(uint(2)),
        height_mm=draw(uint(2)),
        description=draw(gb_text(NAME_CHARS, 16)),
        approved_load_kg=draw(uint(3)),
        curb_weight_kg=draw(uint(3)),
        total_mass_kg=draw(st.one_of(st.none(), st.integers(0, 0xFFFFFE))),
        seats=draw(byte()),
        vin=draw(st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", max_size=17)),
    )


@given(st.one_of(vehicles_2015(), vehicles_2019()))
def test_obu_vehicle_round_trip(vehicle: ObuVehicleFile) -> None:
    raw = vehicle.encode()
    assert len(raw) == 79
    assert ObuVehicleFile.decode(raw) == vehicle
    assert vehicle.layout == (2019 if vehicle.vehicle_class >= 0x0B else 2015)


def test_obu_vehicle_2015_byte_layout() -> None:
    raw = make_obu_vehicle().encode()
    assert raw[12:16] == h("00000100")  # colour (2 bytes), class, user type
    assert raw[16:22] == h("0030120F0402")  # 48 dm, 18 dm, 15 dm, wheels, axles
    assert raw[22:27] == h("001C000005")
    assert raw[59:] == bytes(20)


def test_obu_vehicle_2019_byte_layout() -> None:
    vehicle = ObuVehicleFile(
        plate="湘A12345",
        plate_color=PlateColor.YELLOW,
        vehicle_class=VehicleClass.TRUCK_2,
        length_mm=8995,
        width_mm=2550,
        height_mm=3450,
        approved_load_kg=9800,
        curb_weight_kg=8000,
        seats=2,
        vin="LGAX2A137H1234567",
    )
    raw = vehicle.encode()
    assert vehicle.layout == 2019
    assert raw[12:16] == h("00010C00")
    assert raw[16:32] == h("232309F60D7A002648001F40FFFFFF02")
    assert raw[32:49] == b"LGAX2A137H1234567"


@pytest.mark.parametrize(
    ("make", "overrides", "field"),
    [
        (make_0015, {"plate": "湘A1234567890"}, "plate"),
        (make_0015, {"plate": "湘A1234😀"}, "plate"),
        (make_0015, {"plate": "湘A\x001234"}, "plate"),
        (make_0015, {"network": "43A1"}, "network"),
        (make_0015, {"internal_no": "123"}, "internal_no"),
        (make_0015, {"issuer_id": bytes(7)}, "issuer_id"),
        (make_0015, {"card_type": 21}, "card_type"),
        (make_0015, {"plate_color": 8}, "plate_color"),
        (make_0015, {"vehicle_class": 5}, "vehicle_class"),
        (make_0015, {"vehicle_class": None}, "vehicle_class"),
        (make_0015, {"version": 0x30}, "version"),
        (make_0015, {"expiry_date": datetime.date(2019, 12, 31)}, "expiry_date"),
        (make_0015, {"start_date": "2020-01-01"}, "start_date"),
        (make_0015, {"user_type": 256}, "user_type"),
        (make_0016, {"name": "张" * 11}, "name"),
        (make_0016, {"id_number": "1" * 33}, "id_number"),
        (make_0016, {"id_type": -1}, "id_type"),
        (make_0016, {"holder_flag": True}, "holder_flag"),
        (Card0019, {"lock_flag": 2}, "lock_flag"),
        (Card0019, {"total_weight_kg": 1 << 24}, "total_weight_kg"),
        (Card0019, {"gantry": b"12"}, "gantry"),
        (Card0019, {"network": "12345"}, "network"),
        (make_obu_system, {"contract_serial": "12"}, "contract_serial"),
        (make_obu_system, {"tamper_flag": 2}, "tamper_flag"),
        (make_obu_system, {"expiry_date": datetime.date(2020, 1, 1)}, "expiry_date"),
        (make_obu_vehicle, {"length_mm": 4785}, "length_mm"),
        (make_obu_vehicle, {"vin": "LGAX2A137H1234567"}, "vin"),
        (make_obu_vehicle, {"plate_color": 10}, "plate_color"),
        (
            make_obu_vehicle,
            {"vehicle_class": VehicleClass.TRUCK_1, "length_mm": 5000, "wheels": 4},
            "wheels",
        ),
        (
            make_obu_vehicle,
            {
                "vehicle_class": VehicleClass.TRUCK_1,
                "wheels": 0,
                "axles": 0,
                "wheelbase_dm": 0,
                "load_or_seats": 0,
                "engine_no": "",
                "vin": "车辆",
            },
            "vin",
        ),
    ],
)
def test_an_invalid_field_is_named(make: Any, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(FileFormatError) as refused:
        make(**overrides).encode()
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


def test_log_record_terminal_must_be_6_bytes() -> None:
    record = PurseLogRecord(1, 0, 1, 9, bytes(5), datetime.datetime(2020, 1, 1))
    with pytest.raises(FileFormatError, match="terminal: must be 6 bytes, got 5"):
        record.encode()


@pytest.mark.parametrize(
    ("decode", "raw", "field"),
    [
        (Card0015.decode, bytes(42), "0015"),
        (Card0016.decode, bytes(54), "0016"),
        (PurseLogRecord.decode, bytes(22), "log record"),
        (ObuVehicleFile.decode, bytes(80), "DF01/EF01"),
    ],
)
def test_decode_refuses_a_wrong_length(decode: Any, raw: bytes, field: str) -> None:
    with pytest.raises(FileFormatError) as refused:
        decode(raw)
    assert refused.value.field == field


def test_decode_names_a_bad_date() -> None:
    raw = bytearray(make_0015().encode())
    raw[20:24] = h("20201301")
    with pytest.raises(FileFormatError) as refused:
        Card0015.decode(bytes(raw))
    assert refused.value.field == "start_date"
    raw[20:24] = h("2020A101")
    with pytest.raises(FileFormatError, match="start_date: 2020A101 is not packed BCD"):
        Card0015.decode(bytes(raw))


def test_from_vehicle_picks_the_layout_and_keeps_its_fields() -> None:
    common: dict[str, Any] = {
        "plate": "湘A12345",
        "plate_color": PlateColor.BLUE,
        "length_mm": 4785,
        "width_mm": 1820,
        "height_mm": 1449,
        "wheels": 4,
        "axles": 2,
        "seats": 5,
        "engine_no": "EA888",
        "approved_load_kg": 0,
        "curb_weight_kg": 1500,
        "total_mass_kg": 2000,
        "vin": "LSVAA4182E2123456",
    }
    car = ObuVehicleFile.from_vehicle(vehicle_class=VehicleClass.PASSENGER_1, **common)
    assert car == make_obu_vehicle(
        length_mm=4800,
        width_mm=1800,
        height_mm=1400,
        load_or_seats=5,
        wheelbase_dm=0,
        description="",
        engine_no="EA888",
    )
    assert ObuVehicleFile.decode(car.encode()) == car
    truck = ObuVehicleFile.from_vehicle(vehicle_class=VehicleClass.TRUCK_2, **common)
    assert (truck.layout, truck.length_mm, truck.wheels, truck.seats, truck.vin) == (
        2019,
        4785,
        0,
        5,
        "LSVAA4182E2123456",
    )
    assert ObuVehicleFile.decode(truck.encode()) == truck


@st.composite
def obu_fee_files(draw: st.DrawFn) -> ObuFeeFile:
    return ObuFeeFile(
        entry_0019=draw(st.binary(min_size=39, max_size=39)),
        card_0015=draw(st.binary(min_size=20, max_size=20)),
        user_type=draw(byte()),
        province_count=draw(byte()),
        receivable_fen=draw(uint(3)),
        actual_fen=draw(uint(3)),
        successes=draw(uint(2)),
        mileage_m=draw(uint(3)),
        no_card_count=draw(byte()),
        province_entry=draw(st.binary(min_size=3, max_size=3)),
        province_receivable_fen=draw(uint(3)),
        province_successes=draw(byte()),
        province_actual_fen=draw(uint(3)),
        digest=draw(st.binary(min_size=8, max_size=8)),
        provinces=tuple(
            draw(
                st.lists(
                    st.tuples(digits(2).filter(lambda code: code != "00"), uint(3)), max_size=20
                )
            )
        ),
    )


@given(obu_fee_files())
def test_obu_fee_file_round_trip(fee: ObuFeeFile) -> None:
    raw = fee.encode()
    assert len(raw) == 171
    assert ObuFeeFile.decode(raw) == fee


def test_obu_fee_file_byte_layout() -> None:
    exit_record = Card0019(network="1201", station=0x0E02, lane=3, time=0x5F000000)
    fee = ObuFeeFile(
        entry_0019=exit_record.encode()[:39],
        card_0015=bytes(range(20)),
        user_type=0,
        province_count=1,
        receivable_fen=4738,
        actual_fen=4501,
        successes=1,
        mileage_m=31_200,
        digest=h("0102030400000007"),
        provinces=(("12", 4501),),
    )
    raw = fee.encode()
    assert raw[:3] == h("AA2900")
    assert raw[39:59] == bytes(range(20))
    assert raw[59:72] == h("000100128200119500010079E0")
    assert raw[83:91] == h("0102030400000007")
    assert raw[91:95] == h("12001195")
    assert raw[95:] == bytes(76)
    assert fee.entry == Card0019(network="1201", station=0x0E02, lane=3, time=0x5F000000)
    assert ObuFeeFile().entry is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"entry_0019": bytes(38)}, "entry_0019"),
        ({"receivable_fen": 1 << 24}, "receivable_fen"),
        ({"provinces": (("00", 1),)}, "provinces"),
        ({"provinces": (("1A", 1),)}, "provinces"),
        ({"provinces": tuple(("12", 1) for _ in range(21))}, "provinces"),
    ],
)
def test_obu_fee_file_refusals_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(FileFormatError) as refused:
        ObuFeeFile(**overrides).encode()
    assert refused.value.field == field
