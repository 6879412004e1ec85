"""Code tables of the ETC network, with Chinese and English labels.

Values follow the reference (docs/reference ETC.md Part 1, §4 and §6); where the
public record is silent the choice is etcnet's and is listed in ``docs/codes.md``.
Members are declared as ``NAME = (value, "中文标签", "English label")``; the value
is what goes into records, cards and the database.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any, Self

__all__ = [
    "CardType",
    "CodeEnum",
    "CustomerType",
    "IdDocType",
    "PlateColor",
    "TextCodeEnum",
    "UseNature",
    "VehicleCategory",
    "VehicleClass",
    "VehicleKind",
    "VehicleUserType",
]


class _Labelled:
    """What both code enums share: labels, choices and a strict lookup."""

    value: Any
    label: str
    label_en: str

    @classmethod
    def choices(cls) -> list[tuple[Any, str]]:
        """(value, Chinese label) pairs, in declaration order, for form and model choices."""
        return [(member.value, member.label) for member in cls._members()]

    @classmethod
    def from_code(cls, value: Any) -> Self:
        """The member for ``value``; ``ValueError`` naming the table for an unknown code.

        The type must match too: ``True`` is not code 1, ``1`` is not text code "1"."""
        for member in cls._members():
            if member.value == value and type(value) is type(member.value):
                return member
        known = ", ".join(str(member.value) for member in cls._members())
        raise ValueError(f"{value!r} is not a {cls.__name__} code (known codes: {known})")

    @classmethod
    def _members(cls) -> list[Self]:
        return list(cls.__members__.values())  # type: ignore[attr-defined]


class CodeEnum(_Labelled, IntEnum):
    """An integer code with a Chinese ``label`` and an English ``label_en``."""

    _value_: int

    # Runs only while the class body is built; a later ``Cls(value)`` is a lookup.
    # The label defaults let type checkers accept that lookup.
    def __new__(cls, value: int, label: str = "", label_en: str = "") -> Self:
        member = int.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.label_en = label_en
        return member


class TextCodeEnum(_Labelled, StrEnum):
    """A text code with a Chinese ``label`` and an English ``label_en``."""

    _value_: str

    # Runs only while the class body is built; a later ``Cls(value)`` is a lookup.
    # The label defaults let type checkers accept that lookup.
    def __new__(cls, value: str, label: str = "", label_en: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.label_en = label_en
        return member


class PlateColor(CodeEnum):
    """车牌颜色 (reference §4.2; records write plates as ``京A12345_1``)."""

    BLUE = (0, "蓝", "blue")
    YELLOW = (1, "黄", "yellow")
    BLACK = (2, "黑", "black")
    WHITE = (3, "白", "white")
    GRADIENT_GREEN = (4, "渐变绿", "gradient green")
    YELLOW_GREEN = (5, "黄绿双拼", "yellow-green")
    BLUE_WHITE = (6, "蓝白渐变", "blue-white gradient")
    TEMPORARY = (7, "临时牌照", "temporary plate")
    UNDETERMINED = (9, "未确定", "undetermined")
    GREEN = (11, "绿色", "green")
    RED = (12, "红色", "red")


class VehicleCategory(TextCodeEnum):
    """The three families of JT/T 489-2019."""

    PASSENGER = ("passenger", "客车", "passenger vehicle")
    TRUCK = ("truck", "货车", "truck")
    SPECIAL = ("special", "专项作业车", "special-operation vehicle")


class VehicleClass(CodeEnum):
    """收费车型, JT/T 489-2019 (reference §4.1)."""

    PASSENGER_1 = (1, "1类客车", "class 1 passenger vehicle")
    PASSENGER_2 = (2, "2类客车", "class 2 passenger vehicle")
    PASSENGER_3 = (3, "3类客车", "class 3 passenger vehicle")
    PASSENGER_4 = (4, "4类客车", "class 4 passenger vehicle")
    TRUCK_1 = (11, "1类货车", "class 1 truck")
    TRUCK_2 = (12, "2类货车", "class 2 truck")
    TRUCK_3 = (13, "3类货车", "class 3 truck")
    TRUCK_4 = (14, "4类货车", "class 4 truck")
    TRUCK_5 = (15, "5类货车", "class 5 truck")
    TRUCK_6 = (16, "6类货车", "class 6 truck")
    SPECIAL_1 = (21, "1类专项作业车", "class 1 special-operation vehicle")
    SPECIAL_2 = (22, "2类专项作业车", "class 2 special-operation vehicle")
    SPECIAL_3 = (23, "3类专项作业车", "class 3 special-operation vehicle")
    SPECIAL_4 = (24, "4类专项作业车", "class 4 special-operation vehicle")
    SPECIAL_5 = (25, "5类专项作业车", "class 5 special-operation vehicle")
    SPECIAL_6 = (26, "6类专项作业车", "class 6 special-operation vehicle")

    @property
    def category(self) -> VehicleCategory:
        """The family the class belongs to (1–4 客车, 11–16 货车, 21–26 专项作业车)."""
        if self.value < 10:
            return VehicleCategory.PASSENGER
        if self.value < 20:
            return VehicleCategory.TRUCK
        return VehicleCategory.SPECIAL


class VehicleUserType(CodeEnum):
    """车辆用户类型 (card 0015 byte 40 / OBU EF01; reference §4.3)."""

    ORDINARY = (0, "普通车", "ordinary")
    OFFICIAL = (6, "公务车", "official vehicle")
    MILITARY_POLICE = (8, "军警车", "military or police vehicle")
    EMERGENCY = (10, "紧急车", "emergency vehicle")
    FREE = (12, "免费", "toll-free")
    FLEET = (14, "车队", "fleet")
    CONTAINER = (24, "集装箱车", "container vehicle")
    EMERGENCY_RESCUE = (26, "应急救援车辆", "emergency rescue vehicle")
    OTHER_TRACTOR = (27, "其他牵引车", "other tractor")


class VehicleKind(CodeEnum):
    """车种 (transaction record ``vehicleClass`` / ``vehStatus``; reference §4.3)."""

    ORDINARY = (0, "普通", "ordinary")
    MILITARY_POLICE = (8, "军警", "military or police")
    EMERGENCY = (10, "紧急", "emergency")
    FLEET = (14, "车队", "fleet")
    GREEN_CHANNEL = (21, "绿通车", "green-channel produce vehicle")
    COMBINE_HARVESTER = (22, "联合收割机", "combine harvester")
    DISASTER_RELIEF = (23, "抢险救灾", "disaster relief")
    CONTAINER_J1 = (24, "J1类集装箱", "J1 container")
    OVERSIZE = (25, "大件运输", "oversize transport")
    EMERGENCY_SUPPORT = (26, "应急保障车", "emergency support vehicle")
    TRUCK_TRAIN = (27, "货车列车或半挂汽车列车", "truck train or semi-trailer train")
    CONTAINER_J2 = (28, "J2类集装箱", "J2 container")
    RELEASED = (90, "放行车", "released vehicle")
    GATE_CRASHER = (91, "闯关车", "gate crasher")


class UseNature(TextCodeEnum):
    """机动车使用性质 (GA 24.3 letter codes, as printed on the driving licence)."""

    NON_OPERATING = ("A", "非营运", "non-operating")
    ROAD_PASSENGER = ("B", "公路客运", "road passenger transport")
    PUBLIC_TRANSIT = ("C", "公交客运", "public transit")
    TAXI = ("D", "出租客运", "taxi")
    TOURISM = ("E", "旅游客运", "tourist passenger transport")
    FREIGHT = ("F", "货运", "freight")
    RENTAL = ("G", "租赁", "rental")
    POLICE = ("H", "警用", "police")
    FIRE = ("I", "消防", "fire service")
    AMBULANCE = ("J", "救护", "ambulance")
    ENGINEERING_RESCUE = ("K", "工程救险", "engineering rescue")
    FORMER_OPERATING = ("L", "营转非", "formerly operating")
    FORMER_TAXI = ("M", "出租转非", "former taxi")
    DRIVING_SCHOOL = ("N", "教练", "driving school")
    KINDERGARTEN_BUS = ("O", "幼儿校车", "kindergarten school bus")
    PRIMARY_SCHOOL_BUS = ("P", "小学生校车", "primary school bus")
    OTHER_SCHOOL_BUS = ("Q", "其他校车", "other school bus")
    HAZARDOUS_GOODS = ("R", "危化品运输", "hazardous goods transport")
    SCHOOL_BUS = ("S", "中小学生校车", "primary and secondary school bus")


class IdDocType(CodeEnum):
    """Identity document types for ETC issuance — etcnet's profile (docs/codes.md).

    1xx are personal documents, 2xx organisation documents. The national code table
    (card file 0016 byte 54) is unconfirmed; map to it at the card boundary.
    """

    RESIDENT_ID = (101, "居民身份证", "resident identity card")
    MILITARY_OFFICER = (102, "军官证", "military officer's certificate")
    PASSPORT = (103, "护照", "passport")
    HK_MACAO_PERMIT = (
        104,
        "港澳居民来往内地通行证",
        "mainland travel permit for Hong Kong and Macao residents",
    )
    TAIWAN_PERMIT = (105, "台湾居民来往大陆通行证", "mainland travel permit for Taiwan residents")
    ARMED_POLICE_OFFICER = (106, "武警警官证", "armed police officer's certificate")
    FOREIGNER_PERMANENT_RESIDENCE = (
        107,
        "外国人永久居留身份证",
        "foreigner's permanent residence ID card",
    )
    HMT_RESIDENCE_PERMIT = (
        108,
        "港澳台居民居住证",
        "residence permit for Hong Kong, Macao and Taiwan residents",
    )
    USCC_CERTIFICATE = (201, "统一社会信用代码证书", "unified social credit code certificate")
    ORGANIZATION_CODE = (202, "组织机构代码证", "organisation code certificate")
    BUSINESS_LICENSE = (203, "营业执照", "business licence")
    PUBLIC_INSTITUTION = (204, "事业单位法人证书", "public institution legal person certificate")
    SOCIAL_ORGANIZATION = (
        205,
        "社会团体法人登记证书",
        "social organisation legal person registration certificate",
    )

    @property
    def for_organization(self) -> bool:
        """True for documents that identify an organisation (2xx), not a person."""
        return int(self) >= 200


class CustomerType(CodeEnum):
    """客户类型."""

    PERSONAL = (1, "个人", "personal")
    ORGANIZATION = (2, "单位", "organisation")


class CardType(CodeEnum):
    """卡片类型 (card file 0015 byte 8; reference §1.2)."""

    STORED_VALUE = (22, "储值卡", "stored-value card")
    DEBIT = (23, "记账卡", "debit card")
