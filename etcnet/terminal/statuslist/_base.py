"""What every part of the status list shares: the refusal codes, the errors,
the records the writers return, and the type-mask tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from etcnet.lists.keys import types_of

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

_TYPES_OF = tuple(types_of(mask) for mask in range(256))
_POPCOUNT = np.array([bin(mask).count("1") for mask in range(256)], dtype=np.int64)
_KEY_LIMIT = 1 << 64


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
