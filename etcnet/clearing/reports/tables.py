"""What the clearing pages share: periods (a day or a month), labels of codes,
masking, the tables every page shows and exports (`Table`, written to .xlsx by
`workbook`: yuan as exact decimals, never floats) and the filters' checks."""

from __future__ import annotations

import calendar
import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from etcnet.clearing.models import ClearingDay
from etcnet.clearing.run import day_window
from etcnet.core import codes, masking
from etcnet.core.money import Rounding, divide, format_yuan
from etcnet.network.models import Node, Owner
from etcnet.tolling.models import DisputeCode

#: Payment types (reference §6.3 payWay) as the lanes record them.
CASH, ALIPAY, WECHAT, STORED_VALUE, DEBIT, FREE = 1, 10, 11, 22, 23, 0
CARD_PAYMENTS = (STORED_VALUE, DEBIT)
MOBILE_PAYMENTS = (ALIPAY, WECHAT)
PAYMENT_TYPES: dict[int, Any] = {
    FREE: _("Free passage"),
    CASH: _("Cash"),
    ALIPAY: _("Alipay"),
    WECHAT: _("WeChat Pay"),
    STORED_VALUE: _("Stored-value card"),
    DEBIT: _("Debit card"),
}
FLOWS: dict[int, Any] = {
    1: _("Ours and lane payments"),
    2: _("Other issuers' cards"),
    3: _("Ours elsewhere"),
}

#: The province of a card network (its first two digits, GB/T 2260).
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("北京", "Beijing"), "12": ("天津", "Tianjin"), "13": ("河北", "Hebei"),
    "14": ("山西", "Shanxi"), "15": ("内蒙古", "Inner Mongolia"), "21": ("辽宁", "Liaoning"),
    "22": ("吉林", "Jilin"), "23": ("黑龙江", "Heilongjiang"), "31": ("上海", "Shanghai"),
    "32": ("江苏", "Jiangsu"), "33": ("浙江", "Zhejiang"), "34": ("安徽", "Anhui"),
    "35": ("福建", "Fujian"), "36": ("江西", "Jiangxi"), "37": ("山东", "Shandong"),
    "41": ("河南", "Henan"), "42": ("湖北", "Hubei"), "43": ("湖南", "Hunan"),
    "44": ("广东", "Guangdong"), "45": ("广西", "Guangxi"), "46": ("海南", "Hainan"),
    "50": ("重庆", "Chongqing"), "51": ("四川", "Sichuan"), "52": ("贵州", "Guizhou"),
    "53": ("云南", "Yunnan"), "54": ("西藏", "Tibet"), "61": ("陕西", "Shaanxi"),
    "62": ("甘肃", "Gansu"), "63": ("青海", "Qinghai"), "64": ("宁夏", "Ningxia"),
    "65": ("新疆", "Xinjiang"),
}  # fmt: skip


class FilterError(ValueError):
    """A filter the pages cannot take; `field` names it (the page answers 400)."""

    def __init__(self, field: str, message: Any) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# -- display -----------------------------------------------------------------------


def wan(fen: int) -> str:
    """Fen as 万元 with two decimals, half-up (四舍五入): 1,225,000 fen → "1.23"."""
    return format_yuan(divide(fen, 10_000, rounding=Rounding.HALF_UP))


def yuan_decimal(fen: int) -> Decimal:
    """Fen as an exact yuan number for a workbook cell (never a float)."""
    return Decimal(fen).scaleb(-2)


def wan_decimal(fen: int) -> Decimal:
    return Decimal(divide(fen, 10_000, rounding=Rounding.HALF_UP)).scaleb(-2)


def _english() -> bool:
    return (get_language() or "").startswith("en")


def payment_label(code: int | None) -> str:
    if code is None:
        return ""
    label = PAYMENT_TYPES.get(code)
    return f"{label} ({code})" if label is not None else str(code)


def class_label(code: int | None) -> str:
    if code is None:
        return ""
    try:
        member = codes.VehicleClass(code)
    except ValueError:
        return str(code)
    return str(member.label_en if _english() else member.label)


def network_label(network: str) -> str:
    if not network:
        return str(_("Paid at the lane (no card)"))
    names = PROVINCES.get(network[:2])
    name = (names[1] if _english() else names[0]) if names else ""
    ours = network in settings.ETCNET_CARD_NETWORKS
    text = f"{name} {network}".strip()
    return f"{text} ({_('ours')})" if ours else text


def code_label(code: int | None) -> str:
    """A §6.2 code with its name: `6 数据字段错误`."""
    if not code:
        return ""
    try:
        return f"{code} {DisputeCode(code).label}"
    except ValueError:
        return str(code)


def mask_card(card_no: str, reveal: bool) -> str:
    return card_no if reveal else masking.mask_id_number(card_no)


def mask_plate(plate: str, reveal: bool) -> str:
    """`陕A12345` → `陕A****5`: the province and the office letter stay."""
    if reveal or len(plate) <= 3:
        return plate
    return plate[:2] + "*" * (len(plate) - 3) + plate[-1]


def local_time(value: dt.datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


# -- periods -----------------------------------------------------------------------

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH = re.compile(r"\d{4}-\d{2}")


@dataclass(frozen=True)
class Period:
    """A clearing day or a calendar month of days (Asia/Shanghai dates)."""

    first: dt.date
    last: dt.date  # inclusive
    monthly: bool

    @classmethod
    def day(cls, date: dt.date) -> Period:
        return cls(date, date, False)

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        days = calendar.monthrange(year, month)[1]
        return cls(dt.date(year, month, 1), dt.date(year, month, days), True)

    @classmethod
    def parse(cls, text: str, *, field: str = "period") -> Period:
        """`2026-12-02` (a day) or `2026-12` (a month)."""
        text = (text or "").strip()
        try:
            if _DAY.fullmatch(text):
                return cls.day(dt.date.fromisoformat(text))
            if _MONTH.fullmatch(text):
                year, month = (int(part) for part in text.split("-"))
                return cls.month(year, month)
        except ValueError:
            pass
        raise FilterError(
            field,
            _("Give a day as 2026-12-02 or a month as 2026-12, not “%(value)s”.")
            % {"value": text[:20]},
        )

    @property
    def key(self) -> str:
        return self.first.strftime("%Y-%m") if self.monthly else self.first.isoformat()

    def __str__(self) -> str:
        return self.key

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) of the period's days, aware (Asia/Shanghai)."""
        return day_window(self.first)[0], day_window(self.last)[1]

    def dates_of(self, field: str = "date") -> Q:
        """The period's days as a filter on the date `field`."""
        return Q(**{f"{field}__range": (self.first, self.last)})

    def around(self) -> tuple[Period, Period]:
        """The period before and after (a month's months, a day's days)."""
        if self.monthly:
            before = self.first - dt.timedelta(days=1)
            after = self.last + dt.timedelta(days=1)
            return Period.month(before.year, before.month), Period.month(after.year, after.month)
        one = dt.timedelta(days=1)
        return Period.day(self.first - one), Period.day(self.first + one)


def day_ids(period: Period) -> list[int]:
    return list(ClearingDay.objects.filter(period.dates_of()).values_list("pk", flat=True))


# -- tables ------------------------------------------------------------------------

TEXT, COUNT, YUAN, WAN = "text", "count", "yuan", "wan"


@dataclass(frozen=True)
class Column:
    key: str
    label: Any
    kind: str = TEXT
    #: Filters this column adds to its row's drill-down (None: no link).
    drill: Mapping[str, str] | None = None
    #: Long text (an error, a run's counts) that wraps in the page.
    wrap: bool = False


@dataclass
class Row:
    values: dict[str, Any]
    #: The row's drill-down filters (None: the row's cells link nowhere).
    drill: dict[str, str] | None = None
    total: bool = False
    #: A page of its own for the row (a day's page, a transaction), if any.
    href: str = ""
    #: What the row stands for, for the page's own links (a counterparty).
    ref: Any = None


@dataclass
class Table:
    name: str
    title: Any
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    #: A note under the table (and the workbook's last row).
    note: Any = ""

    def add_total(self, label: Any, drill: dict[str, str] | None = None) -> None:
        """A total row: the sum of every number column of the rows (totals left out)."""
        rows = [row for row in self.rows if not row.total]
        values = {self.columns[0].key: label, **sums(self.columns, rows)}
        self.rows.append(Row(values, drill=drill, total=True))


def sums(columns: Sequence[Column], rows: Sequence[Row]) -> dict[str, Any]:
    """Each number column's sum over `rows` (None where every cell is None)."""
    values: dict[str, Any] = {}
    for column in columns:
        if column.kind in (COUNT, YUAN, WAN):
            cells = [row.values.get(column.key) for row in rows]
            empty = all(cell is None for cell in cells)
            values[column.key] = None if empty else sum(cell or 0 for cell in cells)
    return values


def display(kind: str, value: Any) -> str:
    """A cell as the pages show it."""
    if value is None:
        return "—"
    if kind == YUAN:
        return format_yuan(int(value))
    if kind == WAN:
        return wan(int(value))
    if kind == COUNT:
        return f"{int(value):,}"
    return str(value)


def _cell(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == YUAN:
        return yuan_decimal(int(value))
    if kind == WAN:
        return wan_decimal(int(value))
    if kind == COUNT:
        return int(value)
    return str(value)


_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")


def write_sheet(book: Workbook, table: Table, heading: Sequence[str] = ()) -> None:
    """`table` as a sheet of a write-only workbook: the heading lines, the column
    labels, the rows (yuan as exact decimal numbers, 0.00) and the note."""
    sheet = book.create_sheet(_SHEET_NAME.sub(" ", str(table.title))[:31] or table.name)
    bold = Font(bold=True)

    def styled(value: Any, kind: str = TEXT, strong: bool = False) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet, value=_cell(kind, value))
        if kind in (YUAN, WAN):
            cell.number_format = "#,##0.00"
        elif kind == COUNT:
            cell.number_format = "#,##0"
        if strong:
            cell.font = bold
        return cell

    sheet.append([styled(str(table.title), strong=True)])
    for line in heading:
        sheet.append([line])
    sheet.append([styled(str(column.label), strong=True) for column in table.columns])
    for row in table.rows:
        sheet.append([styled(row.values.get(c.key), c.kind, row.total) for c in table.columns])
    if table.note:
        sheet.append([str(table.note)])


def workbook(tables: Sequence[Table], heading: Sequence[str] = ()) -> bytes:
    """The tables as an .xlsx workbook, one sheet each."""
    book = Workbook(write_only=True)
    for table in tables:
        write_sheet(book, table, heading)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def number(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    text = (params.get(name) or "").strip()
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise FilterError(
            name,
            _("Give a whole number from %(low)s to %(high)s, not “%(value)s”.")
            % {"low": low, "high": high, "value": text[:20]},
        )
    return int(text)


def text(params: Mapping[str, str], name: str, length: int) -> str:
    text = (params.get(name) or "").strip()
    if len(text) > length:
        raise FilterError(name, _("At most %(count)s characters.") % {"count": length})
    return text


def choice(params: Mapping[str, str], name: str, choices: Sequence[str]) -> str:
    text = (params.get(name) or choices[0]).strip()
    if text not in choices:
        raise FilterError(name, _("Choose one of the listed values."))
    return text


# -- names -------------------------------------------------------------------------


def station_names(ids: Sequence[str] | None = None) -> dict[str, str]:
    nodes = Node.objects.all() if ids is None else Node.objects.filter(node_id__in=list(ids))
    return dict(nodes.values_list("node_id", "name"))


def owner_names(ids: Sequence[str]) -> dict[str, str]:
    return dict(Owner.objects.filter(owner_id__in=list(ids)).values_list("owner_id", "name"))


def named(names: Mapping[str, str], key: str) -> str:
    name = names.get(key)
    return f"{name} {key}" if name and name != key else key
