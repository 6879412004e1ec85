"""The cards API: issue, activate, top up, lose — with the error shape."""

from __future__ import annotations

import pytest
from django.test import Client

from conftest import photo
from etcnet.cards import ledger
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS

pytestmark = pytest.mark.django_db
BASE = "/api/v1/cards"


def api(user):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def test_card_workflow_through_the_api(clerk, stock, approved):
    client = api(clerk)

    issued = client.post(
        f"{BASE}/issuances",
        {
            "application_id": approved.pk,
            "card_no": CARD_NOS[0],
            "contract_no": OBU_NOS[0],
            "card_type": 22,
        },
        content_type="application/json",
    )
    assert issued.status_code == 201
    binding = issued.json()
    assert (binding["status"], binding["plate"]) == ("issued", "陕A12345")

    activated = client.post(f"{BASE}/bindings/{binding['id']}/activation", {"photo": photo("obu")})
    assert activated.json()["status"] == "active"

    topped = client.post(
        f"{BASE}/cards/{CARD_NOS[0]}/top-ups",
        {"amount_fen": 10_000, "channel": "cash", "idempotency_key": "api-1"},
        content_type="application/json",
    )
    assert topped.status_code == 201
    assert (topped.json()["status"], topped.json()["balance_fen"]) == ("loaded", 10_000)
    again = client.post(
        f"{BASE}/cards/{CARD_NOS[0]}/top-ups",
        {"amount_fen": 10_000, "channel": "cash", "idempotency_key": "api-1"},
        content_type="application/json",
    )
    assert again.json()["id"] == topped.json()["id"]
    assert again.json()["balance_fen"] == 10_000

    lost = client.post(
        f"{BASE}/cards/{CARD_NOS[0]}/loss", {"reason": "lost"}, content_type="application/json"
    )
    assert lost.json()["state"] == "lost"
    events = client.get(f"{BASE}/list-events").json()
    assert [(e["medium_id"], e["list_type"], e["status"]) for e in events] == [(CARD_NOS[0], 1, 1)]
    assert ledger.check() == []


def test_issuing_a_unit_of_another_outlet_is_a_409_with_a_reason(clerk, stock, approved):
    from etcnet.cards import services
    from etcnet.cards.models import UnitKind
    from etcnet.issuance.models import Outlet

    Outlet.objects.create(code="6102", name="远")
    services.move_units(kind=UnitKind.CARD, serials=[CARD_NOS[0]], to_outlet="6102", actor=clerk)
    response = api(clerk).post(
        f"{BASE}/issuances",
        {
            "application_id": approved.pk,
            "card_no": CARD_NOS[0],
            "contract_no": OBU_NOS[0],
            "card_type": 22,
        },
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "not_in_stock"
    assert response.json()["message"] == f"{CARD_NOS[0]} 不在网点 610101001 的库存中。"


def test_another_outlets_application_is_a_404_and_issues_nothing(clerk, stock, approved):
    from conftest import make_user
    from etcnet.cards import services
    from etcnet.cards.models import Binding, CardUnit, UnitKind, UnitState
    from etcnet.issuance.models import Outlet

    far = make_user("frank", "issuance_clerk", outlet=Outlet.objects.create(code="6102", name="远"))
    for kind, serial in ((UnitKind.CARD, CARD_NOS[0]), (UnitKind.OBU, OBU_NOS[0])):
        services.move_units(kind=kind, serials=[serial], to_outlet="6102", actor=clerk)

    response = api(far).post(
        f"{BASE}/issuances",
        {
            "application_id": approved.pk,
            "card_no": CARD_NOS[0],
            "contract_no": OBU_NOS[0],
            "card_type": 22,
        },
        content_type="application/json",
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not Binding.objects.exists()
    assert CardUnit.objects.get(card_no=CARD_NOS[0]).state == UnitState.IN_STOCK


def test_a_loss_report_on_a_card_in_stock_is_refused(clerk, stock):
    response = api(clerk).post(
        f"{BASE}/cards/{CARD_NOS[0]}/loss", {}, content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "wrong_state"
