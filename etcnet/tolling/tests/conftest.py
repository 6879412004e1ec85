"""Tolling fixtures: the card fixtures (vault, stock, an approved application)
and the demo network with lanes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from conftest import photo
from etcnet.cards import services as cards
from etcnet.cards.models import CardUnit
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS, _vault, approved, stock  # noqa: F401  (fixtures)
from etcnet.network import services as network
from etcnet.tolling import services
from etcnet.tolling.models import Terminal

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
