"""The running terminal: its ``LaneTerminal``, the card reader and the sync loop.

``serve`` builds them once; the views share the one ``LaneTerminal`` under a
lock (a handheld has one collector, and its SQLite connections are used from
waitress's worker threads one at a time). The sync loop has its own
``LaneTerminal`` on the same store file, so a slow center never holds up the
screen."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etcnet.smartcard.transport import Transport, open_emulated
from etcnet.terminal.lane import LaneTerminal

PHOTO_BOX = (800, 800)


@dataclass
class Runtime:
    lane: LaneTerminal
    cards_dir: Path | None
    reader_name: str
    clock_warn_ms: int
    reference_warn_hours: int
    lock: threading.RLock
    list_warn_minutes: int = 30


_RUNTIME: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _RUNTIME
    _RUNTIME = runtime


def current() -> Runtime:
    if _RUNTIME is None:
        raise RuntimeError("the terminal is not started (etcnet terminal serve)")
    return _RUNTIME


@contextmanager
def lane() -> Iterator[LaneTerminal]:
    rt = current()
    with rt.lock:
        yield rt.lane


def devices(kind: str) -> list[tuple[str, str]]:
    """The emulated cards (``card``) or OBUs (``obu``) within reach: (file, number)."""
    rt = current()
    if rt.cards_dir is None:
        return []
    found = []
    for path in sorted(rt.cards_dir.glob(f"{kind}-*.json")):
        found.append((path.name, path.stem.split("-", 1)[1]))
    return found


def open_device(kind: str, name: str) -> Transport:
    """The card the collector placed: a file of the emulator folder, or the PC/SC reader."""
    rt = current()
    if kind == "card" and rt.reader_name:
        from etcnet.smartcard.transport import PcscTransport

        return PcscTransport(rt.reader_name)
    if rt.cards_dir is None or not name or "/" in name or not name.startswith(f"{kind}-"):
        raise FileNotFoundError(name)
    return open_emulated(rt.cards_dir / name)


def shrink_photo(raw: bytes) -> bytes:
    """The vehicle photo as a JPEG of at most 800×800 (EXIF dropped), so an
    upload of many records stays small."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(raw)))
    image = image.convert("RGB")
    image.thumbnail(PHOTO_BOX)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def sync_loop(lane_terminal: LaneTerminal, *, interval_s: float, stop: threading.Event) -> None:
    """Uploads what is due and refreshes the reference data every ``interval_s``."""
    while not stop.is_set():
        try:
            lane_terminal.sync()
        except Exception as error:  # the loop must outlive any one bad round
            print(f"{dt.datetime.now(dt.UTC).isoformat()} sync failed: {error!r}", flush=True)
        stop.wait(interval_s)


def start_sync(lane_terminal: LaneTerminal, *, interval_s: float) -> threading.Event:
    stop = threading.Event()
    thread = threading.Thread(
        target=sync_loop,
        args=(lane_terminal,),
        kwargs={"interval_s": interval_s, "stop": stop},
        name="etcnet-sync",
        daemon=True,
    )
    thread.start()
    time.sleep(0)
    return stop


def context(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What every page shows: waiting records, the last sync, the clock offset
    (and whether card work is refused for it) and the age of the reference
    data, with warnings past their limits."""
    rt = current()
    now = rt.lane.clock()
    status = rt.lane.outbox.status()
    ages = {name: rt.lane.reference.age(name, now=now) for name in ("station", "tariff")}
    oldest = max((a for a in ages.values() if a is not None), default=None)
    station = rt.lane.reference.get("station") or {}
    lists = rt.lane.status_list
    list_age = rt.lane.list_age(rt.lane.now())  # the version is the center's minute
    refusal = lists.last_refusal
    clock = rt.lane.lane_clock()
    return {
        "list_version": lists.version,
        "list_age_min": None if list_age is None else int(list_age.total_seconds() // 60),
        "list_old": list_age is not None and list_age > dt.timedelta(minutes=rt.list_warn_minutes),
        "list_needs_full": lists.needs_full and lists.version is not None,
        "list_refusal": f"{refusal.code}: {refusal.message}"
        if refusal
        else str((rt.lane.reference.get("list-sync") or {}).get("error", "")),
        "outbox": status,
        "clock_warning": status.clock_offset_ms is not None
        and abs(status.clock_offset_ms) > rt.clock_warn_ms,
        "clock_warn_ms": rt.clock_warn_ms,
        # Card work refused (docs/clock.md): the bar says so on every page.
        "clock_unknown": not clock.measured,
        "clock_refusing": clock.beyond,
        "clock_off_ms": abs(clock.offset_ms or 0),
        "clock_max_ms": clock.max_ms,
        "reference_age_min": None if oldest is None else int(oldest.total_seconds() // 60),
        "reference_missing": any(a is None for a in ages.values()),
        "reference_old": oldest is not None
        and oldest > dt.timedelta(hours=rt.reference_warn_hours),
        "open_intents": rt.lane.open_intents(),
        "station": station.get("station", {}),
        "terminal_id": rt.lane.terminal_id,
        **(extra or {}),
    }
