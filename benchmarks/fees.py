"""Fees per second and the minimum-fee table, on a generated province-sized network.

    python -m benchmarks.fees [--nodes 2000] [--trips N] [--seconds S] [--seed N]

Generates a random connected directed network (seeded): nodes on a 500 km square,
40 % stations, 5 % border points, the rest junctions; two-way roads along a spanning
tree of nearest neighbours plus each node's nearest neighbours; per-class fees for all
16 classes on a per-km rate scale. Then prints:

(a) trips given their paths (what the gantries recorded) charged by
    ``FeeEngine.trip`` — the rate per second and the time a 2,000,000-trip day would
    take (a province's day is 1-3 million trips);
(b) the minimum-fee table for all 16 classes with the engine (scipy.sparse.csgraph,
    one multi-source Dijkstra per class), beside the same computation with networkx
    (``single_source_dijkstra_path_length`` on the same weights) on the same machine.
    networkx runs on a sample of sources and is extrapolated; the output says so, and
    the sampled rows are checked against the engine's.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse.csgraph import dijkstra  # type: ignore[import-untyped,unused-ignore]

from etcnet.core.codes import VehicleClass
from etcnet.network.bundle import Interval, Network, Node, Owner
from etcnet.network.engine import FeeEngine, Payment

CLASSES = tuple(int(c) for c in VehicleClass)
#: fen per km by class: an illustrative rate scale, not a published tariff.
RATES = dict(
    zip(
        CLASSES,
        (45, 70, 95, 110, 45, 90, 130, 150, 160, 170, 45, 90, 130, 150, 160, 170),
        strict=True,
    )
)
DAY_TRIPS = 2_000_000


def generate(nodes: int, seed: int) -> Network:
    """A connected two-way road network of ``nodes`` nodes with fees for 16 classes."""
    rng = np.random.default_rng(seed)
    points: npt.NDArray[np.float64] = rng.uniform(0, 500_000, size=(nodes, 2))
    kinds = rng.choice(["station", "junction", "border"], size=nodes, p=[0.40, 0.55, 0.05])
    kinds[:2] = "station"
    ids = [f"N{i:05d}" for i in range(nodes)]
    gaps = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(gaps, np.inf)
    roads: set[tuple[int, int]] = set()
    # A spanning tree: each node joins its nearest earlier node, so all are connected.
    for i in range(1, nodes):
        j = int(np.argmin(gaps[i, :i]))
        roads.add((min(i, j), max(i, j)))
    # And each node's two nearest neighbours: a mesh with alternatives.
    for i in range(nodes):
        for j in np.argsort(gaps[i])[:2].tolist():
            roads.add((min(i, j), max(i, j)))
    owners = [Owner(f"O{k}", f"road owner {k}") for k in range(5)]
    intervals: list[Interval] = []
    fees: list[tuple[str, int, int]] = []
    for number, (a, b) in enumerate(sorted(roads)):
        length = max(500, int(gaps[a, b]))
        owner = owners[number % len(owners)].owner_id
        for start, end, direction in ((a, b, 1), (b, a, 2)):
            iid = f"G{number:06d}{direction}"
            intervals.append(Interval(iid, ids[start], ids[end], length, owner, iid + "010"))
            noise = float(rng.uniform(0.9, 1.1))
            fees += [(iid, c, round(length / 1000 * RATES[c] * noise)) for c in CLASSES]
    return Network.from_rows(
        owners=owners,
        nodes=[
            Node(
                ids[i],
                f"node {i}",
                str(kinds[i]),
                f"{i:08X}" if kinds[i] == "station" else "",
                "1201",
            )
            for i in range(nodes)
        ],
        intervals=intervals,
        fees=fees,
    )


def sample_paths(network: Network, count: int, seed: int) -> list[tuple[str, str, list[str]]]:
    """(entry, exit, path) along the shortest roads between random station pairs."""
    rng = random.Random(seed)
    stations = list(network.stations)
    index = {node_id: i for i, node_id in enumerate(sorted(network.nodes))}
    ids = sorted(network.nodes)
    by_pair: dict[tuple[str, str], str] = {}
    for interval in sorted(network.intervals.values(), key=lambda i: (i.length_m, i.interval_id)):
        by_pair.setdefault((interval.from_node, interval.to_node), interval.interval_id)
    shortest = sorted(by_pair.items())
    lengths = csr_matrix(
        (
            np.array([network.intervals[iid].length_m for _, iid in shortest], dtype=np.float64),
            (
                np.array([index[a] for (a, _), _ in shortest]),
                np.array([index[b] for (_, b), _ in shortest]),
            ),
        ),
        shape=(len(ids), len(ids)),
    )
    paths: list[tuple[str, str, list[str]]] = []
    while len(paths) < count:
        entry = rng.choice(stations)
        result: tuple[Any, Any] = dijkstra(lengths, indices=index[entry], return_predecessors=True)
        pred = np.asarray(result[1])
        for _ in range(20):
            exit_ = rng.choice(stations)
            if exit_ == entry or pred[index[exit_]] < 0:
                continue
            nodes = [index[exit_]]
            while nodes[-1] != index[entry]:
                nodes.append(int(pred[nodes[-1]]))
            nodes.reverse()
            path = [by_pair[(ids[a], ids[b])] for a, b in itertools.pairwise(nodes)]
            paths.append((entry, exit_, path))
    return paths[:count]


def bench_trips(
    engine: FeeEngine, network: Network, trips: int, seconds: float, seed: int, out: TextIO
) -> None:
    paths = sample_paths(network, 2_000, seed)
    rng = random.Random(seed + 1)
    work = [
        (
            entry,
            exit_,
            path,
            rng.choice(CLASSES),
            rng.choice((Payment.ETC, Payment.ETC, Payment.CASH)),
        )
        for entry, exit_, path in (rng.choice(paths) for _ in range(trips))
    ]
    mean_intervals = sum(len(p) for _, _, p, _, _ in work) / len(work)
    start = time.perf_counter()
    for (
        vehicle_class
    ) in CLASSES:  # the first trip of a class builds its station x station minimum fees
        entry, exit_, path = paths[0]
        engine.trip(entry=entry, exit=exit_, vehicle_class=vehicle_class, path=path)
    warm = time.perf_counter() - start
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    for entry, exit_, path, vehicle_class, payment in work:
        engine.trip(
            entry=entry, exit=exit_, vehicle_class=vehicle_class, path=path, payment=payment
        )
        done += 1
        if done % 1_000 == 0 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - start
    rate = done / elapsed
    out.write(
        f"(a) trips given paths: {done:,} trips ({mean_intervals:.1f} intervals each, "
        f"16 classes, ETC and cash) in {elapsed:.2f} s = {rate:,.0f} trips/s on one core\n"
        f"    a day of {DAY_TRIPS:,} trips: {DAY_TRIPS / rate:,.0f} s "
        f"({DAY_TRIPS / rate / 60:.1f} min) "
        f"extrapolated; one-off warm-up (minimum fees per class): {warm:.2f} s\n"
    )


def bench_table(
    network: Network, sources_sample: int, seed: int, out: TextIO, *, full: bool = False
) -> None:
    start = time.perf_counter()
    engine = FeeEngine(network)
    built = time.perf_counter() - start
    start = time.perf_counter()
    tables = {c: engine.minimum_arrays(c) for c in CLASSES}
    ours = time.perf_counter() - start
    rows = sum(len(t.fee_fen) for t in tables.values())
    stations = tables[CLASSES[0]].stations
    out.write(
        f"(b) minimum-fee table, {len(stations):,} stations x 16 classes = {rows:,} rows\n"
        f"    etcnet (scipy.sparse.csgraph.dijkstra): {ours:.2f} s "
        f"(+ {built:.2f} s to build the engine's 16 CSR graphs)\n"
    )
    # networkx on the same weights (fee * scale + length: cheapest, then shortest).
    rng = random.Random(seed)
    if full:
        sample = list(range(len(stations)))
    else:
        sample = sorted(rng.sample(range(len(stations)), min(sources_sample, len(stations))))
    scale = int(sum(i.length_m for i in network.intervals.values())) + 1
    graph_time = 0.0
    nx_time = 0.0
    checked = 0
    classes = CLASSES if full else CLASSES[:4]
    for vehicle_class in classes:
        start = time.perf_counter()
        graph = nx.DiGraph()
        graph.add_nodes_from(network.nodes)
        for interval in network.intervals.values():
            weight = network.fees[(interval.interval_id, vehicle_class)] * scale + interval.length_m
            old = graph.get_edge_data(interval.from_node, interval.to_node)
            if old is None or weight < old["weight"]:
                graph.add_edge(interval.from_node, interval.to_node, weight=weight)
        graph_time += time.perf_counter() - start
        table = tables[vehicle_class]
        ours_by_pair = {
            (int(e), int(x)): (int(f), int(length))
            for e, x, f, length in zip(
                table.entry, table.exit, table.fee_fen, table.length_m, strict=True
            )
            if int(e) in sample
        }
        start = time.perf_counter()
        results = {
            k: nx.single_source_dijkstra_path_length(graph, stations[k], weight="weight")
            for k in sample
        }
        nx_time += time.perf_counter() - start
        position = {s: k for k, s in enumerate(stations)}
        for k, found in results.items():
            for node_id, total in found.items():
                x = position.get(node_id)
                if x is None or x == k:
                    continue
                assert ours_by_pair[(k, x)] == divmod(int(total), scale), (stations[k], node_id)
                checked += 1
    per_source = nx_time / (len(sample) * len(classes))
    if full:
        measured = nx_time + graph_time
        out.write(
            f"    networkx (single_source_dijkstra_path_length), the same full table measured: "
            f"{measured:.1f} s ({nx_time:.1f} s Dijkstra + {graph_time:.1f} s building 16 graphs)"
            f" — {measured / (ours + built):,.0f}x the engine with its build\n"
            f"    all {checked:,} networkx rows equal the engine's (fee and length)\n"
        )
        return
    extrapolated = per_source * len(stations) * len(CLASSES) + graph_time / len(classes) * len(
        CLASSES
    )
    out.write(
        f"    networkx (single_source_dijkstra_path_length): "
        f"{per_source * 1000:.1f} ms per source; "
        f"measured on {len(sample)} sources x {len(classes)} classes and EXTRAPOLATED to "
        f"{len(stations):,} sources x 16 classes: {extrapolated:.0f} s "
        f"(graph building included) — {extrapolated / (ours + built):,.0f}x the engine with its "
        f"build (run with --full to measure it all)\n"
        f"    the {checked:,} sampled networkx rows equal the engine's (fee and length)\n"
    )


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fees", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    parser.add_argument("--nodes", type=int, default=2_000)
    parser.add_argument(
        "--trips", type=int, default=200_000, help="trips to charge at most (default 200,000)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="time budget for (a) (default 5)"
    )
    parser.add_argument(
        "--sources", type=int, default=20, help="networkx sample of sources (default 20)"
    )
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--full",
        action="store_true",
        help="run networkx on the whole table too (about 40 s) instead of a sample",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    network = generate(args.nodes, args.seed)
    made = time.perf_counter() - start
    engine = FeeEngine(network)
    out.write(
        f"network: {len(network.nodes):,} nodes ({len(network.stations):,} stations), "
        f"{len(network.intervals):,} directed intervals, {len(network.fees):,} interval fees "
        f"(16 classes); generated in {made:.1f} s, seed {args.seed}\n"
    )
    bench_trips(engine, network, args.trips, args.seconds, args.seed, out)
    bench_table(network, args.sources, args.seed, out, full=args.full)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
