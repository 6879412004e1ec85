"""The center's own checks of an upload's records (issue 14): it does not take
the terminal's word for the fee or for the status list.

- ``fee_findings``: every exit's fee is computed again by the fee engine of the
  tariff version in force at the exit time (the version a lane downloads is the
  one in force when it syncs, so that is the version it should have charged
  by — not the entry time that ``docs/network.md`` names for the center's fee
  API), with the inputs the lane gave its own engine (``Readings.quote``): exit
  station, entry station (none for a farthest-entry record), class, 车种. A fee
  that differs is a code 6 dispute (交易数据域错) with both figures; a fee that
  agrees but whose discount or payable amount breaks the payment type's rule
  (card: the version's ETC discount; cash and mobile: no discount, whole yuan)
  is one too. Special cases and authorisations do not change the fee the engine
  gives (the station master authorises the minimum or farthest-entry fee the
  engine computes; a mismatch is charged by the class the collector chose,
  which the record carries; a refused card pays the same fee by cash), so those
  exits are recomputed like any other, the case named in the evidence.
- ``list_findings``: a card or OBU that was on the status list in the version the
  lane held (``list_version``) could have been refused there: a code 3 dispute
  (用户状态变化) with the list entry and the versions as evidence.

Both are set-based: a fixed number of queries per call whatever the number of
records (the engines are built once per tariff version and kept, bounded, by
``etcnet.network.selectors.engine_for``). They only read; the intake stores the
findings with its records.

What is not flagged, because the center cannot be certain:

- an exit with no tariff version in force at its time (nothing to compare with);
- a record whose method the engine does not have (``entry``, empty, unknown),
  or whose inputs the engine of the version in force refuses (``FeeError``: a
  station or class that version does not know) — the lane then charged by a
  network the center did not have in force, which the lane's
  ``tariff_version`` already says;
- a card or OBU the lane did refuse (it paid otherwise): the caller passes
  only the records the card paid, ``ListFacts`` does not say how it was paid;
- a record without the list version its lane held, or with a version the
  center never published: the lists app defines no propagation delay to fall
  back on (``ETCNET_LIST_KEEP_DAYS`` is how long increments are kept, the
  terminal's 30-minute warning is a display), so the exit time alone proves
  nothing about what the lane knew.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, Subquery, Value
from django.db.models.functions import Coalesce

from etcnet.core.money import round_cash
from etcnet.lists.models import ListEntry, ListType, ListVersion, Medium
from etcnet.network import selectors as network_selectors
from etcnet.network.engine import FeeEngine, FeeError, FeeResult, Method
from etcnet.network.models import Node, TariffVersion
from etcnet.tolling.models import Direction, DisputeCode

__all__ = ["ExitFacts", "Finding", "ListFacts", "fee_findings", "list_findings"]

#: Payment types (§6.3) and the discount rule each pays by (the lane's
#: ``Purchases.exit``): the cards and a free passage pay what the engine gives
#: for ETC; cash and the mobile payments pay the toll to the whole yuan.
_ETC_PAYMENTS = frozenset({22, 23, 0})
_CASH_PAYMENTS = frozenset({1, 10, 11})
_METHODS = frozenset(m.value for m in Method)
#: At most this many other versions named by the lanes are computed per call.
_LANE_VERSIONS = 2
#: yyyyMMddHHmm: list versions compare as text only in this shape.
_LIST_VERSION_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Finding:
    code: int  # reference §6.2 dispute code (DisputeCode)
    kind: str  # short machine word: "fee_differs", "payable_differs", "listed_when_passed"
    reason: str  # English sentence for people
    evidence: dict[str, Any]  # JSON-serialisable


@dataclass(frozen=True, slots=True)
class ExitFacts:
    """One record as the lane charged it. ``station_id`` and ``entry_station``
    are node ids (``"S1201005"``, as records carry them) or ``Node`` primary
    keys; an empty entry station is none."""

    index: int  # the caller's key
    direction: str  # "exit" / "entry", as TollTransaction stores it
    station_id: int | str | None
    entry_station: int | str | None
    exit_time: dt.datetime  # aware
    entry_time: dt.datetime | None
    vehicle_class: int
    vehicle_kind: int | str | None
    method: str | None  # "minimum", "farthest-entry", "open", "exempt", "path"
    fee_fen: int
    discount_fen: int
    payable_fen: int
    payment_type: int
    intervals: list[Any] | None  # [{"interval_id", ...}] as the record carries them
    special_case: str | None
    authorised_by: str | None
    tariff_version: str | None  # what the lane says it charged by


@dataclass(frozen=True, slots=True)
class ListFacts:
    index: int
    card_no: str | None
    obu_no: str | None
    list_version: str | None  # the status-list version the lane held
    exit_time: dt.datetime


# -- the fee ------------------------------------------------------------------------


_VERSION_FIELDS = ("pk", "number", "effective_at", "discount_bp")


def _in_force(times: Iterable[dt.datetime]) -> list[TariffVersion | None]:
    """The version in force at each time, in one query: the versions from the
    start of the one in force at the earliest time up to the latest time."""
    moments = list(times)
    if not moments:
        return []
    low, high = min(moments), max(moments)
    start_at_low = (
        TariffVersion.objects.filter(effective_at__lte=low)
        .order_by("-effective_at")
        .values("effective_at")[:1]
    )
    # Ascending, so among versions of one effective time the highest number,
    # which ``version_in_force`` picks, comes last.
    timeline = list(
        TariffVersion.objects.filter(
            effective_at__gte=Coalesce(Subquery(start_at_low), Value(low)),
            effective_at__lte=high,
        )
        .order_by("effective_at", "number")
        .only(*_VERSION_FIELDS)
    )
    starts = [v.effective_at for v in timeline]
    found: list[TariffVersion | None] = []
    for moment in moments:
        at = bisect_right(starts, moment) - 1
        found.append(timeline[at] if at >= 0 else None)
    return found


def _node_ids(exits: Sequence[ExitFacts]) -> dict[int, str]:
    """Node primary keys given as ints, to node ids (one query, only if any)."""
    pks = {
        value
        for x in exits
        for value in (x.station_id, x.entry_station)
        if isinstance(value, int) and not isinstance(value, bool)
    }
    if not pks:
        return {}
    return dict(Node.objects.filter(pk__in=pks).values_list("pk", "node_id"))


def _node(value: int | str | None, by_pk: dict[int, str]) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return by_pk.get(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What the lane gave its engine, as a key for the call's memo."""

    exit: str
    entry: str | None
    vehicle_class: int
    vehicle_kind: int
    path: tuple[str, ...] | None

    def trip(self, engine: FeeEngine) -> FeeResult:
        return engine.trip(
            exit=self.exit,
            entry=self.entry,
            vehicle_class=self.vehicle_class,
            vehicle_kind=self.vehicle_kind,
            path=self.path,
            allow_gaps=self.path is not None,
        )


def _inputs(x: ExitFacts, by_pk: dict[int, str]) -> _Inputs | None:
    """The engine's inputs for the record, or None when it was not charged by
    the engine the same way (no method the engine has, no station)."""
    if x.method not in _METHODS:
        return None
    exit_ = _node(x.station_id, by_pk)
    if exit_ is None:
        return None
    try:
        kind = int(x.vehicle_kind or 0)
    except (TypeError, ValueError):
        return None
    entry = _node(x.entry_station, by_pk)
    path: tuple[str, ...] | None = None
    if x.method == Method.FARTHEST_ENTRY:
        # The record names the entry the rule chose; the lane had none.
        entry = None
    elif x.method == Method.PATH:
        ids = [i.get("interval_id") if isinstance(i, dict) else None for i in x.intervals or ()]
        if not ids or not all(isinstance(i, str) and i for i in ids):
            return None
        path = tuple(str(i) for i in ids)
    return _Inputs(exit_, entry, int(x.vehicle_class), kind, path)


def _payable(fee: FeeResult, payment_type: int) -> tuple[int, int] | None:
    """(discount, payable) by the rule of the payment type; None for a type
    the lane has no rule for (only the fee is compared then)."""
    if payment_type in _ETC_PAYMENTS:
        return fee.discount_fen, fee.payable_fen
    if payment_type in _CASH_PAYMENTS:
        return 0, round_cash(fee.fee_fen)
    return None


def fee_findings(exits: Sequence[ExitFacts]) -> dict[int, list[Finding]]:
    """Code 6 findings of the exits whose fee, discount or payable amount is not
    what the tariff version in force at their exit time gives, by ``index``.

    Records that are not exits, exits with no version in force, and exits the
    engine cannot recompute the same way get no finding (module docstring).
    Queries: two for the versions in force, one for node primary keys if any
    were given, one for the lanes' own versions when a flagged exit names
    another version, and six per engine not yet built (none once built)."""
    todo = [x for x in exits if x.direction == Direction.EXIT]
    if not todo:
        return {}
    versions = _in_force(x.exit_time for x in todo)
    by_pk = _node_ids(todo)
    memo: dict[tuple[int, _Inputs], FeeResult | None] = {}

    def compute(version: TariffVersion, inputs: _Inputs) -> FeeResult | None:
        key = (version.pk, inputs)
        if key not in memo:
            try:
                # The center's engine cache (bounded, emptied by every import),
                # shared with the terminals' tariff download.
                memo[key] = inputs.trip(network_selectors.engine_for(version))
            except FeeError:
                memo[key] = None
        return memo[key]

    flagged: list[tuple[ExitFacts, _Inputs, TariffVersion, FeeResult, str]] = []
    for x, version in zip(todo, versions, strict=True):
        if version is None:
            continue
        inputs = _inputs(x, by_pk)
        if inputs is None:
            continue
        center = compute(version, inputs)
        if center is None:
            continue
        rule = _payable(center, x.payment_type)
        if center.fee_fen != x.fee_fen:
            flagged.append((x, inputs, version, center, "fee_differs"))
        elif rule is not None and rule != (x.discount_fen, x.payable_fen):
            flagged.append((x, inputs, version, center, "payable_differs"))
    if not flagged:
        return {}

    # What the lane's own (other) version gives: a lane on a stale tariff is
    # told apart from a fee the lane's tariff never gave. The newest few only:
    # each is an engine to build, and the engine cache is small.
    lane_numbers = sorted(
        {
            x.tariff_version
            for x, _, version, _, _ in flagged
            if x.tariff_version and x.tariff_version != version.number
        },
        reverse=True,
    )[:_LANE_VERSIONS]
    lane_versions = (
        {
            row.number: row
            for row in TariffVersion.objects.filter(number__in=lane_numbers).only(*_VERSION_FIELDS)
        }
        if lane_numbers
        else {}
    )

    found: dict[int, list[Finding]] = defaultdict(list)
    for x, inputs, version, center, kind in flagged:
        lane_version = lane_versions.get(x.tariff_version or "")
        by_lane_version = compute(lane_version, inputs) if lane_version is not None else None
        lane_entry = _node(x.entry_station, by_pk)
        found[x.index].append(
            _fee_finding(x, inputs, version, center, kind, by_lane_version, lane_entry)
        )
    return dict(found)


def _fee_finding(
    x: ExitFacts,
    inputs: _Inputs,
    version: TariffVersion,
    center: FeeResult,
    kind: str,
    by_lane_version: FeeResult | None,
    lane_entry: str | None,
) -> Finding:
    rule = _payable(center, x.payment_type)
    differs = bool(x.tariff_version) and x.tariff_version != version.number
    evidence: dict[str, Any] = {
        "fee_fen": x.fee_fen,
        "center_fee_fen": center.fee_fen,
        "discount_fen": x.discount_fen,
        "center_discount_fen": rule[0] if rule else None,
        "payable_fen": x.payable_fen,
        "center_payable_fen": rule[1] if rule else None,
        "payment_type": x.payment_type,
        "method": x.method,
        "center_method": str(center.method),
        "exit_station": inputs.exit,
        "entry_station": lane_entry,
        "center_entry_station": center.entry,
        "vehicle_class": inputs.vehicle_class,
        "vehicle_kind": inputs.vehicle_kind,
        "exit_time": x.exit_time.isoformat(),
        "tariff_version": version.number,
        "tariff_effective_at": version.effective_at.isoformat(),
        "lane_tariff_version": x.tariff_version or None,
        "tariff_version_differs": differs,
    }
    if differs:
        # None: the center has no version of that number, cannot charge the trip
        # by it, or did not compute it (more than _LANE_VERSIONS in one call).
        evidence["lane_tariff_fee_fen"] = (
            by_lane_version.fee_fen if by_lane_version is not None else None
        )
    if x.special_case:
        evidence["special_case"] = x.special_case
    if x.authorised_by:
        # The station master authorises the fee the engine gives; it is not his to change.
        evidence["authorised_by"] = x.authorised_by
    if kind == "fee_differs":
        reason = (
            f"The lane charged a fee of {x.fee_fen} fen; tariff {version.number}, in force "
            f"at the exit, gives {center.fee_fen} fen ({center.method})."
        )
    else:
        reason = (
            f"The lane's discount {x.discount_fen} fen and payable {x.payable_fen} fen do not "
            f"follow from the fee {x.fee_fen} fen for payment type {x.payment_type} "
            f"(tariff {version.number}: {evidence['center_discount_fen']} and "
            f"{evidence['center_payable_fen']} fen)."
        )
    if differs:
        reason += f" The lane charged by tariff {x.tariff_version}."
    return Finding(int(DisputeCode.DATA_FIELD), kind, reason, evidence)


# -- the status list ----------------------------------------------------------------


def _carried(entry: ListEntry, held: str) -> bool:
    """Whether a lane holding version ``held`` had the entry: increments are
    cumulative and numbered in time, so the lane had everything added up to its
    version and not removed by then (``selectors.versions_carrying``)."""
    added, removed = entry.added_in, entry.removed_in
    if added is None or added.number > held:
        return False
    return removed is None or removed.number > held


def _type_name(list_type: int) -> str:
    """The type in English words, whatever the language active ("lost")."""
    return ListType(list_type).name.lower().replace("_", " ")


def _entry_evidence(entry: ListEntry) -> dict[str, Any]:
    assert entry.added_in is not None
    return {
        "medium": entry.medium,
        "medium_id": entry.medium_id,
        "list_type": entry.list_type,
        "list_type_name": _type_name(entry.list_type),
        "entry_id": entry.pk,
        "source": entry.source,
        "since": entry.since.isoformat(),
        "added_in": entry.added_in.number,
        "added_published_at": entry.added_in.published_at.isoformat(),
        "removed_in": entry.removed_in.number if entry.removed_in is not None else None,
    }


def list_findings(items: Sequence[ListFacts]) -> dict[int, list[Finding]]:
    """Code 3 findings of the records whose card or OBU was on the status list
    in the version their lane held, by ``index``; one finding per record, its
    evidence the first such entry with every one under ``entries``.

    Every list type counts: a lane refuses a card or OBU on the list for any
    type (``Reading.card_refused``). The caller passes the records where the
    lane let the card or OBU through (a card that paid); a record whose lane
    refused the card and took cash is no dispute. Records without a list
    version, or with one the center never published, get no finding (module
    docstring). Two queries."""
    todo = [
        item
        for item in items
        if (item.card_no or item.obu_no)
        and item.list_version
        and len(item.list_version) == _LIST_VERSION_LENGTH
        and item.list_version.isdigit()
    ]
    if not todo:
        return {}
    cards = {item.card_no for item in todo if item.card_no}
    obus = {item.obu_no for item in todo if item.obu_no}
    wanted = Q(medium=Medium.CARD, medium_id__any=cards) | Q(medium=Medium.OBU, medium_id__any=obus)
    entries: dict[tuple[str, str], list[ListEntry]] = defaultdict(list)
    for entry in (
        ListEntry.objects.filter(wanted, added_in__isnull=False)
        .select_related("added_in", "removed_in")
        .order_by("added_in__number", "pk")
    ):
        entries[(entry.medium, entry.medium_id)].append(entry)
    if not entries:
        return {}
    held_published = dict(
        ListVersion.objects.filter(number__in={item.list_version for item in todo}).values_list(
            "number", "published_at"
        )
    )

    found: dict[int, list[Finding]] = {}
    for item in todo:
        held = item.list_version
        assert held is not None
        if held not in held_published:
            continue
        matched = [
            entry
            for key in ((Medium.CARD, item.card_no), (Medium.OBU, item.obu_no))
            if key[1]
            for entry in entries.get((str(key[0]), str(key[1])), ())
            if _carried(entry, held)
        ]
        if not matched:
            continue
        first = matched[0]
        evidence = _entry_evidence(first)
        evidence.update(
            list_version=held,
            list_version_published_at=held_published[held].isoformat(),
            exit_time=item.exit_time.isoformat(),
            entries=[_entry_evidence(entry) for entry in matched],
        )
        what = "card" if first.medium == Medium.CARD else "OBU"
        reason = (
            f"The {what} {first.medium_id} was on the status list (type {first.list_type}, "
            f"{_type_name(first.list_type)}) from version {evidence['added_in']}, "
            f"and the lane held version {held}: it could have been refused."
        )
        found[item.index] = [
            Finding(int(DisputeCode.USER_STATUS), "listed_when_passed", reason, evidence)
        ]
    return found
