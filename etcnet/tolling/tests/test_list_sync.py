"""The terminal keeps its status list current from the center's versions: full
then increments, a refused file leaves the list as it was and the next sync
starts again from a full version, the center's key is pinned."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import transaction

from etcnet.lists import services as lists
from etcnet.lists.models import ListStatus, ListType, ListVersion, Medium
from etcnet.terminal.lane import LaneTerminal
from etcnet.tolling.tests.lanes import lane_terminal

pytestmark = pytest.mark.usefixtures("live_server", "role_groups")

T0 = dt.datetime(2026, 11, 21, 4, 0, tzinfo=dt.UTC)
A, B, C = "61010000000000000001", "61010000000000000002", "12010000000000000003"


@pytest.fixture(autouse=True)
def _at_t0() -> Any:
    """The versions are published at T0 and the plan compares them with now (kept
    ETCNET_LIST_KEEP_DAYS): the clock stands just after T0, so any date passes."""
    with time_machine.travel(T0 + dt.timedelta(minutes=15), tick=True):
        yield


def listed(card_no: str, status: int = ListStatus.IN, list_type: int = ListType.LOST) -> None:
    with transaction.atomic():
        lists.record_event(
            medium=Medium.CARD,
            medium_id=card_no,
            list_type=ListType(list_type),
            status=ListStatus(status),
            reason="test",
            actor=None,
        )


@pytest.fixture
def lane(live_server: Any, operator: Any, tianjin: Any, tmp_path: Path) -> LaneTerminal:
    listed(A)
    lists.publish(now=T0)  # the first version: increment and full
    return lane_terminal(live_server, operator, tmp_path, "HH-L", "S1201005", [3])


def test_full_then_increments_keep_the_lane_current(lane: LaneTerminal) -> None:
    assert lane.status_list.version == "202611211200"
    assert lane.status_list.lookup("card", A) == (1,)
    listed(B, list_type=ListType.LOW_BALANCE)
    listed(A, ListStatus.OUT)
    lists.publish(now=T0 + dt.timedelta(minutes=5))
    listed(C, list_type=ListType.OVERDRAWN)
    lists.publish(now=T0 + dt.timedelta(minutes=10))

    report = lane.sync()["lists"]

    assert report == {
        "applied": ["202611211205", "202611211210"],
        "version": "202611211210",
        "error": "",
    }
    assert lane.status_list.lookup("card", A) == ()
    assert lane.status_list.lookup("card", B) == (7,)
    assert lane.status_list.lookup("card", C) == (4,)
    assert len(lane.status_list) == 2
    assert lane.sync()["lists"]["applied"] == []  # nothing new


def test_a_corrupted_increment_is_refused_then_a_full_version_recovers(lane: LaneTerminal) -> None:
    listed(B)
    bad = lists.publish(now=T0 + dt.timedelta(minutes=5)).version
    path = lists.version_path(bad)
    path.write_bytes(path.read_bytes()[:-40] + b"\0" * 40)

    report = lane.sync()["lists"]

    assert report["version"] == "202611211200"
    assert report["error"].startswith("corrupt:")
    assert lane.status_list.needs_full
    assert lane.status_list.lookup("card", B) == ()  # the list stayed as it was
    lists.publish(now=T0 + dt.timedelta(minutes=10), full=True)
    report = lane.sync()["lists"]
    assert report["error"] == ""
    assert report["applied"] == ["full 202611211210"]
    assert not lane.status_list.needs_full
    assert lane.status_list.lookup("card", B) == (1,)


def test_a_different_center_key_is_refused(lane: LaneTerminal, settings: Any) -> None:
    settings.ETCNET_LIST_KEY_FILE = Path(settings.ETCNET_LIST_KEY_FILE).with_name("other.pem")
    listed(B)
    lists.publish(now=T0 + dt.timedelta(minutes=5))
    report = lane.sync()["lists"]
    assert "not the pinned" in report["error"]
    assert lane.status_list.version == "202611211200"
    assert ListVersion.objects.count() == 2
