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

The package, one module a seam: ``_base`` (refusal codes, errors, the records
the writers return), ``snapshot`` (the in-memory list: base arrays and overlay,
lookups, merging changes), ``entries`` (reading a verified version file's lines
again, refusal codes), ``files`` (the on-disk format, the atomic commit, reading a
directory back, ``write_base``), ``compactlist`` (``CompactStatusList``, the
facade). The crash tests' seam is ``files._checkpoint``.

Pure: numpy, the standard library and ``etcnet.lists`` (keys, version files).
"""

from __future__ import annotations

from etcnet.terminal.statuslist._base import (
    Applied,
    ListRefused,
    ListStateError,
    Refusal,
    RefusalCode,
)
from etcnet.terminal.statuslist.compactlist import COMPACT_THRESHOLD, CompactStatusList
from etcnet.terminal.statuslist.files import FORMAT, write_base

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
