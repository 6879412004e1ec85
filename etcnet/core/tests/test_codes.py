import pytest

from etcnet.core.codes import (
    CardType,
    CustomerType,
    IdDocType,
    PlateColor,
    UseNature,
    VehicleCategory,
    VehicleClass,
    VehicleKind,
    VehicleUserType,
)


def test_plate_colors_match_the_reference_table() -> None:
    assert PlateColor.choices() == [
        (0, "蓝"),
        (1, "黄"),
        (2, "黑"),
        (3, "白"),
        (4, "渐变绿"),
        (5, "黄绿双拼"),
        (6, "蓝白渐变"),
        (7, "临时牌照"),
        (9, "未确定"),
        (11, "绿色"),
        (12, "红色"),
    ]


def test_member_is_an_int_with_labels() -> None:
    color = PlateColor.YELLOW_GREEN
    assert color == 5
    assert color.value == 5
    assert color.label == "黄绿双拼"
    assert color.label_en == "yellow-green"
    assert PlateColor(4) is PlateColor.GRADIENT_GREEN


def test_from_code_returns_the_member() -> None:
    assert PlateColor.from_code(12) is PlateColor.RED
    assert VehicleClass.from_code(16) is VehicleClass.TRUCK_6


def test_from_code_unknown_code_names_the_table() -> None:
    with pytest.raises(
        ValueError, match=r"^8 is not a PlateColor code \(known codes: 0, 1, 2, 3, 4"
    ):
        PlateColor.from_code(8)


def test_from_code_refuses_a_bool() -> None:
    with pytest.raises(ValueError, match="is not a CustomerType code"):
        CustomerType.from_code(True)


def test_vehicle_classes() -> None:
    assert [code for code, _label in VehicleClass.choices()] == [
        1, 2, 3, 4, 11, 12, 13, 14, 15, 16, 21, 22, 23, 24, 25, 26,
    ]  # fmt: skip
    assert VehicleClass.PASSENGER_1.label == "1类客车"
    assert VehicleClass.TRUCK_6.label == "6类货车"
    assert VehicleClass.SPECIAL_1.label == "1类专项作业车"
    assert VehicleClass.PASSENGER_4.category is VehicleCategory.PASSENGER
    assert VehicleClass.TRUCK_1.category is VehicleCategory.TRUCK
    assert VehicleClass.SPECIAL_6.category is VehicleCategory.SPECIAL


def test_text_codes() -> None:
    assert VehicleCategory.choices() == [
        ("passenger", "客车"),
        ("truck", "货车"),
        ("special", "专项作业车"),
    ]
    assert VehicleCategory("truck") is VehicleCategory.TRUCK
    assert VehicleCategory.from_code("special") is VehicleCategory.SPECIAL
    assert str(VehicleCategory.TRUCK) == "truck"
    assert VehicleCategory.TRUCK == "truck"
    assert VehicleCategory.TRUCK.label_en == "truck"


def test_text_code_unknown() -> None:
    with pytest.raises(
        ValueError,
        match=r"^'bus' is not a VehicleCategory code \(known codes: passenger, truck, special\)$",
    ):
        VehicleCategory.from_code("bus")


def test_use_nature_letters() -> None:
    assert [code for code, _label in UseNature.choices()] == list("ABCDEFGHIJKLMNOPQRS")
    assert UseNature.from_code("A").label == "非营运"
    assert UseNature.from_code("R").label == "危化品运输"
    assert UseNature.from_code("S").label == "中小学生校车"


def test_vehicle_user_types() -> None:
    assert VehicleUserType.choices() == [
        (0, "普通车"),
        (6, "公务车"),
        (8, "军警车"),
        (10, "紧急车"),
        (12, "免费"),
        (14, "车队"),
        (0x18, "集装箱车"),
        (0x1A, "应急救援车辆"),
        (0x1B, "其他牵引车"),
    ]


def test_vehicle_kinds() -> None:
    assert [code for code, _label in VehicleKind.choices()] == [
        0, 8, 10, 14, 21, 22, 23, 24, 25, 26, 27, 28, 90, 91,
    ]  # fmt: skip
    assert VehicleKind.from_code(21).label == "绿通车"
    assert VehicleKind.from_code(27).label == "货车列车或半挂汽车列车"


def test_id_doc_types_split_personal_and_organization() -> None:
    personal = [doc for doc in IdDocType if not doc.for_organization]
    organization = [doc for doc in IdDocType if doc.for_organization]
    assert [doc.value for doc in personal] == [101, 102, 103, 104, 105, 106, 107, 108]
    assert [doc.value for doc in organization] == [201, 202, 203, 204, 205]
    assert IdDocType.RESIDENT_ID.label == "居民身份证"
    assert IdDocType.USCC_CERTIFICATE.label == "统一社会信用代码证书"


def test_customer_and_card_types() -> None:
    assert CustomerType.choices() == [(1, "个人"), (2, "单位")]
    assert CardType.choices() == [(22, "储值卡"), (23, "记账卡")]
