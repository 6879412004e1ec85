"""The card counter in a real browser on a 390×844 handheld: issue a card and an
OBU for an approved application, activate, top up 100.00 yuan, see the balance;
then report the card lost and find it among the pending status-list events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conftest import complete_application
from etcnet.cards import devices, ledger, vault
from etcnet.cards import services as cards
from etcnet.cards.models import CardUnit, UnitKind, UnitState
from etcnet.issuance import samples
from etcnet.issuance import services as issuance
from etcnet.lists.models import ListEvent
from tests.browser.test_issuance_wizard import Tour, submit

pytestmark = pytest.mark.browser

CARD_NO = "61010000000000000001"
OBU_NO = "6101000000000001"


@pytest.fixture
def counter(settings: Any, tmp_path: Path, clerk: Any) -> Any:
    """Keys, emulated stock at the clerk's outlet, and an approved application."""
    key_file = tmp_path / "keys.json"
    vault.generate_key_file(key_file)
    settings.ETCNET_KEYS_FILE = str(key_file)
    settings.ETCNET_CARD_DIR = tmp_path / "cards"
    vault.reset_cache()
    cards.receive_batch(
        kind=UnitKind.CARD,
        reference="C1",
        serials=[CARD_NO, "61010000000000000002"],
        emulated=True,
        actor=clerk,
    )
    cards.receive_batch(
        kind=UnitKind.OBU, reference="O1", serials=[OBU_NO], emulated=True, actor=clerk
    )
    application = complete_application(clerk)
    assert issuance.submit_application(application.pk, actor=clerk).approved
    yield application
    vault.reset_cache()


def test_issue_activate_and_top_up_100_yuan(
    handheld: Page,
    counter: Any,
    log_in: Callable[..., None],
    url: Callable[[str], str],
    snap: Any,
    tmp_path: Path,
) -> None:
    page = handheld
    tour = Tour(page, snap)
    log_in(page, "alice")

    page.goto(url(f"/issuance/applications/{counter.pk}/"))
    submit(page, "[data-testid=issue-link]")
    tour.visit("01-issue")
    page.select_option("#f-card_type", "22")
    page.select_option("#f-card_no", CARD_NO)
    page.select_option("#f-contract_no", OBU_NO)
    submit(page)

    expect(page.locator("[data-testid=binding-status]")).to_have_text("已发行，OBU未激活")
    tour.visit("02-binding")
    installed = tmp_path / "installed.jpg"
    installed.write_bytes(samples.photo_bytes("OBU installed"))
    page.set_input_files("#f-photo", str(installed))
    submit(page)

    expect(page).to_have_url(url(f"/cards/cards/{CARD_NO}/"))
    expect(page.locator("[data-testid=card-state]")).to_have_text("正常")
    expect(page.locator("[data-testid=balance]")).to_have_text("¥ 0.00")
    tour.visit("03-card")
    page.fill("#f-amount", "100.00")
    page.select_option("#f-channel", "cash")
    submit(page, "form[action$='/top-up/'] button.primary")

    expect(page.locator(".msg.success")).to_have_text("已圈存 100.00 元。")
    expect(page.locator("[data-testid=balance]")).to_have_text("¥ 100.00")
    tour.visit("04-card-topped-up")

    # The money is on the card itself, and the ledger agrees.
    card = CardUnit.objects.get(card_no=CARD_NO)
    assert devices.read_card(card).balance == 10_000
    assert card.shadow_balance_fen == 10_000
    assert ledger.check() == []
    assert tour.overflow == {}, f"pages wider than 390 px: {tour.overflow}"


def test_report_lost_and_see_it_among_pending_list_events(
    handheld: Page,
    counter: Any,
    clerk: Any,
    log_in: Callable[..., None],
    url: Callable[[str], str],
    snap: Any,
) -> None:
    binding = cards.issue(
        counter.pk, card_no=CARD_NO, contract_no=OBU_NO, card_type=22, actor=clerk
    )
    from conftest import photo

    cards.activate(binding.pk, photo=photo("obu"), actor=clerk)
    page = handheld
    tour = Tour(page, snap)
    log_in(page, "alice")

    page.goto(url(f"/cards/cards/{CARD_NO}/"))
    page.fill("form[action$='/loss/'] input[name=reason]", "客户来电挂失")
    submit(page, "[data-testid=report-loss]")

    expect(page.locator("[data-testid=card-state]")).to_have_text("已挂失")
    tour.visit("01-card-lost")
    page.goto(url("/cards/list-events/"))
    row = page.locator(f"tr[data-medium-id='{CARD_NO}']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("1 卡挂失")
    expect(row).to_contain_text("进入")
    expect(row).to_contain_text("客户来电挂失")
    tour.visit("02-list-events")

    assert CardUnit.objects.get(card_no=CARD_NO).state == UnitState.LOST
    assert ListEvent.objects.filter(medium_id=CARD_NO, published_at__isnull=True).count() == 1
    assert tour.overflow == {}, f"pages wider than 390 px: {tour.overflow}"
