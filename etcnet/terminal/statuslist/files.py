"""The list on disk: the sorted-key base files, the increment files and
``state.json``, the one commit point, written so that a process killed at any
moment restarts from the old list or the new one; reading a directory back;
``write_base`` for tools that provision one."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from etcnet.lists.keys import IssuerTable, ListKeyError
from etcnet.terminal.statuslist._base import _POPCOUNT, Keys, ListStateError, Masks
from etcnet.terminal.statuslist.snapshot import _overlay_into, _search, _Snapshot

FORMAT = "etcnet-compact-status-list/1"
STATE = "state.json"

_INCREMENT = np.dtype([("key", "<u8"), ("mask", "u1")])

#: Test seam: called with the name of each durability step ("data_written",
#: "state_written", "committed") so a test can kill the process exactly there.
#: None — nothing is called — outside tests.
_checkpoint: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if _checkpoint is not None:
        _checkpoint(name)


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


# -- files ----------------------------------------------------------------------------


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
