"""Clearing packages (清分报文) as files: the national center's XML messages of
reference §6.2 in a format of our own that carries every field §6.2 names
(docs/clearing-packages.md).

Four messages, each a frozen dataclass with its amounts in fen:

* ``TransactionPackage`` — 原始交易包 (MessageClass 5, MessageType 7, ContentType 1):
  up to 10,000 card purchases of one clearing day, one toll service provider and
  one issuer. ``build_packages`` cuts a day's purchases into packages, MessageId
  +1 each.
* ``AccountingResult`` — 记账处理 (5, 5, 1): the issuer's answer to one package,
  the disputed transactions with their result codes (the rest are accepted).
* ``ClearingSummary`` — 清分统计 (5, 5, 2): a clearing day's totals for an issuer,
  the packages and dispute files each service provider's amount covers.
* ``Response`` — (MessageClass 6): the receipt for any of them, Result 1-8.

``write`` checks a message whole and gives UTF-8 XML; ``read`` refuses a document
over ``MAX_BYTES`` or with a DOCTYPE or ENTITY declaration before parsing it, then
checks it by the same rules. Every refusal is a ``PackageError`` naming the field
by its path in the document (``Body/Transaction[3]/ICCard/CardId``). Yuan
amounts are written with exactly two decimals and read back exactly, never
through a float.

Pure: no Django; the element names are §6.2's so that the exchange can carry the
same messages to the national center.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import itertools
import operator
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import Enum, IntEnum, StrEnum
from typing import NamedTuple, TypeVar

from etcnet.core.money import MAX_FEN, format_yuan

__all__ = [
    "MAX_BYTES",
    "MAX_INTERVALS",
    "MAX_TRANSACTIONS",
    "OBU",
    "VEHICLE_TYPES",
    "VERSION",
    "VERSIONS",
    "AccountingResult",
    "Algorithm",
    "CardType",
    "ClearingList",
    "ClearingSummary",
    "CustomizedData",
    "DisputeResult",
    "DisputedRecord",
    "Envelope",
    "Header",
    "ICCard",
    "Message",
    "PackageError",
    "Response",
    "ResponseResult",
    "Service",
    "TransType",
    "Transaction",
    "TransactionPackage",
    "Validation",
    "build_packages",
    "check_transaction",
    "chunk",
    "envelope",
    "read",
    "validate",
    "write",
]

#: A document larger than this is refused before it is parsed.
MAX_BYTES = 64 * 1024 * 1024
#: §6.2 advises fewer than 10,000 records a package; more are refused.
MAX_TRANSACTIONS = 10_000
#: The most toll intervals one transaction names (as ``etcnet.tolling.records``).
MAX_INTERVALS = 1_000
VERSIONS = ("00010000", "00020000")
#: The version ``Header`` writes unless told otherwise.
VERSION = "00020000"
#: Vehicle types 1-4 (客车), 11-16 (货车), 21-26 (专项作业车): ``core.codes.VehicleClass``.
VEHICLE_TYPES = frozenset((*range(1, 5), *range(11, 17), *range(21, 27)))

_CHINA = dt.timezone(dt.timedelta(hours=8))
_MAX_INT = 2**63 - 1  # what a BigIntegerField holds
_ADVICE, _RESPONSE = 5, 6  # MessageClass
_ACCOUNTING, _TRANSACTIONS = 5, 7  # MessageType
_CONTENT_TYPES = {_TRANSACTIONS: (1,), _ACCOUNTING: (1, 2)}  # MessageType -> ContentType


class PackageError(ValueError):
    """A message that cannot be written or accepted; ``field`` is the path of what is
    wrong in the document (``Header/Version``, ``Body/Transaction[3]/Fee``,
    ``document`` for the file as a whole)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CardType(IntEnum):
    """ICCard/CardType."""

    STORED_VALUE = 22  # 储值卡
    DEBIT = 23  # 记账卡


class TransType(StrEnum):
    """Validation/TransType: the card purchase that made the TAC."""

    TRADITIONAL = "06"  # 传统消费
    COMPOSITE = "09"  # 复合消费


class Algorithm(IntEnum):
    """AlgorithmIdentifier: the algorithm of the TAC."""

    TDES = 1
    SM4 = 2


class DisputeResult(IntEnum):
    """DisputedRecord/Result: why the issuer did not accept a transaction (§6.2)."""

    VALIDATION_FAILED = 1  # 验证未通过 (如TAC错误)
    DUPLICATE = 2  # 重复交易
    USER_STATUS_CHANGED = 3  # 用户状态变化
    INVALID_TRANS_TYPE = 4  # 无效交易类型
    OVERDUE = 5  # 逾期超过设定值
    DATA_FIELD_ERROR = 6  # 交易数据域错
    OVER_LIMIT = 7  # 超过最大交易限额
    CARD_UNKNOWN = 8  # 卡号不存在
    CARD_STATUS_MISMATCH = 9  # 卡状态不匹配
    CARD_EXPIRED = 10  # 卡超过有效期
    NOT_ALLOWED = 11  # 不允许的交易
    CSN_MISMATCH = 12  # 卡片CSN不匹配
    TEST = 13  # 测试交易
    BALANCE_MISMATCH = 14  # 卡帐不符(储值卡)
    INVALID_CARD_TYPE = 15  # 无效卡类型
    LANE_CLOCK_ERROR = 16  # 车道对时错误
    OBU_UNKNOWN = 17  # OBU号不存在
    OTHER = 100  # 其它


class ResponseResult(IntEnum):
    """Response/Result (§6.2)."""

    RECEIVED = 1  # 正常接收
    HEADER_ERROR = 2  # 消息头错误
    SCHEMA_FAILED = 3  # XML Schema 不通过
    CONTENT_ERROR = 4  # 内容错误
    DUPLICATE = 5  # 消息重复
    ADVICE_REFUSED = 6  # 不接受建议
    VERSION_ERROR = 7  # 版本错误
    RECONCILIATION_FAILED = 8  # 清分统计对帐失败


@dataclass(frozen=True, slots=True)
class Header:
    """The envelope; MessageClass, MessageType and ContentType follow from the message."""

    sender_id: str  # 16 hex digits
    receiver_id: str  # 16 hex digits
    message_id: int  # 1-based, +1 a message
    version: str = VERSION


@dataclass(frozen=True, slots=True)
class Service:
    service_type: int  # 1 = 公路电子收费
    description: str
    detail: str


@dataclass(frozen=True, slots=True)
class ICCard:
    card_type: CardType
    net_no: str  # 4 digits, 卡片网络编号
    card_id: str  # 16-20 digits
    license: str  # the plate the card is issued to
    pre_balance_fen: int
    post_balance_fen: int


@dataclass(frozen=True, slots=True)
class Validation:
    tac: str  # 8 hex digits
    trans_type: TransType
    terminal_no: str  # 12 hex digits: the PSAM's terminal number
    terminal_trans_no: str  # 8 hex digits: the PSAM's transaction serial


@dataclass(frozen=True, slots=True)
class OBU:
    net_no: str  # 4 digits
    obu_id: str  # 16 digits, 合同序列号
    obe_state: str  # the OBU's status byte(s): 2 or 4 hex digits
    license: str


@dataclass(frozen=True, slots=True)
class CustomizedData:
    """Our keys, to match an answer back to the transaction it is about."""

    source_id: int  # our transaction's id
    card_trans_no: int  # the card's offline transaction counter (0-65535)
    exit_station: str
    entry_station: str
    intervals: tuple[str, ...]  # toll interval ids in driving order


@dataclass(frozen=True, slots=True)
class Transaction:
    """One card purchase. ``trans_id`` is its 1-based number in its package:
    ``build_packages`` sets it."""

    time: dt.datetime  # aware, whole seconds
    fee_fen: int
    service: Service
    card: ICCard
    validation: Validation
    customized: CustomizedData
    vehicle_type: int  # VEHICLE_TYPES
    algorithm: Algorithm
    obu: OBU | None = None  # None: a card read without an OBU
    trans_id: int = 0


@dataclass(frozen=True, slots=True)
class TransactionPackage:
    """原始交易包. Count and Amount are not stored: they are the transactions'."""

    header: Header
    clear_target_date: dt.date
    service_provider_id: str
    issuer_id: str
    message_id: int  # the package's number, as the header's in ``build_packages``
    transactions: tuple[Transaction, ...]

    @property
    def count(self) -> int:
        return len(self.transactions)

    @property
    def amount_fen(self) -> int:
        return sum(t.fee_fen for t in self.transactions)


@dataclass(frozen=True, slots=True)
class DisputedRecord:
    trans_id: int  # the transaction's TransId in the package answered
    result: DisputeResult


@dataclass(frozen=True, slots=True)
class AccountingResult:
    """记账处理: the issuer's result for package ``message_id``; a transaction not
    listed in ``disputed`` is accepted for payment."""

    header: Header
    clear_target_date: dt.date
    service_provider_id: str
    issuer_id: str
    message_id: int  # the package answered
    count: int  # transactions confirmed
    amount_fen: int  # 确认记帐总金额
    disputed: tuple[DisputedRecord, ...]


@dataclass(frozen=True, slots=True)
class ClearingList:
    """One service provider's part of a clearing summary."""

    service_provider_id: str
    message_ids: tuple[int, ...]  # the transaction packages it covers
    file_ids: tuple[int, ...]  # the dispute-result files (争议处理结果) it covers


@dataclass(frozen=True, slots=True)
class ClearingSummary:
    """清分统计: the day's payable count and amount for an issuer (坏帐 excluded)."""

    header: Header
    clear_target_date: dt.date
    count: int
    amount_fen: int  # 清分总金额
    process_time: dt.datetime  # aware, whole seconds
    issuer_id: str
    lists: tuple[ClearingList, ...]


@dataclass(frozen=True, slots=True)
class Response:
    """The receipt (MessageClass 6) for a message: its header's MessageId is the one
    answered, MessageType and ContentType are the answered message's."""

    header: Header
    message_type: int  # 7 (原始交易包) or 5 (记账 / 清分)
    content_type: int  # 1, or 2 for a 清分统计
    result: ResponseResult


Message = TransactionPackage | AccountingResult | ClearingSummary | Response
T = TypeVar("T")


# --- Building packages -------------------------------------------------------------------


def chunk(items: Iterable[T], size: int = MAX_TRANSACTIONS) -> Iterator[tuple[T, ...]]:
    """``items`` in consecutive tuples of ``size`` (the last may be shorter)."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_TRANSACTIONS:
        raise PackageError("size", f"expected 1 to {MAX_TRANSACTIONS}, got {size!r}")
    return _chunks(iter(items), size)


def _chunks(items: Iterator[T], size: int) -> Iterator[tuple[T, ...]]:
    while part := tuple(itertools.islice(items, size)):
        yield part


def build_packages(
    transactions: Iterable[Transaction],
    *,
    clear_target_date: dt.date,
    service_provider_id: str,
    issuer_id: str,
    sender_id: str,
    receiver_id: str,
    first_message_id: int,
    version: str = VERSION,
    size: int = MAX_TRANSACTIONS,
) -> Iterator[TransactionPackage]:
    """A day's transactions in packages of at most ``size``, in the order given: the
    first package is MessageId ``first_message_id`` (header and body alike), each next
    one +1, and each transaction's TransId is its 1-based position in its package.
    The packages are made as they are taken; ``write`` checks each."""
    if isinstance(first_message_id, bool) or not isinstance(first_message_id, int):
        raise PackageError("first_message_id", f"expected a whole number, got {first_message_id!r}")
    if not 1 <= first_message_id <= _MAX_INT:
        raise PackageError("first_message_id", f"expected 1 or more, got {first_message_id}")
    return (
        TransactionPackage(
            header=Header(sender_id, receiver_id, message_id, version),
            clear_target_date=clear_target_date,
            service_provider_id=service_provider_id,
            issuer_id=issuer_id,
            message_id=message_id,
            transactions=tuple(replace(t, trans_id=trans_id) for trans_id, t in enumerate(part, 1)),
        )
        for message_id, part in enumerate(chunk(transactions, size), first_message_id)
    )


# --- Field rules, shared by write and read -----------------------------------------------


class _Rule(NamedTuple):
    pattern: re.Pattern[str]
    what: str


# Characters XML 1.0 can carry; free text is limited to them so that what is written
# can be read back.
_XML_CHARS = r"\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff"


def _text(limit: int) -> _Rule:
    return _Rule(re.compile(f"[{_XML_CHARS}]{{0,{limit}}}"), f"text of at most {limit} characters")


_HEX16 = _Rule(re.compile(r"[0-9A-F]{16}"), "16 hex digits (0-9, A-F)")
_PARTY = _Rule(re.compile(r"[0-9A-Za-z]{1,32}"), "1-32 letters or digits")
_NET_NO = _Rule(re.compile(r"[0-9]{4}"), "4 digits")
_CARD_ID = _Rule(re.compile(r"[0-9]{16,20}"), "16-20 digits")
_OBU_ID = _Rule(re.compile(r"[0-9]{16}"), "16 digits")
_OBE_STATE = _Rule(re.compile(r"[0-9A-F]{2}(?:[0-9A-F]{2})?"), "2 or 4 hex digits (0-9, A-F)")
_TAC = _Rule(re.compile(r"[0-9A-F]{8}"), "8 hex digits (0-9, A-F)")
_TERMINAL_NO = _Rule(re.compile(r"[0-9A-F]{12}"), "12 hex digits (0-9, A-F)")
_TERMINAL_TRANS_NO = _TAC
_LICENSE = _text(32)
_STATION = _text(64)
_DESCRIPTION = _text(255)
# An interval id is written between single spaces: no whitespace or control character.
_INTERVAL = _Rule(
    re.compile(r"[\x21-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]{1,32}"),
    "1-32 characters without spaces",
)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_text(value: object, path: str, rule: _Rule) -> None:
    if not isinstance(value, str) or rule.pattern.fullmatch(value) is None:
        raise PackageError(path, f"expected {rule.what}, got {_shown(value)}")


def _check_int(value: object, path: str, low: int, high: int = _MAX_INT) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PackageError(path, f"expected a whole number, got {_shown(value)}")
    if not low <= value <= high:
        raise PackageError(path, f"expected {low} to {high}, got {value}")


def _check_fen(value: object, path: str, low: int = -MAX_FEN) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PackageError(path, f"expected an amount in fen, got {_shown(value)}")
    if not low <= value <= MAX_FEN:
        shown = "0.00" if low == 0 else format_yuan(low)
        raise PackageError(path, f"expected {shown} to {format_yuan(MAX_FEN)} yuan, got {value}")


_E = TypeVar("_E", bound=Enum)


def _member(kind: type[_E], value: object, path: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        raise PackageError(path, f"expected one of {choices}, got {_shown(value)}") from None


def _check_date(value: object, path: str) -> None:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise PackageError(path, f"expected a date, got {_shown(value)}")


def _china_time(value: object, path: str) -> str:
    """``value`` as written: ISO 8601 at +08:00, to the second."""
    if not isinstance(value, dt.datetime):
        raise PackageError(path, f"expected a time, got {_shown(value)}")
    if value.utcoffset() is None:
        raise PackageError(path, f"expected a time with its UTC offset, got {value.isoformat()}")
    try:
        local = value.astimezone(_CHINA)
    except OverflowError:
        raise PackageError(path, f"{value.isoformat()} is out of range") from None
    if local.microsecond:
        # The TAC covers the time to the second: a fraction is not the card's time.
        raise PackageError(path, f"expected whole seconds, got {value.isoformat()}")
    return local.isoformat()


def _check_header(header: Header) -> None:
    if not isinstance(header, Header):
        raise PackageError("Header", f"expected a Header, got {_shown(header)}")
    if header.version not in VERSIONS:
        raise PackageError(
            "Header/Version", f"expected {' or '.join(VERSIONS)}, got {_shown(header.version)}"
        )
    _check_text(header.sender_id, "Header/SenderId", _HEX16)
    _check_text(header.receiver_id, "Header/ReceiverId", _HEX16)
    _check_int(header.message_id, "Header/MessageId", 1)


def _check_transaction(t: Transaction, path: str) -> None:
    _china_time(t.time, f"{path}/Time")
    _check_fen(t.fee_fen, f"{path}/Fee", 0)
    service = t.service
    _check_int(service.service_type, f"{path}/Service/ServiceType", 0, 2**31 - 1)
    _check_text(service.description, f"{path}/Service/Description", _DESCRIPTION)
    _check_text(service.detail, f"{path}/Service/Detail", _DESCRIPTION)
    card = t.card
    _member(CardType, card.card_type, f"{path}/ICCard/CardType")
    _check_text(card.net_no, f"{path}/ICCard/NetNo", _NET_NO)
    _check_text(card.card_id, f"{path}/ICCard/CardId", _CARD_ID)
    _check_text(card.license, f"{path}/ICCard/License", _LICENSE)
    _check_fen(card.pre_balance_fen, f"{path}/ICCard/PreBalance")
    _check_fen(card.post_balance_fen, f"{path}/ICCard/PostBalance")
    validation = t.validation
    _check_text(validation.tac, f"{path}/Validation/TAC", _TAC)
    _member(TransType, validation.trans_type, f"{path}/Validation/TransType")
    _check_text(validation.terminal_no, f"{path}/Validation/TerminalNo", _TERMINAL_NO)
    _check_text(
        validation.terminal_trans_no, f"{path}/Validation/TerminalTransNo", _TERMINAL_TRANS_NO
    )
    obu = t.obu
    if obu is not None:
        _check_text(obu.net_no, f"{path}/OBU/NetNo", _NET_NO)
        _check_text(obu.obu_id, f"{path}/OBU/OBUId", _OBU_ID)
        _check_text(obu.obe_state, f"{path}/OBU/OBEState", _OBE_STATE)
        _check_text(obu.license, f"{path}/OBU/License", _LICENSE)
    data = t.customized
    _check_int(data.source_id, f"{path}/CustomizedData/SourceId", 1)
    _check_int(data.card_trans_no, f"{path}/CustomizedData/CardTransNo", 0, 0xFFFF)
    _check_text(data.exit_station, f"{path}/CustomizedData/ExitStation", _STATION)
    _check_text(data.entry_station, f"{path}/CustomizedData/EntryStation", _STATION)
    if not isinstance(data.intervals, tuple) or len(data.intervals) > MAX_INTERVALS:
        raise PackageError(
            f"{path}/CustomizedData/Intervals",
            f"expected a tuple of at most {MAX_INTERVALS} interval ids",
        )
    for interval in data.intervals:
        _check_text(interval, f"{path}/CustomizedData/Intervals", _INTERVAL)
    vehicle_type = t.vehicle_type
    if (
        isinstance(vehicle_type, bool)
        or not isinstance(vehicle_type, int)
        or vehicle_type not in VEHICLE_TYPES
    ):
        raise PackageError(
            f"{path}/VehicleType",
            f"expected 1-4, 11-16 or 21-26, got {_shown(t.vehicle_type)}",
        )
    _member(Algorithm, t.algorithm, f"{path}/AlgorithmIdentifier")


def check_transaction(t: Transaction) -> None:
    """Raises `PackageError` when a package could not carry `t` (before one is built)."""
    if not isinstance(t, Transaction):
        raise PackageError("Transaction", f"expected a Transaction, got {_shown(t)}")
    _check_transaction(t, "Transaction")


def _check_package(package: TransactionPackage) -> None:
    _check_package_head(package)
    transactions = package.transactions
    if not isinstance(transactions, tuple) or not 1 <= len(transactions) <= MAX_TRANSACTIONS:
        raise PackageError(
            "Body/Transaction",
            f"a package holds 1 to {MAX_TRANSACTIONS:,} transactions, got "
            + (f"{len(transactions):,}" if isinstance(transactions, tuple) else "no tuple"),
        )
    n = len(transactions)
    seen: set[int] = set()
    for index, t in enumerate(transactions, 1):
        path = f"Body/Transaction[{index}]"
        if not isinstance(t, Transaction):
            raise PackageError(path, f"expected a Transaction, got {_shown(t)}")
        _check_int(t.trans_id, f"{path}/TransId", 1, n)
        if t.trans_id in seen:
            raise PackageError(f"{path}/TransId", f"{t.trans_id} appears twice")
        seen.add(t.trans_id)
        _check_transaction(t, path)
    _check_fen(package.amount_fen, "Body/Amount", 0)


def _check_package_head(message: TransactionPackage | AccountingResult) -> None:
    _check_date(message.clear_target_date, "Body/ClearTargetDate")
    _check_text(message.service_provider_id, "Body/ServiceProviderId", _PARTY)
    _check_text(message.issuer_id, "Body/IssuerId", _PARTY)
    _check_int(message.message_id, "Body/MessageId", 1)


def _check_accounting(result: AccountingResult) -> None:
    _check_package_head(result)
    _check_int(result.count, "Body/Count", 0, MAX_TRANSACTIONS)
    _check_fen(result.amount_fen, "Body/Amount", 0)
    if not isinstance(result.disputed, tuple) or len(result.disputed) > MAX_TRANSACTIONS:
        raise PackageError(
            "Body/DisputedRecord", f"expected a tuple of at most {MAX_TRANSACTIONS:,} records"
        )
    seen: set[int] = set()
    for index, record in enumerate(result.disputed, 1):
        path = f"Body/DisputedRecord[{index}]"
        _check_int(record.trans_id, f"{path}/TransId", 1, MAX_TRANSACTIONS)
        if record.trans_id in seen:
            raise PackageError(f"{path}/TransId", f"{record.trans_id} appears twice")
        seen.add(record.trans_id)
        _member(DisputeResult, record.result, f"{path}/Result")


def _check_summary(summary: ClearingSummary) -> None:
    _check_date(summary.clear_target_date, "Body/ClearTargetDate")
    _check_int(summary.count, "Body/Count", 0)
    _check_fen(summary.amount_fen, "Body/Amount", 0)
    _china_time(summary.process_time, "Body/ProcessTime")
    _check_text(summary.issuer_id, "Body/IssuerId", _PARTY)
    if not isinstance(summary.lists, tuple):
        raise PackageError("Body/List", "expected a tuple of ClearingList")
    for index, entry in enumerate(summary.lists, 1):
        path = f"Body/List[{index}]"
        _check_text(entry.service_provider_id, f"{path}/ServiceProviderId", _PARTY)
        for name, ids in (("MessageId", entry.message_ids), ("FileId", entry.file_ids)):
            if not isinstance(ids, tuple):
                raise PackageError(f"{path}/{name}", "expected a tuple of whole numbers")
            for position, value in enumerate(ids, 1):
                _check_int(value, f"{path}/{name}[{position}]", 1)


def _check_response(response: Response) -> None:
    content_types = _CONTENT_TYPES.get(response.message_type)
    if content_types is None or isinstance(response.message_type, bool):
        raise PackageError(
            "Header/MessageType", f"expected 5 or 7, got {_shown(response.message_type)}"
        )
    if response.content_type not in content_types or isinstance(response.content_type, bool):
        raise PackageError(
            "Body/ContentType",
            f"expected {' or '.join(map(str, content_types))} for MessageType "
            f"{response.message_type}, got {_shown(response.content_type)}",
        )
    _member(ResponseResult, response.result, "Body/Result")


def validate(message: Message) -> None:
    """Check ``message`` whole by the rules ``write`` and ``read`` apply; raise
    ``PackageError`` naming the first field that breaks one."""
    if not isinstance(message, TransactionPackage | AccountingResult | ClearingSummary | Response):
        raise PackageError("Message", f"expected a clearing message, got {_shown(message)}")
    _check_header(message.header)
    if isinstance(message, TransactionPackage):
        _check_package(message)
    elif isinstance(message, AccountingResult):
        _check_accounting(message)
    elif isinstance(message, ClearingSummary):
        _check_summary(message)
    else:
        _check_response(message)


# --- Writing -----------------------------------------------------------------------------


def _escape(text: str) -> str:
    # A carriage return is written as a reference: a parser turns a literal one into \n.
    if "&" in text or "<" in text or ">" in text or "\r" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = text.replace("\r", "&#13;")
    return text


def write(message: Message) -> bytes:
    """``message`` as a UTF-8 XML document, after ``validate``."""
    validate(message)
    if isinstance(message, TransactionPackage):
        kind, body = (_ADVICE, _TRANSACTIONS, 1), _package_body(message)
    elif isinstance(message, AccountingResult):
        kind, body = (_ADVICE, _ACCOUNTING, 1), _accounting_body(message)
    elif isinstance(message, ClearingSummary):
        kind, body = (_ADVICE, _ACCOUNTING, 2), _summary_body(message)
    else:
        kind = (_RESPONSE, message.message_type, message.content_type)
        body = [f"    <Result>{message.result:d}</Result>\n"]
    message_class, message_type, content_type = kind
    header = message.header
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Message>\n  <Header>\n',
        f"    <Version>{header.version}</Version>\n",
        f"    <MessageClass>{message_class:d}</MessageClass>\n",
        f"    <MessageType>{message_type:d}</MessageType>\n",
        f"    <SenderId>{header.sender_id}</SenderId>\n",
        f"    <ReceiverId>{header.receiver_id}</ReceiverId>\n",
        f"    <MessageId>{header.message_id:d}</MessageId>\n",
        "  </Header>\n  <Body>\n",
        f"    <ContentType>{content_type:d}</ContentType>\n",
        *body,
        "  </Body>\n</Message>\n",
    ]
    return "".join(parts).encode("utf-8")


def _package_head(message: TransactionPackage | AccountingResult) -> list[str]:
    """What a package and its accounting result both begin with."""
    return [
        f"    <ClearTargetDate>{message.clear_target_date.isoformat()}</ClearTargetDate>\n",
        f"    <ServiceProviderId>{message.service_provider_id}</ServiceProviderId>\n",
        f"    <IssuerId>{message.issuer_id}</IssuerId>\n",
        f"    <MessageId>{message.message_id:d}</MessageId>\n",
        f"    <Count>{message.count:d}</Count>\n",
        f"    <Amount>{format_yuan(message.amount_fen)}</Amount>\n",
    ]


def _package_body(package: TransactionPackage) -> list[str]:
    return [*_package_head(package), *map(_transaction_xml, package.transactions)]


def _transaction_xml(t: Transaction) -> str:
    # One line a transaction: a reader greps it, and a parser has no whitespace
    # between its elements to keep (a quarter of the parse when indented).
    service, card, validation, data, obu = t.service, t.card, t.validation, t.customized, t.obu
    obu_xml = (
        ""
        if obu is None
        else f"<OBU><NetNo>{obu.net_no}</NetNo><OBUId>{obu.obu_id}</OBUId>"
        f"<OBEState>{obu.obe_state}</OBEState><License>{_escape(obu.license)}</License></OBU>"
    )
    return (
        f"    <Transaction><TransId>{t.trans_id:d}</TransId>"
        f"<Time>{t.time.astimezone(_CHINA).isoformat()}</Time>"
        f"<Fee>{format_yuan(t.fee_fen)}</Fee>"
        f"<Service><ServiceType>{service.service_type:d}</ServiceType>"
        f"<Description>{_escape(service.description)}</Description>"
        f"<Detail>{_escape(service.detail)}</Detail></Service>"
        f"<ICCard><CardType>{card.card_type:d}</CardType><NetNo>{card.net_no}</NetNo>"
        f"<CardId>{card.card_id}</CardId><License>{_escape(card.license)}</License>"
        f"<PreBalance>{format_yuan(card.pre_balance_fen)}</PreBalance>"
        f"<PostBalance>{format_yuan(card.post_balance_fen)}</PostBalance></ICCard>"
        f"<Validation><TAC>{validation.tac}</TAC><TransType>{validation.trans_type}</TransType>"
        f"<TerminalNo>{validation.terminal_no}</TerminalNo>"
        f"<TerminalTransNo>{validation.terminal_trans_no}</TerminalTransNo></Validation>"
        f"{obu_xml}"
        f"<CustomizedData><SourceId>{data.source_id:d}</SourceId>"
        f"<CardTransNo>{data.card_trans_no:d}</CardTransNo>"
        f"<ExitStation>{_escape(data.exit_station)}</ExitStation>"
        f"<EntryStation>{_escape(data.entry_station)}</EntryStation>"
        f"<Intervals>{_escape(' '.join(data.intervals))}</Intervals></CustomizedData>"
        f"<VehicleType>{t.vehicle_type:d}</VehicleType>"
        f"<AlgorithmIdentifier>{t.algorithm:d}</AlgorithmIdentifier></Transaction>\n"
    )


def _accounting_body(result: AccountingResult) -> list[str]:
    parts = _package_head(result)
    parts.append(f"    <DisputedCount>{len(result.disputed):d}</DisputedCount>\n")
    parts.extend(
        f"    <DisputedRecord>\n      <TransId>{record.trans_id:d}</TransId>\n"
        f"      <Result>{record.result:d}</Result>\n    </DisputedRecord>\n"
        for record in result.disputed
    )
    return parts


def _summary_body(summary: ClearingSummary) -> list[str]:
    parts = [
        f"    <ClearTargetDate>{summary.clear_target_date.isoformat()}</ClearTargetDate>\n",
        f"    <Count>{summary.count:d}</Count>\n",
        f"    <Amount>{format_yuan(summary.amount_fen)}</Amount>\n",
        f"    <ProcessTime>{_china_time(summary.process_time, 'Body/ProcessTime')}</ProcessTime>\n",
        f"    <IssuerId>{summary.issuer_id}</IssuerId>\n",
    ]
    for entry in summary.lists:
        parts.append("    <List>\n")
        parts.append(f"      <MessageCount>{len(entry.message_ids):d}</MessageCount>\n")
        parts.append(f"      <FileCount>{len(entry.file_ids):d}</FileCount>\n")
        parts.append(f"      <ServiceProviderId>{entry.service_provider_id}</ServiceProviderId>\n")
        parts.extend(f"      <MessageId>{value:d}</MessageId>\n" for value in entry.message_ids)
        parts.extend(f"      <FileId>{value:d}</FileId>\n" for value in entry.file_ids)
        parts.append("    </List>\n")
    return parts


# --- Reading -----------------------------------------------------------------------------

# A DOCTYPE is where entities are declared (billion laughs, external entities): a
# document with one is refused before a parser sees it. The format has none.
_DECLARATION = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""\A(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")
_INT = re.compile(r"-?[0-9]{1,19}")
_YUAN = re.compile(r"-?[0-9]{1,17}\.[0-9]{2}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+08:00")

_HEADER_TAGS = frozenset(
    ("Version", "MessageClass", "MessageType", "SenderId", "ReceiverId", "MessageId")
)
# Each body's elements; Transaction, DisputedRecord and List repeat.
_PACKAGE_TAGS = ("ContentType", "ClearTargetDate", "ServiceProviderId", "IssuerId", "MessageId")
_BODY_TAGS = {
    (_RESPONSE, 0): frozenset(("ContentType", "Result")),
    (_TRANSACTIONS, 1): frozenset((*_PACKAGE_TAGS, "Count", "Amount", "Transaction")),
    (_ACCOUNTING, 1): frozenset(
        (*_PACKAGE_TAGS, "Count", "Amount", "DisputedCount", "DisputedRecord")
    ),
    (_ACCOUNTING, 2): frozenset(
        ("ContentType", "ClearTargetDate", "Count", "Amount", "ProcessTime", "IssuerId", "List")
    ),
}
_ANY_BODY_TAG = frozenset().union(*_BODY_TAGS.values())
_BODY_REPEATED = frozenset(("Transaction", "DisputedRecord", "List"))
# A transaction's elements in the order ``write`` gives them, each by its path below
# Transaction; a name without a slash before a group is the group's own element.
_LAYOUT = (
    "TransId",
    "Time",
    "Fee",
    "Service",
    "Service/ServiceType",
    "Service/Description",
    "Service/Detail",
    "ICCard",
    "ICCard/CardType",
    "ICCard/NetNo",
    "ICCard/CardId",
    "ICCard/License",
    "ICCard/PreBalance",
    "ICCard/PostBalance",
    "Validation",
    "Validation/TAC",
    "Validation/TransType",
    "Validation/TerminalNo",
    "Validation/TerminalTransNo",
    "OBU",
    "OBU/NetNo",
    "OBU/OBUId",
    "OBU/OBEState",
    "OBU/License",
    "CustomizedData",
    "CustomizedData/SourceId",
    "CustomizedData/CardTransNo",
    "CustomizedData/ExitStation",
    "CustomizedData/EntryStation",
    "CustomizedData/Intervals",
    "VehicleType",
    "AlgorithmIdentifier",
)
_OBU_AT = _LAYOUT.index("OBU")
_OBU_SIZE = 5  # OBU and its four values
_GROUPS = {
    group: frozenset(path.split("/")[1] for path in _LAYOUT if path.startswith(f"{group}/"))
    for group in ("Service", "ICCard", "Validation", "OBU", "CustomizedData")
}
_TRANSACTION_TAGS = frozenset(path for path in _LAYOUT if "/" not in path)
# Every element's name in document order, the Transaction first: with and without OBU.
_TAGS = ["Transaction", *(path.rsplit("/", 1)[-1] for path in _LAYOUT)]
_TAGS_NO_OBU = _TAGS[: _OBU_AT + 1] + _TAGS[_OBU_AT + 1 + _OBU_SIZE :]
# The Transaction and its groups, which hold elements, not text.
_CONTAINERS, _CONTAINERS_NO_OBU = (
    operator.itemgetter(*(i for i, tag in enumerate(tags) if i == 0 or tag in _GROUPS))
    for tags in (_TAGS, _TAGS_NO_OBU)
)
_DISPUTED_TAGS = frozenset(("TransId", "Result"))
_LIST_TAGS = frozenset(("MessageCount", "FileCount", "ServiceProviderId", "MessageId", "FileId"))
_LIST_REPEATED = frozenset(("MessageId", "FileId"))

_Nodes = dict[str, ET.Element]
_Lists = dict[str, list[ET.Element]]


def read(data: bytes) -> Message:
    """The message in ``data``, checked whole (``validate``); ``PackageError`` names
    the first thing wrong."""
    with _collector_paused():
        return _read(data)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # A package parses into some 330,000 elements, none of them in a cycle: the
    # cyclic collector would walk the whole process heap several times while they
    # are made (twice the parse time here, more in a loaded process).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(data: bytes) -> Message:
    root = _parse(data)
    if root.tag != "Message":
        raise PackageError(root.tag, "unknown element; the document element is Message")
    top = _fields(root, "", frozenset(("Header", "Body")))
    header = _fields(_node(top, "Header", ""), "Header", _HEADER_TAGS)
    head = Header(
        sender_id=_value(header, "SenderId", "Header"),
        receiver_id=_value(header, "ReceiverId", "Header"),
        message_id=_int(header, "MessageId", "Header"),
        version=_value(header, "Version", "Header"),
    )
    if head.version not in VERSIONS:
        raise PackageError(
            "Header/Version", f"expected {' or '.join(VERSIONS)}, got {_shown(head.version)}"
        )
    message_class = _int(header, "MessageClass", "Header")
    if message_class not in (_ADVICE, _RESPONSE):
        raise PackageError("Header/MessageClass", f"expected 5 or 6, got {message_class}")
    message_type = _int(header, "MessageType", "Header")
    content_types = _CONTENT_TYPES.get(message_type)
    if content_types is None:
        raise PackageError("Header/MessageType", f"expected 5 or 7, got {message_type}")
    body, lists = _groups(_node(top, "Body", ""), "Body", _ANY_BODY_TAG, _BODY_REPEATED)
    content_type = _int(body, "ContentType", "Body")
    if content_type not in content_types:
        raise PackageError(
            "Body/ContentType",
            f"expected {' or '.join(map(str, content_types))} for MessageType "
            f"{message_type}, got {content_type}",
        )
    kind = (_RESPONSE, 0) if message_class == _RESPONSE else (message_type, content_type)
    allowed = _BODY_TAGS[kind]
    for name in itertools.chain(body, (name for name, nodes in lists.items() if nodes)):
        if name not in allowed:
            raise PackageError(f"Body/{name}", "unknown element")
    message: Message
    if message_class == _RESPONSE:
        result = _code(ResponseResult, body, "Result", "Body")
        message = Response(head, message_type, content_type, result)
    elif message_type == _TRANSACTIONS:
        message = _read_package(head, body, lists["Transaction"])
    elif content_type == 1:
        message = _read_accounting(head, body, lists["DisputedRecord"])
    else:
        message = _read_summary(head, body, lists["List"])
    validate(message)
    return message


class Envelope(NamedTuple):
    header: Header
    message_class: int  # 5 advice, 6 response
    message_type: int  # 7 原始交易包, 5 记账 / 清分
    content_type: int  # 1, or 2 for a 清分统计


def envelope(data: bytes) -> Envelope:
    """Only the header and content type of the message in ``data`` — what a
    receiver needs to answer a message it cannot take whole (§6.2 results 3, 4,
    7). ``PackageError`` when even those cannot be read (result 2)."""
    root = _parse(data)
    header_node = root.find("Header")
    body_node = root.find("Body")
    if root.tag != "Message" or header_node is None or body_node is None:
        raise PackageError("Header", "missing; the document is Message/Header, Message/Body")
    header = {node.tag: node for node in header_node}

    def number(name: str, nodes: _Nodes, path: str) -> int:
        return _int(nodes, name, path) if name in nodes else 0

    head = Header(
        sender_id=_value(header, "SenderId", "Header"),
        receiver_id=_value(header, "ReceiverId", "Header"),
        message_id=_int(header, "MessageId", "Header"),
        version=_value(header, "Version", "Header"),
    )
    body = {node.tag: node for node in body_node if node.tag == "ContentType"}
    return Envelope(
        head,
        number("MessageClass", header, "Header"),
        number("MessageType", header, "Header"),
        number("ContentType", body, "Body"),
    )


def _parse(data: bytes) -> ET.Element:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PackageError("document", f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_BYTES:
        raise PackageError("document", f"{len(data):,} bytes; at most {MAX_BYTES:,}")
    data = bytes(data)
    if b"\x00" in data:
        # UTF-16 and UTF-32 would hide a DOCTYPE from the byte search below.
        raise PackageError("document", "expected UTF-8: the document has NUL bytes")
    if _DECLARATION.search(data):
        raise PackageError("document", "a DOCTYPE or ENTITY declaration is not allowed")
    encoding = _XML_ENCODING.match(data)
    if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
        declared = encoding.group(1).decode("ascii", "backslashreplace")
        raise PackageError("document", f"expected UTF-8, declared {declared!r}")
    try:
        data.decode("utf-8")
        return ET.fromstring(data)
    except UnicodeDecodeError as error:
        raise PackageError(
            "document", f"not UTF-8 ({error.reason} at byte {error.start})"
        ) from None
    except ET.ParseError as error:
        raise PackageError("document", f"not well-formed XML: {error}") from None


def _at(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _has_text(text: str | None) -> bool:
    return text is not None and not text.isspace()


def _fields(node: ET.Element, path: str, allowed: frozenset[str]) -> _Nodes:
    """``node``'s child elements by name, each at most once and ``allowed``."""
    nodes = {child.tag: child for child in node}
    if (
        len(nodes) != len(node)
        or not allowed.issuperset(nodes)
        or _has_text(node.text)
        or any(_has_text(child.tail) for child in node)
    ):
        _groups(node, path, allowed, frozenset())  # names what is wrong
    return nodes


def _groups(
    node: ET.Element, path: str, allowed: frozenset[str], repeated: frozenset[str]
) -> tuple[_Nodes, _Lists]:
    """``node``'s child elements: the ``repeated`` names in lists, the others at most once."""
    nodes: _Nodes = {}
    lists: _Lists = {name: [] for name in repeated}
    if _has_text(node.text):
        raise PackageError(path or node.tag, "text between the elements")
    for child in node:
        tag = child.tag
        if tag not in allowed:
            raise PackageError(_at(path, tag), "unknown element")
        if _has_text(child.tail):
            raise PackageError(path or node.tag, "text between the elements")
        if tag in repeated:
            lists[tag].append(child)
        elif tag in nodes:
            raise PackageError(_at(path, tag), "appears more than once")
        else:
            nodes[tag] = child
    return nodes, lists


def _node(nodes: _Nodes, name: str, path: str) -> ET.Element:
    node = nodes.get(name)
    if node is None:
        raise PackageError(_at(path, name), "required")
    return node


def _text_of(node: ET.Element, path: str) -> str:
    if len(node):
        raise PackageError(path, "expected a value, found elements")
    return node.text or ""


def _value(nodes: _Nodes, name: str, path: str) -> str:
    node = nodes.get(name)
    if node is None:
        raise PackageError(_at(path, name), "required")
    if len(node):
        raise PackageError(_at(path, name), "expected a value, found elements")
    return node.text or ""


def _whole(text: str, path: str) -> int:
    if _INT.fullmatch(text) is None:
        raise PackageError(path, f"expected a whole number, got {_shown(text)}")
    return int(text)


def _int(nodes: _Nodes, name: str, path: str) -> int:
    return _whole(_value(nodes, name, path), f"{path}/{name}")


def _code(kind: type[_E], nodes: _Nodes, name: str, path: str) -> _E:
    at = f"{path}/{name}"
    text = _value(nodes, name, path)
    return _member(kind, text if issubclass(kind, StrEnum) else _whole(text, at), at)


def _fen(nodes: _Nodes, name: str, path: str) -> int:
    return _parse_fen(_value(nodes, name, path), f"{path}/{name}")


def _parse_fen(text: str, path: str) -> int:
    if _YUAN.fullmatch(text) is None:
        raise PackageError(path, f"expected yuan with two decimals like 12.30, got {_shown(text)}")
    # Exact: "-12.34" is -1234 fen without the dot. The range is validate's.
    return int(text.replace(".", ""))


def _date(nodes: _Nodes, name: str, path: str) -> dt.date:
    text = _value(nodes, name, path)
    try:
        if _DATE.fullmatch(text) is None:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PackageError(
            f"{path}/{name}", f"expected a date like 2026-12-01, got {_shown(text)}"
        ) from None


def _time(nodes: _Nodes, name: str, path: str) -> dt.datetime:
    return _parse_time(_value(nodes, name, path), f"{path}/{name}")


def _parse_time(text: str, path: str) -> dt.datetime:
    try:
        if _TIME.fullmatch(text) is None:
            raise ValueError
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise PackageError(
            path,
            f"expected a time like 2026-12-01T08:30:00+08:00, got {_shown(text)}",
        ) from None


def _count(nodes: _Nodes, name: str, path: str, actual: int, counted: str) -> None:
    stated = _int(nodes, name, path)
    if stated != actual:
        raise PackageError(f"{path}/{name}", f"says {stated}, but there are {actual} {counted}")


class _PackageHead(NamedTuple):
    clear_target_date: dt.date
    service_provider_id: str
    issuer_id: str
    message_id: int


def _read_package_head(body: _Nodes) -> _PackageHead:
    """The fields a package and its accounting result both begin with."""
    return _PackageHead(
        _date(body, "ClearTargetDate", "Body"),
        _value(body, "ServiceProviderId", "Body"),
        _value(body, "IssuerId", "Body"),
        _int(body, "MessageId", "Body"),
    )


def _read_package(header: Header, body: _Nodes, nodes: list[ET.Element]) -> TransactionPackage:
    if len(nodes) > MAX_TRANSACTIONS:
        raise PackageError(
            "Body/Transaction",
            f"{len(nodes):,} transactions; a package holds at most {MAX_TRANSACTIONS:,}",
        )
    package = TransactionPackage(
        header,
        *_read_package_head(body),
        transactions=tuple(
            _read_transaction(node, f"Body/Transaction[{index}]")
            for index, node in enumerate(nodes, 1)
        ),
    )
    _count(body, "Count", "Body", package.count, "Transaction elements")
    amount = _fen(body, "Amount", "Body")
    if amount != package.amount_fen:
        raise PackageError(
            "Body/Amount",
            f"{format_yuan(amount)} but the transactions' fees add up to "
            f"{format_yuan(package.amount_fen)}",
        )
    return package


def _read_transaction(node: ET.Element, path: str) -> Transaction:
    # A transaction as ``write`` lays it out (one line, no text between elements) is
    # read by position in one pass over its elements; any other is looked up by
    # name, which names what is missing, repeated or unknown.
    tags = [element.tag for element in node.iter()]
    has_obu = tags == _TAGS
    if has_obu or tags == _TAGS_NO_OBU:
        texts = [element.text or "" for element in node.iter()]
        tails = [element.tail for element in node.iter()]
        containers = _CONTAINERS if has_obu else _CONTAINERS_NO_OBU
        if not any(tails[1:]) and not any(containers(texts)):
            values = texts[1:]
            if not has_obu:
                values[_OBU_AT:_OBU_AT] = [""] * _OBU_SIZE
            return _transaction(values, has_obu, path)
    return _transaction(*_values_by_name(node, path), path)


def _values_by_name(node: ET.Element, path: str) -> tuple[list[str], bool]:
    """The texts of ``_LAYOUT`` (a group's own element and an absent OBU's as "")."""
    found = _fields(node, path, _TRANSACTION_TAGS)
    groups: dict[str, _Nodes] = {}
    for group, allowed in _GROUPS.items():
        if group == "OBU" and group not in found:
            continue
        groups[group] = _fields(_node(found, group, path), f"{path}/{group}", allowed)
    values = []
    for at in _LAYOUT:
        group, _, name = at.rpartition("/")
        if group:
            values.append(_value(groups[group], name, f"{path}/{group}") if group in groups else "")
        else:
            values.append("" if at in _GROUPS else _value(found, at, path))
    return values, "OBU" in groups


def _transaction(values: list[str], has_obu: bool, path: str) -> Transaction:
    (
        trans_id,
        time,
        fee,
        _,
        service_type,
        description,
        detail,
        _,
        card_type,
        card_net_no,
        card_id,
        card_license,
        pre_balance,
        post_balance,
        _,
        tac,
        trans_type,
        terminal_no,
        terminal_trans_no,
        _,
        obu_net_no,
        obu_id,
        obe_state,
        obu_license,
        _,
        source_id,
        card_trans_no,
        exit_station,
        entry_station,
        intervals,
        vehicle_type,
        algorithm,
    ) = values
    return Transaction(
        time=_parse_time(time, f"{path}/Time"),
        fee_fen=_parse_fen(fee, f"{path}/Fee"),
        service=Service(_whole(service_type, f"{path}/Service/ServiceType"), description, detail),
        card=ICCard(
            _member(
                CardType, _whole(card_type, f"{path}/ICCard/CardType"), f"{path}/ICCard/CardType"
            ),
            card_net_no,
            card_id,
            card_license,
            _parse_fen(pre_balance, f"{path}/ICCard/PreBalance"),
            _parse_fen(post_balance, f"{path}/ICCard/PostBalance"),
        ),
        validation=Validation(
            tac,
            _member(TransType, trans_type, f"{path}/Validation/TransType"),
            terminal_no,
            terminal_trans_no,
        ),
        customized=CustomizedData(
            _whole(source_id, f"{path}/CustomizedData/SourceId"),
            _whole(card_trans_no, f"{path}/CustomizedData/CardTransNo"),
            exit_station,
            entry_station,
            tuple(intervals.split(" ")) if intervals else (),
        ),
        vehicle_type=_whole(vehicle_type, f"{path}/VehicleType"),
        algorithm=_member(
            Algorithm,
            _whole(algorithm, f"{path}/AlgorithmIdentifier"),
            f"{path}/AlgorithmIdentifier",
        ),
        obu=OBU(obu_net_no, obu_id, obe_state, obu_license) if has_obu else None,
        trans_id=_whole(trans_id, f"{path}/TransId"),
    )


def _read_accounting(header: Header, body: _Nodes, nodes: list[ET.Element]) -> AccountingResult:
    if len(nodes) > MAX_TRANSACTIONS:
        raise PackageError(
            "Body/DisputedRecord", f"{len(nodes):,} records; at most {MAX_TRANSACTIONS:,}"
        )
    disputed = []
    for index, node in enumerate(nodes, 1):
        path = f"Body/DisputedRecord[{index}]"
        fields = _fields(node, path, _DISPUTED_TAGS)
        result = _code(DisputeResult, fields, "Result", path)
        disputed.append(DisputedRecord(_int(fields, "TransId", path), result))
    _count(body, "DisputedCount", "Body", len(disputed), "DisputedRecord elements")
    return AccountingResult(
        header,
        *_read_package_head(body),
        count=_int(body, "Count", "Body"),
        amount_fen=_fen(body, "Amount", "Body"),
        disputed=tuple(disputed),
    )


def _read_summary(header: Header, body: _Nodes, nodes: list[ET.Element]) -> ClearingSummary:
    entries = []
    for index, node in enumerate(nodes, 1):
        path = f"Body/List[{index}]"
        fields, lists = _groups(node, path, _LIST_TAGS, _LIST_REPEATED)
        ids = {
            name: tuple(
                _whole(_text_of(item, f"{path}/{name}[{i}]"), f"{path}/{name}[{i}]")
                for i, item in enumerate(lists[name], 1)
            )
            for name in ("MessageId", "FileId")
        }
        _count(fields, "MessageCount", path, len(ids["MessageId"]), "MessageId elements")
        _count(fields, "FileCount", path, len(ids["FileId"]), "FileId elements")
        entries.append(
            ClearingList(_value(fields, "ServiceProviderId", path), ids["MessageId"], ids["FileId"])
        )
    return ClearingSummary(
        header=header,
        clear_target_date=_date(body, "ClearTargetDate", "Body"),
        count=_int(body, "Count", "Body"),
        amount_fen=_fen(body, "Amount", "Body"),
        process_time=_time(body, "ProcessTime", "Body"),
        issuer_id=_value(body, "IssuerId", "Body"),
        lists=tuple(entries),
    )
