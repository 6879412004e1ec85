"""Lane terminals for the tests that drive ``etcnet.terminal.lane`` against the
real center over HTTP (the fixtures using them are in ``conftest.py``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import check_password

from etcnet.cards import devices
from etcnet.cards.models import CardUnit
from etcnet.smartcard.transport import open_emulated
from etcnet.terminal.center import HttpCenter
from etcnet.terminal.lane import LaneTerminal
from etcnet.tolling import services


def lane_terminal(
    live_server: Any,
    operator: Any,
    tmp_path: Any,
    terminal_id: str,
    station: str,
    lanes: list[int],
    *,
    url: str | None = None,
    **options: Any,
) -> LaneTerminal:
    """A terminal registered at the center, with its store in ``tmp_path``, synced
    once; ``options`` go to ``LaneTerminal`` (its ``clock``, ``clock_max_ms``)."""
    _term, secret, psam = services.register_terminal(
        terminal_id, station_id=station, lanes=lanes, actor=operator
    )
    lane = LaneTerminal(
        terminal_id=terminal_id,
        store=tmp_path / f"{terminal_id}.sqlite3",
        center=HttpCenter(url or live_server.url, terminal_id=terminal_id, secret=secret),
        psam=lambda: open_emulated(psam),
        verify_password=check_password,
        **options,
    )
    lane.sync()
    return lane


def enter(lane: LaneTerminal, card: CardUnit) -> None:
    """Collector carl enters the card's vehicle (class 1) on lane 1 of ``lane``,
    in his open shift or a new one."""
    carl = lane.sign_in("carl", "pw-12345678")
    shift = lane.current_shift("carl") or lane.start_shift(carl, lane=1)
    transport = devices.open_unit(card)
    reading = lane.read(transport)
    lane.entry(
        transport,
        reading,
        collector=carl,
        shift=shift,
        plate=reading.plate,
        plate_color=reading.plate_color,
        vehicle_class=1,
    )
