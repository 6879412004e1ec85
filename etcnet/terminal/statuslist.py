"""The terminal's compact status list (docs/lists.md): tens of millions of cards
and OBUs answered in microseconds, an increment every five minutes applied
while the lanes keep looking up, and a consistent list after a crash.

In memory the list is one immutable snapshot:

- **base**: the keys of the last full version (or of the last compaction),
  sorted and unique, a memory-mapped ``uint64`` array, and a parallel ``uint8``
  array of type masks (type *t* is bit *t* − 1) — 9 bytes an entry, in the page
  cache rather than in the process;
- **overlay**: a dict key → effective mask for each key the increments since the
  base changed (0: no longer listed); it holds only keys whose mask differs from
  the base's;
- the issuer table, the version and the size.

A lookup reads the snapshot reference once, checks the overlay, then binary
searches the base; it takes no lock. The writers (``install_full``,
``apply_increment``, ``compact``; serialised among themselves by a lock of
their own) build a new snapshot beside the old one — an increment copies the
overlay and changes the copy — and publish it with one reference assignment,
so a lookup on another thread sees the list before or after a version, never
half of one.

On disk, in the directory given to ``open`` (the terminal's ``lists/``)::

    state.json                        the commit point: names everything below
    base-<version>-<token>.keys.npy   the sorted uint64 keys
    base-<version>-<token>.masks.npy  their uint8 type masks
    inc-<version>-<token>.npy         one applied increment: (key uint64, mask
                                      uint8) records, each changed key's mask
                                      once the increment is applied

Every data file is written under a new name and fsynced, then the directory is
fsynced, then ``state.json`` is replaced atomically (temporary file, fsync,
``os.replace``, directory fsync). A process killed at any moment restarts from
the last ``state.json`` that was completely written; files it does not name are
leftovers of an interrupted write, ignored and removed. Files a new state no
longer names are removed only once that state is durable. One process writes a
directory at a time.

Compaction: when an applied increment leaves more than ``compact_threshold``
keys (default 1,000,000) in the overlay, ``apply_increment`` merges the overlay
into a new base right after committing the increment (a second commit; at 50
million entries about a second, during which lookups go on against the old
snapshot). ``compact()`` does the same on demand. The threshold bounds both the
overlay's memory (~100 bytes a key) and the cost of copying it per increment.

``len()`` and ``size`` count (medium, id, type) entries — a card on two types
counts twice — the same figure as a version file's ``list_size``.

Pure: numpy, the standard library and ``etcnet.lists`` (keys, version files).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import threading
import time
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NoReturn

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from etcnet.lists.keys import IssuerTable, ListKeyError, types_of
from etcnet.lists.versionfile import (
    ENTRIES,
    IN,
    MANIFEST,
    VersionFile,
    VersionFileError,
    read_version,
)

__all__ = [
    "COMPACT_THRESHOLD",
    "FORMAT",
    "Applied",
    "CompactStatusList",
    "ListRefused",
    "ListStateError",
    "Refusal",
    "RefusalCode",
    "write_base",
]

FORMAT = "etcnet-compact-status-list/1"
STATE = "state.json"
#: Overlay keys above which an applied increment is followed by a compaction.
COMPACT_THRESHOLD = 1_000_000

Keys = npt.NDArray[np.uint64]
Masks = npt.NDArray[np.uint8]

#: Why a version file was refused (``ListRefused.code``, ``Refusal.code``).
RefusalCode = Literal[
    "no_base",  # an increment, but no full version is held
    "gap",  # the increment's ``previous`` is not the version held
    "out_of_order",  # not newer than the version held (a repeat, or older)
    "kind",  # a full version given as an increment, or the reverse
    "issuers",  # the increment's issuer table does not extend the one held
    "corrupt",  # not a readable, complete, well-formed version file
    "unsigned",  # no signature
    "untrusted_key",  # signed by a key the terminal does not trust
    "bad_signature",  # the signature does not verify
]

_INCREMENT = np.dtype([("key", "<u8"), ("mask", "u1")])
_TYPES_OF = tuple(types_of(mask) for mask in range(256))
_POPCOUNT = np.array([bin(mask).count("1") for mask in range(256)], dtype=np.int64)
_KEY_LIMIT = 1 << 64
_SORT_BATCH = 64  # batches larger than this are sorted first (cache-friendly search)
_CHUNK = 1 << 22
#: What reading a damaged zip can raise besides VersionFileError (a bad CRC, a
#: broken deflate stream, bytes that are not UTF-8, an encrypted member).
_BROKEN = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    RuntimeError,
    NotImplementedError,
)
#: What reading entries again can raise when the file is not what was verified.
_UNREADABLE = (
    VersionFileError,
    ListKeyError,
    KeyError,
    TypeError,
    ValueError,
    OSError,
    zipfile.BadZipFile,
)

#: Test seam: called with the name of each durability step ("data_written",
#: "state_written", "committed") so a test can kill the process exactly there.
#: None — nothing is called — outside tests.
_checkpoint: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if _checkpoint is not None:
        _checkpoint(name)


class ListRefused(Exception):
    """A version file the list did not take; nothing changed. ``code`` is a
    ``RefusalCode``; ``version`` the refused file's version when it could be read."""

    def __init__(self, code: RefusalCode, message: str, *, version: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code: RefusalCode = code
        self.message = message
        self.version = version


class ListStateError(Exception):
    """The directory's state cannot be read back (a damaged disk, files removed by
    hand). The terminal can move the directory aside and install a full version."""

    code = "damaged"


@dataclass(frozen=True, slots=True)
class Refusal:
    code: RefusalCode
    message: str
    version: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """What ``install_full`` or ``apply_increment`` did, for the sync loop's log."""

    kind: Literal["full", "increment"]
    version: str
    previous: str | None
    lines: int
    keys: int  # distinct keys changed (an increment) or held (a full version)
    size: int  # (medium, id, type) entries on the list now
    list_size: int  # what the publisher says the size is
    #: seconds: verify (read_version), parse, memory, disk, compact, total
    seconds: Mapping[str, float]
    compacted: bool = False
    compact_error: str | None = None  # a failed compaction (the version is applied)

    @property
    def size_matches(self) -> bool:
        return self.size == self.list_size


@dataclass(frozen=True, eq=False)
class _Snapshot:
    """One consistent list; never changed once published."""

    version: str | None
    base_version: str | None
    applied_at: dt.datetime | None
    issuers: IssuerTable  # never mutated: lookups only read it
    keys: Keys
    masks: Masks
    overlay: dict[int, int]
    size: int
    state: Mapping[str, Any] = field(repr=False)

    # init=False: dataclasses.replace() must not hand a new overlay the old one's arrays.
    _arrays: list[tuple[Keys, Masks]] = field(default_factory=list, init=False, repr=False)

    def overlay_arrays(self) -> tuple[Keys, Masks]:
        """The overlay as sorted arrays, built on the first batch lookup (two
        threads may both build them: the same arrays, and no lock to wait on)."""
        if not self._arrays:
            keys = np.fromiter(self.overlay.keys(), dtype=np.uint64, count=len(self.overlay))
            masks = np.fromiter(self.overlay.values(), dtype=np.uint8, count=len(self.overlay))
            order = np.argsort(keys)
            self._arrays.append((keys[order], masks[order]))
        return self._arrays[0]


def _empty_snapshot() -> _Snapshot:
    return _Snapshot(
        version=None,
        base_version=None,
        applied_at=None,
        issuers=IssuerTable(),
        keys=np.empty(0, dtype=np.uint64),
        masks=np.empty(0, dtype=np.uint8),
        overlay={},
        size=0,
        state={},
    )


class CompactStatusList:
    """The status list a lane checks every card and OBU against (implements
    ``etcnet.terminal.reference.StatusListCheck``). Open it with ``open``."""

    def __init__(
        self,
        directory: Path,
        snapshot: _Snapshot,
        *,
        trusted_keys: Mapping[str, Ed25519PublicKey],
        compact_threshold: int,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._directory = directory
        self._snap = snapshot
        self._trusted = dict(trusted_keys)
        self._compact_threshold = compact_threshold
        self._clock = clock
        self._write_lock = threading.Lock()
        self._refusal: Refusal | None = None

    # -- opening ----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        trusted_keys: Mapping[str, Ed25519PublicKey],
        compact_threshold: int = COMPACT_THRESHOLD,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> CompactStatusList:
        """The list ``state.json`` names: the base memory-mapped, the increments
        replayed into the overlay. An empty or new directory gives an empty list
        (version None, ``needs_full``). Leftovers of an interrupted write are
        removed. Raises ``ListStateError`` when the named files cannot be read."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state_path = path / STATE
        snapshot = _load(path, state_path) if state_path.exists() else _empty_snapshot()
        _remove_unnamed(path, snapshot.state)
        return cls(
            path,
            snapshot,
            trusted_keys=trusted_keys,
            compact_threshold=compact_threshold,
            clock=clock or _utc_now,
        )

    # -- what the list says -------------------------------------------------------

    @property
    def version(self) -> str | None:
        return self._snap.version

    @property
    def base_version(self) -> str | None:
        """The version the base files hold (the last full version or compaction)."""
        return self._snap.base_version

    @property
    def applied_at(self) -> dt.datetime | None:
        """When (UTC) this terminal applied the version it holds."""
        return self._snap.applied_at

    @property
    def size(self) -> int:
        """(medium, id, type) entries on the list."""
        return self._snap.size

    @property
    def issuers(self) -> IssuerTable:
        return IssuerTable(self._snap.issuers.networks)

    @property
    def overlay_size(self) -> int:
        return len(self._snap.overlay)

    @property
    def needs_full(self) -> bool:
        """True while no full version is held or since a version file was refused;
        a good ``install_full`` clears it."""
        return self._snap.version is None or self._refusal is not None

    @property
    def last_refusal(self) -> Refusal | None:
        return self._refusal

    def trust(self, key_id: str, key: Ed25519PublicKey) -> None:
        """Accept files signed by ``key`` from now on (the terminal pins the
        center's key the first time it learns it)."""
        with self._write_lock:
            self._trusted = {**self._trusted, key_id: key}

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        """How long ago the version held was applied; None without a list."""
        if now.tzinfo is None:
            raise ValueError("now must carry its offset")
        applied = self._snap.applied_at
        return None if applied is None else now - applied

    def __len__(self) -> int:
        return self._snap.size

    def key_of(self, medium: str, medium_id: str) -> int | None:
        """The key of a card or OBU by the issuer table held; None for a card whose
        network is not in it. Raises ``ListKeyError`` on a malformed number."""
        return self._snap.issuers.key(medium, medium_id)

    def lookup(self, medium: str, medium_id: str) -> tuple[int, ...]:
        """The list types of a card or OBU, ascending; () when it is not listed.
        Raises ``ListKeyError`` on a malformed number."""
        snap = self._snap
        key = snap.issuers.key(medium, medium_id)
        if key is None:
            return ()
        return _TYPES_OF[_mask(snap, key)]

    def lookup_key(self, key: int) -> int:
        """The type mask of a key (0: not listed)."""
        if not 0 <= key < _KEY_LIMIT:
            raise ListKeyError("key", f"must be an unsigned 64-bit integer, got {key}")
        return _mask(self._snap, key)

    def lookup_masks(self, keys: npt.ArrayLike) -> Masks:
        """The type masks of many keys at once (0: not listed), one snapshot."""
        snap = self._snap
        wanted = np.asarray(keys, dtype=np.uint64).ravel()
        found = _search(snap.keys, snap.masks, wanted)
        if snap.overlay:
            over_keys, over_masks = snap.overlay_arrays()
            index = np.searchsorted(over_keys, wanted)
            np.minimum(index, len(over_keys) - 1, out=index)
            hit = over_keys[index] == wanted
            found[hit] = over_masks[index[hit]]
        return found

    # -- taking versions ----------------------------------------------------------

    def install_full(self, source: str | Path | bytes) -> Applied:
        """Replaces the list with a full version file, verified whole (signature by
        a trusted key). Refuses — ``ListRefused``, nothing changed, ``needs_full``
        stays — an unreadable or badly signed file, an increment, or a version older
        than the one held (the same version again is taken). On success the
        refusal is forgotten."""
        with self._write_lock:
            started = time.perf_counter()
            snap = self._snap
            verified = self._verify(source)
            manifest = verified.manifest
            if manifest.kind != "full":
                self._refuse("kind", "an increment is not a full version", manifest.version)
            if snap.version is not None and manifest.version < snap.version:
                self._refuse(
                    "out_of_order",
                    f"full version {manifest.version} is older than {snap.version}",
                    manifest.version,
                )
            checked = time.perf_counter()
            issuers = verified.issuers
            readable = source if isinstance(source, bytes) else Path(source)
            keys_out: array[int] = array("Q")
            bits_out: array[int] = array("B")
            lines = 0
            key_of = issuers.key
            try:
                for block in _entries(readable, manifest.sha256):
                    # "or 0" for the type checker: read_version checked every network
                    keys_out.extend([key_of(i["medium"], i["id"]) or 0 for i in block])
                    bits_out.extend([1 << (i["type"] - 1) for i in block])
                    lines += len(block)
            except _UNREADABLE as error:
                self._refuse("corrupt", f"the entries cannot be read again ({error})", None)
            parsed = time.perf_counter()
            keys, masks = _unique_or(
                np.frombuffer(keys_out, dtype=np.uint64), np.frombuffer(bits_out, dtype=np.uint8)
            )
            del keys_out, bits_out
            size = int(_POPCOUNT[masks].sum())
            built = time.perf_counter()
            now = self._clock().astimezone(dt.UTC)
            state = _state(
                version=manifest.version,
                base_version=manifest.version,
                issuers=issuers.networks,
                base=_write_base_files(self._directory, manifest.version, keys, masks),
                increments=[],
                size=size,
                applied_at=now,
            )
            _commit(self._directory, state)
            self._snap = _open_snapshot(self._directory, state, overlay={})
            self._refusal = None
            _remove_unnamed(self._directory, state)
            done = time.perf_counter()
            return Applied(
                kind="full",
                version=manifest.version,
                previous=None,
                lines=lines,
                keys=len(keys),
                size=size,
                list_size=manifest.list_size,
                seconds=_seconds(started, checked, parsed, built, done, done),
            )

    def apply_increment(self, source: str | Path | bytes) -> Applied:
        """Applies an increment file, verified whole, whose ``previous`` is the
        version held. Refuses — ``ListRefused``, nothing changed, ``needs_full``
        set — with code ``no_base``, ``out_of_order``, ``gap``, ``kind``,
        ``issuers`` or one of the file's (``corrupt``, ``unsigned``,
        ``untrusted_key``, ``bad_signature``). Durable before it returns; then
        compacts when the overlay has grown past the threshold."""
        with self._write_lock:
            started = time.perf_counter()
            snap = self._snap
            if isinstance(source, bytes):
                data = source
            else:
                try:  # read once: what is verified is what is applied
                    data = Path(source).read_bytes()
                except OSError as error:
                    self._refuse("corrupt", f"cannot read {source} ({error})", None)
            verified = self._verify(data)
            manifest = verified.manifest
            if manifest.kind != "increment":
                self._refuse("kind", "a full version is not an increment", manifest.version)
            if snap.version is None:
                self._refuse("no_base", "no full version is held", manifest.version)
            if manifest.version <= snap.version:
                self._refuse(
                    "out_of_order",
                    f"increment {manifest.version} is not newer than {snap.version}",
                    manifest.version,
                )
            if manifest.previous != snap.version:
                self._refuse(
                    "gap",
                    f"increment {manifest.version} applies to {manifest.previous}, "
                    f"the list is at {snap.version}",
                    manifest.version,
                )
            issuers = verified.issuers
            if not issuers.extends(snap.issuers):
                self._refuse(
                    "issuers",
                    "the increment's issuer table does not extend the one held",
                    manifest.version,
                )
            checked = time.perf_counter()
            changes: dict[int, list[int]] = {}
            lines = 0
            key_of = issuers.key
            try:
                for block in _entries(data, manifest.sha256):
                    for item in block:  # in order: a later line about the same key wins
                        key = key_of(item["medium"], item["id"]) or 0
                        bit = 1 << (item["type"] - 1)
                        change = changes.get(key)
                        if change is None:
                            change = changes[key] = [0, 0]  # bits set, bits cleared
                        if item.get("status", IN) == IN:
                            change[0] |= bit
                            change[1] &= ~bit
                        else:
                            change[1] |= bit
                            change[0] &= ~bit
                    lines += len(block)
            except _UNREADABLE as error:
                self._refuse(
                    "corrupt", f"the entries cannot be read again ({error})", manifest.version
                )
            parsed = time.perf_counter()
            keys = np.fromiter(changes.keys(), dtype=np.uint64, count=len(changes))
            base_masks = _search(snap.keys, snap.masks, keys).tolist()
            overlay = snap.overlay
            old = [overlay.get(k, b) for k, b in zip(changes, base_masks, strict=True)]
            new = [(m & ~c[1]) | c[0] for m, c in zip(old, changes.values(), strict=True)]
            new_masks = np.array(new, dtype=np.uint8)
            size = (
                snap.size
                + int(_POPCOUNT[new_masks].sum())
                - int(_POPCOUNT[np.array(old, dtype=np.intp)].sum())
            )
            new_overlay = dict(overlay)
            _overlay_into(new_overlay, changes, new, base_masks)
            computed = time.perf_counter()
            now = self._clock().astimezone(dt.UTC)
            record = np.empty(len(keys), dtype=_INCREMENT)
            record["key"] = keys
            record["mask"] = new_masks
            name = _new_name(f"inc-{manifest.version}", ".npy")
            _write_npy(self._directory / name, record)
            _fsync_directory(self._directory)
            _step("data_written")
            state = dict(snap.state)
            state.update(
                version=manifest.version,
                issuers=list(issuers.networks),
                size=size,
                applied_at=now.isoformat(),  # UTC
                increments=[
                    *snap.state["increments"],
                    {
                        "version": manifest.version,
                        "previous": manifest.previous,
                        "file": name,
                        "lines": lines,
                        "keys": len(keys),
                    },
                ],
            )
            _commit(self._directory, state)
            self._snap = replace(
                snap,
                version=manifest.version,
                applied_at=now,
                issuers=issuers,
                overlay=new_overlay,
                size=size,
                state=state,
            )
            written = time.perf_counter()
            compacted, compact_error = False, None
            if len(new_overlay) > self._compact_threshold:
                try:
                    compacted = self._compact_locked()
                except OSError as error:  # the increment is committed; retried next time
                    compact_error = str(error)
            done = time.perf_counter()
            return Applied(
                kind="increment",
                version=manifest.version,
                previous=manifest.previous,
                lines=lines,
                keys=len(keys),
                size=size,
                list_size=manifest.list_size,
                seconds=_seconds(started, checked, parsed, computed, written, done),
                compacted=compacted,
                compact_error=compact_error,
            )

    def compact(self) -> bool:
        """Merges the overlay into a new base (the list does not change; its files
        do). False when there was nothing to merge."""
        with self._write_lock:
            return self._compact_locked()

    # -- inside -------------------------------------------------------------------

    def _compact_locked(self) -> bool:
        snap = self._snap
        if not snap.overlay or snap.version is None:
            return False
        over_keys, over_masks = snap.overlay_arrays()
        base_keys, base_masks = snap.keys, snap.masks
        index = np.searchsorted(base_keys, over_keys)
        within = index < len(base_keys)
        held = np.zeros(len(over_keys), dtype=bool)
        held[within] = base_keys[index[within]] == over_keys[within]
        masks = np.array(base_masks, dtype=np.uint8)  # a copy in memory
        masks[index[held]] = over_masks[held]
        added = ~held & (over_masks != 0)
        keys = np.insert(base_keys, index[added], over_keys[added])
        masks = np.insert(masks, index[added], over_masks[added])
        if not masks.all():
            kept = masks != 0
            keys, masks = keys[kept], masks[kept]
        state = dict(snap.state)
        state.update(
            base_version=snap.version,
            base=_write_base_files(self._directory, snap.version, keys, masks),
            increments=[],
        )
        _commit(self._directory, state)
        self._snap = _open_snapshot(self._directory, state, overlay={})
        _remove_unnamed(self._directory, state)
        return True

    def _verify(self, source: str | Path | bytes) -> VersionFile:
        try:
            return read_version(source, trusted_keys=self._trusted)
        except VersionFileError as error:
            self._refuse(_refusal_code(error, source, self._trusted), str(error), None)
        except _BROKEN as error:  # a damaged member: read_version lets these through
            self._refuse("corrupt", f"not a readable version file ({error!r})", None)

    def _refuse(self, code: RefusalCode, message: str, version: str | None) -> NoReturn:
        self._refusal = Refusal(code, message, version, self._clock())
        raise ListRefused(code, message, version=version)


def _seconds(*marks: float) -> dict[str, float]:
    """Applied.seconds from the clock read at the start and after each stage."""
    stages = ("verify", "parse", "memory", "disk", "compact")
    spans = {n: end - start for n, start, end in zip(stages, marks[:-1], marks[1:], strict=True)}
    return {**spans, "total": marks[-1] - marks[0]}


# -- provisioning ---------------------------------------------------------------------


def write_base(
    directory: str | Path,
    keys: npt.ArrayLike,
    masks: npt.ArrayLike,
    *,
    version: str,
    issuers: Sequence[str],
    applied_at: dt.datetime,
) -> None:
    """Makes ``directory`` hold a list built from arrays — keys strictly
    ascending, masks non-zero — as if a full version had been installed.
    UNVERIFIED: for tools and benchmarks that build a list directory no process
    has open; a terminal only takes signed version files (``install_full``)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    key_array = np.ascontiguousarray(keys, dtype=np.uint64)
    mask_array = np.ascontiguousarray(masks, dtype=np.uint8)
    if key_array.ndim != 1 or key_array.shape != mask_array.shape:
        raise ValueError("keys and masks must be one-dimensional and of the same length")
    if len(key_array) > 1 and not bool((key_array[1:] > key_array[:-1]).all()):
        raise ValueError("keys must be strictly ascending")
    if not bool(mask_array.all()) or bool((mask_array >= 128).any()):
        raise ValueError("masks must be 1 to 127")
    table = IssuerTable(issuers)
    state = _state(
        version=version,
        base_version=version,
        issuers=table.networks,
        base=_write_base_files(path, version, key_array, mask_array),
        increments=[],
        size=int(_POPCOUNT[mask_array].sum()),
        applied_at=applied_at,
    )
    _commit(path, state)
    _remove_unnamed(path, state)


# -- lookups --------------------------------------------------------------------------


def _mask(snap: _Snapshot, key: int) -> int:
    found = snap.overlay.get(key)
    if found is not None:
        return found
    keys = snap.keys
    # np.uint64 first: a plain int below 2**63 would make numpy compare as int64
    # and convert the whole base (100 ms at 50 million entries).
    wanted = np.uint64(key)
    index = int(keys.searchsorted(wanted))
    if index < len(keys) and keys[index] == wanted:
        return int(snap.masks[index])
    return 0


def _search(keys: Keys, masks: Masks, wanted: Keys) -> Masks:
    """The base masks of ``wanted`` (0 when absent). A large batch is searched in
    key order: neighbouring searches then touch the same pages (8x faster)."""
    found = np.zeros(len(wanted), dtype=np.uint8)
    if len(keys) == 0 or len(wanted) == 0:
        return found
    order: npt.NDArray[np.intp] | None = None
    probe = wanted
    if len(wanted) > _SORT_BATCH:
        order = np.argsort(wanted)
        probe = wanted[order]
    index = np.searchsorted(keys, probe)
    np.minimum(index, len(keys) - 1, out=index)
    hit = keys[index] == probe
    result = np.where(hit, masks[index], np.uint8(0)).astype(np.uint8)
    if order is None:
        return result
    found[order] = result
    return found


# -- building -------------------------------------------------------------------------


def _unique_or(keys: Keys, bits: Masks) -> tuple[Keys, Masks]:
    """Sorted unique keys, each with the OR of its masks."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint8)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    sorted_bits = bits[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    return sorted_keys[starts], np.bitwise_or.reduceat(sorted_bits, starts).astype(np.uint8)


def _overlay_into(
    overlay: dict[int, int],
    keys: Iterable[int],
    masks: Iterable[int],
    base_masks: Iterable[int],
) -> None:
    """Sets each changed key's mask; a key back at its base mask leaves the overlay."""
    for key, mask, base in zip(keys, masks, base_masks, strict=True):
        if mask == base:
            overlay.pop(key, None)
        else:
            overlay[key] = mask


def _entries(source: bytes | Path, sha256: str) -> Iterator[list[dict[str, Any]]]:
    """The lines of a file ``read_version`` has accepted, in blocks of many lines
    read by one ``json.loads`` each — its own second reading (``VersionFile.lines``)
    checks each line again at ~7 µs a line. The bytes are hashed again and must
    still match the manifest (a path may have changed since it was verified)."""
    digest = hashlib.sha256()
    archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    with archive, archive.open(ENTRIES) as stream:
        first = stream.readline()
        digest.update(first)
        if first.strip() != b"[":  # not one object a line: read whole, as read_version does
            rest = stream.read()
            digest.update(rest)
            whole = json.loads(first + rest)
            yield whole if isinstance(whole, list) else []
        else:
            pending = b""
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                chunk = pending + chunk
                cut = chunk.rfind(b"\n") + 1
                yield _decode_lines(chunk[:cut])
                pending = chunk[cut:]
            yield _decode_lines(pending)
    if digest.hexdigest() != sha256:
        raise VersionFileError("sha256", "the entries changed since they were verified")


def _decode_lines(block: bytes) -> list[dict[str, Any]]:
    """Whole lines of one object each, commas between them (etcnet's layout: one
    ``json.loads``), or any commas ``read_version`` accepts (line by line)."""
    body = block.strip().removesuffix(b"]").strip().removeprefix(b"[").strip().strip(b",")
    if not body:
        return []
    try:
        decoded: list[dict[str, Any]] = json.loads(b"[" + body + b"]")
    except ValueError:  # a line without its comma, or with one on both sides
        parts = (line.strip().removeprefix(b",").removesuffix(b",") for line in body.split(b"\n"))
        decoded = json.loads(b"[" + b",".join(p for p in parts if p) + b"]")
    return decoded


# -- files ----------------------------------------------------------------------------


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_name(prefix: str, suffix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}{suffix}"


def _write_npy(path: Path, data: npt.NDArray[Any]) -> None:
    with open(path, "xb") as out:
        np.lib.format.write_array(out, data, allow_pickle=False)
        out.flush()
        os.fsync(out.fileno())


def _write_base_files(directory: Path, version: str, keys: Keys, masks: Masks) -> dict[str, Any]:
    stem = _new_name(f"base-{version}", "")
    names = {"keys": f"{stem}.keys.npy", "masks": f"{stem}.masks.npy"}
    _write_npy(directory / names["keys"], np.ascontiguousarray(keys, dtype=np.uint64))
    _write_npy(directory / names["masks"], np.ascontiguousarray(masks, dtype=np.uint8))
    _fsync_directory(directory)
    _step("data_written")
    return {**names, "count": len(keys)}


def _state(
    *,
    version: str,
    base_version: str,
    issuers: Sequence[str],
    base: Mapping[str, Any],
    increments: list[dict[str, Any]],
    size: int,
    applied_at: dt.datetime,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": version,
        "base_version": base_version,
        "issuers": list(issuers),
        "base": dict(base),
        "increments": increments,
        "size": size,
        "applied_at": applied_at.astimezone(dt.UTC).isoformat(),
    }


def _commit(directory: Path, state: Mapping[str, Any]) -> None:
    """Replaces state.json atomically and durably: the one commit point."""
    body = json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True).encode()
    temporary = directory / _new_name(".state", ".tmp")
    with open(temporary, "xb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    _step("state_written")
    os.replace(temporary, directory / STATE)
    _fsync_directory(directory)
    _step("committed")


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory; its renames are durable
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _named(state: Mapping[str, Any]) -> set[str]:
    if not state:
        return set()
    base = state["base"]
    return {base["keys"], base["masks"], *(i["file"] for i in state["increments"])}


def _remove_unnamed(directory: Path, state: Mapping[str, Any]) -> None:
    """Removes base, increment and temporary state files the state does not name."""
    named = _named(state)
    for entry in directory.iterdir():
        name = entry.name
        ours = (name.startswith(("base-", "inc-")) and name.endswith(".npy")) or (
            name.startswith(".state-") and name.endswith(".tmp")
        )
        if ours and name not in named:
            with contextlib.suppress(OSError):  # still mapped (Windows): removed later
                entry.unlink()


def _load_array(path: Path, dtype: np.dtype[Any], count: int, *, mmap: bool) -> npt.NDArray[Any]:
    try:
        loaded = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ListStateError(f"{path.name}: cannot be read ({error})") from None
    if loaded.dtype != dtype or loaded.shape != (count,):
        raise ListStateError(
            f"{path.name}: holds {loaded.dtype} x {loaded.shape}, expected {dtype} x {count}"
        )
    # A plain ndarray view of the mapping: np.memmap's subclass hooks cost a
    # microsecond a lookup.
    return np.asarray(loaded)


def _open_snapshot(directory: Path, state: Mapping[str, Any], overlay: dict[int, int]) -> _Snapshot:
    base = state["base"]
    count = int(base["count"])
    return _Snapshot(
        version=state["version"],
        base_version=state["base_version"],
        applied_at=dt.datetime.fromisoformat(state["applied_at"]),
        issuers=IssuerTable(state["issuers"]),
        keys=_load_array(directory / base["keys"], np.dtype(np.uint64), count, mmap=True),
        masks=_load_array(directory / base["masks"], np.dtype(np.uint8), count, mmap=True),
        overlay=overlay,
        size=int(state["size"]),
        state=state,
    )


def _load(directory: Path, state_path: Path) -> _Snapshot:
    try:
        state: dict[str, Any] = json.loads(state_path.read_bytes())
        if state.get("format") != FORMAT:
            raise ListStateError(f"{STATE}: format {state.get('format')!r}, expected {FORMAT!r}")
        snapshot = _open_snapshot(directory, state, overlay={})
        overlay: dict[int, int] = {}
        for increment in state["increments"]:
            path = directory / increment["file"]
            record = _load_array(path, _INCREMENT, int(increment["keys"]), mmap=False)
            keys = np.ascontiguousarray(record["key"])
            base_masks = _search(snapshot.keys, snapshot.masks, keys).tolist()
            _overlay_into(overlay, keys.tolist(), record["mask"].tolist(), base_masks)
    except (OSError, KeyError, TypeError, ValueError, ListKeyError) as error:
        raise ListStateError(f"{STATE}: cannot be read ({error})") from None
    return replace(snapshot, overlay=overlay)


def _refusal_code(
    error: VersionFileError, source: str | Path | bytes, trusted: Mapping[str, Ed25519PublicKey]
) -> RefusalCode:
    """The refusal code of a file ``read_version`` refused; the signature cases are
    told apart from the manifest itself, not from the error's wording."""
    if error.field not in ("signature", "manifest.signature"):
        return "corrupt"
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as zf:
            signature = json.loads(zf.read(MANIFEST)).get("signature")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, AttributeError):
        return "corrupt"
    if signature is None:
        return "unsigned"
    if isinstance(signature, dict) and str(signature.get("key_id", "")) not in trusted:
        return "untrusted_key"
    return "bad_signature"
