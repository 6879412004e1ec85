"""Statements (对账单): what a counterparty of the clearing — a road owner, the
national center, a bank, the purses, a station's cash, a mobile payment — and
the center settle for a day or a month, as PDF (reportlab) and Excel.

A statement has the counterparty's position on each day of the period
(receivable, payable, net, from `Position`) with their total, and what makes
it up (`details`): a road owner's splits by exit station, payment type and
class; the national center's trips of other issuers' cards, cleared and sent
for 记账, by issuer; a station's cash, the purses' and a mobile payment's
trips by station, payment type and class. Always in Chinese: the counterparty
files it. Chinese text uses the Adobe CID font STSong-Light, which PDF readers
supply (as etcnet.plates does); numbers and codes are drawn in Helvetica so
they stay plain text in the uncompressed page stream.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from openpyxl import Workbook
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from etcnet.clearing.models import CounterpartyKind, DayFigure, EntryState, OwnerShare, Position
from etcnet.clearing.reports import tables
from etcnet.clearing.reports.figures import counterparty_name
from etcnet.clearing.reports.tables import COUNT, TEXT, YUAN, Column, Period, Row, Table

CJK = "STSong-Light"
LATIN = "Helvetica"
pdfmetrics.registerFont(UnicodeCIDFont(CJK))


class NoStatement(LookupError):
    """The counterparty has no position in the period."""


@dataclass
class Statement:
    kind: str
    counterparty_id: str
    name: str
    period: Period
    days: Table
    details: Table | None
    net_fen: int
    made_at: dt.datetime

    @property
    def filename(self) -> str:
        who = self.counterparty_id or self.kind
        return f"statement-{self.period.key}-{self.kind}-{who}"

    def heading(self) -> list[str]:
        return [
            f"{_('Counterparty')}: {self.name}",
            f"{_('Counterparty kind')}: {CounterpartyKind(self.kind).label}",
            f"{_('Period')}: {self.period.first} – {self.period.last}",
            f"{_('Net')}: {tables.display(YUAN, self.net_fen)} ({self.direction()})",
            f"{_('Made at')}: {tables.local_time(self.made_at)}",
        ]

    def direction(self) -> str:
        if self.net_fen > 0:
            return _("the counterparty pays the center")
        if self.net_fen < 0:
            return _("the center pays the counterparty")
        return _("nothing to pay")


def build(period: Period, kind: str, counterparty_id: str) -> Statement:
    """The statement of (`kind`, `counterparty_id`) for `period`, in Chinese.
    Raises `NoStatement` when it has no position in the period's closed days."""
    with translation.override("zh-hans"):
        return _build(period, kind, counterparty_id)


def _build(period: Period, kind: str, counterparty_id: str) -> Statement:
    if kind not in CounterpartyKind.values:
        raise NoStatement(kind)
    found = list(
        Position.objects.filter(
            period.dates_of("day__date"), kind=kind, counterparty_id=counterparty_id
        )
        .order_by("day__date")
        .values_list("day__date", "receivable_fen", "payable_fen", "net_fen")
    )
    if not found:
        raise NoStatement(f"{kind} {counterparty_id} {period}")
    names: dict[str, str] = {}
    if kind == "owner":
        names = tables.owner_names([counterparty_id])
    elif kind == "station_cash":
        names = tables.station_names([counterparty_id])
    days = Table(
        "days",
        _("Positions by day"),
        [
            Column("date", _("Day")),
            Column("receivable", _("Owes the center"), YUAN),
            Column("payable", _("The center owes"), YUAN),
            Column("net", _("Net"), YUAN),
        ],
    )
    for date, receivable, payable, net in found:
        days.rows.append(
            Row(
                {"date": date.isoformat(), "receivable": receivable, "payable": payable, "net": net}
            )
        )
    days.add_total(_("Total"))
    return Statement(
        kind=kind,
        counterparty_id=counterparty_id,
        name=counterparty_name(kind, counterparty_id, names),
        period=period,
        days=days,
        details=_details(period, kind, counterparty_id),
        net_fen=sum(net for *_, net in found),
        made_at=timezone.now(),
    )


def _details(period: Period, kind: str, counterparty_id: str) -> Table | None:
    if kind == "owner":
        return _owner_details(period, counterparty_id)
    if kind == "national_center":
        return _national_details(period)
    cleared = Q(state=EntryState.CLEARED, flow=1)
    if kind == "station_cash":
        others = (*tables.CARD_PAYMENTS, *tables.MOBILE_PAYMENTS)
        wanted = cleared & Q(station_id=counterparty_id) & ~Q(payment_type__in=others)
    elif kind == "purses":
        wanted = cleared & Q(payment_type=tables.STORED_VALUE)
    elif kind == "mobile" and counterparty_id.isdigit():
        wanted = cleared & Q(payment_type=int(counterparty_id))
    elif kind == "bank":
        wanted = cleared & Q(payment_type=tables.DEBIT, bank=counterparty_id)
    else:
        return None
    return _figure_details(period, wanted)


_BREAKDOWN = ("station_id", "payment_type", "vehicle_class")


def _figure_details(period: Period, wanted: Q) -> Table:
    return _breakdown(
        DayFigure.objects.filter(period.dates_of("day__date"), wanted),
        _("Trips cleared"),
        _("Station"),
        [
            (Column("fee", _("Tolls"), YUAN), Sum("fee_fen")),
            (Column("discount", _("Discounts"), YUAN), Sum("discount_fen")),
            (Column("payable", _("Payable"), YUAN), Sum("payable_fen")),
        ],
    )


def _owner_details(period: Period, owner_id: str) -> Table:
    return _breakdown(
        OwnerShare.objects.filter(period.dates_of("day__date"), owner_id=owner_id),
        _("Splits by exit station"),
        _("Exit station"),
        [
            (Column("fee", _("Tolls of its intervals"), YUAN), Sum("fee_fen")),
            (Column("discount", _("Discounts borne"), YUAN), Sum("fee_fen") - Sum("amount_fen")),
            (Column("amount", _("Cleared to it"), YUAN), Sum("amount_fen")),
        ],
    )


def _breakdown(
    found: QuerySet[Any], title: str, station: str, money: list[tuple[Column, Any]]
) -> Table:
    """`found` (figures or shares) by exit station, payment method and class: trips
    and the `money` columns, each the sum its expression gives."""
    keys = ("station_id", "payment_type", "vehicle_class")
    rows = list(
        found.values(*keys)
        .annotate(n=Sum("trips"), **{column.key: total for column, total in money})
        .order_by(*keys)
    )
    names = tables.station_names([r["station_id"] for r in rows])
    table = Table(
        "details",
        title,
        [
            Column("station", station),
            Column("payment", _("Payment method")),
            Column("class", _("Vehicle class")),
            Column("trips", _("Trips"), COUNT),
            *(column for column, _total in money),
        ],
    )
    for r in rows:
        values = {
            "station": tables.named(names, r["station_id"]),
            "payment": tables.payment_label(r["payment_type"]),
            "class": tables.class_label(r["vehicle_class"]),
            "trips": r["n"],
            **{column.key: r[column.key] for column, _total in money},
        }
        table.rows.append(Row(values))
    table.add_total(_("Total"))
    return table


def _national_details(period: Period) -> Table:
    rows = (
        DayFigure.objects.filter(
            period.dates_of("day__date"),
            flow=2,
            state__in=[EntryState.CLEARED, EntryState.SENT],
        )
        .values("card_network", "state")
        .annotate(n=Sum("trips"), payable=Sum("payable_fen"))
        .order_by("card_network", "state")
    )
    table = Table(
        "details",
        _("Other issuers' cards on our roads"),
        [
            Column("network", _("Issuer (card network)")),
            Column("cleared_trips", _("Trips cleared"), COUNT),
            Column("cleared", _("Cleared"), YUAN),
            Column("sent_trips", _("Sent for 记账"), COUNT),
            Column("sent", _("Sent amount"), YUAN),
        ],
    )
    for network, group in groupby(rows, key=lambda r: r["card_network"]):
        by_state = {r["state"]: r for r in group}
        cleared, sent = by_state.get(EntryState.CLEARED, {}), by_state.get(EntryState.SENT, {})
        values = {
            "network": tables.network_label(network),
            "cleared_trips": cleared.get("n", 0),
            "cleared": cleared.get("payable", 0),
            "sent_trips": sent.get("n", 0),
            "sent": sent.get("payable", 0),
        }
        table.rows.append(Row(values))
    table.add_total(_("Total"))
    return table


# -- Excel ---------------------------------------------------------------------------


def xlsx(statement: Statement) -> bytes:
    with translation.override("zh-hans"):
        title = f"{_('Statement')} {statement.name} {statement.period}"
        book = Workbook(write_only=True)
        for table in (statement.days, statement.details):
            if table is not None:
                tables.write_sheet(book, table, [title, *statement.heading()])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()


# -- PDF -----------------------------------------------------------------------------

_MARGIN = 15 * mm
_ROW = 6.5 * mm
_SIZE = 9.0


def _runs(value: str) -> list[tuple[str, str]]:
    """`value` as (font, text) runs: ASCII in Helvetica, the rest in the CJK font."""
    return [
        (font, "".join(chars))
        for font, chars in groupby(value, key=lambda c: LATIN if c.isascii() else CJK)
    ]


def _width(value: str, size: float) -> float:
    return float(sum(pdfmetrics.stringWidth(text, font, size) for font, text in _runs(value)))


def _write(
    pdf: canvas.Canvas, x: float, y: float, value: str, size: float, right: bool = False
) -> None:
    """`value` at (x, y), or ending at x when `right`, switching fonts by run."""
    if right:
        x -= _width(value, size)
    for font, text in _runs(value):
        pdf.setFont(font, size)
        pdf.drawString(x, y, text)
        x += pdfmetrics.stringWidth(text, font, size)


class _Pages:
    """A4 pages with a running y, a new page (and its number) when one is full."""

    def __init__(self, title: str) -> None:
        self.buffer = io.BytesIO()
        self.pdf = canvas.Canvas(self.buffer, pagesize=A4, pageCompression=0)
        self.pdf.setTitle(title)
        self.width, self.height = A4
        self.number = 1
        self.y = self.height - _MARGIN

    def need(self, space: float) -> bool:
        """Starts a new page when `space` does not fit; True if it did."""
        if self.y - space >= _MARGIN + 8 * mm:
            return False
        self.footer()
        self.pdf.showPage()
        self.number += 1
        self.y = self.height - _MARGIN
        return True

    def footer(self) -> None:
        _write(self.pdf, self.width / 2, _MARGIN, f"第 {self.number} 页", 8)

    def finish(self) -> bytes:
        self.footer()
        self.pdf.save()
        return self.buffer.getvalue()


def _table(pages: _Pages, table: Table) -> None:
    pdf = pages.pdf
    inner = pages.width - 2 * _MARGIN
    texts = [c for c in table.columns if c.kind == TEXT]
    # Text columns share what the number columns (26 mm each) leave.
    numbers = len(table.columns) - len(texts)
    text_width = (inner - numbers * 26 * mm) / max(len(texts), 1)
    widths = [text_width if c.kind == TEXT else 26 * mm for c in table.columns]
    pages.need(3 * _ROW)
    pages.y -= _ROW
    _write(pdf, _MARGIN, pages.y, str(table.title), 11)

    def header() -> None:
        pages.y -= _ROW
        pdf.setFillColor(colors.HexColor("#eef1f5"))
        pdf.rect(_MARGIN, pages.y - 2 * mm, inner, _ROW, stroke=0, fill=1)
        pdf.setFillColor(colors.black)
        _cells([str(c.label) for c in table.columns])

    def _cells(values: list[str]) -> None:
        x = _MARGIN
        for column, width, value in zip(table.columns, widths, values, strict=True):
            if column.kind == TEXT:
                size = _SIZE
                while size > 6 and _width(value, size) > width - 2 * mm:
                    size -= 0.5
                _write(pdf, x + 1 * mm, pages.y, value, size)
            else:
                _write(pdf, x + width - 1 * mm, pages.y, value, _SIZE, right=True)
            x += width

    header()
    for row in table.rows:
        if pages.need(_ROW):
            header()
        pages.y -= _ROW
        if row.total:
            pdf.setStrokeColor(colors.grey)
            pdf.line(_MARGIN, pages.y + _ROW - 2 * mm, _MARGIN + inner, pages.y + _ROW - 2 * mm)
        _cells([tables.display(c.kind, row.values.get(c.key)) for c in table.columns])
    pages.y -= 2 * mm


def pdf(statement: Statement) -> bytes:
    """The statement on A4 pages."""
    with translation.override("zh-hans"):
        title = f"{_('Statement')} {statement.name} {statement.period}"
        pages = _Pages(title)
        pages.y -= 4 * mm
        _write(pages.pdf, _MARGIN, pages.y, f"{_('Clearing and settlement statement')}", 16)
        pages.y -= 4 * mm
        for line in statement.heading():
            pages.y -= _ROW
            _write(pages.pdf, _MARGIN, pages.y, line, 10)
        pages.y -= 2 * mm
        _table(pages, statement.days)
        if statement.details is not None:
            _table(pages, statement.details)
        else:
            pages.y -= _ROW
            _write(pages.pdf, _MARGIN, pages.y, _("The statement of a bank is its positions."), 9)
        return pages.finish()
