"""Card pages through the test client: issue, activate, top up, report lost."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import photo
from etcnet.cards import ledger
from etcnet.cards.models import Binding, CardUnit, UnitState
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS
from etcnet.lists.models import ListEvent

pytestmark = pytest.mark.django_db


def browser(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def test_issue_activate_top_up_and_lose_through_the_pages(clerk, stock, approved):
    client = browser(clerk)

    detail = client.get(f"/issuance/applications/{approved.pk}/").content.decode()
    assert f'href="/cards/issue/{approved.pk}/"' in detail

    form = client.get(f"/cards/issue/{approved.pk}/").content.decode()
    assert CARD_NOS[0] in form
    response = client.post(
        f"/cards/issue/{approved.pk}/",
        {"card_type": "22", "card_no": CARD_NOS[0], "contract_no": OBU_NOS[0]},
    )
    binding = Binding.objects.get()
    assert response["Location"] == f"/cards/bindings/{binding.pk}/"

    response = client.post(f"/cards/bindings/{binding.pk}/", {"photo": photo("installed")})
    assert response["Location"] == f"/cards/cards/{CARD_NOS[0]}/"

    page = client.get(response["Location"])
    key = page.context["idempotency_key"]
    response = client.post(
        f"/cards/cards/{CARD_NOS[0]}/top-up/",
        {"amount": "100.00", "channel": "cash", "idempotency_key": key},
    )
    card_page = client.get(response["Location"]).content.decode()
    assert "已圈存 100.00 元。" in card_page
    assert "¥ 100.00" in card_page
    assert ledger.check() == []

    client.post(f"/cards/cards/{CARD_NOS[0]}/loss/", {"reason": "客户来电"})
    assert CardUnit.objects.get(card_no=CARD_NOS[0]).state == UnitState.LOST
    events = client.get("/cards/list-events/").content.decode()
    assert f'data-medium-id="{CARD_NOS[0]}"' in events
    assert "卡挂失" in events
    assert ListEvent.objects.count() == 1


def test_top_up_with_three_decimals_is_refused_on_the_page(clerk, stock, approved):
    from etcnet.cards import services

    binding = services.issue(
        approved.pk, card_no=CARD_NOS[0], contract_no=OBU_NOS[0], card_type=22, actor=clerk
    )
    services.activate(binding.pk, photo=photo("i"), actor=clerk)
    client = browser(clerk)

    response = client.post(
        f"/cards/cards/{CARD_NOS[0]}/top-up/", {"amount": "10.005", "channel": "cash"}, follow=True
    )

    assert "请输入以元为单位、最多两位小数的金额。" in response.content.decode()
    assert CardUnit.objects.get(card_no=CARD_NOS[0]).shadow_balance_fen == 0


def test_inventory_page_receives_an_emulated_batch(clerk):
    client = browser(clerk)
    response = client.post(
        "/cards/inventory/",
        {
            "kind": "card",
            "reference": "B-1",
            "first": "61010000000000000101",
            "count": "3",
            "emulated": "on",
        },
    )
    assert response.status_code == 302
    page = client.get("/cards/inventory/").content.decode()
    assert 'data-testid="cards-in-stock">3<' in page


def test_a_toll_collector_may_not_use_the_card_counter(collector, clerk, stock):
    assert browser(collector).get("/cards/inventory/").status_code == 403
    assert browser(collector).get(f"/cards/cards/{CARD_NOS[0]}/").status_code == 403


def test_renew_suspend_obu_and_bank_forms(clerk, stock, approved):
    from etcnet.cards import services
    from etcnet.cards.models import Account, ObuUnit

    binding = services.issue(
        approved.pk, card_no=CARD_NOS[0], contract_no=OBU_NOS[0], card_type=23, actor=clerk
    )
    services.activate(binding.pk, photo=photo("i"), actor=clerk)
    client = browser(clerk)

    renewed = client.post(f"/cards/cards/{CARD_NOS[0]}/renewal/", follow=True)
    assert "已续期。" in renewed.content.decode()
    bank = client.post(
        f"/cards/accounts/{binding.card.account.number}/bank/",
        {"bank_name": "中国建设银行", "bank_account_no": "6217000012345678"},
        follow=True,
    )
    assert "已绑定银行账户。" in bank.content.decode()
    assert Account.objects.get().bank_account_no == "6217000012345678"
    replaced = client.post(
        f"/cards/obus/{OBU_NOS[0]}/replace/",
        {"binding": binding.pk, "new_contract_no": OBU_NOS[1]},
        follow=True,
    )
    assert "已更换OBU" in replaced.content.decode()
    assert ObuUnit.objects.get(contract_no=OBU_NOS[1]).state == UnitState.ISSUED
    suspended = client.post(
        f"/cards/cards/{CARD_NOS[0]}/suspension/", {"reason": "欠费"}, follow=True
    )
    assert "已挂起" in suspended.content.decode()
    assert CardUnit.objects.get(card_no=CARD_NOS[0]).state == UnitState.SUSPENDED


def test_an_interrupted_top_up_is_finished_from_the_card_page(clerk, stock, approved, monkeypatch):
    from etcnet.cards import devices, services
    from etcnet.cards.models import TopUp
    from etcnet.cards.tests.services import PulledOut

    binding = services.issue(
        approved.pk, card_no=CARD_NOS[0], contract_no=OBU_NOS[0], card_type=22, actor=clerk
    )
    services.activate(binding.pk, photo=photo("i"), actor=clerk)
    client = browser(clerk)
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: PulledOut(real_open(unit)))

    failed = client.post(
        f"/cards/cards/{CARD_NOS[0]}/top-up/",
        {"amount": "50.00", "channel": "cash", "idempotency_key": "pg-1"},
        follow=True,
    ).content.decode()
    assert "款项已入账，但卡片未完成圈存" in failed
    assert 'data-testid="pending-top-ups"' in failed
    monkeypatch.setattr(devices, "open_unit", real_open)

    top = TopUp.objects.get()
    done = client.post(
        f"/cards/cards/{CARD_NOS[0]}/top-ups/{top.pk}/retry/", follow=True
    ).content.decode()
    assert "已圈存 50.00 元。" in done
    assert "¥ 50.00" in done
    assert 'data-testid="pending-top-ups"' not in done


def test_account_page_shows_cards_balance_and_recent_movements(clerk, stock, approved):
    from etcnet.cards import services

    binding = services.issue(
        approved.pk, card_no=CARD_NOS[0], contract_no=OBU_NOS[0], card_type=22, actor=clerk
    )
    services.activate(binding.pk, photo=photo("i"), actor=clerk)
    services.top_up(
        CARD_NOS[0], amount_fen=12_300, channel="cash", idempotency_key="acc", actor=clerk
    )

    page = browser(clerk).get(f"/cards/accounts/{binding.card.account.number}/").content.decode()

    assert "储值余额 ¥ 123.00" in page
    assert 'data-testid="account-movements"' in page
    assert "圈存入卡" in page
    assert "+123.00" in page


def test_replacement_page_reads_a_handed_in_card_or_waits_for_a_missing_one(clerk, stock, approved):
    from etcnet.cards import devices, services
    from etcnet.cards.tests.services import active

    old_no = active(clerk, approved).card.card_no
    services.top_up(old_no, amount_fen=8_800, channel="cash", idempotency_key="t", actor=clerk)
    client = browser(clerk)

    page = client.get(f"/cards/cards/{old_no}/").content.decode()
    assert "旧卡已交回：读卡并即时转移余额" in page
    assert "旧卡未交回：余额在资金争议期结束后转移" in page

    # handed in and read: the balance is on the new card at once
    replaced = client.post(
        f"/cards/cards/{old_no}/replace/",
        {"new_card_no": CARD_NOS[1], "old_card": "read"},
        follow=True,
    ).content.decode()
    assert "旧卡余额已即时转入新卡" in replaced
    new = CardUnit.objects.get(card_no=CARD_NOS[1])
    assert devices.read_card(new).balance == 8_800
    assert ledger.check() == []

    # the new card missing at its own replacement: the wait of the dispute period
    replaced = client.post(
        f"/cards/cards/{CARD_NOS[1]}/replace/",
        {"new_card_no": CARD_NOS[2], "old_card": "missing"},
        follow=True,
    ).content.decode()
    assert "原卡余额将在资金争议期结束后转入新卡" in replaced
    assert ledger.balance(ledger.SETTLEMENTS_HELD) == -8_800
    assert ListEvent.objects.get(medium_id=CARD_NOS[1]).list_type == 3
    assert ledger.check() == []
