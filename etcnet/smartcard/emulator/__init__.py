"""Software devices that answer real APDUs: a user card, an OBU ESAM and a PSAM.

Each device keeps its persistent state (files, purse, counters, keys) in a JSON
state file and rewrites it atomically (temporary file + ``os.replace``) after every
state-changing command, so an emulated card survives restarts and can be carried
from one process to another. What a real chip forgets at power-off — the selected
file, a pending purchase or load, the last challenge, a verified PIN — lives only in
memory: loading the file again is a fresh power-up.

A device never raises on a bad command: it answers the status word a card would
(``6700`` wrong length, ``6985`` wrong state, ``9302`` MAC invalid…) and changes
nothing. The state-file format and the APDU set of each device are documented in
``docs/smartcard.md``.

The state file holds the device's keys, as the chip does: treat it like the card.

The package: ``_base`` (state file, APDU dispatch, shared file commands), ``card``,
``obu``, ``psam``; this module loads whichever device a state file holds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from etcnet.smartcard.emulator._base import (
    DEFAULT_PIN,
    LOG_RECORDS,
    MAX_BALANCE,
    SFI_0015,
    SFI_0016,
    SFI_0019,
    SFI_LOG,
    StateFileError,
    _read_state,
    default_key_index,
)
from etcnet.smartcard.emulator.card import SoftCard
from etcnet.smartcard.emulator.obu import SoftObu
from etcnet.smartcard.emulator.psam import SoftPsam

__all__ = [
    "DEFAULT_PIN",
    "LOG_RECORDS",
    "MAX_BALANCE",
    "SFI_0015",
    "SFI_0016",
    "SFI_0019",
    "SFI_LOG",
    "Device",
    "SoftCard",
    "SoftObu",
    "SoftPsam",
    "StateFileError",
    "default_key_index",
    "load_device",
]

Device = SoftCard | SoftObu | SoftPsam


def load_device(path: str | os.PathLike[str]) -> Device:
    """Load whichever device the state file holds."""
    target = Path(path)
    kind = _read_state(target).get("device")
    loaders: dict[str, Callable[[str | os.PathLike[str]], Device]] = {
        SoftCard.KIND: SoftCard.load,
        SoftObu.KIND: SoftObu.load,
        SoftPsam.KIND: SoftPsam.load,
    }
    loader = loaders.get(str(kind))
    if loader is None:
        raise StateFileError(f"{target}: unknown device kind {kind!r}")
    return loader(target)
