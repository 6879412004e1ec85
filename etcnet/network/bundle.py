"""The network bundle: a folder of UTF-8 CSV files describing a road network and its tariff.

```
owners.csv         owner_id,name
nodes.csv          node_id,name,kind,hex,network          kind: station|junction|border
intervals.csv      interval_id,from_node,to_node,length_m,owner_id,gantry_id
interval_fees.csv  interval_id,vehicle_class,fee_fen
open_stations.csv  node_id,vehicle_class,fee_fen          (optional)
```

Intervals (收费单元) are directed: a two-way road has two rows. ``read_bundle`` reports
*every* problem it finds as a ``Problem`` (file, 1-based line including the header,
column, stable code, English message) inside one ``BundleError``; nothing is returned
from a bundle with a problem. ``validate`` holds the graph-level checks, so a network
built from the database can be checked the same way. ``write_bundle`` writes a bundle
that reads back to an equal ``Network``. Codes and rules: ``docs/network.md``.

Pure Python: no Django here (an import-linter contract forbids it).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse.csgraph import (  # type: ignore[import-untyped,unused-ignore]
    breadth_first_order,
    shortest_path,
)

from etcnet.core.codes import VehicleClass

__all__ = [
    "BUNDLE_FILES",
    "NODE_KINDS",
    "OPTIONAL_FILES",
    "BundleError",
    "Interval",
    "Network",
    "Node",
    "Owner",
    "Problem",
    "reachable_from",
    "read_bundle",
    "structure_graph",
    "validate",
    "write_bundle",
]

#: The columns of each bundle file, in the order ``write_bundle`` writes them.
BUNDLE_FILES: Mapping[str, tuple[str, ...]] = {
    "owners.csv": ("owner_id", "name"),
    "nodes.csv": ("node_id", "name", "kind", "hex", "network"),
    "intervals.csv": ("interval_id", "from_node", "to_node", "length_m", "owner_id", "gantry_id"),
    "interval_fees.csv": ("interval_id", "vehicle_class", "fee_fen"),
    "open_stations.csv": ("node_id", "vehicle_class", "fee_fen"),
}
#: Files a bundle may leave out.
OPTIONAL_FILES = frozenset({"open_stations.csv"})
#: The kinds of node: toll station (收费站), junction (枢纽互通), provincial border point (省界).
NODE_KINDS = ("station", "junction", "border")

_STATION = "station"
# ASCII digits only: int() would also take "1_000", " 12 " and other scripts' digits.
_INT_RE = re.compile(r"-?[0-9]+", re.ASCII)
_HEX_RE = re.compile(r"[0-9A-Fa-f]+", re.ASCII)
_CLASS_CODES = frozenset(int(member) for member in VehicleClass)


@dataclass(frozen=True)
class Owner:
    """A road owner (路段业主): the party clearing pays for the intervals it owns."""

    owner_id: str
    name: str


@dataclass(frozen=True)
class Node:
    """A toll station, a junction or a provincial border point."""

    node_id: str
    name: str
    kind: str
    hex: str
    network: str


@dataclass(frozen=True)
class Interval:
    """A directed toll interval (收费单元) charged by one gantry (门架)."""

    interval_id: str
    from_node: str
    to_node: str
    length_m: int
    owner_id: str
    gantry_id: str


@dataclass(frozen=True)
class Network:
    """A road network with its tariff: interval fees and open-road station fees by class.

    ``fees`` maps (interval_id, vehicle_class) to fen; ``open_fees`` maps
    (node_id, vehicle_class) to the fixed fee of an open-road station. A ``Network`` is
    not checked when built: ``validate`` says what is wrong with it.
    """

    owners: Mapping[str, Owner]
    nodes: Mapping[str, Node]
    intervals: Mapping[str, Interval]
    fees: Mapping[tuple[str, int], int]
    open_fees: Mapping[tuple[str, int], int] = field(default_factory=dict)

    @classmethod
    def from_rows(
        cls,
        *,
        owners: Iterable[Owner],
        nodes: Iterable[Node],
        intervals: Iterable[Interval],
        fees: Iterable[tuple[str, int, int]],
        open_fees: Iterable[tuple[str, int, int]] = (),
    ) -> Network:
        """Build a network from rows; fee rows are (interval_id or node_id, class, fen).

        A later row with the same key replaces an earlier one (``read_bundle`` reports
        duplicates before it gets here)."""
        return cls(
            owners={owner.owner_id: owner for owner in owners},
            nodes={node.node_id: node for node in nodes},
            intervals={interval.interval_id: interval for interval in intervals},
            fees={(key, vehicle_class): fen for key, vehicle_class, fen in fees},
            open_fees={(key, vehicle_class): fen for key, vehicle_class, fen in open_fees},
        )

    @cached_property
    def classes(self) -> tuple[int, ...]:
        """The vehicle classes that have a fee anywhere in the network, ascending."""
        found = {vehicle_class for _, vehicle_class in self.fees}
        found.update(vehicle_class for _, vehicle_class in self.open_fees)
        return tuple(sorted(found))

    @cached_property
    def stations(self) -> tuple[str, ...]:
        """The node ids of kind station, sorted."""
        return tuple(sorted(node_id for node_id, n in self.nodes.items() if n.kind == _STATION))

    @cached_property
    def open_stations(self) -> frozenset[str]:
        """Stations with a fixed open-road fee (开放式收费站)."""
        return frozenset(node_id for node_id, _ in self.open_fees)


@dataclass(frozen=True)
class Problem:
    """One problem in a bundle or network.

    ``line`` is 1-based and counts the header (the first data row is line 2); 0 means
    the problem has no line (a missing file, or a network that did not come from a file).
    ``column`` is the CSV column name, or "" when the problem is about a whole row or file.
    """

    file: str
    line: int
    column: str
    code: str
    message: str

    def as_json(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


class BundleError(Exception):
    """A bundle that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        summary = f"{count} problem{'s' if count != 1 else ''} in the network bundle"
        if problems:
            first = problems[0]
            where = ":".join(
                part for part in (first.file, str(first.line or ""), first.column) if part
            )
            summary += f"; first: {where + ': ' if where else ''}{first.message}"
        super().__init__(summary)


# --- validation -------------------------------------------------------------------------

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


# --- reading ---------------------------------------------------------------------------


@dataclass
class _Reader:
    """Collects the problems and line numbers while a bundle is read."""

    problems: list[Problem] = field(default_factory=list)
    lines: dict[tuple[str, object], int] = field(default_factory=dict)
    # Ids whose row was refused (bad integer…): later references to them are not
    # reported again as unknown.
    refused: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Files that could not be read at all (missing, missing columns).
    unusable: set[str] = field(default_factory=set)

    def add(self, file: str, line: int, column: str, code: str, message: str) -> None:
        self.problems.append(Problem(file, line, column, code, message))

    def line_of(self, file: str, key: object) -> int:
        return self.lines.get((file, key), 0)

    def rows(self, folder: Path, file: str) -> list[tuple[int, dict[str, str]]] | None:
        """The data rows of ``file`` as (line, {column: value}); None when unusable."""
        columns = BUNDLE_FILES[file]
        path = folder / file
        if not path.is_file():
            if file in OPTIONAL_FILES:
                return []
            self.add(file, 0, "", "bundle.missing_file", f"{file} is missing from the bundle")
            self.unusable.add(file)
            return None
        raw = path.read_bytes()
        text = self._decode(file, raw)
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            header = []
        except csv.Error as error:
            self.add(file, 1, "", "bundle.bad_row", f"the header cannot be read: {error}")
            self.unusable.add(file)
            return None
        header = [name.strip() for name in header]
        missing = [name for name in columns if name not in header]
        for name in missing:
            self.add(
                file,
                1,
                name,
                "bundle.missing_column",
                f"{file} has no column {name!r}; its header is {','.join(columns)}",
            )
        duplicated = sorted({name for name in header if name and header.count(name) > 1})
        for name in duplicated:
            self.add(file, 1, name, "bundle.duplicate_column", f"column {name!r} appears twice")
        if missing or duplicated:
            self.unusable.add(file)
            return None
        position = {name: header.index(name) for name in columns}
        result: list[tuple[int, dict[str, str]]] = []
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                self.add(file, start, "", "bundle.bad_row", f"the row cannot be read: {error}")
                break
            if not fields or fields == [""]:
                continue  # a blank line
            if len(fields) != len(header):
                self.add(
                    file,
                    start,
                    "",
                    "bundle.bad_row",
                    f"the row has {len(fields)} fields; the header has {len(header)}",
                )
                continue
            result.append((start, {name: fields[position[name]] for name in columns}))
        return result

    def _decode(self, file: str, raw: bytes) -> str:
        if raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark, as spreadsheets write
            raw = raw[3:]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        for number, line in enumerate(raw.split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                self.add(
                    file,
                    number,
                    "",
                    "bundle.encoding",
                    f"line {number} is not UTF-8 (byte {error.start + 1} of the line); "
                    "save the file as UTF-8",
                )
        # Go on with the undecodable bytes replaced, to find the other problems too.
        return raw.decode("utf-8", errors="replace")

    def integer(self, file: str, line: int, column: str, value: str) -> int | None:
        if _INT_RE.fullmatch(value):
            return int(value)
        self.add(
            file,
            line,
            column,
            "bundle.bad_integer",
            f"{column} must be a whole number, not {value!r}",
        )
        return None

    def required(self, file: str, line: int, row: Mapping[str, str], *columns: str) -> bool:
        ok = True
        for column in columns:
            if row[column] == "":
                self.add(file, line, column, "bundle.required", f"{column} must not be empty")
                ok = False
        return ok

    def first(self, file: str, key: object, line: int, column: str, label: str) -> bool:
        """Remember where ``key`` is; False (and a problem) when it was seen before."""
        seen = self.lines.get((file, key))
        if seen is not None:
            self.add(
                file,
                line,
                column,
                "bundle.duplicate_id",
                f"{label} is given twice (first on line {seen})",
            )
            return False
        self.lines[(file, key)] = line
        return True


def read_bundle(path: str | Path) -> Network:
    """Read the bundle in folder ``path``; ``BundleError`` with every problem found."""
    folder = Path(path)
    reader = _Reader()
    if not folder.is_dir():
        raise BundleError([Problem("", 0, "", "bundle.missing_file", f"{folder} is not a folder")])

    owners: list[Owner] = []
    for line, row in reader.rows(folder, "owners.csv") or []:
        if not reader.required("owners.csv", line, row, "owner_id"):
            continue
        owner_id = row["owner_id"]
        if reader.first("owners.csv", owner_id, line, "owner_id", f"owner {owner_id!r}"):
            owners.append(Owner(owner_id, row["name"]))

    nodes: list[Node] = []
    for line, row in reader.rows(folder, "nodes.csv") or []:
        if not reader.required("nodes.csv", line, row, "node_id"):
            continue
        node_id = row["node_id"]
        if reader.first("nodes.csv", node_id, line, "node_id", f"node {node_id!r}"):
            nodes.append(Node(node_id, row["name"], row["kind"], row["hex"], row["network"]))

    intervals: list[Interval] = []
    file = "intervals.csv"
    for line, row in reader.rows(folder, file) or []:
        if not reader.required(file, line, row, "interval_id", "from_node", "to_node", "owner_id"):
            reader.refused["interval"].add(row["interval_id"])
            continue
        interval_id = row["interval_id"]
        length = reader.integer(file, line, "length_m", row["length_m"])
        if not reader.first(file, interval_id, line, "interval_id", f"interval {interval_id!r}"):
            continue
        if length is None:
            reader.refused["interval"].add(interval_id)
            continue
        intervals.append(
            Interval(
                interval_id,
                row["from_node"],
                row["to_node"],
                length,
                row["owner_id"],
                row["gantry_id"],
            )
        )

    fees = _read_fees(reader, folder, "interval_fees.csv", "interval_id", "interval")
    open_fees = _read_fees(reader, folder, "open_stations.csv", "node_id", "node")

    network = Network.from_rows(
        owners=owners, nodes=nodes, intervals=intervals, fees=fees, open_fees=open_fees
    )
    # With a file missing or unreadable, every reference into it would be reported as
    # unknown: the file-level problems are the useful report then.
    if not reader.unusable:
        reader.problems.extend(
            _validate(network, reader.line_of, frozenset(reader.refused["interval"]))
        )
    if reader.problems:
        raise BundleError(reader.problems)
    return network


def _read_fees(
    reader: _Reader, folder: Path, file: str, id_column: str, label: str
) -> list[tuple[str, int, int]]:
    fees: list[tuple[str, int, int]] = []
    for line, row in reader.rows(folder, file) or []:
        if not reader.required(file, line, row, id_column):
            continue
        vehicle_class = reader.integer(file, line, "vehicle_class", row["vehicle_class"])
        fen = reader.integer(file, line, "fee_fen", row["fee_fen"])
        if vehicle_class is None or fen is None:
            continue
        key = (row[id_column], vehicle_class)
        if reader.first(
            file,
            key,
            line,
            "vehicle_class",
            f"the fee of {label} {key[0]!r} for class {vehicle_class}",
        ):
            fees.append((key[0], vehicle_class, fen))
    return fees


# --- writing ---------------------------------------------------------------------------


def write_bundle(network: Network, path: str | Path) -> None:
    """Write ``network`` as a bundle into folder ``path`` (created if needed).

    Rows are sorted by id (fees by id then class), so the same network always gives
    the same bytes; open_stations.csv is written only when there are open-road fees
    (an old one in the folder is removed, so the folder reads back to ``network``)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list[tuple[str | int, ...]]] = {
        "owners.csv": [(o.owner_id, o.name) for _, o in sorted(network.owners.items())],
        "nodes.csv": [
            (n.node_id, n.name, n.kind, n.hex, n.network) for _, n in sorted(network.nodes.items())
        ],
        "intervals.csv": [
            (i.interval_id, i.from_node, i.to_node, i.length_m, i.owner_id, i.gantry_id)
            for _, i in sorted(network.intervals.items())
        ],
        "interval_fees.csv": [(k, c, fen) for (k, c), fen in sorted(network.fees.items())],
    }
    if network.open_fees:
        tables["open_stations.csv"] = [
            (k, c, fen) for (k, c), fen in sorted(network.open_fees.items())
        ]
    else:
        (folder / "open_stations.csv").unlink(missing_ok=True)
    for file, rows in tables.items():
        with (folder / file).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            # A bare CR would end the row for a reader; the minimal quoting only looks
            # for the "\n" terminator, so such a row is written fully quoted.
            quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
            writer.writerow(BUNDLE_FILES[file])
            for row in rows:
                if any(isinstance(value, str) and "\r" in value for value in row):
                    quoted.writerow(row)
                else:
                    writer.writerow(row)
