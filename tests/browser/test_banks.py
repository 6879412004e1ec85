"""The banks' page in a real browser (zh-CN, 1280 px): an operator goes from the
exchange page to the banks', finds the account 工商银行 refused in recovery with
its card on list type 4, and the instruction 邮储银行 left unconfirmed past the
deadline marked overdue; chases it, and once the bank confirms it, finds it
confirmed. The signature server and both bank-sims are real processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from etcnet.exchange.banks import debits, settlement, transport
from etcnet.exchange.tests.banks import BANK_NO_1, BANK_NO_2, CARD_2, DAY, debit_day
from etcnet.exchange.tests.conftest import (  # noqa: F401  (fixtures)
    _vault,
    banks,
    lane_terminal,
    signer,
    signer_process,
    tianjin,
)
from tests.browser.conftest import submit

pytestmark = pytest.mark.browser

HELD = f"{DAY:%Y%m%d}-owner-C"


def test_an_operator_sees_a_refused_debit_in_recovery_and_chases_an_overdue_instruction(
    desktop: Page,
    operator: Any,
    lane_terminal: Any,  # noqa: F811
    banks: Any,  # noqa: F811
    settings: Any,
    log_in: Callable[..., None],
    url: Callable[[str], str],
    snap: Any,
) -> None:
    debit_day(lane_terminal)
    banks["icbc"].accounts(**{BANK_NO_1: 200_00, BANK_NO_2: 0})  # A0002 cannot pay
    banks["postal"].behave(hold_confirm=[HELD])
    debits.make_debit_files(DAY)
    settlement.make_instructions(DAY)
    assert transport.send().acked == 2
    assert transport.receive().applied == 2
    settings.ETCNET_BANK_CONFIRM_HOURS = 0  # the deadline has passed

    page = desktop
    log_in(page, "olga")
    submit(page, "nav.nav a[href='/exchange/']")
    submit(page, "[data-testid=banks-link]")
    expect(page.locator("h1")).to_have_text("与银行数据交换")
    expect(page.locator("[data-testid=summary]")).to_contain_text("1 个账户追缴中，欠款 71.49 元")
    recovery = page.locator("[data-testid=recovery]")
    expect(recovery).to_have_count(1)
    expect(recovery).to_contain_text("A0002")
    expect(recovery).to_contain_text("中国工商银行陕西省分行")
    expect(recovery).to_contain_text("71.49")
    expect(recovery).to_contain_text(f"{CARD_2} 已列入")
    refused = page.locator(f"[data-bank='{banks['icbc'].id}'] [data-testid=bank-file]")
    expect(refused.filter(has_text="代扣文件")).to_contain_text("176.73")
    overdue = page.locator("[data-testid=instruction][data-overdue='1']")
    expect(overdue).to_have_count(1)
    expect(overdue).to_contain_text(HELD)
    expect(overdue).to_contain_text("38.48")
    expect(overdue).to_contain_text("逾期")
    expect(page.locator("[data-testid=overdue]")).to_contain_text("其中 1 条已逾期")
    snap(page, "01-overdue")

    submit(page, "[data-testid=chase]")
    expect(page.locator(".messages")).to_contain_text("1 条逾期指令已在 CHASE_")
    chase = page.locator(f"[data-bank='{banks['postal'].id}'] [data-testid=bank-file]")
    expect(chase.filter(has_text="CHASE_")).to_contain_text("等待发送")
    expect(page.locator(f"[data-testid=instruction]:has-text('{HELD}') td").last).to_have_text("1")
    snap(page, "02-chased")

    banks["postal"].behave(hold_confirm=[])  # the bank executes it at last
    assert transport.send().acked == 1
    assert transport.receive().applied == 1
    page.goto(url("/exchange/banks/"))
    page.select_option("select[name=instruction]", "sent")
    submit(page, "main form.filters button[type=submit]")
    expect(page.locator("[data-testid=instruction]")).to_have_count(0)
    expect(page.locator("[data-testid=overdue]")).to_contain_text("其中 0 条已逾期")
    snap(page, "03-confirmed")
