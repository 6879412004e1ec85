"""The staff side of plate pre-selection in a real browser: the center operator
creates and releases a pool that the public announcement page then lists; the
vehicle office clerk registers a pre-selected number, refused first because the
invoice's name is not the user's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from conftest import committed, last_code, make_user
from etcnet.plates import flow
from etcnet.plates.models import NumberPool, PlateSettings, Selection, SelectionStatus
from etcnet.plates.tests import factories

pytestmark = pytest.mark.browser


def test_operator_creates_and_releases_a_pool_that_is_announced(
    desktop: Page, url: Callable[[str], str], log_in: Callable[..., None], snap: Any
) -> None:
    from etcnet.plates import samples

    samples.create_offices()
    make_user("olga", "center_operator")
    log_in(desktop, "olga")
    desktop.goto(url("/plates/manage/"))

    desktop.fill("#p-title", "粤G 新能源 2027 第 1 期")
    desktop.select_option("#p-kind", "new_energy")
    desktop.fill("#p-patterns", "DI####")
    with desktop.expect_navigation():
        desktop.click("text=创建号池（草稿）")
    expect(desktop.locator("main .field-error").first).to_contain_text("I")
    assert NumberPool.objects.count() == 0

    desktop.fill("#p-patterns", "D[A-B]####")
    desktop.fill("#p-reserved", r"(\d)\1{3}$")
    desktop.fill("#p-ann", "本期投放 DA0000–DB9999。")
    with desktop.expect_navigation():
        desktop.click("text=创建号池（草稿）")
    with desktop.expect_navigation():
        desktop.click("main form button:has-text('投放')")
    snap(desktop, "manage")
    pool = NumberPool.objects.get()
    assert (pool.status, pool.available_count, pool.reserved_count) == ("released", 19980, 20)

    desktop.goto(url("/plates/announcements/"))
    desktop.click("text=粤G 新能源 2027 第 1 期")
    expect(desktop.locator("main")).to_contain_text("本期投放 DA0000–DB9999。")
    expect(desktop.locator("main")).to_contain_text("19980")


def test_office_clerk_registers_a_preselected_number(
    handheld: Page, url: Callable[[str], str], log_in: Callable[..., None], snap: Any
) -> None:
    PlateSettings.objects.update_or_create(
        pk=1, defaults={"opens": dt.time(0, 0), "closes": dt.time(23, 59, 59)}
    )
    office, _ = factories.office_with_pool(patterns=("A00##",))
    account = factories.register()
    factories.to_choose(account, office)
    opened = timezone.now()
    flow.open_window(actor=account.user, token="browser-1", now=opened)
    with committed():
        flow.submit(
            actor=account.user,
            token="browser-1",
            serial="A0042",
            now=opened + dt.timedelta(seconds=90),
        )
    selection = flow.confirm_code(actor=account.user, token="browser-1", code=last_code())
    clerk = make_user("vera", "vehicle_office_clerk")
    office.clerks.add(clerk)

    log_in(handheld, "vera")
    expect(handheld).to_have_url(url("/plates/office/"))
    handheld.fill("#q", "粤G·A0042")
    with handheld.expect_navigation():
        handheld.click("text=查找")
    expect(handheld.get_by_test_id("user-name")).to_have_text("张三")
    handheld.fill("#f-invoice_name", "张四")
    handheld.fill("#f-invoice_number", "04400123")
    handheld.fill("#f-vin", selection.vin)
    with handheld.expect_navigation():
        handheld.click("text=办理注册登记")
    expect(handheld.locator("[data-field=invoice_name] .field-error")).to_have_text(
        "发票名称与互联网用户姓名不一致。"
    )
    assert Selection.objects.get().status == SelectionStatus.PRESELECTED

    handheld.fill("#f-invoice_name", "张三")
    with handheld.expect_navigation():
        handheld.click("text=办理注册登记")
    expect(handheld.locator(".msg")).to_have_text("已办理注册登记。")
    snap(handheld, "registered")
    assert Selection.objects.get().status == SelectionStatus.REGISTERED
