"""The fee engine: what a trip costs, and how that was decided.

Pure code over a ``Network`` (``etcnet.network.bundle``); no database, no Django. The
rules (reference ETC.md Part 1 and Part 2 §3.3; details in ``docs/network.md``):

* **exempt** — a 车种 (vehicle kind) in ``EXEMPT_KINDS`` pays nothing; the reason is kept.
* **open** — an exit at an open-road station (开放式) charges its fixed fee for the class.
* **path** — a closed-road trip with a known entry and the intervals its gantries
  recorded pays the sum of their fees for the class (exit fee type 1).
* **minimum** — when the path is unknown or incomplete, or its fee is below the minimum
  fee of (entry, exit, class), the trip pays the minimum fee (最小费额): the fee of the
  cheapest path by fee, ties broken by length (exit fee type 6).
* **farthest-entry** — without entry information, the trip pays the fee along the
  shortest path from the entry station farthest (by that shortest length) from the exit.

ETC payments get ``discount_bp`` off the trip total, rounded half-up to the fen; cash
pays to the whole yuan by ``round_cash`` (half-up). Every result lists the intervals
it charged, with owner and fee, which is what clearing splits. The per-class graphs are scipy
CSR matrices, built once; the minimum-fee table runs ``scipy.sparse.csgraph.dijkstra``
from all stations at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse.csgraph import dijkstra  # type: ignore[import-untyped,unused-ignore]

from etcnet.core.codes import VehicleCategory, VehicleClass, VehicleKind
from etcnet.core.money import Rounding, apply_basis_points, round_cash
from etcnet.network.bundle import Network, reachable_from, structure_graph

__all__ = [
    "EXEMPT_KINDS",
    "EXIT_FEE_TYPES",
    "OVERWEIGHT_LIMITS_KG",
    "FeeEngine",
    "FeeError",
    "FeeResult",
    "IntervalCharge",
    "Method",
    "MinimumFees",
    "Payment",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class Payment(StrEnum):
    """How the trip is paid at the exit."""

    ETC = "etc"
    CASH = "cash"


class Method(StrEnum):
    """How a fee was computed."""

    PATH = "path"
    MINIMUM = "minimum"
    FARTHEST_ENTRY = "farthest-entry"
    OPEN = "open"
    EXEMPT = "exempt"


#: exitFeeType recorded for each method (reference §3.3): 1 by the path the gantries
#: charged, 6 by the network minimum fee, 11 open road. Farthest-entry and exempt have no
#: code of their own; etcnet records 4 (计费 by the provincial center's online service):
#: both are special situations (特情) the lane cannot settle from the OBU/CPC alone.
EXIT_FEE_TYPES: dict[Method, int] = {
    Method.PATH: 1,
    Method.MINIMUM: 6,
    Method.FARTHEST_ENTRY: 4,
    Method.OPEN: 11,
    Method.EXEMPT: 4,
}

#: 车种 that pass free (reference §4.3): 8 military/police, 10 emergency, 21 green
#: channel (the caller sends 21 only after the load passed inspection), 22 combine
#: harvester, 23 disaster relief, 26 emergency support.
EXEMPT_KINDS: frozenset[VehicleKind] = frozenset(
    {
        VehicleKind.MILITARY_POLICE,
        VehicleKind.EMERGENCY,
        VehicleKind.GREEN_CHANNEL,
        VehicleKind.COMBINE_HARVESTER,
        VehicleKind.DISASTER_RELIEF,
        VehicleKind.EMERGENCY_SUPPORT,
    }
)

#: Over-limit total mass by axles (Part 1, §5): more than this is overweight. Six or
#: more axles use the six-axle limit.
OVERWEIGHT_LIMITS_KG: dict[int, int] = {2: 18_000, 3: 25_000, 4: 31_000, 5: 43_000, 6: 49_000}

# Cheapest-by-fee, ties by length, is one Dijkstra over weights fee * scale + length
# (scale > any path length). float64 holds integers exactly below 2**53; beyond that
# the engine falls back to fee-only weights (ties broken arbitrarily, see docs).
_EXACT_LIMIT = 2**53
_NO_PREDECESSOR = -9999  # what scipy writes for "no predecessor"
_TREE_CACHE = 512


@dataclass(frozen=True)
class IntervalCharge:
    """One interval of a trip and the fee charged for it."""

    interval_id: str
    owner_id: str
    fee_fen: int
    length_m: int

    def as_json(self) -> dict[str, str | int]:
        return {
            "interval_id": self.interval_id,
            "owner_id": self.owner_id,
            "fee_fen": self.fee_fen,
            "length_m": self.length_m,
        }


@dataclass(frozen=True, kw_only=True)
class FeeResult:
    """The fee of a trip and how it was decided.

    ``fee_fen`` is the toll (the sum of ``intervals`` fees, or the open-road fee, or 0
    when exempt); ``payable_fen = fee_fen - discount_fen + rounding_fen``, where
    ``rounding_fen`` is the cash rounding to whole yuan (-50 < r <= 50; 0 for ETC).
    """

    method: Method
    exit_fee_type: int
    entry: str | None
    exit: str
    vehicle_class: int
    fee_fen: int
    discount_fen: int
    payable_fen: int
    intervals: tuple[IntervalCharge, ...]
    length_m: int
    reason: str | None = None
    overweight: bool | None = None
    payment: Payment = Payment.ETC
    vehicle_kind: int = 0
    rounding_fen: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "method": str(self.method),
            "exit_fee_type": self.exit_fee_type,
            "entry": self.entry,
            "exit": self.exit,
            "vehicle_class": self.vehicle_class,
            "vehicle_kind": self.vehicle_kind,
            "payment": str(self.payment),
            "fee_fen": self.fee_fen,
            "discount_fen": self.discount_fen,
            "rounding_fen": self.rounding_fen,
            "payable_fen": self.payable_fen,
            "length_m": self.length_m,
            "intervals": [charge.as_json() for charge in self.intervals],
            "reason": self.reason,
            "overweight": self.overweight,
        }


class FeeError(ValueError):
    """A trip the engine cannot charge. ``code`` is stable; the message is English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class MinimumFees:
    """The minimum-fee table of one class as arrays: row k is
    (``stations[entry[k]]``, ``stations[exit[k]]``, ``fee_fen[k]``, ``length_m[k]``)."""

    vehicle_class: int
    stations: tuple[str, ...]
    entry: IntArray
    exit: IntArray
    fee_fen: IntArray
    length_m: IntArray

    def rows(self) -> Iterator[tuple[str, str, int, int, int]]:
        stations, vehicle_class = self.stations, self.vehicle_class
        for entry, exit_, fee, length in zip(
            self.entry.tolist(),
            self.exit.tolist(),
            self.fee_fen.tolist(),
            self.length_m.tolist(),
            strict=True,
        ):
            yield stations[entry], stations[exit_], vehicle_class, fee, length


@dataclass(frozen=True)
class _ClassGraph:
    """The graph of one class: the cheapest interval per node pair, as a CSR matrix."""

    graph: csr_matrix  # weights fee * scale + length (or fee only when not exact)
    scale: int
    exact: bool
    edge: dict[tuple[int, int], int]  # (from, to) node index -> interval index


class FeeEngine:
    """Fees for trips on one network and tariff. Build once, use for many trips.

    The network should have passed ``bundle.validate``; the engine refuses only what
    would make its arithmetic wrong (non-positive lengths, negative fees).
    """

    def __init__(self, network: Network, *, discount_bp: int = 500) -> None:
        if not 0 <= discount_bp <= 10_000:
            raise ValueError(f"discount_bp must be 0..10000, not {discount_bp}")
        bad = [i.interval_id for i in network.intervals.values() if i.length_m <= 0]
        bad += [f"{k}/{c}" for (k, c), fen in network.fees.items() if fen < 0]
        if bad:
            raise FeeError(
                "network.invalid",
                f"the network has non-positive lengths or negative fees: {', '.join(bad[:5])}",
            )
        self.network = network
        self.discount_bp = discount_bp
        self._node_ids: tuple[str, ...] = tuple(sorted(network.nodes))
        self._index = {node_id: i for i, node_id in enumerate(self._node_ids)}
        # Intervals between known nodes, in id order.
        self._intervals = tuple(
            sorted(
                (
                    i
                    for i in network.intervals.values()
                    if i.from_node in self._index and i.to_node in self._index
                ),
                key=lambda i: i.interval_id,
            )
        )
        self._interval_index = {i.interval_id: k for k, i in enumerate(self._intervals)}
        self._src: IntArray = np.array(
            [self._index[i.from_node] for i in self._intervals], dtype=np.int64
        )
        self._dst: IntArray = np.array(
            [self._index[i.to_node] for i in self._intervals], dtype=np.int64
        )
        self._length: IntArray = np.array([i.length_m for i in self._intervals], dtype=np.int64)
        # Closed-road stations: the rows and columns of the minimum-fee table.
        self._stations: tuple[str, ...] = tuple(
            s for s in network.stations if s not in network.open_stations
        )
        self._station_pos = {s: k for k, s in enumerate(self._stations)}
        self._station_nodes: IntArray = np.array(
            [self._index[s] for s in self._stations], dtype=np.int64
        )
        self._classes: dict[int, _ClassGraph] = {c: self._class_graph(c) for c in network.classes}
        self._structure, _ = structure_graph(network)
        self._reverse_length, self._length_edge = self._length_graph()
        self._min_fee: dict[int, IntArray] = {}
        self._trees: OrderedDict[tuple[int, str], tuple[FloatArray, IntArray]] = OrderedDict()
        self._farthest: dict[str, tuple[str, tuple[int, ...]]] = {}

    # --- graphs --------------------------------------------------------------------

    def _class_graph(self, vehicle_class: int) -> _ClassGraph:
        fees = self.network.fees
        fee: IntArray = np.array(
            [fees.get((i.interval_id, vehicle_class), -1) for i in self._intervals],
            dtype=np.int64,
        )
        chosen = np.flatnonzero(fee >= 0)
        scale = int(self._length.sum()) + 1
        exact = (int(fee[chosen].sum()) + 1) * scale < _EXACT_LIMIT
        if not exact:
            scale = 0
        # Keep one interval per (from, to): the cheapest, then the shortest, then by id.
        order = np.lexsort(
            (chosen, self._length[chosen], fee[chosen], self._dst[chosen], self._src[chosen])
        )
        chosen = chosen[order]
        src, dst = self._src[chosen], self._dst[chosen]
        first = np.ones(len(chosen), dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        chosen, src, dst = chosen[first], src[first], dst[first]
        weights = fee[chosen] * scale + self._length[chosen] if exact else fee[chosen]
        size = len(self._node_ids)
        graph = csr_matrix(
            (weights.astype(np.float64), (src, dst)), shape=(size, size), dtype=np.float64
        )
        edge = dict(zip(zip(src.tolist(), dst.tolist(), strict=True), chosen.tolist(), strict=True))
        return _ClassGraph(graph=graph, scale=scale, exact=exact, edge=edge)

    def _length_graph(self) -> tuple[csr_matrix, dict[tuple[int, int], int]]:
        """The reversed graph weighted by length (shortest interval per pair), for the
        farthest-entry rule, and the interval of each (from, to) pair."""
        everything = np.arange(len(self._intervals), dtype=np.int64)
        order = np.lexsort((everything, self._length, self._dst, self._src))
        src, dst = self._src[order], self._dst[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        chosen, src, dst = order[first], src[first], dst[first]
        size = len(self._node_ids)
        reverse = csr_matrix(
            (self._length[chosen].astype(np.float64), (dst, src)), shape=(size, size)
        )
        edge = dict(zip(zip(src.tolist(), dst.tolist(), strict=True), chosen.tolist(), strict=True))
        return reverse, edge

    def _tree(self, vehicle_class: int, entry: str) -> tuple[FloatArray, IntArray]:
        """Distances and predecessors of the cheapest paths from ``entry`` (cached)."""
        key = (vehicle_class, entry)
        tree = self._trees.get(key)
        if tree is not None:
            self._trees.move_to_end(key)
            return tree
        result: tuple[Any, Any] = dijkstra(
            self._classes[vehicle_class].graph,
            directed=True,
            indices=self._index[entry],
            return_predecessors=True,
        )
        tree = (np.asarray(result[0], dtype=np.float64), np.asarray(result[1], dtype=np.int64))
        self._trees[key] = tree
        if len(self._trees) > _TREE_CACHE:
            self._trees.popitem(last=False)
        return tree

    # --- the minimum-fee table -----------------------------------------------------

    def minimum_arrays(self, vehicle_class: int) -> MinimumFees:
        """The minimum-fee table of one class for every reachable pair of distinct
        closed-road stations, as arrays (one multi-source Dijkstra)."""
        code = self._tariff_class(vehicle_class)
        cg = self._classes[code]
        sources = self._station_nodes
        count = len(sources)
        empty: IntArray = np.zeros(0, dtype=np.int64)
        if count == 0:
            return MinimumFees(code, self._stations, empty, empty, empty, empty)
        if cg.exact:
            dist = np.asarray(dijkstra(cg.graph, directed=True, indices=sources))[:, sources]
            reached = np.isfinite(dist)
            np.fill_diagonal(reached, False)
            entry, exit_ = np.nonzero(reached)
            total = dist[entry, exit_].astype(np.int64)
            fee = total // cg.scale
            length = total - fee * cg.scale
        else:
            result: tuple[Any, Any] = dijkstra(
                cg.graph, directed=True, indices=sources, return_predecessors=True
            )
            full = np.asarray(result[0])
            lengths = self._lengths_along(np.asarray(result[1], dtype=np.int64), cg)
            dist = full[:, sources]
            reached = np.isfinite(dist)
            np.fill_diagonal(reached, False)
            entry, exit_ = np.nonzero(reached)
            fee = dist[entry, exit_].astype(np.int64)
            length = lengths[:, sources][entry, exit_]
        return MinimumFees(
            code,
            self._stations,
            entry.astype(np.int64),
            exit_.astype(np.int64),
            fee.astype(np.int64),
            length.astype(np.int64),
        )

    def _lengths_along(self, pred: IntArray, cg: _ClassGraph) -> IntArray:
        """Length from each source to every node along the predecessor trees, by pointer
        jumping (log2(depth) vectorised steps)."""
        rows, cols = np.nonzero(pred >= 0)
        step = np.zeros(pred.shape, dtype=np.int64)
        edges = [
            cg.edge[(p, c)] for p, c in zip(pred[rows, cols].tolist(), cols.tolist(), strict=True)
        ]
        step[rows, cols] = self._length[np.array(edges, dtype=np.int64)] if edges else 0
        jump = pred.copy()
        while True:
            rows, cols = np.nonzero(jump >= 0)
            if len(rows) == 0:
                return step
            parents = jump[rows, cols]
            new_step, new_jump = step.copy(), jump.copy()
            new_step[rows, cols] = step[rows, cols] + step[rows, parents]
            new_jump[rows, cols] = jump[rows, parents]
            step, jump = new_step, new_jump

    def iter_minimum_table(
        self, classes: Iterable[int] | None = None
    ) -> Iterator[tuple[str, str, int, int, int]]:
        """(entry, exit, class, fee_fen, length_m) rows, class by class, then by entry
        and exit station id."""
        for vehicle_class in self.network.classes if classes is None else classes:
            yield from self.minimum_arrays(vehicle_class).rows()

    def minimum_table(
        self, classes: Iterable[int] | None = None
    ) -> list[tuple[str, str, int, int, int]]:
        """The minimum-fee table (最小费额表): for every class (default: every class of
        the network) and every pair of distinct closed-road stations where the exit can
        be reached, the fee of the cheapest path and its length (ties by length)."""
        return list(self.iter_minimum_table(classes))

    def _minimum_fee(self, vehicle_class: int, entry: str, exit_: str) -> int | None:
        """The minimum fee of (entry, exit, class); None when the exit cannot be reached."""
        cg = self._classes[vehicle_class]
        entry_pos, exit_pos = self._station_pos.get(entry), self._station_pos.get(exit_)
        if entry_pos is not None and exit_pos is not None:
            table = self._min_fee.get(vehicle_class)
            if table is None:
                table = self._fee_matrix(vehicle_class)
                self._min_fee[vehicle_class] = table
            fee = int(table[entry_pos, exit_pos])
            return None if fee < 0 else fee
        dist = self._tree(vehicle_class, entry)[0][self._index[exit_]]
        if not np.isfinite(dist):
            return None
        return int(dist) // cg.scale if cg.exact else int(dist)

    def _fee_matrix(self, vehicle_class: int) -> IntArray:
        """Station x station minimum fees of a class (-1: not reachable)."""
        cg = self._classes[vehicle_class]
        sources = self._station_nodes
        table: IntArray = np.full((len(sources), len(sources)), -1, dtype=np.int64)
        for start in range(0, len(sources), 512):  # bound the S x V distance matrix
            chunk = sources[start : start + 512]
            dist = np.asarray(dijkstra(cg.graph, directed=True, indices=chunk))[:, sources]
            reached = np.isfinite(dist)
            fees = np.where(reached, dist, 0).astype(np.int64)
            if cg.exact:
                fees //= cg.scale
            table[start : start + len(chunk)] = np.where(reached, fees, -1)
        return table

    # --- trips ---------------------------------------------------------------------

    def minimum(
        self,
        entry: str,
        exit: str,
        vehicle_class: int,
        *,
        payment: Payment | str = Payment.ETC,
    ) -> FeeResult:
        """The minimum-fee trip from ``entry`` to ``exit``: the cheapest path by fee,
        ties by length, with its intervals."""
        code = self._tariff_class(vehicle_class)
        self._station(entry, "entry")
        self._station(exit, "exit")
        return self._minimum_result(
            entry, exit, code, self._payment(payment), reason=None, kind=0, overweight=None
        )

    def trip(
        self,
        *,
        exit: str,
        vehicle_class: int,
        entry: str | None = None,
        path: Sequence[str] | None = None,
        payment: Payment | str = Payment.ETC,
        vehicle_kind: int = 0,
        axles: int | None = None,
        total_mass_kg: int | None = None,
        allow_gaps: bool = False,
    ) -> FeeResult:
        """The fee of one trip. ``path`` is the interval ids in driving order.

        By default the path must be whole: each interval starts where the previous one
        ended, the first at ``entry`` and the last at ``exit`` (``FeeError`` otherwise).
        With ``allow_gaps`` (what gantry records give: a gantry may have missed the
        vehicle) a path with gaps that the network can bridge is charged the minimum
        fee as an incomplete path; gaps that cannot be bridged are still errors.
        """
        code = self._class_code(vehicle_class)
        self._station(exit, "exit")
        if entry is not None:
            self._station(entry, "entry")
        pay = self._payment(payment)
        kind = self._kind(vehicle_kind)
        overweight = _overweight(code, axles, total_mass_kg)
        k = int(kind)
        walked: tuple[tuple[IntervalCharge, ...], int] | None = None
        if path:
            # A recorded path is checked whatever the trip turns out to be
            # (exempt, open-road): a bad record is an error, never ignored.
            if entry is None:
                raise FeeError(
                    "fee.path_without_entry", "a recorded path needs the entry station it began at"
                )
            walked = self._walk(path, entry, exit, self._tariff_class(code), allow_gaps=allow_gaps)

        if kind in EXEMPT_KINDS:
            return FeeResult(
                method=Method.EXEMPT,
                exit_fee_type=EXIT_FEE_TYPES[Method.EXEMPT],
                entry=entry,
                exit=exit,
                vehicle_class=code,
                fee_fen=0,
                discount_fen=0,
                payable_fen=0,
                intervals=(),
                length_m=0,
                reason=f"exempt vehicle kind {int(kind)} ({kind.label_en})",
                overweight=overweight,
                payment=pay,
                vehicle_kind=int(kind),
            )
        if exit in self.network.open_stations:
            code = self._tariff_class(code)
            fee = self.network.open_fees.get((exit, code))
            if fee is None:
                raise FeeError(
                    "fee.no_fee", f"open-road station {exit!r} has no fee for class {code}"
                )
            return self._result(Method.OPEN, entry, exit, code, fee, (), pay, None, k, overweight)
        code = self._tariff_class(code)
        if entry is None:
            return self._farthest_entry(exit, code, pay, kind=k, overweight=overweight)
        if not path:
            return self._minimum_result(
                entry, exit, code, pay, reason="path unknown", kind=k, overweight=overweight
            )
        assert walked is not None
        charges, gaps = walked
        fee = sum(charge.fee_fen for charge in charges)
        minimum = self._minimum_fee(code, entry, exit)
        if minimum is not None and fee < minimum:
            reason = f"below minimum: the path's fee {fee} fen is less than {minimum} fen"
            return self._minimum_result(
                entry, exit, code, pay, reason=reason, kind=k, overweight=overweight
            )
        if gaps:
            reason = (
                f"path incomplete: {gaps} gap{'s' if gaps > 1 else ''} in the recorded "
                f"intervals (their fee: {fee} fen)"
            )
            return self._minimum_result(
                entry, exit, code, pay, reason=reason, kind=k, overweight=overweight
            )
        return self._result(Method.PATH, entry, exit, code, fee, charges, pay, None, k, overweight)

    def _walk(
        self, path: Sequence[str], entry: str, exit_: str, code: int, *, allow_gaps: bool
    ) -> tuple[tuple[IntervalCharge, ...], int]:
        """The charges of ``path`` and its number of gaps; ``FeeError`` when invalid."""
        intervals = self.network.intervals
        unknown = [iid for iid in path if iid not in self._interval_index]
        if unknown:
            raise FeeError(
                "fee.unknown_interval",
                f"the path names unknown interval{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(i) for i in unknown)}",
            )
        fees = self.network.fees
        charges: list[IntervalCharge] = []
        gaps = 0
        at = entry
        for number, iid in enumerate(path):
            interval = intervals[iid]
            if interval.from_node != at:
                bridged = allow_gaps and self._reaches(at, interval.from_node)
                if not bridged:
                    if number == 0:
                        raise FeeError(
                            "fee.path_not_joined",
                            f"the path starts at {interval.from_node!r} "
                            f"(interval {iid!r}), not at the entry {entry!r}",
                        )
                    raise FeeError(
                        "fee.path_not_connected",
                        f"the path is not connected: interval {iid!r} starts at "
                        f"{interval.from_node!r}, but interval {path[number - 1]!r} "
                        f"ends at {at!r}",
                    )
                gaps += 1
            fee = fees.get((iid, code))
            if fee is None:
                raise FeeError("fee.no_fee", f"interval {iid!r} has no fee for class {code}")
            charges.append(IntervalCharge(iid, interval.owner_id, fee, interval.length_m))
            at = interval.to_node
        if at != exit_:
            if not (allow_gaps and self._reaches(at, exit_)):
                raise FeeError(
                    "fee.path_not_joined",
                    f"the path ends at {at!r} (interval {path[-1]!r}), not at the exit {exit_!r}",
                )
            gaps += 1
        return tuple(charges), gaps

    def _reaches(self, source: str, target: str) -> bool:
        return self._index[target] in reachable_from(self._structure, self._index[source])

    def _minimum_result(
        self,
        entry: str,
        exit_: str,
        code: int,
        pay: Payment,
        *,
        reason: str | None,
        kind: int,
        overweight: bool | None,
    ) -> FeeResult:
        if entry == exit_:
            raise FeeError(
                "fee.same_station",
                f"entry and exit are both {entry!r}: a minimum fee needs two stations",
            )
        _, pred = self._tree(code, entry)
        cg = self._classes[code]
        steps: list[int] = []
        node = self._index[exit_]
        start = self._index[entry]
        while node != start:
            parent = int(pred[node])
            if parent == _NO_PREDECESSOR:
                raise FeeError(
                    "fee.no_route", f"no route for class {code} from {entry!r} to {exit_!r}"
                )
            steps.append(cg.edge[(parent, node)])
            node = parent
        charges = self._charges(reversed(steps), code)
        fee = sum(charge.fee_fen for charge in charges)
        return self._result(
            Method.MINIMUM, entry, exit_, code, fee, charges, pay, reason, kind, overweight
        )

    def _farthest_entry(
        self, exit_: str, code: int, pay: Payment, *, kind: int, overweight: bool | None
    ) -> FeeResult:
        found = self._farthest.get(exit_)
        if found is None:
            result: tuple[Any, Any] = dijkstra(
                self._reverse_length,
                directed=True,
                indices=self._index[exit_],
                return_predecessors=True,
            )
            dist = np.asarray(result[0], dtype=np.float64)
            toward_exit = np.asarray(result[1], dtype=np.int64)
            candidates = self._station_nodes[self._station_nodes != self._index[exit_]]
            candidates = candidates[np.isfinite(dist[candidates])]
            if len(candidates) == 0:
                raise FeeError("fee.no_route", f"no entry station can reach the exit {exit_!r}")
            # Farthest by shortest length; the first (smallest id) among equals.
            far = int(candidates[int(np.argmax(dist[candidates]))])
            steps: list[int] = []
            node = far
            while node != self._index[exit_]:
                nxt = int(toward_exit[node])
                steps.append(self._length_edge[(node, nxt)])
                node = nxt
            found = (self._node_ids[far], tuple(steps))
            self._farthest[exit_] = found
        entry, steps_found = found
        charges = self._charges(steps_found, code)
        fee = sum(charge.fee_fen for charge in charges)
        length = sum(charge.length_m for charge in charges)
        reason = (
            f"no entry information: charged from {entry!r}, the farthest entry station "
            f"that can reach {exit_!r} ({length} m)"
        )
        return self._result(
            Method.FARTHEST_ENTRY, entry, exit_, code, fee, charges, pay, reason, kind, overweight
        )

    def _charges(self, steps: Iterable[int], code: int) -> tuple[IntervalCharge, ...]:
        fees = self.network.fees
        charges: list[IntervalCharge] = []
        for step in steps:
            interval = self._intervals[step]
            fee = fees.get((interval.interval_id, code))
            if fee is None:
                raise FeeError(
                    "fee.no_fee", f"interval {interval.interval_id!r} has no fee for class {code}"
                )
            charges.append(
                IntervalCharge(interval.interval_id, interval.owner_id, fee, interval.length_m)
            )
        return tuple(charges)

    def _result(
        self,
        method: Method,
        entry: str | None,
        exit_: str,
        code: int,
        fee: int,
        charges: tuple[IntervalCharge, ...],
        pay: Payment,
        reason: str | None,
        kind: int,
        overweight: bool | None,
    ) -> FeeResult:
        if pay is Payment.ETC:
            # Part 1: the ETC discount is taken on the trip total, half-up to the fen.
            discount = apply_basis_points(fee, self.discount_bp, rounding=Rounding.HALF_UP)
            payable, rounding = fee - discount, 0
        else:
            discount = 0
            payable = round_cash(fee)
            rounding = payable - fee
        return FeeResult(
            method=method,
            exit_fee_type=EXIT_FEE_TYPES[method],
            entry=entry,
            exit=exit_,
            vehicle_class=code,
            fee_fen=fee,
            discount_fen=discount,
            payable_fen=payable,
            intervals=charges,
            length_m=sum(charge.length_m for charge in charges),
            reason=reason,
            overweight=overweight,
            payment=pay,
            vehicle_kind=kind,
            rounding_fen=rounding,
        )

    # --- input checks --------------------------------------------------------------

    def _node(self, node_id: str, role: str) -> None:
        if node_id not in self._index:
            raise FeeError(
                "fee.unknown_node", f"the {role} {node_id!r} is not a node of the network"
            )

    def _station(self, node_id: str, role: str) -> None:
        """Trips enter and leave at toll stations, never at a junction or a border."""
        self._node(node_id, role)
        node = self.network.nodes.get(node_id)
        if node is not None and node.kind != "station":
            raise FeeError(
                "fee.not_station", f"the {role} {node_id!r} is a {node.kind}, not a toll station"
            )

    @staticmethod
    def _class_code(vehicle_class: int) -> int:
        try:
            return int(VehicleClass.from_code(int(vehicle_class)))
        except (TypeError, ValueError):
            raise FeeError(
                "fee.unknown_class",
                f"{vehicle_class!r} is not a vehicle class of JT/T 489-2019 (1-4, 11-16, 21-26)",
            ) from None

    def _tariff_class(self, vehicle_class: int) -> int:
        code = self._class_code(vehicle_class)
        if code not in self._classes:
            raise FeeError(
                "fee.unknown_class",
                f"class {code} has no tariff in this network "
                f"(classes: {', '.join(str(c) for c in self.network.classes)})",
            )
        return code

    @staticmethod
    def _kind(vehicle_kind: int) -> VehicleKind:
        try:
            return VehicleKind.from_code(int(vehicle_kind))
        except (TypeError, ValueError):
            raise FeeError(
                "fee.unknown_vehicle_kind", f"{vehicle_kind!r} is not a 车种 (vehicle kind) code"
            ) from None

    @staticmethod
    def _payment(payment: Payment | str) -> Payment:
        try:
            return Payment(payment)
        except ValueError:
            raise FeeError("fee.bad_payment", f"payment is etc or cash, not {payment!r}") from None


def _overweight(code: int, axles: int | None, total_mass_kg: int | None) -> bool | None:
    """Part 1: a truck over its axle limit is flagged; the toll stays by class.

    None when the vehicle is not a truck or axles and mass are not both known."""
    if VehicleClass(code).category is not VehicleCategory.TRUCK:
        return None
    if axles is None or total_mass_kg is None:
        return None
    if axles < 2 or total_mass_kg <= 0:
        raise FeeError(
            "fee.bad_vehicle",
            f"a truck has 2 or more axles and a positive mass, not {axles} axles "
            f"and {total_mass_kg} kg",
        )
    return total_mass_kg > OVERWEIGHT_LIMITS_KG[min(axles, 6)]
