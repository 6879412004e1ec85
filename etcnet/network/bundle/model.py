"""The bundle's files and the network they describe: owners, nodes, intervals,
fees, and the problems found in them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from etcnet.core.codes import VehicleClass

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
