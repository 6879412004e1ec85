"""The fee engine: worked examples with hand-computed fees, errors, and properties.

The worked network (lengths in m; fees in fen for classes 1 / 11 / 15):

    D ==30,000== A ==10,000== J ==25,000== K ==8,000== B        stations A B C D
                              J ==40,000================== B    junctions J K
                              J ==5,000== C                     open-road station P

    interval  from→to  length  owner  class 1  class 11  class 15
    AJ, JA    A↔J      10,000  O1       1,230     1,850     4,920
    JK, KJ    J↔K      25,000  O1       2,450     3,680     9,800
    KB, BK    K↔B       8,000  O2         980     1,470     3,920
    JB, BJ    J↔B      40,000  O2       2,000     3,000     8,000
    JC, CJ    J↔C       5,000  O2         615       925     2,460
    DA, AD    D↔A      30,000  O1       3,000     4,500    12,000
    open-road station P: class 1 500, class 11 1,050, class 15 2,300

Every road is two-way (two intervals). The cheapest A→B for class 1 is AJ + JB =
1,230 + 2,000 = 3,230 fen (50,000 m); the shortest is AJ + JK + KB (43,000 m).
"""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcnet.network import engine as engine_module
from etcnet.network.bundle import Interval, Network, Node, Owner, validate
from etcnet.network.engine import (
    EXEMPT_KINDS,
    FeeEngine,
    FeeError,
    IntervalCharge,
    Method,
    Payment,
)

ROADS = {
    # (from, to): (length, owner, class 1, class 11, class 15)
    ("A", "J"): (10_000, "O1", 1_230, 1_850, 4_920),
    ("J", "K"): (25_000, "O1", 2_450, 3_680, 9_800),
    ("K", "B"): (8_000, "O2", 980, 1_470, 3_920),
    ("J", "B"): (40_000, "O2", 2_000, 3_000, 8_000),
    ("J", "C"): (5_000, "O2", 615, 925, 2_460),
    ("D", "A"): (30_000, "O1", 3_000, 4_500, 12_000),
}
CLASSES = (1, 11, 15)


def worked_network() -> Network:
    """The network drawn in the module docstring."""
    intervals, fees = [], []
    for (a, b), (length, owner, *by_class) in ROADS.items():
        for start, end in ((a, b), (b, a)):
            iid = start + end
            intervals.append(Interval(iid, start, end, length, owner, f"G-{iid}"))
            fees += [(iid, c, fee) for c, fee in zip(CLASSES, by_class, strict=True)]
    nodes = [Node(s, f"{s}站", "station", f"1201000{n}", "1201") for n, s in enumerate("ABCDP")]
    nodes += [Node(j, f"{j}枢纽", "junction", "", "1201") for j in "JK"]
    return Network.from_rows(
        owners=[Owner("O1", "津北高速"), Owner("O2", "津南高速")],
        nodes=nodes,
        intervals=intervals,
        fees=fees,
        open_fees=[("P", 1, 500), ("P", 11, 1_050), ("P", 15, 2_300)],
    )


@pytest.fixture(scope="module")
def engine() -> FeeEngine:
    return FeeEngine(worked_network())


def ids(result: object) -> list[str]:
    return [charge.interval_id for charge in result.intervals]  # type: ignore[attr-defined]


def test_the_worked_network_is_valid():
    assert validate(worked_network()) == []


# --- path -----------------------------------------------------------------------------


def test_path_class_1_etc(engine):
    # 3 intervals 1,230 + 2,450 + 980 = 4,660 fen (above the minimum 3,230);
    # ETC 5 % = 233 fen; payable 4,427.
    result = engine.trip(entry="A", exit="B", vehicle_class=1, path=["AJ", "JK", "KB"])

    assert result.method == Method.PATH
    assert result.exit_fee_type == 1
    assert (result.fee_fen, result.discount_fen, result.payable_fen) == (4_660, 233, 4_427)
    assert result.length_m == 43_000
    assert result.intervals == (
        IntervalCharge("AJ", "O1", 1_230, 10_000),
        IntervalCharge("JK", "O1", 2_450, 25_000),
        IntervalCharge("KB", "O2", 980, 8_000),
    )
    assert result.reason is None
    assert result.overweight is None


def test_path_class_1_cash_rounds_half_up_to_the_yuan(engine):
    # 4,660 fen = 46.60 yuan → 47 yuan; no discount; rounding +40 fen.
    result = engine.trip(
        entry="A", exit="B", vehicle_class=1, path=["AJ", "JK", "KB"], payment=Payment.CASH
    )

    assert (result.fee_fen, result.discount_fen, result.payable_fen) == (4_660, 0, 4_700)
    assert result.rounding_fen == 40


def test_path_class_11_etc_and_cash(engine):
    # 1,850 + 3,680 + 1,470 = 7,000 fen; ETC 5 % = 350; payable 6,650. Cash 70.00 yuan.
    path = ["AJ", "JK", "KB"]
    etc = engine.trip(entry="A", exit="B", vehicle_class=11, path=path)
    cash = engine.trip(entry="A", exit="B", vehicle_class=11, path=path, payment="cash")

    assert (etc.fee_fen, etc.discount_fen, etc.payable_fen) == (7_000, 350, 6_650)
    assert (cash.fee_fen, cash.discount_fen, cash.payable_fen) == (7_000, 0, 7_000)


def test_path_class_15_cash_rounds_down_below_half_a_yuan(engine):
    # 4,920 + 8,000 = 12,920 fen = 129.20 yuan → 129 yuan (rounding −20 fen).
    # ETC: 5 % of 12,920 = 646; payable 12,274.
    cash = engine.trip(entry="A", exit="B", vehicle_class=15, path=["AJ", "JB"], payment="cash")
    etc = engine.trip(entry="A", exit="B", vehicle_class=15, path=["AJ", "JB"])

    assert (cash.fee_fen, cash.payable_fen, cash.rounding_fen) == (12_920, 12_900, -20)
    assert (etc.discount_fen, etc.payable_fen) == (646, 12_274)


# --- minimum --------------------------------------------------------------------------


def test_path_unknown_is_charged_the_minimum_fee(engine):
    # Cheapest A→B for class 1: AJ + JB = 1,230 + 2,000 = 3,230 fen over 50,000 m.
    # ETC 5 % = 161.5 → 162 fen (half-up); payable 3,068.
    result = engine.trip(entry="A", exit="B", vehicle_class=1)

    assert result.method == Method.MINIMUM
    assert result.exit_fee_type == 6
    assert result.reason == "path unknown"
    assert ids(result) == ["AJ", "JB"]
    assert (result.fee_fen, result.discount_fen, result.payable_fen) == (3_230, 162, 3_068)
    assert result.length_m == 50_000


def test_an_empty_path_is_an_unknown_path(engine):
    assert engine.trip(entry="A", exit="B", vehicle_class=1, path=[]).reason == "path unknown"


def test_recorded_fee_below_the_minimum_is_charged_the_minimum(engine):
    # Only gantry JK recorded the class-11 truck: 3,680 fen < minimum A→B 1,850 + 3,000
    # = 4,850 fen → charged 4,850; cash 48.50 yuan → 49 yuan.
    result = engine.trip(
        entry="A", exit="B", vehicle_class=11, path=["JK"], allow_gaps=True, payment="cash"
    )

    assert result.method == Method.MINIMUM
    assert result.reason is not None
    assert result.reason.startswith("below minimum")
    assert (result.fee_fen, result.payable_fen) == (4_850, 4_900)
    assert ids(result) == ["AJ", "JB"]


def test_incomplete_path_is_charged_the_minimum(engine):
    # AJ + JK recorded (1,230 + 2,450 = 3,680 ≥ 3,230), gantry KB missed: the path is
    # incomplete → minimum 3,230; ETC 162; payable 3,068.
    result = engine.trip(entry="A", exit="B", vehicle_class=1, path=["AJ", "JK"], allow_gaps=True)

    assert result.method == Method.MINIMUM
    assert result.reason is not None
    assert result.reason.startswith("path incomplete: 1 gap")
    assert (result.fee_fen, result.discount_fen, result.payable_fen) == (3_230, 162, 3_068)


def test_a_whole_path_with_allow_gaps_is_charged_by_its_path(engine):
    result = engine.trip(
        entry="A", exit="B", vehicle_class=1, path=["AJ", "JK", "KB"], allow_gaps=True
    )
    assert (result.method, result.fee_fen) == (Method.PATH, 4_660)


def test_minimum_ties_are_broken_by_length():
    # X→Y two ways, both 1,000 fen: XM + MY (30,000 m) and XY directly (12,000 m) — and a
    # parallel XY2 of the same fee but 15,000 m. The minimum is XY: 1,000 fen, 12,000 m.
    network = Network.from_rows(
        owners=[Owner("O", "o")],
        nodes=_xmy_nodes(),
        intervals=[
            Interval("XM", "X", "M", 20_000, "O", ""),
            Interval("MY", "M", "Y", 10_000, "O", ""),
            Interval("XY2", "X", "Y", 15_000, "O", ""),
            Interval("XY", "X", "Y", 12_000, "O", ""),
            Interval("YX", "Y", "X", 12_000, "O", ""),
        ],
        fees=[
            ("XM", 1, 400),
            ("MY", 1, 600),
            ("XY", 1, 1_000),
            ("XY2", 1, 1_000),
            ("YX", 1, 1_000),
        ],
    )
    engine = FeeEngine(network)

    result = engine.minimum("X", "Y", 1)
    assert (ids(result), result.fee_fen, result.length_m) == (["XY"], 1_000, 12_000)
    assert engine.minimum_table() == [("X", "Y", 1, 1_000, 12_000), ("Y", "X", 1, 1_000, 12_000)]


def test_minimum_method_direct(engine):
    # Class 15 C→B: CJ + JB = 2,460 + 8,000 = 10,460 fen over 45,000 m; ETC 523; 9,937.
    result = engine.minimum("C", "B", 15)

    assert (result.method, result.exit_fee_type, result.reason) == (Method.MINIMUM, 6, None)
    assert ids(result) == ["CJ", "JB"]
    assert (result.fee_fen, result.discount_fen, result.payable_fen) == (10_460, 523, 9_937)
    assert result.length_m == 45_000


def test_minimum_table_rows(engine):
    table = engine.minimum_table()
    by_key = {(entry, exit_, c): (fee, length) for entry, exit_, c, fee, length in table}

    # 4 closed stations (P is open-road) → 12 ordered pairs per class, 3 classes.
    assert len(table) == 36
    assert by_key[("A", "B", 1)] == (3_230, 50_000)
    assert by_key[("B", "A", 11)] == (4_850, 50_000)
    # D→C class 1: DA + AJ + JC = 3,000 + 1,230 + 615 = 4,845 over 45,000 m.
    assert by_key[("D", "C", 1)] == (4_845, 45_000)
    assert engine.minimum_table([15])[0][2] == 15


# --- farthest entry -------------------------------------------------------------------


def test_missing_entry_is_charged_from_the_farthest_entry(engine):
    # Shortest lengths to B: A 43,000, C 38,000, D 73,000 → D is the farthest entry.
    # Along D→A→J→K→B: 3,000 + 1,230 + 2,450 + 980 = 7,660 fen; ETC 383; payable 7,277.
    result = engine.trip(exit="B", vehicle_class=1)

    assert result.method == Method.FARTHEST_ENTRY
    assert result.exit_fee_type == 4
    assert result.entry == "D"
    assert ids(result) == ["DA", "AJ", "JK", "KB"]
    assert (result.fee_fen, result.discount_fen, result.payable_fen) == (7_660, 383, 7_277)
    assert result.length_m == 73_000
    assert result.reason is not None
    assert "'D'" in result.reason


def test_missing_entry_class_11_cash(engine):
    # 4,500 + 1,850 + 3,680 + 1,470 = 11,500 fen = 115 yuan exactly.
    result = engine.trip(exit="B", vehicle_class=11, payment=Payment.CASH)
    assert (result.fee_fen, result.payable_fen, result.rounding_fen) == (11_500, 11_500, 0)


def test_missing_entry_at_the_far_end(engine):
    # Exit D: A is 30,000 m away, B 73,000, C 45,000 → from B along BK, KJ, JA, AD:
    # class 15: 3,920 + 9,800 + 4,920 + 12,000 = 30,640.
    result = engine.trip(exit="D", vehicle_class=15)
    assert (result.entry, result.fee_fen, result.length_m) == ("B", 30_640, 73_000)


# --- open road and exempt -------------------------------------------------------------


def test_open_road_station_charges_its_fixed_fee(engine):
    # Class 1 at P: 500 fen; ETC 25; payable 475.
    result = engine.trip(exit="P", vehicle_class=1)

    assert (result.method, result.exit_fee_type) == (Method.OPEN, 11)
    assert (result.fee_fen, result.discount_fen, result.payable_fen) == (500, 25, 475)
    assert result.intervals == ()
    assert result.length_m == 0


def test_open_road_cash_half_a_yuan_rounds_up(engine):
    # Class 11 at P: 1,050 fen = 10.50 yuan → 11 yuan.
    result = engine.trip(exit="P", vehicle_class=11, entry="A", payment="cash")
    assert (result.fee_fen, result.payable_fen, result.rounding_fen) == (1_050, 1_100, 50)


@pytest.mark.parametrize("kind", [8, 10, 21, 22, 23, 26])
def test_exempt_vehicle_kinds_pay_nothing(engine, kind):
    result = engine.trip(
        entry="A", exit="B", vehicle_class=11, path=["AJ", "JB"], vehicle_kind=kind
    )

    assert result.method == Method.EXEMPT
    assert result.exit_fee_type == 4
    assert (result.fee_fen, result.discount_fen, result.payable_fen) == (0, 0, 0)
    assert result.vehicle_kind == kind
    assert result.reason is not None
    assert result.reason.startswith(f"exempt vehicle kind {kind}")


def test_the_exempt_set():
    assert sorted(int(k) for k in EXEMPT_KINDS) == [8, 10, 21, 22, 23, 26]


def test_a_fleet_vehicle_pays(engine):
    result = engine.trip(entry="A", exit="B", vehicle_class=1, vehicle_kind=14)
    assert (result.method, result.fee_fen) == (Method.MINIMUM, 3_230)


# --- overweight -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("axles", "mass", "flag"),
    [(5, 43_000, False), (5, 43_001, True), (2, 18_001, True), (7, 49_000, False)],
)
def test_overweight_trucks_are_flagged_and_pay_by_class(engine, axles, mass, flag):
    result = engine.trip(
        entry="A", exit="B", vehicle_class=15, path=["AJ", "JB"], axles=axles, total_mass_kg=mass
    )
    assert result.overweight is flag
    assert result.fee_fen == 12_920


def test_overweight_is_unknown_for_passenger_cars_or_without_mass(engine):
    car = engine.trip(entry="A", exit="B", vehicle_class=1, axles=2, total_mass_kg=30_000)
    truck = engine.trip(entry="A", exit="B", vehicle_class=11, axles=2)
    assert (car.overweight, truck.overweight) == (None, None)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"exit": "Z", "vehicle_class": 1}, "fee.unknown_node"),
        ({"exit": "B", "entry": "Z", "vehicle_class": 1}, "fee.unknown_node"),
        ({"exit": "B", "vehicle_class": 5}, "fee.unknown_class"),
        ({"exit": "B", "vehicle_class": 2}, "fee.unknown_class"),  # a class, but no tariff
        (
            {"exit": "B", "entry": "A", "vehicle_class": 1, "path": ["AJ", "XX"]},
            "fee.unknown_interval",
        ),
        (
            {"exit": "B", "entry": "A", "vehicle_class": 1, "path": ["AJ", "KB"]},
            "fee.path_not_connected",
        ),
        (
            {"exit": "B", "entry": "A", "vehicle_class": 1, "path": ["JK", "KB"]},
            "fee.path_not_joined",
        ),
        (
            {"exit": "C", "entry": "A", "vehicle_class": 1, "path": ["AJ", "JK"]},
            "fee.path_not_joined",
        ),
        ({"exit": "B", "entry": "B", "vehicle_class": 1}, "fee.same_station"),
        ({"exit": "B", "vehicle_class": 1, "vehicle_kind": 99}, "fee.unknown_vehicle_kind"),
        ({"exit": "B", "vehicle_class": 1, "payment": "card"}, "fee.bad_payment"),
        ({"exit": "B", "vehicle_class": 11, "axles": 1, "total_mass_kg": 9}, "fee.bad_vehicle"),
    ],
)
def test_trips_that_cannot_be_charged(engine, kwargs, code):
    with pytest.raises(FeeError) as error:
        engine.trip(**kwargs)
    assert error.value.code == code
    assert error.value.message


def test_gaps_the_network_cannot_bridge_are_still_errors():
    # One-way X→M→Y; a recorded YX... there is none: record MY then XM (backwards).
    network = _line_network()
    engine = FeeEngine(network)
    with pytest.raises(FeeError) as error:
        engine.trip(entry="X", exit="Y", vehicle_class=1, path=["MY", "XM"], allow_gaps=True)
    assert error.value.code == "fee.path_not_connected"


def test_no_route():
    engine = FeeEngine(_line_network())  # one-way X → M → Y: nothing reaches X
    with pytest.raises(FeeError) as minimum:
        engine.minimum("Y", "X", 1)
    with pytest.raises(FeeError) as farthest:
        engine.trip(exit="X", vehicle_class=1)
    assert (minimum.value.code, farthest.value.code) == ("fee.no_route", "fee.no_route")


def test_an_engine_refuses_lengths_it_cannot_add():
    network = _line_network()
    broken = Network.from_rows(
        owners=network.owners.values(),
        nodes=network.nodes.values(),
        intervals=[Interval("XM", "X", "M", 0, "O", "")],
        fees=[("XM", 1, 5)],
    )
    with pytest.raises(FeeError) as error:
        FeeEngine(broken)
    assert error.value.code == "network.invalid"


def test_as_json(engine):
    result = engine.trip(entry="A", exit="B", vehicle_class=1, path=["AJ", "JB"])
    assert result.as_json() == {
        "method": "path",
        "exit_fee_type": 1,
        "entry": "A",
        "exit": "B",
        "vehicle_class": 1,
        "vehicle_kind": 0,
        "payment": "etc",
        "fee_fen": 3_230,
        "discount_fen": 162,
        "rounding_fen": 0,
        "payable_fen": 3_068,
        "length_m": 50_000,
        "intervals": [
            {"interval_id": "AJ", "owner_id": "O1", "fee_fen": 1_230, "length_m": 10_000},
            {"interval_id": "JB", "owner_id": "O2", "fee_fen": 2_000, "length_m": 40_000},
        ],
        "reason": None,
        "overweight": None,
    }


def _xmy_nodes() -> list[Node]:
    """Stations X and Y, junction M."""
    return [
        Node("X", "", "station", "", ""),
        Node("Y", "", "station", "", ""),
        Node("M", "", "junction", "", ""),
    ]


def _line_network() -> Network:
    return Network.from_rows(
        owners=[Owner("O", "o")],
        nodes=_xmy_nodes(),
        intervals=[
            Interval("XM", "X", "M", 1_000, "O", ""),
            Interval("MY", "M", "Y", 1_000, "O", ""),
        ],
        fees=[("XM", 1, 100), ("MY", 1, 100)],
    )


# --- properties -----------------------------------------------------------------------


@st.composite
def networks(draw: st.DrawFn) -> Network:
    """Small random directed networks: 2-4 stations, 0-3 junctions, random intervals
    (parallel ones too), fees for classes 1 and 11 (zero allowed)."""
    stations = [f"S{i}" for i in range(draw(st.integers(2, 4)))]
    junctions = [f"J{i}" for i in range(draw(st.integers(0, 3)))]
    names = stations + junctions
    pairs = st.tuples(st.sampled_from(names), st.sampled_from(names)).filter(lambda p: p[0] != p[1])
    edges = draw(st.lists(pairs, min_size=1, max_size=14))
    intervals, fees = [], []
    for number, (a, b) in enumerate(edges):
        iid = f"I{number}"
        intervals.append(Interval(iid, a, b, draw(st.integers(1, 50)), "O", ""))
        fees += [(iid, c, draw(st.integers(0, 40))) for c in (1, 11)]
    return Network.from_rows(
        owners=[Owner("O", "o")],
        nodes=[Node(s, "", "station", "", "") for s in stations]
        + [Node(j, "", "junction", "", "") for j in junctions],
        intervals=intervals,
        fees=fees,
    )


def _walks(network: Network, start: str, max_len: int = 5) -> list[list[str]]:
    by_start: dict[str, list[Interval]] = {}
    for interval in sorted(network.intervals.values(), key=lambda i: i.interval_id):
        by_start.setdefault(interval.from_node, []).append(interval)
    walks: list[list[str]] = []
    frontier: list[tuple[str, list[str]]] = [(start, [])]
    for _ in range(max_len):
        nxt = []
        for node, walk in frontier:
            for interval in by_start.get(node, []):
                longer = [*walk, interval.interval_id]
                walks.append(longer)
                nxt.append((interval.to_node, longer))
        frontier = nxt[:200]
    return walks[:400]


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(networks())
def test_the_minimum_never_exceeds_a_valid_path(network):
    engine = FeeEngine(network)
    minimum = {(e, x, c): fee for e, x, c, fee, _ in engine.minimum_table()}
    for start in network.stations:
        for walk in _walks(network, start):
            end = network.intervals[walk[-1]].to_node
            if network.nodes[end].kind != "station" or end == start:
                continue
            for vehicle_class in (1, 11):
                result = engine.trip(entry=start, exit=end, vehicle_class=vehicle_class, path=walk)
                assert minimum[(start, end, vehicle_class)] <= result.fee_fen
                # A valid path is never below the minimum, so it is charged as driven.
                assert result.method == Method.PATH
                assert result.fee_fen == sum(network.fees[(iid, vehicle_class)] for iid in walk)


@FAST
@given(networks())
def test_the_minimum_table_matches_networkx(network):
    # The same cheapest-then-shortest order in exact integers: weight fee * big + length.
    engine = FeeEngine(network)
    big = 10**6
    for vehicle_class in (1, 11):
        graph = nx.DiGraph()
        for interval in network.intervals.values():
            weight = network.fees[(interval.interval_id, vehicle_class)] * big + interval.length_m
            old = graph.get_edge_data(interval.from_node, interval.to_node)
            if old is None or weight < old["weight"]:
                graph.add_edge(interval.from_node, interval.to_node, weight=weight)
        expected = set()
        for entry, exit_ in itertools.permutations(network.stations, 2):
            if entry in graph and exit_ in graph and nx.has_path(graph, entry, exit_):
                total = nx.dijkstra_path_length(graph, entry, exit_)
                expected.add((entry, exit_, vehicle_class, total // big, total % big))
        assert set(engine.minimum_table([vehicle_class])) == expected


@FAST
@given(networks())
def test_the_fallback_without_exact_ties_gives_the_same_fees(network):
    exact = FeeEngine(network).minimum_table()
    original = engine_module._EXACT_LIMIT
    engine_module._EXACT_LIMIT = 0  # force fee-only weights and lengths by predecessors
    try:
        engine = FeeEngine(network)
        fallback = engine.minimum_table()
    finally:
        engine_module._EXACT_LIMIT = original
    assert [row[:4] for row in fallback] == [row[:4] for row in exact]
    for entry, exit_, vehicle_class, fee, length in fallback:
        # The length is the length of the path the engine charges.
        result = engine.minimum(entry, exit_, vehicle_class)
        assert (result.fee_fen, result.length_m) == (fee, length)


@FAST
@given(
    networks(),
    st.sampled_from([Payment.ETC, Payment.CASH]),
    st.integers(0, 10_000),
    st.sampled_from([1, 11]),
)
def test_payable_discount_and_rounding(network, payment, discount_bp, vehicle_class):
    engine = FeeEngine(network, discount_bp=discount_bp)
    for entry, exit_, *_ in engine.minimum_table([vehicle_class]):
        result = engine.trip(entry=entry, exit=exit_, vehicle_class=vehicle_class, payment=payment)
        assert result.discount_fen >= 0
        assert result.payable_fen == result.fee_fen - result.discount_fen + result.rounding_fen
        assert result.fee_fen == sum(charge.fee_fen for charge in result.intervals)
        if payment is Payment.ETC:
            assert 0 <= result.payable_fen <= result.fee_fen
            assert result.rounding_fen == 0
        else:
            assert result.payable_fen % 100 == 0
            assert result.discount_fen == 0
            assert -50 < result.rounding_fen <= 50
