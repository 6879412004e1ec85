"""Tolling fixtures: the card fixtures (vault, stock, an approved application)
and the demo network with lanes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from etcnet.cards.tests.conftest import _vault, approved, stock  # noqa: F401  (fixtures)
from etcnet.network import services as network

DEMO = Path(__file__).resolve().parents[2] / "network" / "demo_bundle"


@pytest.fixture
def tianjin(operator: Any) -> None:
    network.import_bundle(DEMO, effective_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), actor=operator)
    for number, direction in ((1, "entry"), (3, "exit"), (4, "exit")):
        network.add_lane(
            "S1201005", number=number, direction=direction, lane_type="mixed", actor=operator
        )
