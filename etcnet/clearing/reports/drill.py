"""The drill-down from a total to its transactions: the clearing entries of a
period, narrowed by the total's filters and joined to the store by
(transaction_id, exit_time), paged by key (never an OFFSET, never a COUNT
over a day); the lane payments' transactions from the store alike; the
entries held (遗留) now."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    BooleanField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils.translation import gettext_lazy as _

from etcnet.cards.models import CardUnit
from etcnet.clearing.models import (
    ClearingDay,
    ClearingEntry,
    EntryState,
)
from etcnet.clearing.reports.figures import LANE_GROUPS, lane_store
from etcnet.clearing.reports.tables import (
    CARD_PAYMENTS,
    CASH,
    FLOWS,
    MOBILE_PAYMENTS,
    YUAN,
    Column,
    FilterError,
    Period,
    Row,
    choice,
    class_label,
    code_label,
    day_ids,
    local_time,
    mask_card,
    mask_plate,
    named,
    network_label,
    number,
    owner_names,
    payment_label,
    station_names,
    text,
)
from etcnet.network.models import Interval, Node, Owner, TariffVersion
from etcnet.tolling.models import TollTransaction

PAGE_SIZE = 50
#: A drill-down exported to Excel stops here (a province's day is millions of
#: rows; narrow the filter for more), and says so in its last row.
EXPORT_LIMIT = 100_000
_CHUNK = 2_000

# -- the drill-down ----------------------------------------------------------------

WHATS = ("all", "taken", "cleared", "held", "sent", "carried")
LANE_PAYS = ("all", "cash", "mobile", "other")


class _OverOwnerRoads(Func):
    """True when one of the transaction's intervals belongs, in the tariff version
    it was charged by, to the road owner `owner_id` — or, an open-road exit with
    no intervals, when one of the intervals of that version ending at its station
    does (the run splits it over those, docs/clearing.md)."""

    output_field = BooleanField()

    def __init__(self, owner_id: str) -> None:
        super().__init__(F("intervals"), F("tariff_version"), F("station_id"), F("method"))
        self.owner_id = owner_id

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:  # type: ignore[override]
        intervals, first = compiler.compile(self.source_expressions[0])
        version, second = compiler.compile(self.source_expressions[1])
        station, third = compiler.compile(self.source_expressions[2])
        method, fourth = compiler.compile(self.source_expressions[3])
        if connection.vendor == "postgresql":
            elements = f"jsonb_array_elements({intervals}) AS e(value)"
            interval = "e.value ->> 'interval_id'"
            empty = f"jsonb_array_length({intervals}) = 0"
        else:
            elements = f"json_each({intervals}) AS e"
            interval = "json_extract(e.value, '$.interval_id')"
            empty = f"json_array_length({intervals}) = 0"
        owned = (
            f" JOIN {TariffVersion._meta.db_table} v"
            f" ON v.id = i.version_id AND v.number = {version}"
            f" JOIN {Owner._meta.db_table} o ON o.id = i.owner_id WHERE o.owner_id = %s"
        )
        sql = (
            f"(EXISTS (SELECT 1 FROM {elements}"
            f" JOIN {Interval._meta.db_table} i ON i.interval_id = {interval}{owned})"
            f" OR ({method} = 'open' AND {empty} AND EXISTS (SELECT 1"
            f" FROM {Interval._meta.db_table} i{owned} AND i.to_node_id = {station})))"
        )
        return sql, (
            *first, *second, self.owner_id,
            *fourth, *first, *second, self.owner_id, *third,
        )  # fmt: skip


@dataclass(frozen=True)
class Drill:
    """The transactions behind a total: the entries the period's days took
    (`taken`), cleared (`cleared`: their own and carried ones), held or sent,
    or all they touched; narrowed by the transaction's station, issuer, payment
    type and class, the entry's flow, code and lateness, or a road owner. Held
    and sent are what the days took as such (`taken_state`), whatever became of
    them since; an entry is shown with its state now."""

    period: Period
    what: str = "all"
    station: str = ""
    network: str | None = None  # "" : no card (lane payments)
    payment: int | None = None
    vehicle_class: int | None = None
    flow: int | None = None
    code: int | None = None
    late: bool | None = None
    owner: str = ""
    bank: str = ""  # our debit cards of accounts at this bank
    lane: bool = False  # paid at the lane, neither by card nor by a mobile payment

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Drill:
        network = text(params, "network", 4)
        if network and network != "-" and not (network.isdigit() and len(network) == 4):
            raise FilterError("network", _("A card network is four digits, such as 6101."))
        late = choice(params, "late", ("", "0", "1"))
        return cls(
            period=Period.parse(params.get("period", "")),
            what=choice(params, "what", WHATS),
            station=text(params, "station", 20),
            network=None if not network else ("" if network == "-" else network),
            payment=number(params, "payment", 0, 99),
            vehicle_class=number(params, "class", 1, 99),
            flow=number(params, "flow", 1, 3),
            code=number(params, "code", 1, 999),
            late=None if not late else late == "1",
            owner=text(params, "owner", 20),
            bank=text(params, "bank", 60),
            lane=choice(params, "lane", ("", "1")) == "1",
        )

    def params(self) -> dict[str, str]:
        found = {
            "period": self.period.key,
            "what": self.what,
            "station": self.station,
            "network": "-" if self.network == "" else (self.network or ""),
            "payment": "" if self.payment is None else str(self.payment),
            "class": "" if self.vehicle_class is None else str(self.vehicle_class),
            "flow": "" if self.flow is None else str(self.flow),
            "code": "" if self.code is None else str(self.code),
            "late": "" if self.late is None else str(int(self.late)),
            "owner": self.owner,
            "bank": self.bank,
            "lane": "1" if self.lane else "",
        }
        return {k: v for k, v in found.items() if v}

    def describe(self) -> list[str]:
        """The filters in words, for the page's heading."""
        words = [str(self.period), str(dict(_WHAT_LABELS)[self.what])]
        if self.station:
            words.append(named(station_names([self.station]), self.station))
        if self.network is not None:
            words.append(network_label(self.network))
        if self.payment is not None:
            words.append(payment_label(self.payment))
        if self.vehicle_class is not None:
            words.append(class_label(self.vehicle_class))
        if self.flow is not None:
            words.append(str(FLOWS.get(self.flow, self.flow)))
        if self.code is not None:
            words.append(code_label(self.code))
        if self.late is not None:
            words.append(str(_("late") if self.late else _("not late")))
        if self.owner:
            words.append(named(owner_names([self.owner]), self.owner))
        if self.bank:
            words.append(self.bank)
        if self.lane:
            words.append(str(_("Paid at the lane")))
        return words

    def entries(self) -> QuerySet[ClearingEntry]:
        days = day_ids(self.period)
        taken = Q(day_id__in=days)
        if self.what == "cleared":
            wanted = Q(state=EntryState.CLEARED) & (
                Q(day_id__in=days, cleared_on__isnull=True) | Q(cleared_on_id__in=days)
            )
        elif self.what in ("held", "sent"):
            # As the day took them: a dispute resolved later stays in its day's list.
            wanted = taken & Q(taken_state=self.what)
        elif self.what == "taken":
            wanted = taken
        elif self.what == "carried":
            # Taken by an earlier day (held, sent), cleared by one of these.
            wanted = Q(cleared_on_id__in=days)
        else:
            wanted = taken | Q(cleared_on_id__in=days)
        found = ClearingEntry.objects.filter(wanted)
        if self.flow is not None:
            found = found.filter(flow=self.flow)
        if self.code is not None:
            # The code its day held it for (a cleared one: the dispute resolved).
            found = found.filter(taken_code=self.code)
        if self.late is not None:
            found = found.filter(late=self.late)
        store = TollTransaction.objects.filter(
            pk=OuterRef("transaction_id"), exit_time=OuterRef("exit_time")
        )
        narrowed = False
        if self.station:
            station = Node.objects.filter(node_id=self.station).values_list("pk", flat=True).first()
            store, narrowed = store.filter(station_id=station or 0), True
        if self.network is not None:
            store, narrowed = store.filter(card_network=self.network), True
        if self.payment is not None:
            store, narrowed = store.filter(payment_type=self.payment), True
        if self.vehicle_class is not None:
            store, narrowed = store.filter(vehicle_class=self.vehicle_class), True
        if self.owner:
            store, narrowed = store.filter(_OverOwnerRoads(self.owner)), True
        if self.bank:
            cards = CardUnit.objects.filter(
                card_no=OuterRef("card_no"), account__bank_name=self.bank
            )
            store, narrowed = store.filter(Exists(cards)), True
        if self.lane:
            paid_otherwise = (*CARD_PAYMENTS, *MOBILE_PAYMENTS)
            store, narrowed = store.exclude(payment_type__in=paid_otherwise), True
        if narrowed:
            found = found.filter(Exists(store))
        # By transaction (unique, indexed): the store's order of arrival.
        return found.order_by("transaction_id")


_WHAT_LABELS = (
    ("all", _("Every record the period took or cleared")),
    ("taken", _("Records taken")),
    ("cleared", _("Cleared")),
    ("held", _("Held (遗留)")),
    ("sent", _("Sent for 记账")),
    ("carried", _("Carried in from earlier days")),
)


@dataclass(frozen=True)
class LaneDrill:
    """The lane payments behind a total of the 交款 table, from the store."""

    period: Period
    station: str = ""
    shift: str | None = None  # "" : none recorded
    collector: str | None = None
    pay: str = "all"

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> LaneDrill:
        shift, collector = text(params, "shift", 20), text(params, "collector", 20)
        return cls(
            period=Period.parse(params.get("period", "")),
            station=text(params, "station", 20),
            shift=None if not shift else ("" if shift == "-" else shift),
            collector=None if not collector else ("" if collector == "-" else collector),
            pay=choice(params, "pay", LANE_PAYS),
        )

    def describe(self) -> list[str]:
        words = [str(self.period), str(_("Paid at the lane"))]
        if self.station:
            words.append(named(station_names([self.station]), self.station))
        if self.shift is not None:
            words.append(f"{_('Shift')} {self.shift or '—'}")
        if self.collector is not None:
            words.append(f"{_('Collector')} {self.collector or '—'}")
        if self.pay != "all":
            words.append(
                {
                    "cash": str(_("Cash")),
                    "mobile": str(_("Mobile payments")),
                    "other": str(_("Other")),
                }[self.pay]
            )
        return words

    def transactions(self) -> QuerySet[TollTransaction]:
        found = lane_store(self.period)
        if self.station:
            found = found.filter(station__node_id=self.station)
        if self.shift is not None:
            found = found.filter(shift=self.shift)
        if self.collector is not None:
            found = found.filter(collector=self.collector)
        if self.pay in LANE_GROUPS:
            found = found.filter(LANE_GROUPS[self.pay])
        elif self.pay == "other":
            found = found.exclude(payment_type__in=(CASH, *MOBILE_PAYMENTS))
        return found.order_by("pk")


@dataclass
class Listed:
    """A page of the drill-down: (entry or None, transaction) pairs in order."""

    rows: list[tuple[ClearingEntry | None, TollTransaction | None]]
    next_after: int | None


def _fetch(entries: Sequence[ClearingEntry]) -> dict[int, TollTransaction]:
    """The page's transactions, found by id and exit time (the day partitions
    prune to the days the page's entries name)."""
    if not entries:
        return {}
    found = TollTransaction.objects.filter(
        pk__in=[e.transaction_id for e in entries],
        exit_time__in=sorted({e.exit_time for e in entries}),
    ).select_related("station")
    return {t.pk: t for t in found}


def page(query: Drill | LaneDrill, after: int = 0, size: int = PAGE_SIZE) -> Listed:
    """One page of the drill-down after the key `after` (keyset: never an OFFSET
    or a COUNT over the day), with the key of the next page if there is one."""
    if isinstance(query, LaneDrill):
        found = list(
            query.transactions().select_related("station").filter(pk__gt=after)[: size + 1]
        )
        more = len(found) > size
        found = found[:size]
        return Listed([(None, t) for t in found], found[-1].pk if more else None)
    return _entries_page(query.entries(), after, size)


def _entries_page(entries: QuerySet[ClearingEntry], after: int, size: int) -> Listed:
    """A page of entries ordered by transaction after `after`, with their transactions."""
    found = list(entries.filter(transaction_id__gt=after)[: size + 1])
    more = len(found) > size
    found = found[:size]
    store = _fetch(found)
    return Listed(
        [(e, store.get(e.transaction_id)) for e in found],
        found[-1].transaction_id if more else None,
    )


def every_page(query: Drill | LaneDrill, limit: int = EXPORT_LIMIT) -> Iterator[Listed]:
    """The drill-down page after page (for an export), up to `limit` rows."""
    after, given = 0, 0
    while given < limit:
        listed = page(query, after, min(_CHUNK, limit - given))
        yield listed
        given += len(listed.rows)
        if listed.next_after is None:
            return
        after = listed.next_after


def transaction_columns(lane: bool) -> list[Column]:
    columns = [
        Column("exit_time", _("Exit time")),
        Column("station", _("Station")),
        Column("lane", _("Lane")),
        Column("card", _("Card")),
        Column("plate", _("Plate")),
        Column("class", _("Vehicle class")),
        Column("payment", _("Payment method")),
        Column("fee", _("Toll"), YUAN),
        Column("discount", _("Discount"), YUAN),
        Column("payable", _("Payable"), YUAN),
    ]
    if lane:
        return [*columns, Column("shift", _("Shift")), Column("collector", _("Collector"))]
    return [
        *columns,
        Column("state", _("State")),
        Column("code", _("§6.2 code")),
        Column("late", _("Late")),
        Column("taken_on", _("Taken on")),
    ]


def transaction_row(
    entry: ClearingEntry | None,
    txn: TollTransaction | None,
    *,
    reveal: bool,
    days: Mapping[int, str],
) -> Row:
    values: dict[str, Any] = {}
    if txn is not None:
        values = {
            "exit_time": local_time(txn.exit_time),
            "station": txn.station.name if txn.station_id else "",
            "lane": txn.lane_number,
            "card": mask_card(txn.card_no, reveal) or "—",
            "plate": mask_plate(txn.plate, reveal) or "—",
            "class": class_label(txn.vehicle_class),
            "payment": payment_label(txn.payment_type),
            "fee": txn.fee_fen,
            "discount": txn.discount_fen,
            "payable": txn.payable_fen,
            "shift": txn.shift or "—",
            "collector": txn.collector or "—",
        }
    elif entry is not None:
        values = {"exit_time": local_time(entry.exit_time), "payable": entry.payable_fen}
    if entry is not None:
        values |= {
            "state": entry.get_state_display(),
            "code": code_label(entry.hold_code),
            "late": str(_("late")) if entry.late else "",
            "taken_on": days.get(entry.day_id, ""),
        }
    return Row(values, href=str(txn.pk) if txn is not None else "")


def day_labels(listed: Listed) -> dict[int, str]:
    ids = {e.day_id for e, _t in listed.rows if e is not None}
    return {
        pk: d.isoformat()
        for pk, d in ClearingDay.objects.filter(pk__in=ids).values_list("pk", "date")
    }


# -- the disputes held -------------------------------------------------------------


def held(code: int | None = None) -> QuerySet[ClearingEntry]:
    """The entries held (遗留) now, oldest first; `code`: those held for it."""
    found = ClearingEntry.objects.filter(state=EntryState.HELD)
    if code is not None:
        found = found.filter(hold_code=code)
    return found.order_by("transaction_id")


def held_page(code: int | None, after: int = 0, size: int = PAGE_SIZE) -> Listed:
    return _entries_page(held(code), after, size)
