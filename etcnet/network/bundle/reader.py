"""Reading a bundle folder: every problem with its file, line and column."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from etcnet.network.bundle.model import (
    _INT_RE,
    BUNDLE_FILES,
    OPTIONAL_FILES,
    BundleError,
    Interval,
    Network,
    Node,
    Owner,
    Problem,
)
from etcnet.network.bundle.validation import _validate


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
