"""The semantic and graph-level checks of a network: limits, fees, reachability."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse.csgraph import (  # type: ignore[import-untyped,unused-ignore]
    breadth_first_order,
    shortest_path,
)

from etcnet.network.bundle.model import (
    _CLASS_CODES,
    _HEX_RE,
    _STATION,
    NODE_KINDS,
    Network,
    Problem,
)

#: Where a key sits in its file: (file, key) -> line. Keys are the node, owner or
#: interval id, or (id, class) for fee rows.
LineOf = Callable[[str, object], int]


def _no_line(_file: str, _key: object) -> int:
    return 0


def validate(network: Network) -> list[Problem]:
    """Every semantic and graph-level problem of ``network``; empty when it is usable.

    Checks: node kinds, hex codes, interval references (nodes, owners), self-loops,
    lengths, fee references and classes, negative fees, fees missing for a class that
    another interval (or open station) has, and station reachability. Problems carry
    line 0: a network from the database has no lines.
    """
    return _validate(network, _no_line)


def _validate(
    network: Network, line_of: LineOf, refused: frozenset[str] = frozenset()
) -> list[Problem]:
    problems: list[Problem] = []

    def add(file: str, key: object, column: str, code: str, message: str) -> None:
        problems.append(Problem(file, line_of(file, key), column, code, message))

    for node in network.nodes.values():
        if node.kind not in NODE_KINDS:
            add(
                "nodes.csv",
                node.node_id,
                "kind",
                "bundle.unknown_kind",
                f"node {node.node_id!r} has kind {node.kind!r}; "
                f"a kind is one of {', '.join(NODE_KINDS)}",
            )
        if node.hex and not _HEX_RE.fullmatch(node.hex):
            add(
                "nodes.csv",
                node.node_id,
                "hex",
                "bundle.bad_hex",
                f"node {node.node_id!r} has hex code {node.hex!r}, which is not hexadecimal",
            )

    for interval in network.intervals.values():
        iid = interval.interval_id
        for column, node_id in (("from_node", interval.from_node), ("to_node", interval.to_node)):
            if node_id not in network.nodes:
                add(
                    "intervals.csv",
                    iid,
                    column,
                    "bundle.unknown_node",
                    f"interval {iid!r} refers to node {node_id!r}, which is not in nodes.csv",
                )
        if interval.owner_id not in network.owners:
            add(
                "intervals.csv",
                iid,
                "owner_id",
                "bundle.unknown_owner",
                f"interval {iid!r} refers to owner {interval.owner_id!r}, "
                "which is not in owners.csv",
            )
        if interval.from_node == interval.to_node:
            add(
                "intervals.csv",
                iid,
                "to_node",
                "bundle.self_loop",
                f"interval {iid!r} starts and ends at node {interval.from_node!r}",
            )
        if interval.length_m <= 0:
            add(
                "intervals.csv",
                iid,
                "length_m",
                "bundle.bad_length",
                f"interval {iid!r} has length {interval.length_m} m; a length is positive",
            )

    _check_limits(network, add)
    problems.extend(_check_fees(network, line_of, refused))
    problems.extend(_check_reachability(network, line_of))
    return problems


# What the center's tables hold: longer ids or larger numbers are refused here,
# with their line, rather than by the database half-way through an import.
MAX_ID = {"owner_id": 20, "node_id": 20, "interval_id": 32, "gantry_id": 40}
MAX_TEXT = {"owners.csv": 100, "nodes.csv": 60}
MAX_LENGTH_M = 2_147_483_647
MAX_FEE_FEN = 10**12


def _check_limits(network: Network, add: Callable[[str, object, str, str, str], None]) -> None:
    def too_long(file: str, key: str, column: str, value: str, limit: int) -> None:
        if len(value) > limit:
            add(
                file,
                key,
                column,
                "bundle.too_long",
                f"{column} {value[:40]!r} has {len(value)} characters; at most {limit}",
            )

    for owner in network.owners.values():
        too_long("owners.csv", owner.owner_id, "owner_id", owner.owner_id, MAX_ID["owner_id"])
        too_long("owners.csv", owner.owner_id, "name", owner.name, MAX_TEXT["owners.csv"])
    hexes: dict[str, str] = {}
    for node in network.nodes.values():
        too_long("nodes.csv", node.node_id, "node_id", node.node_id, MAX_ID["node_id"])
        too_long("nodes.csv", node.node_id, "name", node.name, MAX_TEXT["nodes.csv"])
        too_long("nodes.csv", node.node_id, "hex", node.hex, 8)
        too_long("nodes.csv", node.node_id, "network", node.network, 4)
        if node.hex:
            first = hexes.setdefault(node.hex.upper(), node.node_id)
            if first != node.node_id:
                add(
                    "nodes.csv",
                    node.node_id,
                    "hex",
                    "bundle.duplicate_hex",
                    f"node {node.node_id!r} has hex code {node.hex!r}, already used by {first!r}",
                )
    for interval in network.intervals.values():
        iid = interval.interval_id
        too_long("intervals.csv", iid, "interval_id", iid, MAX_ID["interval_id"])
        too_long("intervals.csv", iid, "gantry_id", interval.gantry_id, MAX_ID["gantry_id"])
        if interval.length_m > MAX_LENGTH_M:
            add(
                "intervals.csv",
                iid,
                "length_m",
                "bundle.bad_length",
                f"interval {iid!r} has length {interval.length_m} m; at most {MAX_LENGTH_M}",
            )
    for (interval_id, vehicle_class), fee in network.fees.items():
        if fee > MAX_FEE_FEN:
            add(
                "interval_fees.csv",
                (interval_id, vehicle_class),
                "fee_fen",
                "bundle.bad_fee",
                f"interval {interval_id!r} class {vehicle_class} has fee {fee} fen; too large",
            )


def _check_fees(network: Network, line_of: LineOf, refused: frozenset[str]) -> list[Problem]:
    problems: list[Problem] = []
    for file, table, owner_word in (
        ("interval_fees.csv", network.fees, "interval"),
        ("open_stations.csv", network.open_fees, "node"),
    ):
        id_column = "interval_id" if owner_word == "interval" else "node_id"
        for (key, vehicle_class), fen in sorted(table.items()):
            line = line_of(file, (key, vehicle_class))
            # A fee for an interval whose own row was refused is not reported again.
            if owner_word == "interval" and key not in network.intervals and key not in refused:
                problems.append(
                    Problem(
                        file,
                        line,
                        id_column,
                        "bundle.unknown_interval",
                        f"a fee is given for interval {key!r}, which is not in intervals.csv",
                    )
                )
            if owner_word == "node":
                node = network.nodes.get(key)
                if node is None:
                    problems.append(
                        Problem(
                            file,
                            line,
                            id_column,
                            "bundle.unknown_node",
                            f"an open-road fee is given for node {key!r}, "
                            "which is not in nodes.csv",
                        )
                    )
                elif node.kind != _STATION:
                    problems.append(
                        Problem(
                            file,
                            line,
                            id_column,
                            "bundle.not_station",
                            f"an open-road fee is given for node {key!r}, "
                            f"which is a {node.kind}, not a station",
                        )
                    )
            if vehicle_class not in _CLASS_CODES:
                problems.append(
                    Problem(
                        file,
                        line,
                        "vehicle_class",
                        "bundle.unknown_class",
                        f"{vehicle_class} is not a vehicle class of JT/T 489-2019 "
                        "(1-4, 11-16, 21-26)",
                    )
                )
            if fen < 0:
                problems.append(
                    Problem(
                        file,
                        line,
                        "fee_fen",
                        "bundle.negative_fee",
                        f"the fee of {owner_word} {key!r} for class {vehicle_class} is "
                        f"{fen} fen; a fee is zero or more",
                    )
                )

    # A class that any interval or open station has must be charged everywhere: a
    # vehicle of that class could otherwise drive a road with no price.
    classes = [c for c in network.classes if c in _CLASS_CODES]
    by_interval: dict[str, set[int]] = defaultdict(set)
    for interval_id, vehicle_class in network.fees:
        by_interval[interval_id].add(vehicle_class)
    for interval_id in sorted(network.intervals):
        missing = [c for c in classes if c not in by_interval.get(interval_id, set())]
        if missing:
            problems.append(
                Problem(
                    "intervals.csv",
                    line_of("intervals.csv", interval_id),
                    "interval_id",
                    "bundle.missing_fee",
                    f"interval {interval_id!r} has no fee for class "
                    f"{', '.join(str(c) for c in missing)}, which other rows of the tariff have",
                )
            )
    by_station: dict[str, set[int]] = defaultdict(set)
    for node_id, vehicle_class in network.open_fees:
        by_station[node_id].add(vehicle_class)
    for node_id in sorted(by_station):
        missing = [c for c in classes if c not in by_station[node_id]]
        if missing:
            first = min(by_station[node_id])
            problems.append(
                Problem(
                    "open_stations.csv",
                    line_of("open_stations.csv", (node_id, first)),
                    "node_id",
                    "bundle.missing_fee",
                    f"open-road station {node_id!r} has no fee for class "
                    f"{', '.join(str(c) for c in missing)}, which other rows of the tariff have",
                )
            )
    return problems


def _check_reachability(network: Network, line_of: LineOf) -> list[Problem]:
    """Closed-road stations must reach, and be reached from, at least one other station.

    Open-road stations charge a fixed fee and need not be joined to the closed network.
    """
    stations = [s for s in network.stations if s not in network.open_stations]
    if len(stations) < 2:
        if len(stations) == 1:
            return [
                Problem(
                    "nodes.csv",
                    line_of("nodes.csv", stations[0]),
                    "node_id",
                    "bundle.unreachable",
                    f"station {stations[0]!r} is the only closed-road station; "
                    "no trip can end or start there",
                )
            ]
        return []
    graph, index = structure_graph(network)
    columns = np.array([index[s] for s in stations], dtype=np.int64)
    reaches_other = np.zeros(len(stations), dtype=bool)
    reached_by_other = np.zeros(len(stations), dtype=bool)
    # Breadth-first from every station at once, in chunks to bound the S x V matrix.
    for start in range(0, len(stations), 256):
        sources = columns[start : start + 256]
        hops = shortest_path(graph, method="D", unweighted=True, indices=sources)
        reach: npt.NDArray[np.bool_] = np.isfinite(np.asarray(hops)[:, columns])
        reach[np.arange(len(sources)), np.arange(start, start + len(sources))] = False
        reaches_other[start : start + len(sources)] = reach.any(axis=1)
        reached_by_other |= reach.any(axis=0)
    problems: list[Problem] = []
    for number, station in enumerate(stations):
        if not reached_by_other[number]:
            problems.append(
                Problem(
                    "nodes.csv",
                    line_of("nodes.csv", station),
                    "node_id",
                    "bundle.unreachable",
                    f"station {station!r} cannot be reached from any other station",
                )
            )
        if not reaches_other[number]:
            problems.append(
                Problem(
                    "nodes.csv",
                    line_of("nodes.csv", station),
                    "node_id",
                    "bundle.dead_end",
                    f"no other station can be reached from station {station!r}",
                )
            )
    return problems


def structure_graph(network: Network) -> tuple[csr_matrix, dict[str, int]]:
    """The directed node graph of the intervals that join known nodes (weights 1).

    Returns the CSR adjacency matrix and the node index (node ids sorted)."""
    index = {node_id: i for i, node_id in enumerate(sorted(network.nodes))}
    pairs = {
        (index[i.from_node], index[i.to_node])
        for i in network.intervals.values()
        if i.from_node in index and i.to_node in index and i.from_node != i.to_node
    }
    size = len(index)
    if pairs:
        rows, cols = zip(*sorted(pairs), strict=True)
    else:
        rows, cols = (), ()
    data = np.ones(len(rows), dtype=np.float64)
    graph = csr_matrix(
        (data, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
        shape=(size, size),
    )
    return graph, index


def reachable_from(graph: csr_matrix, source: int) -> set[int]:
    """The node indexes reachable from ``source`` (including itself)."""
    order = breadth_first_order(graph, source, directed=True, return_predecessors=False)
    return {int(i) for i in order}
