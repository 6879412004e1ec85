"""Tolling fixtures: the card fixtures (vault, stock, an approved application)
and the demo network with lanes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from conftest import make_user, photo
from etcnet.cards import services as cards
from etcnet.cards.models import CardUnit
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS, _vault, approved, stock  # noqa: F401  (fixtures)
from etcnet.core.roles import Role
from etcnet.network import services as network
from etcnet.network.models import Node
from etcnet.terminal.lane import LaneTerminal
from etcnet.tolling import services
from etcnet.tolling.models import StationMembership, Terminal
from etcnet.tolling.tests.lanes import lane_terminal

DEMO = Path(__file__).resolve().parents[2] / "network" / "demo_bundle"


@pytest.fixture
def tianjin(operator: Any) -> None:
    network.import_bundle(DEMO, effective_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), actor=operator)
    for number, direction in ((1, "entry"), (3, "exit"), (4, "exit")):
        network.add_lane(
            "S1201005", number=number, direction=direction, lane_type="mixed", actor=operator
        )


@pytest.fixture
def terminal(operator, tianjin) -> tuple[Terminal, str, Any]:
    return services.register_terminal("HH-0001", station_id="S1201005", lanes=[3], actor=operator)


@pytest.fixture
def card(clerk, stock, approved) -> CardUnit:  # noqa: F811  (the fixtures above)
    binding = cards.issue(
        approved.pk, card_no=CARD_NOS[0], contract_no=OBU_NOS[0], card_type=22, actor=clerk
    )
    cards.activate(binding.pk, photo=photo("obu"), actor=clerk)
    cards.top_up(CARD_NOS[0], amount_fen=10_000, channel="cash", idempotency_key="t", actor=clerk)
    return CardUnit.objects.get(card_no=CARD_NOS[0])


@pytest.fixture
def role_groups(transactional_db: Any) -> None:
    """A transactional test's flush removes the migration-made role groups."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


def station_staff(username: str, role: str, *stations: str) -> Any:
    """A collector or station master (password pw-12345678) who belongs to the stations."""
    user = make_user(username, role)
    for node_id in stations:
        StationMembership.objects.create(user=user, station=Node.objects.get(node_id=node_id))
    return user


@pytest.fixture
def staff(role_groups: None, tianjin: None) -> dict[str, Any]:
    """Collector carl (小孙庄 and 杨村) and station master sam (小孙庄)."""
    return {
        "carl": station_staff("carl", Role.TOLL_COLLECTOR, "S1201005", "S1201048"),
        "sam": station_staff("sam", Role.STATION_MASTER, "S1201005"),
    }


@pytest.fixture
def terminals(live_server, operator, tianjin, tmp_path) -> tuple[LaneTerminal, LaneTerminal]:
    """EN-1 on the entry lane 1 of 杨村 (S1201048), HH-1 on exit lane 3 of 小孙庄."""
    network.add_lane("S1201048", number=1, direction="entry", lane_type="mixed", actor=operator)
    entry = lane_terminal(live_server, operator, tmp_path, "EN-1", "S1201048", [1])
    exit_ = lane_terminal(live_server, operator, tmp_path, "HH-1", "S1201005", [3])
    return entry, exit_
