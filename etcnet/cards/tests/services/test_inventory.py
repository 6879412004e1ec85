"""Inventory: units received into stock and moved between outlets."""

from __future__ import annotations

import pytest

from etcnet.cards import devices, services
from etcnet.cards.errors import NotInStock
from etcnet.cards.models import CardUnit, ObuUnit, UnitKind, UnitState
from etcnet.cards.tests.conftest import CARD_NOS
from etcnet.cards.tests.services import issued, state
from etcnet.core.models import AuditEvent
from etcnet.issuance.models import Outlet

pytestmark = pytest.mark.django_db


def test_received_units_are_blank_emulated_devices_in_the_outlets_stock(clerk, stock):
    assert CardUnit.objects.filter(state=UnitState.IN_STOCK).count() == 6
    assert ObuUnit.objects.filter(state=UnitState.IN_STOCK).count() == 6
    reading = devices.read_card(CardUnit.objects.get(card_no=CARD_NOS[0]))
    assert reading.card_no == CARD_NOS[0]
    assert reading.balance == 0
    assert AuditEvent.objects.filter(action="cards.unit_received").count() == 12


def test_receiving_a_serial_twice_is_refused(clerk, stock):
    before = state()
    with pytest.raises(Exception, match="Some fields"):
        services.receive_batch(
            kind=UnitKind.CARD, reference="C-2", serials=[CARD_NOS[0]], emulated=True, actor=clerk
        )
    assert state() == before


def test_units_move_between_outlets_and_are_then_not_issuable_here(clerk, stock, approved):
    Outlet.objects.create(code="610202001", name="铜川网点")
    services.move_units(
        kind=UnitKind.CARD, serials=[CARD_NOS[0]], to_outlet="610202001", actor=clerk
    )
    before = state()

    with pytest.raises(NotInStock):
        issued(clerk, approved)

    assert state() == before
    moved = AuditEvent.objects.get(action="cards.unit_moved")
    assert (moved.before, moved.after) == ({"outlet": "610101001"}, {"outlet": "610202001"})
