"""The network bundle: reading, every problem with file, line and column, writing.

The good bundle is the worked network of ``test_engine`` written by ``write_bundle``;
its rows are sorted by id, so the lines below are fixed:

    owners.csv         line 2 O1, 3 O2
    nodes.csv          line 2 A, 3 B, 4 C, 5 D, 6 J, 7 K, 8 P
    intervals.csv      line 2 AD, 3 AJ, 4 BJ, 5 BK, 6 CJ, 7 DA, 8 JA, 9 JB, 10 JC, 11 JK,
                       12 KB, 13 KJ
    interval_fees.csv  3 rows per interval (classes 1, 11, 15): line 2 AD/1 … 37 KJ/15
    open_stations.csv  line 2 P/1, 3 P/11, 4 P/15
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcnet.core.codes import VehicleClass
from etcnet.network.bundle import (
    BundleError,
    Interval,
    Network,
    Node,
    Owner,
    Problem,
    read_bundle,
    validate,
    write_bundle,
)
from etcnet.network.tests.test_engine import worked_network

Rows = list[list[str]]


def good_bundle(folder: Path) -> Path:
    write_bundle(worked_network(), folder)
    return folder


def edit(folder: Path, file: str, change: Callable[[Rows], None]) -> None:
    path = folder / file
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    change(rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def set_cell(line: int, column: int, value: str) -> Callable[[Rows], None]:
    def change(rows: Rows) -> None:
        rows[line - 1][column] = value

    return change


def append(*row: str) -> Callable[[Rows], None]:
    return lambda rows: rows.append(list(row))


def delete(*lines: int) -> Callable[[Rows], None]:
    def change(rows: Rows) -> None:
        for line in sorted(lines, reverse=True):
            del rows[line - 1]

    return change


def problems_of(folder: Path) -> list[Problem]:
    with pytest.raises(BundleError) as error:
        read_bundle(folder)
    return error.value.problems


def where(problems: list[Problem]) -> set[tuple[str, int, str, str]]:
    return {(p.file, p.line, p.column, p.code) for p in problems}


def test_a_good_bundle_reads(tmp_path):
    network = read_bundle(good_bundle(tmp_path))

    assert network == worked_network()
    assert network.classes == (1, 11, 15)
    assert network.stations == ("A", "B", "C", "D", "P")
    assert network.nodes["A"] == Node("A", "A站", "station", "12010000", "1201")
    assert network.intervals["AJ"] == Interval("AJ", "A", "J", 10_000, "O1", "G-AJ")
    assert network.fees[("AJ", 11)] == 1_850
    assert network.open_fees[("P", 11)] == 1_050
    assert validate(network) == []


def _unlink(file: str) -> Callable[[Path], None]:
    return lambda folder: (folder / file).unlink()


def _gbk_line(folder: Path) -> None:
    path = folder / "nodes.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = "B,乙站,station,12010001,1201".encode("gbk")
    path.write_bytes(b"\n".join(lines))


def _drop_interval(line: int, fee_lines: tuple[int, ...]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        edit(folder, "intervals.csv", delete(line))
        edit(folder, "interval_fees.csv", delete(*fee_lines))

    return change


def _in(file: str, change: Callable[[Rows], None]) -> Callable[[Path], None]:
    return lambda folder: edit(folder, file, change)


BAD = [
    ("missing file", _unlink("owners.csv"), ("owners.csv", 0, "", "bundle.missing_file")),
    (
        "missing column",
        _in("nodes.csv", set_cell(1, 2, "type")),
        ("nodes.csv", 1, "kind", "bundle.missing_column"),
    ),
    (
        "duplicate column",
        _in("owners.csv", lambda rows: [row.append(row[0]) for row in rows]),
        ("owners.csv", 1, "owner_id", "bundle.duplicate_column"),
    ),
    ("not UTF-8", _gbk_line, ("nodes.csv", 3, "", "bundle.encoding")),
    (
        "bad integer length",
        _in("intervals.csv", set_cell(3, 3, "10km")),
        ("intervals.csv", 3, "length_m", "bundle.bad_integer"),
    ),
    (
        "bad integer fee",
        _in("interval_fees.csv", set_cell(2, 2, "12.5")),
        ("interval_fees.csv", 2, "fee_fen", "bundle.bad_integer"),
    ),
    (
        "bad integer class",
        _in("interval_fees.csv", set_cell(2, 1, " 1")),
        ("interval_fees.csv", 2, "vehicle_class", "bundle.bad_integer"),
    ),
    (
        "unknown kind",
        _in("nodes.csv", set_cell(2, 2, "plaza")),
        ("nodes.csv", 2, "kind", "bundle.unknown_kind"),
    ),
    (
        "bad hex",
        _in("nodes.csv", set_cell(2, 3, "12G1")),
        ("nodes.csv", 2, "hex", "bundle.bad_hex"),
    ),
    (
        "duplicate node",
        _in("nodes.csv", append("A", "甲站", "station", "", "1201")),
        ("nodes.csv", 9, "node_id", "bundle.duplicate_id"),
    ),
    (
        "duplicate interval",
        _in("intervals.csv", append("AJ", "A", "J", "5", "O1", "")),
        ("intervals.csv", 14, "interval_id", "bundle.duplicate_id"),
    ),
    (
        "duplicate fee",
        _in("interval_fees.csv", append("AD", "1", "3000")),
        ("interval_fees.csv", 38, "vehicle_class", "bundle.duplicate_id"),
    ),
    (
        "empty from_node",
        _in("intervals.csv", set_cell(3, 1, "")),
        ("intervals.csv", 3, "from_node", "bundle.required"),
    ),
    (
        "short row",
        _in("nodes.csv", append("Q", "station")),
        ("nodes.csv", 9, "", "bundle.bad_row"),
    ),
    (
        "unknown node",
        _in("intervals.csv", set_cell(3, 2, "Z")),
        ("intervals.csv", 3, "to_node", "bundle.unknown_node"),
    ),
    (
        "unknown owner",
        _in("intervals.csv", set_cell(3, 4, "O9")),
        ("intervals.csv", 3, "owner_id", "bundle.unknown_owner"),
    ),
    (
        "zero length",
        _in("intervals.csv", set_cell(3, 3, "0")),
        ("intervals.csv", 3, "length_m", "bundle.bad_length"),
    ),
    (
        "negative length",
        _in("intervals.csv", set_cell(3, 3, "-5")),
        ("intervals.csv", 3, "length_m", "bundle.bad_length"),
    ),
    (
        "self-loop",
        _in("intervals.csv", set_cell(3, 2, "A")),
        ("intervals.csv", 3, "to_node", "bundle.self_loop"),
    ),
    (
        "fee for an unknown interval",
        _in("interval_fees.csv", append("ZZ", "1", "100")),
        ("interval_fees.csv", 38, "interval_id", "bundle.unknown_interval"),
    ),
    (
        "fee for an unknown class",
        _in("interval_fees.csv", append("AJ", "5", "100")),
        ("interval_fees.csv", 38, "vehicle_class", "bundle.unknown_class"),
    ),
    (
        "negative fee",
        _in("interval_fees.csv", set_cell(2, 2, "-1")),
        ("interval_fees.csv", 2, "fee_fen", "bundle.negative_fee"),
    ),
    (
        "missing fee",
        _in("interval_fees.csv", delete(6)),  # AJ class 11
        ("intervals.csv", 3, "interval_id", "bundle.missing_fee"),
    ),
    (
        "open station missing a class",
        _in("open_stations.csv", delete(4)),  # P class 15
        ("open_stations.csv", 2, "node_id", "bundle.missing_fee"),
    ),
    (
        "open fee for a junction",
        _in("open_stations.csv", append("J", "1", "100")),
        ("open_stations.csv", 5, "node_id", "bundle.not_station"),
    ),
    (
        "open fee for an unknown node",
        _in("open_stations.csv", append("Q", "1", "100")),
        ("open_stations.csv", 5, "node_id", "bundle.unknown_node"),
    ),
    (
        "station nobody reaches",
        _drop_interval(2, (2, 3, 4)),  # AD: nothing leads to D any more
        ("nodes.csv", 5, "node_id", "bundle.unreachable"),
    ),
    (
        "station that reaches nobody",
        _drop_interval(7, (17, 18, 19)),  # DA: D leads nowhere
        ("nodes.csv", 5, "node_id", "bundle.dead_end"),
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), BAD, ids=[case[0] for case in BAD])
def test_every_bad_bundle_names_file_line_and_column(tmp_path, name, change, expected):
    folder = good_bundle(tmp_path)
    change(folder)

    problems = problems_of(folder)

    assert expected in where(problems), problems
    problem = next(p for p in problems if (p.file, p.line, p.column, p.code) == expected)
    assert problem.message  # English, for the operator


def test_every_problem_is_reported_at_once(tmp_path):
    folder = good_bundle(tmp_path)
    edit(folder, "intervals.csv", set_cell(3, 3, "0"))  # AJ length 0
    edit(folder, "intervals.csv", set_cell(4, 4, "O9"))  # BJ owner
    edit(folder, "nodes.csv", set_cell(2, 2, "plaza"))  # A
    edit(folder, "interval_fees.csv", set_cell(2, 2, "-1"))  # AD class 1

    problems = problems_of(folder)

    assert where(problems) == {
        ("intervals.csv", 3, "length_m", "bundle.bad_length"),
        ("intervals.csv", 4, "owner_id", "bundle.unknown_owner"),
        ("nodes.csv", 2, "kind", "bundle.unknown_kind"),
        ("interval_fees.csv", 2, "fee_fen", "bundle.negative_fee"),
    }
    assert str(BundleError(problems)).startswith("4 problems in the network bundle; first: ")


def test_a_refused_row_is_not_reported_again_through_its_references(tmp_path):
    # AJ's length cannot be read: its 3 fee rows do not become "unknown interval" too.
    folder = good_bundle(tmp_path)
    edit(folder, "intervals.csv", set_cell(3, 3, "ten"))

    assert where(problems_of(folder)) == {("intervals.csv", 3, "length_m", "bundle.bad_integer")}


def test_a_missing_file_does_not_flood_the_report(tmp_path):
    folder = good_bundle(tmp_path)
    (folder / "nodes.csv").unlink()
    assert where(problems_of(folder)) == {("nodes.csv", 0, "", "bundle.missing_file")}


def test_every_bad_line_of_a_file_in_another_encoding_is_named(tmp_path):
    folder = good_bundle(tmp_path)
    text = (folder / "owners.csv").read_text(encoding="utf-8")
    (folder / "owners.csv").write_bytes(text.encode("gb18030"))

    assert where(problems_of(folder)) == {
        ("owners.csv", 2, "", "bundle.encoding"),
        ("owners.csv", 3, "", "bundle.encoding"),
    }


def test_not_a_folder(tmp_path):
    assert where(problems_of(tmp_path / "nope")) == {("", 0, "", "bundle.missing_file")}


def test_byte_order_mark_crlf_blank_lines_and_extra_columns_are_accepted(tmp_path):
    folder = good_bundle(tmp_path)
    path = folder / "owners.csv"
    path.write_bytes(b"\xef\xbb\xbfowner_id,name,note\r\nO1,\xe6\xb4\xa5,x\r\n\r\nO2,b,y\r\n")

    network = read_bundle(folder)

    assert network.owners == {"O1": Owner("O1", "津"), "O2": Owner("O2", "b")}


def test_open_stations_file_is_optional(tmp_path):
    folder = good_bundle(tmp_path)
    (folder / "open_stations.csv").unlink()
    edit(folder, "nodes.csv", delete(8))  # P, which would now be a lone closed station

    network = read_bundle(folder)

    assert network.open_fees == {}
    assert network.stations == ("A", "B", "C", "D")


def test_validate_on_a_network_from_elsewhere_has_no_lines():
    network = worked_network()
    broken = Network(
        owners=network.owners,
        nodes=network.nodes,
        intervals={**network.intervals, "AJ": Interval("AJ", "A", "J", -1, "O1", "")},
        fees=network.fees,
        open_fees=network.open_fees,
    )
    assert where(validate(broken)) == {("intervals.csv", 0, "length_m", "bundle.bad_length")}


def test_write_bundle_is_deterministic_and_skips_an_empty_open_file(tmp_path):
    network = worked_network()
    write_bundle(network, tmp_path / "one")
    without_open = Network(
        owners=network.owners,
        nodes={k: v for k, v in network.nodes.items() if k != "P"},
        intervals=network.intervals,
        fees=network.fees,
    )
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    write_bundle(without_open, tmp_path / "two")

    assert (tmp_path / "one" / "intervals.csv").read_text(encoding="utf-8").splitlines()[:3] == [
        "interval_id,from_node,to_node,length_m,owner_id,gantry_id",
        "AD,A,D,30000,O1,G-AD",
        "AJ,A,J,10000,O1,G-AJ",
    ]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "interval_fees.csv",
        "intervals.csv",
        "nodes.csv",
        "owners.csv",
    ]
    assert read_bundle(tmp_path / "two") == without_open


# --- properties -----------------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=8,
)
_ID = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Z")), min_size=1, max_size=5
)


@st.composite
def valid_networks(draw: st.DrawFn) -> Network:
    """Valid networks: stations on a two-way ring (so each reaches and is reached), some
    junctions hung on it two-way, extra one-way intervals, open-road stations, any
    subset of classes, and arbitrary text in names."""
    ids = draw(st.lists(_ID, min_size=12, max_size=12, unique=True))
    count = draw(st.integers(2, 4))
    stations, junctions = ids[:count], ids[count : count + draw(st.integers(0, 2))]
    opens = ids[6 : 6 + draw(st.integers(0, 2))]
    owners = [Owner(owner_id, draw(_TEXT)) for owner_id in ids[8 : 8 + draw(st.integers(1, 2))]]
    # Station hex codes are unique (the center's table guards it); networks have 4 characters.
    network_codes = st.text(alphabet="0123456789", max_size=4)
    nodes = [
        Node(
            node_id,
            draw(_TEXT),
            "station",
            draw(st.sampled_from(["", f"{n:08X}"])),
            draw(network_codes),
        )
        for n, node_id in enumerate(stations + opens)
    ]
    nodes += [
        Node(node_id, draw(_TEXT), draw(st.sampled_from(["junction", "border"])), "", "")
        for node_id in junctions
    ]
    pairs = [(stations[i], stations[(i + 1) % count]) for i in range(count)]
    pairs += [(b, a) for a, b in pairs]
    for junction in junctions:
        station = draw(st.sampled_from(stations))
        pairs += [(station, junction), (junction, station)]
    everything = stations + junctions
    extra = st.tuples(st.sampled_from(everything), st.sampled_from(everything))
    pairs += [p for p in draw(st.lists(extra, max_size=4)) if p[0] != p[1]]
    classes = draw(
        st.lists(
            st.sampled_from([int(c) for c in VehicleClass]), min_size=1, max_size=4, unique=True
        )
    )
    intervals, fees = [], []
    for number, (a, b) in enumerate(pairs):
        iid = f"{draw(_ID)}#{number}"
        owner = draw(st.sampled_from(owners)).owner_id
        intervals.append(Interval(iid, a, b, draw(st.integers(1, 10**6)), owner, draw(_TEXT)))
        fees += [(iid, c, draw(st.integers(0, 10**6))) for c in classes]
    open_fees = [(s, c, draw(st.integers(0, 10**5))) for s in opens for c in classes]
    return Network.from_rows(
        owners=owners, nodes=nodes, intervals=intervals, fees=fees, open_fees=open_fees
    )


FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FAST
@given(valid_networks())
def test_validate_on_a_good_network_is_empty(network):
    assert validate(network) == []


@FAST
@given(valid_networks())
def test_import_export_import_round_trips(tmp_path_factory, network):
    first = tmp_path_factory.mktemp("first")
    second = tmp_path_factory.mktemp("second")

    write_bundle(network, first)
    again = read_bundle(first)
    write_bundle(again, second)

    assert again == network
    assert read_bundle(second) == network
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes()
