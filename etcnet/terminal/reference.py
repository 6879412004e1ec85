"""What the terminal downloads from the center and works offline with: its
station and lanes, the tariff and minimum-fee table, and the collectors' and
station masters' password verifiers. (The status list comes in versions into
its own compact structure, ``etcnet.terminal.statuslist``; the flows see it
through ``StatusListCheck``.)

Each document is replaced whole or not at all: a failed or unreadable download
keeps the copy the terminal already has, and ``age`` says how old it is so the
screen can tell the collector.

Pure: the standard library only, no Django.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from etcnet.terminal.outbox import CenterUnavailable, clock_offset_ms, open_store

__all__ = [
    "DOCUMENTS",
    "Downloader",
    "ReferenceData",
    "RefreshReport",
    "StatusListCheck",
]

#: The downloads, by their name in the center's API, and the key each must hold.
DOCUMENTS: Mapping[str, str] = {
    "station": "lanes",
    "tariff": "minimum_fees",
    "verifiers": "users",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reference (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    fetched_utc TEXT NOT NULL
);
"""


class Downloader(Protocol):
    def download(self, what: str) -> Mapping[str, Any]:
        """The document, or CenterUnavailable."""
        ...


class StatusListCheck(Protocol):
    def lookup(self, medium: str, medium_id: str) -> tuple[int, ...]:
        """The list types it is on (reference §3.4: 1 卡挂失 … 7 储值卡余额不足);
        empty when it is on none."""
        ...


@dataclass(frozen=True, slots=True)
class RefreshReport:
    updated: tuple[str, ...]
    failed: dict[str, str]
    #: Center clock minus terminal clock, from the quickest download that
    #: carried ``server_time`` (None without a ``clock`` or such an answer).
    clock_offset_ms: int | None = None


class ReferenceData:
    """The downloaded documents in the terminal's SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self._db = open_store(path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def refresh(
        self,
        center: Downloader,
        *,
        now: dt.datetime,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> RefreshReport:
        """Downloads every document; each one that arrives whole replaces the
        stored copy, each failure is reported and keeps the old one. With a
        ``clock``, each download's round trip also measures the clock offset."""
        if now.tzinfo is None:
            raise ValueError("reference times carry their offset")
        updated: list[str] = []
        failed: dict[str, str] = {}
        best: tuple[dt.timedelta, int] | None = None
        for name, required in DOCUMENTS.items():
            sent_at = clock() if clock else None
            try:
                body = center.download(name)
            except CenterUnavailable as error:
                failed[name] = str(error)
                continue
            if clock is not None and sent_at is not None and isinstance(body, Mapping):
                received_at = clock()
                offset = clock_offset_ms(body.get("server_time"), sent_at, received_at)
                if offset is not None and (best is None or received_at - sent_at < best[0]):
                    best = (received_at - sent_at, offset)
            if not isinstance(body, Mapping) or not isinstance(body.get(required), list):
                failed[name] = f"the center's {name} has no {required!r} list"
                continue
            self._db.execute(
                "INSERT INTO reference (name, body, fetched_utc) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET body = excluded.body,"
                " fetched_utc = excluded.fetched_utc",
                (name, json.dumps(body, ensure_ascii=False), now.astimezone(dt.UTC).isoformat()),
            )
            updated.append(name)
        return RefreshReport(
            updated=tuple(updated), failed=failed, clock_offset_ms=best[1] if best else None
        )

    def put(self, name: str, body: Mapping[str, Any], *, now: dt.datetime) -> None:
        """Stores a document of the terminal's own (e.g. the pinned list key)."""
        self._db.execute(
            "INSERT INTO reference (name, body, fetched_utc) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET body = excluded.body,"
            " fetched_utc = excluded.fetched_utc",
            (name, json.dumps(dict(body), ensure_ascii=False), now.astimezone(dt.UTC).isoformat()),
        )

    def get(self, name: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM reference WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        body: dict[str, Any] = json.loads(row[0])
        return body

    def fetched_at(self, name: str) -> dt.datetime | None:
        row = self._db.execute(
            "SELECT fetched_utc FROM reference WHERE name = ?", (name,)
        ).fetchone()
        return dt.datetime.fromisoformat(row[0]) if row else None

    def age(self, name: str, *, now: dt.datetime) -> dt.timedelta | None:
        """How old the terminal's copy is; None when it has never had one."""
        fetched = self.fetched_at(name)
        return None if fetched is None else now - fetched
