"""``CompactStatusList``: the status list a lane checks every card and OBU
against — opening a directory, the lookups, and taking versions (full,
increment) and compacting, one writer at a time."""

from __future__ import annotations

import datetime as dt
import threading
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from etcnet.lists.keys import IssuerTable, ListKeyError
from etcnet.lists.versionfile import IN, VersionFile, VersionFileError, read_version
from etcnet.terminal.statuslist._base import (
    _KEY_LIMIT,
    _POPCOUNT,
    _TYPES_OF,
    Applied,
    ListRefused,
    Masks,
    Refusal,
    RefusalCode,
)
from etcnet.terminal.statuslist.entries import _BROKEN, _UNREADABLE, _entries, _refusal_code
from etcnet.terminal.statuslist.files import (
    _INCREMENT,
    STATE,
    _commit,
    _fsync_directory,
    _load,
    _new_name,
    _open_snapshot,
    _remove_unnamed,
    _state,
    _step,
    _write_base_files,
    _write_npy,
)
from etcnet.terminal.statuslist.snapshot import (
    _empty_snapshot,
    _mask,
    _overlay_into,
    _search,
    _Snapshot,
    _unique_or,
)

#: Overlay keys above which an applied increment is followed by a compaction.
COMPACT_THRESHOLD = 1_000_000


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


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
