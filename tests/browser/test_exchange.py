"""The exchange page in a real browser (zh-CN, 1280 px): an operator finds a
package the national center has not acknowledged (it dropped the answer), with
its error and its next attempt, asks for it to be sent now, and, once it is
acknowledged, finds it among the acknowledged. The signature server and the
simulated national center are real processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from etcnet.exchange import link
from etcnet.exchange.tests.conftest import (  # noqa: F401  (fixtures)
    _vault,
    foreign_day,
    lane_terminal,
    national,
    signer,
    signer_process,
    tianjin,
)
from tests.browser.conftest import submit

pytestmark = pytest.mark.browser


def test_an_operator_finds_a_message_waiting_and_sends_it_now(
    desktop: Page,
    operator: Any,
    foreign_day: Any,  # noqa: F811
    national: Any,  # noqa: F811
    log_in: Callable[..., None],
    url: Callable[[str], str],
    snap: Any,
) -> None:
    link.queue()
    national.behave(mode="drop-acks")
    link.send()
    page = desktop
    log_in(page, "olga")
    submit(page, "nav.nav a[href='/exchange/']")
    expect(page.locator("h1")).to_have_text("与部中心数据交换")
    expect(page.locator("[data-testid=signer]")).to_contain_text("剩余")
    expect(page.locator("[data-testid=certificate]")).to_have_count(2)
    waiting = page.locator("[data-testid=transfer][data-state=pending]")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("等待发送")
    expect(waiting).to_contain_text("not answered")
    expect(page.locator("[data-testid=waiting]")).to_contain_text("1 条消息等待确认")
    snap(page, "01-waiting")

    submit(page, "[data-testid=send-now]")
    expect(page.locator(".messages")).to_contain_text("1 条等待中的消息将立即发送")
    national.behave(mode="accept")
    assert link.send().acked == 1
    page.goto(url("/exchange/"))
    page.select_option("select[name=state]", "acked")
    submit(page, "main form.filters button[type=submit]")
    acked = page.locator("[data-testid=transfer][data-state=acked]")
    expect(acked).to_have_count(1)
    expect(acked).to_contain_text("已确认")
    expect(page.locator("[data-testid=transfer][data-state=pending]")).to_have_count(0)
    snap(page, "02-acknowledged")
