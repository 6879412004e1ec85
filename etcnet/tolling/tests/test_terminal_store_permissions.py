"""The terminal's store (card numbers, plates, the staff's password verifiers)
is created readable by its owner only, with its -wal and -shm files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcnet.terminal.outbox import Outbox


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A common default umask (files 0644), under which the old code leaked."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_terminal_store_and_its_wal_are_owner_only(tmp_path: Path, loose_umask: None) -> None:
    store = tmp_path / "HH-1.sqlite3"
    outbox = Outbox(store, terminal_id="HH-1")
    try:
        files = {p.name: mode(p) for p in tmp_path.glob("HH-1.sqlite3*")}
    finally:
        outbox.close()

    assert files == {
        "HH-1.sqlite3": 0o600,
        "HH-1.sqlite3-wal": 0o600,
        "HH-1.sqlite3-shm": 0o600,
    }


def test_an_existing_loose_store_is_made_owner_only(tmp_path: Path, loose_umask: None) -> None:
    store = tmp_path / "HH-1.sqlite3"
    Outbox(store, terminal_id="HH-1").close()
    store.chmod(0o644)

    Outbox(store, terminal_id="HH-1").close()

    assert mode(store) == 0o600
