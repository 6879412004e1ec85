"""Staff belong to stations (收费人员根据自己所在站): a terminal downloads only its
own station's collectors and station masters, a station master is a station
master only at his own station, and a record authorised by a master of another
station is accepted (the card paid) but flagged for an operator."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from etcnet.cards import ledger
from etcnet.cards.models import CardUnit
from etcnet.core.models import AuditEvent
from etcnet.core.roles import Role
from etcnet.tolling.models import StationMembership, TollTransaction
from etcnet.tolling.tests.conftest import station_staff
from etcnet.tolling.tests.test_ingest import URL, client_for, purchase, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(terminal: Any) -> dict[str, Any]:
    """At 小孙庄 (the terminal's station): collector carl and master sam; at
    杨村: collector yan and master mo; vera at both; nobody without a station."""
    return {
        "carl": station_staff("carl", Role.TOLL_COLLECTOR, "S1201005"),
        "sam": station_staff("sam", Role.STATION_MASTER, "S1201005"),
        "yan": station_staff("yan", Role.TOLL_COLLECTOR, "S1201048"),
        "mo": station_staff("mo", Role.STATION_MASTER, "S1201048"),
        "vera": station_staff("vera", Role.STATION_MASTER, "S1201005", "S1201048"),
        "nemo": station_staff("nemo", Role.STATION_MASTER),
    }


def test_a_terminal_downloads_only_its_own_stations_staff(terminal, people):
    users = client_for(terminal).get("/api/v1/tolling/downloads/verifiers").json()["users"]

    assert [(u["username"], u["roles"]) for u in users] == [
        ("carl", ["toll_collector"]),
        ("sam", ["station_master"]),
        ("vera", ["station_master"]),
    ]


def test_a_station_master_is_one_only_at_his_own_station(terminal, people):
    client = client_for(terminal)

    def roles(username: str) -> list[str] | None:
        answer = client.post(
            "/api/v1/tolling/logins",
            {"username": username, "password": "pw-12345678"},
            content_type="application/json",
        )
        return answer.json()["roles"] if answer.status_code == 200 else None

    assert roles("sam") == ["station_master"]
    assert roles("vera") == ["station_master"]
    assert roles("mo") is None  # a master of 杨村 is nothing at 小孙庄
    assert roles("nemo") is None  # a master of no station is nothing anywhere
    assert roles("carl") == ["toll_collector"]


def upload(terminal: Any, card: CardUnit, seq: int, master: str) -> dict[str, Any]:
    paid = purchase(terminal, card, 1000)
    body = {
        "upload_key": f"k{seq}",
        "records": [
            record(
                paid,
                seq=seq,
                method="minimum",
                special_case="minimum_fee",
                authorised_by=master,
                fee_fen=1000,
                discount_fen=0,
            )
        ],
    }
    return client_for(terminal).post(URL, body, content_type="application/json").json()


@pytest.mark.parametrize("master", ["mo", "nemo", "nobody", "carl"])
def test_a_minimum_fee_authorised_elsewhere_is_accepted_and_flagged(
    terminal, card, people, operator, master
):
    answer = upload(terminal, card, 1, master)["results"][0]

    # The card paid: the record is accepted and the money kept, never dropped.
    assert (answer["result"], answer["code"], answer["flag"]) == (
        "accepted",
        None,
        "foreign_master",
    )
    txn = TollTransaction.objects.get()
    assert (txn.status, txn.tac_verified, txn.flag, txn.authorised_by) == (
        "accepted",
        True,
        "foreign_master",
        master,
    )
    assert ledger.tolls_payable_total() == -1000
    event = AuditEvent.objects.get(action="tolling.transaction_accepted")
    assert event.after["flag"] == "foreign_master"
    page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    page.force_login(operator)
    assert f'data-seq="{txn.seq}"' in page.get("/tolling/", {"special": "1"}).content.decode()
    detail = page.get(f"/tolling/{txn.pk}/").content.decode()
    assert 'data-testid="txn-flag"' in detail
    assert "其他收费站的站长授权" in detail


def test_a_minimum_fee_authorised_by_the_stations_master_is_not_flagged(terminal, card, people):
    answers = [upload(terminal, card, seq, m)["results"][0] for seq, m in ((1, "sam"), (2, "vera"))]

    assert [(a["result"], a.get("flag")) for a in answers] == [
        ("accepted", None),
        ("accepted", None),
    ]
    assert list(TollTransaction.objects.values_list("flag", flat=True)) == ["", ""]


def test_a_master_moved_to_another_station_is_flagged_from_then_on(terminal, card, people):
    StationMembership.objects.filter(user=people["sam"]).update(
        station=people["mo"].station_memberships.get().station
    )

    answer = upload(terminal, card, 1, "sam")["results"][0]

    assert answer["flag"] == "foreign_master"
