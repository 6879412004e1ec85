"""The terminal's compact status list beside a Python dict, at tens of millions of entries.

    python -m benchmarks.statuslist [--sizes 10000000,50000000] [--lookups 200000]
                                    [--batch 1000000] [--changes 10000]
                                    [--file-entries 1000000] [--seed N]

For each size N it generates N random keys (cards of the 31 provincial networks,
unevenly weighted, and OBUs; each with one or two list types), writes the compact
list's base files directly from the arrays (``etcnet.terminal.statuslist.write_base``,
not through N JSON lines) and prints, for the compact list and beside it for a dict
key -> type mask of the same keys on the same machine (what a naive terminal would
hold):

- bytes per entry: the compact list's files on disk (memory-mapped: page cache,
  shared) and its private memory; the dict's growth of resident memory;
- load: ``CompactStatusList.open`` of the mapped files; building the dict from the
  keys already in memory (a naive terminal would parse JSON first: slower still);
- one lookup, median and p99 over ``--lookups`` random cards and OBUs, half of them
  listed: through the public ``lookup(medium, id)`` (the key computed from the
  number, as a lane does) and through the raw key;
- batch lookups per second: ``--batch`` keys through ``lookup_masks``; the dict
  through a comprehension;
- applying a ``--changes`` increment (half removals, half new entries): the compact
  list's ``apply_increment`` of a real signed version file (verification included)
  and its in-memory part alone; the dict's update from the parsed changes.

Separately, building from a real signed full version file of ``--file-entries``
entries (default 1,000,000), through ``install_full``. Figures are printed, never
asserted. Resident memory is read from /proc (Linux).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from etcnet.lists.keys import IssuerTable, decode_key, types_of
from etcnet.lists.versionfile import IN, OUT, Line, Manifest, key_id, write_version
from etcnet.terminal.statuslist import COMPACT_THRESHOLD, CompactStatusList, write_base

#: The provincial networks (发行方路网编号), in the order of a plausible issuer table.
NETWORKS = (
    "3201", "4401", "3301", "3701", "4101", "5101", "4201", "4301", "1301", "3401", "3501",
    "1101", "3101", "5001", "6101", "2101", "3601", "4501", "5301", "1401", "5201", "1501",
    "2201", "1201", "2301", "6201", "6501", "4601", "6401", "6301", "5401",
)  # fmt: skip
#: Share of each network among listed cards and OBUs: skewed, a few large provinces.
NETWORK_WEIGHTS = np.random.default_rng(31).pareto(1.2, len(NETWORKS)) + 0.05
NETWORK_WEIGHTS /= NETWORK_WEIGHTS.sum()
#: Share of each list type among entries: 1 卡挂失 … 7 储值卡余额不足 (illustrative).
TYPE_WEIGHTS = (0.25, 0.10, 0.15, 0.30, 0.10, 0.05, 0.05)
OBU_SHARE = 0.35
TWO_TYPES = 0.15
BASE_VERSION, NEXT_VERSION = "202611210000", "202611210005"
Keys = npt.NDArray[np.uint64]
Masks = npt.NDArray[np.uint8]


# -- data -----------------------------------------------------------------------------


def random_keys(count: int, rng: np.random.Generator) -> Keys:
    """Keys of random cards (network by a skewed weight; serial = year, card kind,
    sequence) and OBUs (contract serial = network, year, sequence)."""
    network = rng.choice(len(NETWORKS), size=count, p=NETWORK_WEIGHTS).astype(np.uint64)
    year = rng.integers(15, 27, size=count, dtype=np.uint64)
    codes = np.array([int(n) for n in NETWORKS], dtype=np.uint64)
    card_serial = (
        year * np.uint64(10**14)
        + rng.integers(22, 24, size=count, dtype=np.uint64) * np.uint64(10**12)
        + rng.integers(0, 10**12, size=count, dtype=np.uint64)
    )
    obu_serial = (
        codes[network] * np.uint64(10**12)
        + year * np.uint64(10**10)
        + rng.integers(0, 10**10, size=count, dtype=np.uint64)
    )
    cards = (network << np.uint64(54)) | card_serial
    obus = (np.uint64(1) << np.uint64(63)) | obu_serial
    keys: Keys = np.where(rng.random(count) < OBU_SHARE, obus, cards)
    return keys


def distinct(keys: Keys) -> Keys:
    """Sorted, without repeats (np.unique, hash-based in numpy 2.3+, is 10x slower here)."""
    ordered = np.sort(keys)
    kept: Keys = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
    return kept


def generate(count: int, rng: np.random.Generator) -> tuple[Keys, Masks]:
    """``count`` distinct sorted keys and their type masks (one or two types)."""
    keys = np.empty(0, dtype=np.uint64)
    while len(keys) < count:
        missing = count - len(keys)
        keys = distinct(np.concatenate((keys, random_keys(missing + missing // 100 + 16, rng))))
    if len(keys) > count:
        keys = np.delete(keys, rng.choice(len(keys), len(keys) - count, replace=False))
    return keys, random_masks(count, rng)


def random_masks(count: int, rng: np.random.Generator) -> Masks:
    bits = np.uint8(1) << rng.choice(7, size=count, p=TYPE_WEIGHTS).astype(np.uint8)
    second = np.uint8(1) << rng.choice(7, size=count, p=TYPE_WEIGHTS).astype(np.uint8)
    masks: Masks = np.where(rng.random(count) < TWO_TYPES, bits | second, bits).astype(np.uint8)
    return masks


def absent_keys(keys: Keys, count: int, rng: np.random.Generator) -> Keys:
    """Random keys of the same shape that are not in ``keys``."""
    found = np.empty(0, dtype=np.uint64)
    while len(found) < count:
        trial = random_keys(count, rng)
        index = np.minimum(np.searchsorted(keys, trial), len(keys) - 1)
        found = distinct(np.concatenate((found, trial[keys[index] != trial])))
    return rng.permutation(found)[:count]


def version_bytes(
    kind: str, version: str, previous: str | None, lines: list[Line], signer: Ed25519PrivateKey
) -> bytes:
    out = io.BytesIO()
    write_version(
        out,
        Manifest(
            kind="full" if kind == "full" else "increment",
            version=version,
            previous=previous,
            publisher="1201",
            created_at="2026-11-21T00:05:00+08:00",
            issuers=NETWORKS,
        ),
        lines,
        signer=signer,
    )
    return out.getvalue()


def line(key: int, list_type: int, status: int, table: IssuerTable) -> Line:
    medium, number = decode_key(key, table)
    return Line(
        medium,
        number,
        list_type,
        status,
        issuer=number[:4],
        since="2026-11-20T16:00:00+00:00",
        reason="挂失",
    )


# -- measuring ------------------------------------------------------------------------


def resident() -> tuple[int, int]:
    """(private, file-backed) resident bytes of this process; (0, 0) without /proc."""
    fields: dict[str, int] = {}
    try:
        with open("/proc/self/status") as status:
            for row in status:
                name, _, value = row.partition(":")
                if name in ("RssAnon", "RssFile"):
                    fields[name] = int(value.split()[0]) * 1024
    except OSError:
        return 0, 0
    return fields.get("RssAnon", 0), fields.get("RssFile", 0)


def latencies_by_key(lookup: Callable[[int], object], keys: list[int]) -> npt.NDArray[np.int64]:
    out = np.empty(len(keys), dtype=np.int64)
    clock = time.perf_counter_ns
    for n, key in enumerate(keys):
        start = clock()
        lookup(key)
        out[n] = clock() - start
    return out


def latencies_by_number(
    lookup: Callable[[str, str], object], numbers: list[tuple[str, str]]
) -> npt.NDArray[np.int64]:
    out = np.empty(len(numbers), dtype=np.int64)
    clock = time.perf_counter_ns
    for n, (medium, number) in enumerate(numbers):
        start = clock()
        lookup(medium, number)
        out[n] = clock() - start
    return out


def spread(nanoseconds: npt.NDArray[np.int64]) -> str:
    median, p99 = np.percentile(nanoseconds, [50, 99]) / 1000
    return f"{median:.2f} / {p99:.2f} µs"


# -- one size -------------------------------------------------------------------------


def bench_size(count: int, args: argparse.Namespace, root: Path, out: TextIO) -> None:
    rng = np.random.default_rng(args.seed + count)
    signer = Ed25519PrivateKey.generate()
    trusted = {key_id(signer.public_key()): signer.public_key()}
    table = IssuerTable(NETWORKS)
    start = time.perf_counter()
    keys, masks = generate(count, rng)
    generated = time.perf_counter() - start
    directory = root / f"list-{count}"
    start = time.perf_counter()
    write_base(
        directory,
        keys,
        masks,
        version=BASE_VERSION,
        issuers=NETWORKS,
        applied_at=dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC),
    )
    written = time.perf_counter() - start
    disk = sum(p.stat().st_size for p in directory.glob("base-*.npy"))

    # The probes: half listed, half not, shuffled; as keys and as (medium, number).
    half = args.lookups // 2
    probe_keys = rng.permutation(
        np.concatenate((keys[rng.integers(0, count, half)], absent_keys(keys, half, rng)))
    ).tolist()
    probe_numbers = [decode_key(k, table) for k in probe_keys]
    batch = rng.permutation(
        np.concatenate(
            (keys[rng.integers(0, count, args.batch // 2)], absent_keys(keys, args.batch // 2, rng))
        )
    )

    # The compact list.
    gc.collect()
    private_before, file_before = resident()
    start = time.perf_counter()
    listed = CompactStatusList.open(directory, trusted_keys=trusted)
    compact_load = time.perf_counter() - start
    private_open = resident()[0] - private_before
    compact_public = latencies_by_number(listed.lookup, probe_numbers)
    compact_raw = latencies_by_key(listed.lookup_key, probe_keys)
    start = time.perf_counter()
    compact_batch = listed.lookup_masks(batch)
    compact_batch_s = time.perf_counter() - start
    file_pages = resident()[1] - file_before

    # The changes: half removals of listed (key, type), half new cards and OBUs.
    removed = rng.choice(count, args.changes // 2, replace=False)
    lines = [line(int(keys[i]), types_of(int(masks[i]))[0], OUT, table) for i in removed.tolist()]
    added = absent_keys(keys, args.changes - len(lines), rng)
    lines += [
        line(int(k), int(t), IN, table)
        for k, t in zip(added.tolist(), rng.integers(1, 8, len(added)).tolist(), strict=True)
    ]
    increment = version_bytes("increment", NEXT_VERSION, BASE_VERSION, lines, signer)
    changes = [(table.key(x.medium, x.id) or 0, 1 << (x.type - 1), x.status) for x in lines]
    applied = listed.apply_increment(increment)
    start = time.perf_counter()
    listed.compact()
    compacted = time.perf_counter() - start

    # The dict a naive terminal would hold.
    gc.collect()
    private_before_dict, _ = resident()
    start = time.perf_counter()
    naive = dict(zip(keys.tolist(), masks.tolist(), strict=True))
    dict_load = time.perf_counter() - start
    gc.collect()
    dict_bytes = resident()[0] - private_before_dict
    get = naive.get

    def dict_lookup(medium: str, number: str) -> tuple[int, ...]:
        key = table.key(medium, number)
        return () if key is None else types_of(get(key, 0))

    dict_public = latencies_by_number(dict_lookup, probe_numbers)
    dict_raw = latencies_by_key(lambda key: get(key, 0), probe_keys)
    batch_list = batch.tolist()
    start = time.perf_counter()
    dict_batch = [get(k, 0) for k in batch_list]
    dict_batch_s = time.perf_counter() - start
    assert dict_batch == compact_batch.tolist(), "the dict and the compact list disagree"
    start = time.perf_counter()
    for key, bit, status in changes:
        mask = get(key, 0)
        mask = mask | bit if status == IN else mask & ~bit
        if mask:
            naive[key] = mask
        else:
            naive.pop(key, None)
    dict_update = time.perf_counter() - start
    touched = np.array([key for key, _, _ in changes], dtype=np.uint64)
    assert listed.lookup_masks(touched).tolist() == [get(int(k), 0) for k in touched.tolist()]

    seconds = applied.seconds
    rows = (
        (
            "bytes per entry",
            f"{disk / count:.1f} on disk, {private_open / count:.1f} private",
            f"{dict_bytes / count:.1f} private",
        ),
        (
            "load",
            f"{compact_load * 1000:.1f} ms (open, mapped)",
            f"{dict_load:.1f} s (from arrays)",
        ),
        ("lookup(medium, id): median / p99", spread(compact_public), spread(dict_public)),
        ("lookup by key: median / p99", spread(compact_raw), spread(dict_raw)),
        (
            f"batch lookups ({len(batch):,} keys)",
            f"{len(batch) / compact_batch_s / 1e6:.2f} M/s",
            f"{len(batch) / dict_batch_s / 1e6:.2f} M/s",
        ),
        (
            f"apply a {len(lines):,}-change increment",
            f"{seconds['total'] * 1000:.0f} ms (in memory {seconds['memory'] * 1000:.1f} ms)",
            f"{dict_update * 1000:.1f} ms (in memory)",
        ),
    )
    out.write(
        f"\n{count:,} keys ({int(listed.size):,} entries; {len(NETWORKS)} networks, "
        f"{OBU_SHARE:.0%} OBUs, {TWO_TYPES:.0%} on two types): generated in {generated:.1f} s, "
        f"base files written (write_base, fsynced) in {written:.1f} s\n"
    )
    out.write(f"{'':<38} {'compact list':>34} {'dict key -> mask':>26}\n")
    for label, compact, plain in rows:
        out.write(f"{label:<38} {compact:>34} {plain:>26}\n")
    out.write(
        f"  the increment in detail: verify (read_version) {seconds['verify'] * 1000:.0f} ms, "
        f"parse {seconds['parse'] * 1000:.0f} ms, in memory {seconds['memory'] * 1000:.1f} ms, "
        f"disk (write, fsync, state.json) {seconds['disk'] * 1000:.1f} ms\n"
        f"  compaction of that overlay into a new base (merge, write, fsync): {compacted:.2f} s\n"
        f"  the compact list's mapped pages resident after the lookups: "
        f"{file_pages / 2**20:,.0f} MiB of {disk / 2**20:,.0f} MiB (page cache, shared)\n"
    )
    out.flush()
    shutil.rmtree(directory, ignore_errors=True)


# -- from a version file --------------------------------------------------------------


def bench_file(entries: int, seed: int, root: Path, out: TextIO) -> None:
    """install_full of a real signed full version file."""
    rng = np.random.default_rng(seed)
    signer = Ed25519PrivateKey.generate()
    table = IssuerTable(NETWORKS)
    keys = random_keys(entries, rng)
    types = rng.choice(7, size=entries, p=TYPE_WEIGHTS) + 1
    lines = [line(k, t, IN, table) for k, t in zip(keys.tolist(), types.tolist(), strict=True)]
    path = root / "full.zip"
    start = time.perf_counter()
    with open(path, "wb") as target:
        write_version(
            target,
            Manifest(
                kind="full",
                version=BASE_VERSION,
                previous=None,
                publisher="1201",
                created_at="2026-11-21T00:00:00+08:00",
                issuers=NETWORKS,
            ),
            lines,
            signer=signer,
        )
    written = time.perf_counter() - start
    del lines
    listed = CompactStatusList.open(
        root / "from-file", trusted_keys={key_id(signer.public_key()): signer.public_key()}
    )
    applied = listed.install_full(path)
    s = applied.seconds
    out.write(
        f"\nbuilding from a signed full version file of {entries:,} entries "
        f"({path.stat().st_size / 2**20:.0f} MiB zip, written by write_version in "
        f"{written:.1f} s): "
        f"install_full {s['total']:.1f} s = verify (read_version) {s['verify']:.1f} s "
        f"+ parse {s['parse']:.1f} s + sort/unique {s['memory']:.2f} s "
        f"+ write/fsync {s['disk']:.2f} s; {applied.keys:,} keys\n"
    )
    shutil.rmtree(root / "from-file", ignore_errors=True)
    path.unlink()


def bench_overlay_copy(out: TextIO) -> None:
    """The per-increment dict copy at its largest: an overlay at the threshold."""
    overlay = dict.fromkeys(range(1 << 40, (1 << 40) + COMPACT_THRESHOLD), 1)
    start = time.perf_counter()
    for _ in range(5):
        copy = dict(overlay)
    took = (time.perf_counter() - start) / 5
    out.write(
        f"\ncopying an overlay at the compaction threshold ({len(copy):,} keys), what an "
        f"increment costs on top at most: {took * 1000:.0f} ms\n"
    )


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.statuslist",
        description=__doc__.split("\n\n")[0] if __doc__ else "",
    )
    parser.add_argument(
        "--sizes",
        default="10000000,50000000",
        help="comma-separated list sizes in keys (default 10,000,000 and 50,000,000)",
    )
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument(
        "--file-entries",
        type=int,
        default=1_000_000,
        help="entries of the full version file built through install_full (0: skip)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--directory", help="where to write the lists (default: a temporary one)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(size.replace("_", "")) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes must be comma-separated integers")
    if min(sizes) < 1_000 or args.lookups < 2 or args.batch < 2 or args.changes < 2:
        parser.error("sizes from 1,000 keys; --lookups, --batch, --changes at least 2")
    with tempfile.TemporaryDirectory(dir=args.directory) as scratch:
        root = Path(scratch)
        out.write(
            f"status list: compact (memory-mapped sorted keys + overlay) vs. a dict "
            f"key -> mask (numpy {np.__version__}, Python {sys.version.split()[0]})\n"
        )
        for size in sizes:
            bench_size(size, args, root, out)
        if args.file_entries:
            bench_file(args.file_entries, args.seed, root, out)
        bench_overlay_copy(out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
