"""The terminal's compact status list: the same answers as a plain set of
(medium, id, type) over any chain of versions, refusals that change nothing, a
consistent list after a kill at any moment, and lookups that never see half an
increment. No database."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcnet.lists.keys import IssuerTable, ListKeyError, mask_of
from etcnet.lists.versionfile import Line, Manifest, key_id, public_key_text, write_version
from etcnet.terminal.statuslist import (
    CompactStatusList,
    ListRefused,
    ListStateError,
    write_base,
)

SIGNER = Ed25519PrivateKey.generate()
TRUSTED = {key_id(SIGNER.public_key()): SIGNER.public_key()}
T0 = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
ISSUERS = ("6101", "4301")

Entry = tuple[str, str, int]  # (medium, id, type)


def version_no(n: int) -> str:
    """The n-th 5-minute version of the test day (Asia/Shanghai wall time)."""
    return (dt.datetime(2026, 11, 21, 10, 0) + dt.timedelta(minutes=5 * n)).strftime("%Y%m%d%H%M")


def card(serial: int, network: str = "6101") -> str:
    return f"{network}{serial:016d}"


def obu(serial: int) -> str:
    return f"4301{serial:012d}"


def version_file(
    kind: str,
    n: int,
    lines: Iterable[Line],
    *,
    previous: int | None = None,
    issuers: Sequence[str] = ISSUERS,
    signer: Ed25519PrivateKey | None = SIGNER,
    list_size: int = 0,
) -> bytes:
    out = io.BytesIO()
    write_version(
        out,
        Manifest(
            kind=kind,
            version=version_no(n),
            previous=None if previous is None else version_no(previous),
            publisher="1201",
            created_at="2026-11-21T10:00:00+08:00",
            issuers=tuple(issuers),
            list_size=list_size,
        ),
        lines,
        signer=signer,
    )
    return out.getvalue()


def full(n: int, entries: Iterable[Entry], **kwargs) -> bytes:
    lines = [Line(medium, number, list_type) for medium, number, list_type in sorted(entries)]
    return version_file("full", n, lines, **kwargs)


def increment(
    n: int, changes: Iterable[tuple[str, str, int, int]], *, previous: int | None = None, **kwargs
) -> bytes:
    lines = [Line(medium, number, t, status) for medium, number, t, status in changes]
    return version_file(
        "increment", n, lines, previous=n - 1 if previous is None else previous, **kwargs
    )


def open_list(directory: Path, **kwargs) -> CompactStatusList:
    return CompactStatusList.open(directory, trusted_keys=TRUSTED, clock=lambda: T0, **kwargs)


def model_types(model: set[Entry], medium: str, number: str) -> tuple[int, ...]:
    return tuple(sorted(t for m, i, t in model if (m, i) == (medium, number)))


# -- the list answers like a plain set ---------------------------------------------

NETWORKS = ("6101", "4301", "1201")
UNIVERSE = [("card", card(s, n)) for n in NETWORKS for s in range(2)] + [
    ("obu", obu(s)) for s in range(2)
]
NEVER_LISTED = [("card", card(1, "9999")), ("obu", obu(99))]

event = st.tuples(st.sampled_from(UNIVERSE), st.sampled_from((1, 2, 7)), st.sampled_from((1, 2)))
step = st.tuples(st.sampled_from(("full", "increment", "increment", "increment")), st.lists(event))


def check_answers(listed: CompactStatusList, model: set[Entry]) -> None:
    keys, masks = [], []
    for medium, number in UNIVERSE + NEVER_LISTED:
        expected = model_types(model, medium, number)
        assert listed.lookup(medium, number) == expected, number
        key = listed.key_of(medium, number)
        if key is not None:
            assert listed.lookup_key(key) == mask_of(expected)
            keys.append(key)
            masks.append(mask_of(expected))
    assert listed.lookup_masks(np.array(keys, dtype=np.uint64)).tolist() == masks
    assert len(listed) == listed.size == len(model)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step, min_size=1, max_size=7),
    reorder=st.booleans(),
    threshold=st.sampled_from((0, 3, 1_000_000)),
)
def test_any_chain_of_versions_answers_like_a_set_and_reopens_the_same(steps, reorder, threshold):
    model: set[Entry] = set()
    table: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        listed = open_list(Path(directory), compact_threshold=threshold)
        for n, (kind, events) in enumerate(steps):
            lines = []
            for (medium, number), list_type, status in events:
                if medium == "card" and number[:4] not in table:
                    table.append(number[:4])
                lines.append((medium, number, list_type, status))
                if status == 1:
                    model.add((medium, number, list_type))
                else:
                    model.discard((medium, number, list_type))
            if kind == "full" or n == 0:
                if reorder and n > 0:
                    table.reverse()  # a new table from the center: keys are re-encoded
                applied = listed.install_full(full(n, model, issuers=table, list_size=len(model)))
            else:
                applied = listed.apply_increment(
                    increment(n, lines, issuers=table, list_size=len(model))
                )
            assert applied.size_matches
            assert listed.version == version_no(n)
            check_answers(listed, model)
        again = open_list(Path(directory))
        assert (again.version, again.base_version) == (listed.version, listed.base_version)
        assert again.issuers == listed.issuers
        check_answers(again, model)
        assert not listed.needs_full


def test_an_increment_applies_its_lines_in_order(tmp_path):
    listed = open_list(tmp_path)
    listed.install_full(full(0, [("card", card(1), 1)]))
    listed.apply_increment(
        increment(
            1,
            [
                ("card", card(1), 1, 2),
                ("card", card(1), 1, 1),  # left and came back: listed
                ("obu", obu(1), 6, 1),
                ("obu", obu(1), 6, 2),  # came and left: not listed
                ("obu", obu(2), 3, 1),
                ("obu", obu(2), 4, 1),
            ],
        )
    )
    assert listed.lookup("card", card(1)) == (1,)
    assert listed.lookup("obu", obu(1)) == ()
    assert listed.lookup("obu", obu(2)) == (3, 4)
    assert len(listed) == 3


def test_an_entry_that_leaves_and_comes_back_in_later_increments_is_listed_again(tmp_path):
    listed = open_list(tmp_path)
    listed.install_full(full(0, [("card", card(1), 1), ("card", card(1), 4)]))
    listed.apply_increment(increment(1, [("card", card(1), 1, 2), ("card", card(1), 4, 2)]))
    assert listed.lookup("card", card(1)) == ()
    listed.apply_increment(increment(2, [("card", card(1), 4, 1), ("card", card(1), 1, 1)]))
    assert listed.lookup("card", card(1)) == (1, 4)
    assert listed.overlay_size == 0  # back to the base's mask: nothing to hold
    assert open_list(tmp_path).lookup("card", card(1)) == (1, 4)


def laid_out(kind: str, n: int, objects: list[dict[str, object]], layout: str) -> bytes:
    """A signed version file whose entries are laid out otherwise than etcnet writes
    them — which read_version also accepts."""
    texts = [json.dumps(o, separators=(",", ":")) for o in objects]
    entries = {
        "one line": "[" + ",".join(texts) + "]",
        "no commas": "[\n" + "\n".join(texts) + "\n]\n",
        "leading commas": "[\n" + "\n,".join(texts) + "\n]\n",
    }[layout].encode()
    manifest = Manifest(
        kind=kind,
        version=version_no(n),
        previous=version_no(n - 1) if kind == "increment" else None,
        publisher="1201",
        created_at="2026-11-21T10:00:00+08:00",
        issuers=ISSUERS,
        count=len(objects),
        sha256=hashlib.sha256(entries).hexdigest(),
    )
    signature = {
        "alg": "ed25519",
        "key_id": key_id(SIGNER.public_key()),
        "value": base64.b64encode(SIGNER.sign(manifest.signed_bytes())).decode(),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("entries.json", entries)
        archive.writestr(
            "manifest.json", json.dumps({**manifest.as_json(), "signature": signature})
        )
    return out.getvalue()


@pytest.mark.parametrize("layout", ["one line", "no commas", "leading commas"])
def test_entries_laid_out_otherwise_are_read_the_same(tmp_path, layout):
    listed = open_list(tmp_path)
    base = [{"medium": "card", "id": card(s), "type": s % 7 + 1} for s in range(5)]
    listed.install_full(laid_out("full", 0, base, layout))
    changes = [
        {"medium": "card", "id": card(1), "type": 2, "status": 2},
        {"medium": "obu", "id": obu(7), "type": 6, "status": 1},
    ]
    listed.apply_increment(laid_out("increment", 1, changes, layout))
    assert [listed.lookup("card", card(s)) for s in range(5)] == [(1,), (), (3,), (4,), (5,)]
    assert listed.lookup("obu", obu(7)) == (6,)


def test_batch_lookups_agree_with_single_lookups(tmp_path):
    rng = random.Random(7)
    entries = {("card", card(rng.randrange(10**16)), rng.randint(1, 7)) for _ in range(3_000)}
    entries |= {("obu", obu(rng.randrange(10**12)), rng.randint(1, 7)) for _ in range(3_000)}
    listed = open_list(tmp_path)
    listed.install_full(full(0, entries))
    changes = [(m, i, t, 2) for m, i, t in rng.sample(sorted(entries), 500)]
    changes += [("obu", obu(rng.randrange(10**12)), 2, 1) for _ in range(500)]
    listed.apply_increment(increment(1, changes))
    probes = [k for m, i, _t in entries if (k := listed.key_of(m, i)) is not None]
    probes += [listed.key_of(m, i) or 0 for m, i, _t, _s in changes]
    probes += [rng.randrange(1 << 64) for _ in range(2_000)] + [0, (1 << 64) - 1]
    rng.shuffle(probes)
    masks = listed.lookup_masks(np.array(probes, dtype=np.uint64))
    assert masks.dtype == np.uint8
    assert masks.tolist() == [listed.lookup_key(k) for k in probes]
    assert listed.lookup_masks(np.array([], dtype=np.uint64)).tolist() == []


def test_an_empty_directory_is_an_empty_list_that_needs_a_full_version(tmp_path):
    listed = open_list(tmp_path / "lists")
    assert (listed.version, listed.base_version, listed.applied_at) == (None, None, None)
    assert len(listed) == 0
    assert listed.lookup("card", card(1)) == ()
    assert listed.lookup_masks(np.array([1, 2], dtype=np.uint64)).tolist() == [0, 0]
    assert listed.needs_full
    assert listed.last_refusal is None
    assert listed.age(T0) is None


def test_cards_of_unknown_networks_are_not_listed_and_malformed_numbers_raise(tmp_path):
    listed = open_list(tmp_path)
    listed.install_full(full(0, [("card", card(5), 2)]))
    assert listed.lookup("card", card(5, "3301")) == ()
    assert listed.key_of("card", card(5, "3301")) is None
    for medium, number in (("card", "6101"), ("obu", "43011902200529X2"), ("ic", card(5))):
        with pytest.raises(ListKeyError):
            listed.lookup(medium, number)
    with pytest.raises(ListKeyError):
        listed.lookup_key(-1)


def test_the_list_reports_its_version_time_and_age(tmp_path):
    listed = open_list(tmp_path)
    applied = listed.install_full(full(0, [("card", card(5), 2), ("card", card(5), 4)]))
    assert (applied.kind, applied.version, applied.lines, applied.keys, applied.size) == (
        "full",
        version_no(0),
        2,
        1,
        2,
    )
    assert set(applied.seconds) == {"verify", "parse", "memory", "disk", "compact", "total"}
    assert listed.applied_at == T0
    assert listed.age(T0 + dt.timedelta(minutes=7)) == dt.timedelta(minutes=7)
    assert listed.issuers.networks == ISSUERS
    assert not listed.needs_full


# -- refusals change nothing -------------------------------------------------------

HELD = [("card", card(1), 1), ("card", card(2, "4301"), 4), ("obu", obu(3), 6)]


@pytest.fixture
def lists_dir(tmp_path):
    return tmp_path / "lists"


@pytest.fixture
def held(lists_dir):
    listed = open_list(lists_dir)
    listed.install_full(full(0, HELD))
    listed.apply_increment(increment(1, [("obu", obu(4), 5, 1), ("card", card(1), 1, 2)]))
    return listed


def observed(listed: CompactStatusList, directory: Path) -> object:
    probes = [(m, i) for m, i, _t in HELD] + [("obu", obu(4))]
    return (
        listed.version,
        listed.base_version,
        listed.size,
        listed.applied_at,
        [listed.lookup(m, i) for m, i in probes],
        sorted(os.listdir(directory)),
        (directory / "state.json").read_bytes(),
    )


def entries_offset(data: bytes) -> tuple[int, int]:
    """Where the compressed entries member lies in the zip."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("entries.json")
    start = info.header_offset
    name_length = int.from_bytes(data[start + 26 : start + 28], "little")
    extra_length = int.from_bytes(data[start + 28 : start + 30], "little")
    begin = start + 30 + name_length + extra_length
    return begin, begin + info.compress_size


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :]


def resigned_manifest(data: bytes, **changes: object) -> bytes:
    """The same file with its manifest changed but the old signature kept."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        manifest = json.loads(source.read("manifest.json"))
        manifest.update(changes)
        target.writestr("entries.json", source.read("entries.json"))
        target.writestr("manifest.json", json.dumps(manifest))
    return out.getvalue()


NEXT = [("card", card(9), 2, 1)]
OTHER_KEY = Ed25519PrivateKey.generate()
GOOD_NEXT = increment(2, NEXT)
BEGIN, END = entries_offset(GOOD_NEXT)
REFUSED = {
    "a flipped byte at the start of the entries": (flipped(GOOD_NEXT, BEGIN), "corrupt"),
    "a flipped byte in the middle of the entries": (
        flipped(GOOD_NEXT, (BEGIN + END) // 2),
        "corrupt",
    ),
    "a flipped byte at the end of the entries": (flipped(GOOD_NEXT, END - 8), "corrupt"),
    "half a file": (GOOD_NEXT[: len(GOOD_NEXT) // 2], "corrupt"),
    "not a zip": (b"PK\x03\x04 nothing", "corrupt"),
    "unsigned": (increment(2, NEXT, signer=None), "unsigned"),
    "signed by an untrusted key": (increment(2, NEXT, signer=OTHER_KEY), "untrusted_key"),
    "a manifest changed after signing": (
        resigned_manifest(GOOD_NEXT, list_size=7),
        "bad_signature",
    ),
    "a gap": (increment(3, NEXT, previous=2), "gap"),
    "the version held again": (increment(1, NEXT, previous=0), "out_of_order"),
    "an older version": (increment(0, NEXT, previous=-1), "out_of_order"),
    "a full version as an increment": (full(2, []), "kind"),
    "an issuer table that does not extend": (
        increment(2, NEXT, issuers=("4301", "6101")),
        "issuers",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_refused_increment_changes_nothing_and_asks_for_a_full_version(held, lists_dir, name):
    data, code = REFUSED[name]
    before = observed(held, lists_dir)
    with pytest.raises(ListRefused) as refused:
        held.apply_increment(data)
    assert refused.value.code == code
    assert observed(held, lists_dir) == before
    assert held.needs_full
    assert held.last_refusal is not None
    assert (held.last_refusal.code, held.last_refusal.at) == (code, T0)
    assert observed(open_list(lists_dir), lists_dir) == before
    # The next good increment still applies; a good full version clears the refusal.
    held.apply_increment(GOOD_NEXT)
    assert held.lookup("card", card(9)) == (2,)
    assert held.needs_full
    held.install_full(full(3, HELD))
    assert not held.needs_full
    assert held.last_refusal is None


def test_every_flipped_byte_of_an_increment_is_refused_or_harmless(held, lists_dir, tmp_path):
    template = tmp_path / "template"
    shutil.copytree(lists_dir, template)
    before = observed(held, lists_dir)
    refused = accepted = 0
    for at in range(0, len(GOOD_NEXT), 3):
        try:
            held.apply_increment(flipped(GOOD_NEXT, at))
        except ListRefused:
            assert observed(held, lists_dir) == before, at
            refused += 1
        else:  # a byte no check covers (a zip header's date): the same content
            assert held.lookup("card", card(9)) == (2,)
            accepted += 1
            shutil.rmtree(lists_dir)
            shutil.copytree(template, lists_dir)
            held = open_list(lists_dir)
    assert refused > accepted


def test_refused_full_versions_change_nothing(held, lists_dir):
    before = observed(held, lists_dir)
    for data, code in (
        (GOOD_NEXT, "kind"),
        (full(0, []), "out_of_order"),
        (full(2, [], signer=None), "unsigned"),
        (flipped(full(2, HELD), entries_offset(full(2, HELD))[0] + 3), "corrupt"),
    ):
        with pytest.raises(ListRefused) as refused:
            held.install_full(data)
        assert refused.value.code == code
        assert observed(held, lists_dir) == before
        assert held.needs_full


def test_an_increment_before_any_full_version_is_refused(tmp_path):
    listed = open_list(tmp_path)
    with pytest.raises(ListRefused) as refused:
        listed.apply_increment(increment(1, NEXT))
    assert refused.value.code == "no_base"
    assert listed.version is None
    assert os.listdir(tmp_path) == []
    assert listed.needs_full


def test_the_same_full_version_again_is_taken(held):
    held.install_full(full(1, HELD))
    assert held.version == version_no(1)
    assert held.lookup("obu", obu(4)) == ()


# -- files on disk -----------------------------------------------------------------


def test_files_the_state_does_not_name_are_ignored_and_removed(held, lists_dir):
    named = sorted(os.listdir(lists_dir))
    for stray in ("base-202611211000-00000000.keys.npy", "inc-202611211010-00.npy"):
        (lists_dir / stray).write_bytes(b"half written")
    (lists_dir / ".state-1234.tmp").write_text('{"format": "garbage"')
    (lists_dir / "notes.txt").write_text("not ours")
    again = open_list(lists_dir)
    assert again.lookup("obu", obu(4)) == (5,)
    assert sorted(os.listdir(lists_dir)) == sorted([*named, "notes.txt"])


def test_a_state_naming_a_missing_file_is_reported(held, lists_dir):
    state = json.loads((lists_dir / "state.json").read_text())
    (lists_dir / state["increments"][0]["file"]).unlink()
    with pytest.raises(ListStateError):
        open_list(lists_dir)


def test_compaction_keeps_the_answers_and_drops_the_old_files(held, lists_dir):
    before = [held.lookup(m, i) for m, i in UNIVERSE + [(m, i) for m, i, _t in HELD]]
    old_files = set(os.listdir(lists_dir)) - {"state.json"}
    assert held.overlay_size == 2
    assert held.compact()
    assert not held.compact()
    assert held.overlay_size == 0
    assert held.base_version == held.version == version_no(1)
    assert [held.lookup(m, i) for m, i in UNIVERSE + [(m, i) for m, i, _t in HELD]] == before
    assert not old_files & set(os.listdir(lists_dir))
    again = open_list(lists_dir)
    assert [again.lookup(m, i) for m, i in UNIVERSE + [(m, i) for m, i, _t in HELD]] == before
    assert len(again) == len(held) == 3


def test_an_increment_past_the_threshold_compacts(tmp_path):
    listed = open_list(tmp_path, compact_threshold=2)
    listed.install_full(full(0, HELD))
    applied = listed.apply_increment(increment(1, [("obu", obu(s), 1, 1) for s in range(3)]))
    assert applied.compacted
    assert listed.overlay_size == 0
    assert listed.base_version == version_no(1)
    assert len(listed) == 6


def test_write_base_provisions_a_directory(tmp_path):
    keys = np.array([1, 5, 1 << 63 | 7], dtype=np.uint64)
    write_base(tmp_path, keys, [1, 3, 64], version=version_no(0), issuers=ISSUERS, applied_at=T0)
    listed = open_list(tmp_path)
    assert listed.lookup("obu", f"{7:016d}") == (7,)
    assert listed.lookup_masks(keys).tolist() == [1, 3, 64]
    assert len(listed) == 4
    with pytest.raises(ValueError, match="ascending"):
        write_base(tmp_path, keys[::-1], [1, 3, 64], version="1", issuers=(), applied_at=T0)
    with pytest.raises(ValueError, match="1 to 127"):
        write_base(tmp_path, keys, [1, 0, 64], version="1", issuers=(), applied_at=T0)


# -- a kill at any moment ----------------------------------------------------------

CHILD = """
import sys, time
from etcnet.lists.versionfile import key_id, public_key_from_text
from etcnet.terminal import statuslist

directory, increment, pause, key = sys.argv[1:5]
public = public_key_from_text(key)
seen = {}

def checkpoint(step):
    seen[step] = seen.get(step, 0) + 1
    print(f"{step}:{seen[step]}", flush=True)
    if f"{step}:{seen[step]}" == pause:
        time.sleep(60)

statuslist.files._checkpoint = checkpoint  # the seam lives where _step reads it
listed = statuslist.CompactStatusList.open(
    directory, trusted_keys={key_id(public): public}, compact_threshold=1_000
)
print("ready", flush=True)
listed.apply_increment(increment)
print("done", flush=True)
"""


def run_child(
    directory: Path, increment_path: Path, *, pause: str = "", kill_after: float = -1
) -> dict[str, float]:
    """Runs the child; kills it when it prints ``pause``, or ``kill_after`` seconds
    after it is ready. Returns what it printed, each with the seconds since ready."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(directory),
            str(increment_path),
            pause,
            public_key_text(SIGNER.public_key()),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    printed: dict[str, float] = {}
    ready_at = time.perf_counter()
    try:
        if kill_after >= 0:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
            return printed
        for line in child.stdout:
            if line.strip() == "ready":
                ready_at = time.perf_counter()
            printed[line.strip()] = time.perf_counter() - ready_at
            if line.strip() == pause:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.wait(timeout=30)
    return printed


@pytest.fixture(scope="module")
def fault_setup(tmp_path_factory):
    """A list of 20,000 entries and a 20,000-line increment (changes, removals,
    new cards), with the answers before and after each version."""
    root = tmp_path_factory.mktemp("fault")
    rng = random.Random(11)
    entries = {("card", card(rng.randrange(10**16)), rng.randint(1, 7)) for _ in range(10_000)}
    entries |= {("obu", obu(rng.randrange(10**12)), rng.randint(1, 7)) for _ in range(10_000)}
    removed = rng.sample(sorted(entries), 10_000)
    added = [
        ("card", card(rng.randrange(10**16), "1201"), rng.randint(1, 7)) for _ in range(10_000)
    ]
    first = [(m, i, t, 2) for m, i, t in removed] + [(m, i, t, 1) for m, i, t in added]
    second = [("obu", obu(s), 3, 1) for s in range(50)] + [(m, i, t, 2) for m, i, t in added[:50]]
    tables = ("6101", "4301", "1201")
    files = {
        "inc1": increment(1, first, issuers=tables),
        "inc2": increment(2, second, issuers=tables),
    }
    for name, data in files.items():
        (root / f"{name}.zip").write_bytes(data)
    start = root / "start"
    open_list(start).install_full(full(0, entries))
    probes = sorted({(m, i) for m, i, _t in entries} | {(m, i) for m, i, _t, _s in first + second})
    reference = root / "reference"
    shutil.copytree(start, reference)
    listed = open_list(reference, compact_threshold=1_000)
    table = IssuerTable(tables)
    keyed = np.array([table.key(m, i) for m, i in probes], dtype=np.uint64)
    answers = {"old": (listed.version, listed.lookup_masks(keyed).tolist(), len(listed))}
    listed.apply_increment(root / "inc1.zip")
    answers["new"] = (listed.version, listed.lookup_masks(keyed).tolist(), len(listed))
    listed.apply_increment(root / "inc2.zip")
    answers["next"] = (listed.version, listed.lookup_masks(keyed).tolist(), len(listed))
    return root, keyed, answers


def after_kill(root: Path, directory: Path, keyed: np.ndarray, answers: dict) -> str:
    """Which list the directory holds now — it must be exactly one of them — and
    that the next versions still apply."""
    listed = open_list(directory)
    seen = (listed.version, listed.lookup_masks(keyed).tolist(), len(listed))
    which = next((name for name in ("old", "new") if answers[name] == seen), "a mix")
    assert which != "a mix", "the list after a kill is neither the old one nor the new one"
    state = json.loads((directory / "state.json").read_text())
    named = {
        state["base"]["keys"],
        state["base"]["masks"],
        *(i["file"] for i in state["increments"]),
    }
    assert set(os.listdir(directory)) == named | {"state.json"}  # leftovers removed
    if which == "old":
        listed.apply_increment(root / "inc1.zip")
    listed.apply_increment(root / "inc2.zip")
    assert (listed.version, listed.lookup_masks(keyed).tolist(), len(listed)) == answers["next"]
    return which


KILL_POINTS = {
    "data_written:1": "old",  # the increment's file written, state.json not yet
    "state_written:1": "old",  # the new state in its temporary file
    "committed:1": "new",  # state.json replaced: the increment is applied
    "data_written:2": "new",  # compaction: the merged base written
    "state_written:2": "new",
}


def test_a_kill_at_any_moment_leaves_the_old_list_or_the_new_one(fault_setup):
    root, keyed, answers = fault_setup
    directory = root / "whole"
    shutil.copytree(root / "start", directory)
    printed = run_child(directory, root / "inc1.zip")
    assert list(printed)[-1] == "done"
    assert "committed:2" in printed  # the increment and then a compaction
    assert after_kill(root, directory, keyed, answers) == "new"
    for n, (pause, expected) in enumerate(KILL_POINTS.items()):
        directory = root / f"at-{n}"
        shutil.copytree(root / "start", directory)
        assert list(run_child(directory, root / "inc1.zip", pause=pause))[-1] == pause
        assert after_kill(root, directory, keyed, answers) == expected, pause
    # And at moments nobody chose: mostly while the files are written.
    rng = random.Random(3)
    writing = printed["data_written:1"] * 0.95, printed["committed:2"] * 1.02
    for n in range(6):
        directory = root / f"random-{n}"
        shutil.copytree(root / "start", directory)
        run_child(directory, root / "inc1.zip", kill_after=rng.uniform(*writing))
        assert after_kill(root, directory, keyed, answers) in ("old", "new")


# -- lookups from another thread ---------------------------------------------------


def test_lookups_from_another_thread_never_see_half_an_increment(tmp_path):
    listed = open_list(tmp_path)
    pair = ("obu", obu(900)), ("obu", obu(901))
    listed.install_full(full(0, [(m, i, 1) for m, i in pair]))
    pair_keys = np.array([listed.key_of(m, i) for m, i in pair], dtype=np.uint64)
    rounds = 40
    done = threading.Event()
    failures: list[str] = []

    def writer() -> None:
        try:
            for k in range(1, rounds + 1):
                old_type, new_type = (k - 1) % 7 + 1, k % 7 + 1
                changes = [(m, i, old_type, 2) for m, i in pair]
                changes += [(m, i, new_type, 1) for m, i in pair]
                changes += [("obu", obu(2 * k), 2, 1), ("obu", obu(2 * k + 1), 2, 1)]
                listed.apply_increment(increment(k, changes))
        finally:
            done.set()

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=writer)
    checks = 0
    try:
        thread.start()
        while not done.is_set() or checks == 0:
            first, second = listed.lookup_masks(pair_keys).tolist()
            if first != second or bin(first).count("1") != 1:
                failures.append(f"the pair reads {first:#b} and {second:#b}")
            for k in range(1, rounds + 1):
                if listed.lookup("obu", obu(2 * k)) and not listed.lookup("obu", obu(2 * k + 1)):
                    failures.append(f"increment {k}: its first OBU without its second")
            checks += 1
    finally:
        sys.setswitchinterval(switch)
        thread.join()
    assert failures == []
    assert checks > 1
    assert listed.version == version_no(rounds)
    assert len(listed) == 2 + 2 * rounds


def test_a_lookup_does_not_wait_for_a_writer(held):
    with held._write_lock:  # a writer in the middle of an increment
        assert held.lookup("obu", obu(4)) == (5,)
