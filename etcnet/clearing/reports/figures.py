"""The reports (数据统计) over what the day runs stored — figures by station,
road owner, issuer, payment type and vehicle class; positions; the issuance
figures — and the lane payments (交款信息统计表) from the transaction store.
Every figure is one aggregate query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from django.db.models import (
    Count,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from etcnet.cards import ledger
from etcnet.cards.models import Posting
from etcnet.clearing.models import (
    ClearingDay,
    CounterpartyKind,
    DayFigure,
    DayStatus,
    EntryState,
    OwnerShare,
    Position,
)
from etcnet.clearing.reports.tables import (
    CARD_PAYMENTS,
    CASH,
    COUNT,
    MOBILE_PAYMENTS,
    YUAN,
    Column,
    FilterError,
    Period,
    Row,
    Table,
    class_label,
    named,
    network_label,
    owner_names,
    payment_label,
    station_names,
    sums,
    wan,
)
from etcnet.core.models import AuditEvent
from etcnet.core.money import format_yuan
from etcnet.tolling.models import RecordStatus, TollTransaction

# -- the reports (数据统计) --------------------------------------------------------

BY = {
    "station": _("Station"),
    "owner": _("Road owner"),
    "network": _("Issuer (card network)"),
    "payment": _("Payment method"),
    "class": _("Vehicle class"),
}
_FIGURE_FIELD = {
    "station": "station_id",
    "network": "card_network",
    "payment": "payment_type",
    "class": "vehicle_class",
}
_TAKEN = Q(carried=False)


def _figure_columns(first: Any) -> list[Column]:
    return [
        Column("key", first),
        Column("trips", _("Trips"), COUNT, {"what": "taken"}),
        Column("fee", _("Tolls"), YUAN),
        Column("discount", _("Discounts"), YUAN),
        Column("payable", _("Payable"), YUAN, {"what": "taken"}),
        Column("cleared", _("Cleared"), YUAN, {"what": "cleared"}),
        Column("held_trips", _("Held (遗留) trips"), COUNT, {"what": "held"}),
        Column("held", _("Held amount"), YUAN, {"what": "held"}),
        Column("sent_trips", _("Sent for 记账"), COUNT, {"what": "sent"}),
        Column("sent", _("Sent amount"), YUAN, {"what": "sent"}),
    ]


def _figure_sums() -> dict[str, Any]:
    zero = 0

    def total(column: str, condition: Q) -> Coalesce:
        return Coalesce(Sum(column, filter=condition), zero)

    return {
        "trips": total("trips", _TAKEN),
        "fee": total("fee_fen", _TAKEN),
        "discount": total("discount_fen", _TAKEN),
        "payable": total("payable_fen", _TAKEN),
        "cleared": total("payable_fen", Q(state=EntryState.CLEARED)),
        "held_trips": total("trips", Q(state=EntryState.HELD)),
        "held": total("payable_fen", Q(state=EntryState.HELD)),
        "sent_trips": total("trips", Q(state=EntryState.SENT)),
        "sent": total("payable_fen", Q(state=EntryState.SENT)),
    }


def report(period: Period, by: str) -> Table:
    """The period's figures by `by` (station, owner, network, payment, class):
    trips, tolls, discounts and payable amounts of the records its days took
    (late ones included, carried ones not: they were counted on their own day),
    what was cleared (carried ones included), what was held (遗留) and what was
    sent to the national center for 记账; by road owner, each owner's splits."""
    if by not in BY:
        raise FilterError("by", _("Choose one of the listed values."))
    if by == "owner":
        return _owner_report(period)
    column = _FIGURE_FIELD[by]
    grouped = (
        DayFigure.objects.filter(period.dates_of("day__date"))
        .values(column)
        .annotate(**{f"sum_{k}": v for k, v in _figure_sums().items()})
        .order_by(column)
    )
    rows = list(grouped)
    names = station_names([r[column] for r in rows]) if by == "station" else {}
    table = Table(f"report-{by}", _("Figures by %(by)s") % {"by": BY[by]}, _figure_columns(BY[by]))
    for found in rows:
        key = found[column]
        label = _label(by, key, names)
        values = {"key": label, **{k: found[f"sum_{k}"] for k in _figure_sums()}}
        param = {"network": key or "-"}.get(by, str(key))
        table.rows.append(Row(values, drill={"period": period.key, by: param}))
    table.add_total(_("Total"), drill={"period": period.key})
    return table


def _label(by: str, key: Any, names: Mapping[str, str]) -> str:
    if by == "station":
        return named(names, str(key))
    if by == "network":
        return network_label(str(key))
    return payment_label(key) if by == "payment" else class_label(key)


def _owner_report(period: Period) -> Table:
    shares = list(
        OwnerShare.objects.filter(period.dates_of("day__date"))
        .values("owner_id")
        .annotate(n=Sum("trips"), fee=Sum("fee_fen"), amount=Sum("amount_fen"))
        .order_by("owner_id")
    )
    names = owner_names([s["owner_id"] for s in shares])
    table = Table(
        "report-owner",
        _("Figures by %(by)s") % {"by": BY["owner"]},
        [
            Column("key", BY["owner"]),
            Column("trips", _("Trips"), COUNT, {"what": "cleared"}),
            Column("fee", _("Tolls of its intervals"), YUAN),
            Column("discount", _("Discounts borne"), YUAN),
            Column("amount", _("Cleared to it"), YUAN, {"what": "cleared"}),
        ],
        note=_(
            "A road owner's trips and amounts are its splits of the trips cleared;"
            " held and sent trips are not split until they are cleared."
        ),
    )
    for share in shares:
        values = {
            "key": named(names, share["owner_id"]),
            "trips": share["n"],
            "fee": share["fee"],
            "discount": share["fee"] - share["amount"],
            "amount": share["amount"],
        }
        table.rows.append(Row(values, drill={"period": period.key, "owner": share["owner_id"]}))
    table.add_total(_("Total"))
    return table


def chart_by(table: Table, value: str) -> dict[str, Any]:
    """A bar chart of one yuan column of a report's rows (the total left out)."""
    rows = [row for row in table.rows if not row.total]
    return {
        "type": "bar",
        "labels": [str(row.values["key"]) for row in rows],
        "unit": str(_("yuan")),
        "datasets": [
            {
                "label": str(next(c.label for c in table.columns if c.key == value)),
                "data": [format_yuan(row.values[value] or 0) for row in rows],
            }
        ],
    }


def daily_cleared(period: Period) -> dict[str, Any]:
    """A chart of the period's days: what each cleared and held."""
    per_day = (
        DayFigure.objects.filter(period.dates_of("day__date"))
        .values("day__date")
        .annotate(
            cleared=Coalesce(Sum("payable_fen", filter=Q(state=EntryState.CLEARED)), 0),
            held=Coalesce(Sum("payable_fen", filter=Q(state=EntryState.HELD)), 0),
        )
        .order_by("day__date")
    )
    found = {row["day__date"]: row for row in per_day}
    days = [
        period.first + dt.timedelta(days=n) for n in range((period.last - period.first).days + 1)
    ]
    return {
        "type": "line" if period.monthly else "bar",
        "labels": [d.strftime("%m-%d") for d in days],
        "unit": str(_("yuan")),
        "datasets": [
            {
                "label": str(_("Cleared")),
                "data": [format_yuan(found.get(d, {}).get("cleared", 0)) for d in days],
            },
            {
                "label": str(_("Held amount")),
                "data": [format_yuan(found.get(d, {}).get("held", 0)) for d in days],
            },
        ],
    }


# -- positions ---------------------------------------------------------------------

KINDS_ORDER = list(CounterpartyKind.values)


def counterparty_name(kind: str, counterparty_id: str, names: Mapping[str, str]) -> str:
    if kind == "owner":
        return named(names, counterparty_id)
    if kind == "station_cash":
        return named(names, counterparty_id)
    if kind == "mobile":
        return payment_label(int(counterparty_id)) if counterparty_id.isdigit() else counterparty_id
    if kind == "national_center":
        return str(_("National center (部中心)"))
    if kind == "purses":
        return str(_("Stored-value purses"))
    return counterparty_id


def positions(period: Period) -> Table:
    """Each counterparty's settlement position over the period, netted: what it
    owes the center, what the center owes it, the net (positive: it owes)."""
    found = list(
        Position.objects.filter(period.dates_of("day__date"))
        .values("kind", "counterparty_id")
        .annotate(receivable=Sum("receivable_fen"), payable=Sum("payable_fen"), net=Sum("net_fen"))
    )
    found.sort(
        key=lambda p: (
            KINDS_ORDER.index(p["kind"]) if p["kind"] in KINDS_ORDER else len(KINDS_ORDER),
            p["counterparty_id"],
        )
    )
    names = {
        **owner_names([p["counterparty_id"] for p in found if p["kind"] == "owner"]),
        **station_names([p["counterparty_id"] for p in found if p["kind"] == "station_cash"]),
    }
    table = Table(
        "positions",
        _("Settlement positions"),
        [
            Column("name", _("Counterparty")),
            Column("kind", _("Counterparty kind")),
            Column("receivable", _("Owes the center"), YUAN),
            Column("payable", _("The center owes"), YUAN),
            Column("net", _("Net"), YUAN, {}),
        ],
        note=_("Net: positive, the counterparty owes the center; negative, the center owes it."),
    )
    for p in found:
        values = {
            "kind": CounterpartyKind(p["kind"]).label,
            "name": counterparty_name(p["kind"], p["counterparty_id"], names),
            "receivable": p["receivable"],
            "payable": p["payable"],
            "net": p["net"],
        }
        table.rows.append(
            Row(
                values,
                drill=_position_drill(period, p["kind"], p["counterparty_id"]),
                ref=(p["kind"], p["counterparty_id"]),
            )
        )
    table.add_total(_("Total"))
    return table


def _position_drill(period: Period, kind: str, party: str) -> dict[str, str] | None:
    """The cleared transactions behind a counterparty's position (flow 3, our cards
    charged elsewhere, is in the purses', banks' and national center's positions
    but not in the store: their packages list them)."""
    found = {"period": period.key, "what": "cleared"}
    if kind == "owner":
        return found | {"owner": party}
    if kind == "purses":
        return found | {"payment": "22", "flow": "1"}
    if kind == "bank":
        return found | {"payment": "23", "flow": "1", "bank": party}
    if kind == "mobile":
        return found | {"payment": party}
    if kind == "station_cash":
        return found | {"station": party, "lane": "1"}
    if kind == "national_center":
        return found | {"flow": "2"}
    return None


# -- issuance figures --------------------------------------------------------------


@dataclass(frozen=True)
class Issuance:
    """Cards issued and OBUs installed, to the period's end and within it, and the
    purses' money (预收通行费) at its end."""

    cards_to_date: int
    cards_in_period: int
    obus_to_date: int
    obus_in_period: int
    prepaid_fen: int


#: The audit trail's actions for a card issued (also a replacement card) and an
#: OBU installed (activated after the installation photo).
CARD_ISSUED, OBU_INSTALLED = "cards.card_issued", "cards.obu_activated"


def issuance(period: Period) -> Issuance:
    start, end = period.window()

    def count(action: str, since: dt.datetime | None = None) -> int:
        events = AuditEvent.objects.filter(action=action, occurred_at__lt=end)
        if since is not None:
            events = events.filter(occurred_at__gte=since)
        return events.count()

    # What the purses held when the period's last day closed (its run keeps it);
    # with that day not closed, the purse postings up to the end, negated (the
    # purses are liabilities: their postings run negative).
    closed = (
        ClearingDay.objects.filter(date=period.last, status=DayStatus.CLOSED)
        .values_list("totals", flat=True)
        .first()
    )
    if closed and "purses_fen" in closed:
        purses = -int(closed["purses_fen"])
    else:
        purses = Posting.objects.filter(
            account__code__startswith=ledger.purse_code(""), entry__created_at__lt=end
        ).aggregate(total=Coalesce(Sum("amount_fen"), 0))["total"]
    return Issuance(
        cards_to_date=count(CARD_ISSUED),
        cards_in_period=count(CARD_ISSUED, start),
        obus_to_date=count(OBU_INSTALLED),
        obus_in_period=count(OBU_INSTALLED, start),
        prepaid_fen=-purses,
    )


def issuance_table(period: Period) -> Table:
    figures = issuance(period)
    table = Table(
        "issuance",
        _("Issuance figures"),
        [Column("key", _("Figure")), Column("value", _("Value"))],
    )
    for label, value in (
        (_("Cards issued to date (累计办卡张数)"), f"{figures.cards_to_date:,}"),
        (_("Cards issued in the period"), f"{figures.cards_in_period:,}"),
        (_("OBUs installed to date (安装标签部数)"), f"{figures.obus_to_date:,}"),
        (_("OBUs installed in the period"), f"{figures.obus_in_period:,}"),
        (_("Prepaid tolls (预收通行费), 万元"), wan(figures.prepaid_fen)),
        (_("Prepaid tolls, yuan"), format_yuan(figures.prepaid_fen)),
    ):
        table.rows.append(Row({"key": label, "value": value}))
    return table


# -- the lane payments (交款信息统计表) ---------------------------------------------

LANE_GROUPS = {"cash": Q(payment_type=CASH), "mobile": Q(payment_type__in=MOBILE_PAYMENTS)}


def lane_store(period: Period) -> QuerySet[TollTransaction]:
    start, end = period.window()
    return TollTransaction.objects.filter(
        exit_time__gte=start,
        exit_time__lt=end,
        direction="exit",
        status=RecordStatus.ACCEPTED,
    ).exclude(payment_type__in=CARD_PAYMENTS)


def lane_payments(period: Period, station: str = "") -> Table:
    """Per station, shift and collector: what was paid at the lane (cash, mobile,
    others such as free passages), card debits left out — from the store."""
    store = lane_store(period)
    if station:
        store = store.filter(station__node_id=station)
    grouped = (
        store.values("station__node_id", "shift", "collector")
        .annotate(
            trips=Count("pk"),
            cash_trips=Count("pk", filter=LANE_GROUPS["cash"]),
            cash=Coalesce(Sum("payable_fen", filter=LANE_GROUPS["cash"]), 0),
            mobile_trips=Count("pk", filter=LANE_GROUPS["mobile"]),
            mobile=Coalesce(Sum("payable_fen", filter=LANE_GROUPS["mobile"]), 0),
            total=Coalesce(Sum("payable_fen"), 0),
        )
        .order_by("station__node_id", "shift", "collector")
    )
    rows = list(grouped)
    names = station_names([r["station__node_id"] for r in rows])
    table = Table(
        "lane-payments",
        _("Lane payments by station and shift (交款信息统计表)"),
        [
            Column("station", _("Station")),
            Column("shift", _("Shift")),
            Column("collector", _("Collector")),
            Column("trips", _("Trips"), COUNT, {"pay": "all"}),
            Column("cash_trips", _("Cash trips"), COUNT, {"pay": "cash"}),
            Column("cash", _("Cash"), YUAN, {"pay": "cash"}),
            Column("mobile_trips", _("Mobile trips"), COUNT, {"pay": "mobile"}),
            Column("mobile", _("Mobile payments"), YUAN, {"pay": "mobile"}),
            Column("other", _("Other"), YUAN, {"pay": "other"}),
            Column("total", _("Total paid at the lane"), YUAN, {"pay": "all"}),
        ],
    )
    for station_id, group in groupby(rows, key=lambda r: r["station__node_id"]):
        members = [
            Row(
                {
                    "station": named(names, station_id),
                    "shift": r["shift"] or "—",
                    "collector": r["collector"] or "—",
                    **{k: r[k] for k in ("trips", "cash_trips", "cash", "mobile_trips", "mobile")},
                    "other": r["total"] - r["cash"] - r["mobile"],
                    "total": r["total"],
                },
                drill={
                    "source": "lane",
                    "period": period.key,
                    "station": station_id,
                    "shift": r["shift"] or "-",
                    "collector": r["collector"] or "-",
                },
            )
            for r in group
        ]
        table.rows.extend(members)
        if len(members) > 1:
            values = {
                "station": named(names, station_id),
                "shift": str(_("Station total")),
                **sums(table.columns, members),
            }
            drill = {"source": "lane", "period": period.key, "station": station_id}
            table.rows.append(Row(values, drill=drill, total=True))
    drill = {"source": "lane", "period": period.key}
    table.add_total(_("Total"), drill=drill | ({"station": station} if station else {}))
    return table
