"""The staff side of plate pre-selection in a real browser: the center operator
creates and releases a pool that the public announcement page then lists; the
vehicle office clerk registers a pre-selected number, refused first because the
invoice's name is not the user's, and registers at the window (窗口注册) the
owner of an ID number someone else registered online."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from conftest import committed, last_code, make_user
from etcnet.issuance import samples as issuance_samples
from etcnet.plates import flow
from etcnet.plates.models import (
    NumberPool,
    NumberStatus,
    PlateAccount,
    PlateSettings,
    PoolNumber,
    Selection,
    SelectionStatus,
)
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
    # Each click waits for what its page shows, however long a loaded machine
    # takes (the expectations' timeout), never for a fixed time.
    desktop.click("text=创建号池（草稿）")
    expect(desktop.locator("main .field-error").first).to_contain_text("I")
    assert NumberPool.objects.count() == 0

    desktop.fill("#p-patterns", "D[A-B]####")
    desktop.fill("#p-reserved", r"(\d)\1{3}$")
    desktop.fill("#p-ann", "本期投放 DA0000–DB9999。")
    desktop.click("text=创建号池（草稿）")
    row = desktop.locator("main table tbody tr", has_text="粤G 新能源 2027 第 1 期")
    expect(row).to_contain_text("草稿")
    # Releasing makes 20,000 numbers: the page comes back when they are made.
    row.locator("button:has-text('投放')").click()
    expect(row).to_contain_text("已投放")
    expect(row).to_contain_text("19980 / 20")
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


def test_office_clerk_gives_a_squatted_id_number_back_at_the_window(
    desktop: Page, url: Callable[[str], str], log_in: Callable[..., None], snap: Any
) -> None:
    """Someone registered 王五's ID number online and holds 粤GA0042 with it;
    王五 brings the ID card to the window: the clerk registers 王五, the other
    account is cancelled and the number returns to the pool; 王五 logs in."""
    PlateSettings.objects.update_or_create(
        pk=1, defaults={"opens": dt.time(0, 0), "closes": dt.time(23, 59, 59)}
    )
    office, _ = factories.office_with_pool(patterns=("A00##",))
    owner_id = issuance_samples.resident_id(seq="321")
    squatter = factories.register(9, id_number=owner_id, name="王五", phone="13900000009")
    factories.to_choose(squatter, office)
    opened = timezone.now()
    flow.open_window(actor=squatter.user, token="browser-1", now=opened)
    with committed():
        flow.submit(
            actor=squatter.user,
            token="browser-1",
            serial="A0042",
            now=opened + dt.timedelta(seconds=90),
        )
    flow.confirm_code(actor=squatter.user, token="browser-1", code=last_code())
    clerk = make_user("vera", "vehicle_office_clerk")
    office.clerks.add(clerk)

    log_in(desktop, "vera")
    expect(desktop).to_have_url(url("/plates/office/"))
    desktop.click("#window-link")
    expect(desktop).to_have_url(url("/plates/office/window/"))
    expect(desktop.locator("h1")).to_have_text("窗口注册")

    # 「查询」 shows who holds the ID number, masked, and the number it holds.
    desktop.fill("#lookup", owner_id)
    desktop.click("text=查询")
    holder = desktop.get_by_test_id("holder")
    expect(holder).to_contain_text("王*")
    expect(holder).to_contain_text("139****0009")
    expect(holder).to_contain_text("粤GA0042")
    expect(desktop.locator("#f-id_number")).to_have_value(owner_id)

    desktop.check("input[name=user_type][value=new_vehicle_owner]")
    desktop.fill("#f-name", "王五")
    desktop.fill("#f-phone", "13700000321")
    desktop.fill("#f-city", "湛江市")
    desktop.fill("#f-password", "owner2026ok")
    desktop.fill("#f-password_again", "owner2026ok")
    # Not without the ID card checked.
    desktop.click("main form button.primary")
    expect(desktop.locator("[data-field=id_card_seen] .field-error")).to_have_text(
        "窗口注册前请核验身份证明原件。"
    )
    desktop.fill("#f-password", "owner2026ok")
    desktop.fill("#f-password_again", "owner2026ok")
    desktop.check("input[name=id_card_seen]")
    desktop.click("main form button.primary")
    expect(desktop.locator(".msg.success")).to_have_text(
        "已为 王五 办理窗口注册（手机 137****0321）。"
    )
    expect(desktop.locator(".msg.warning")).to_have_text(
        "占用该身份证明号码的账号（手机 139****0009）已注销；其所持号牌已退回号池：粤GA0042。"
    )
    snap(desktop, "window-registered")

    squatter.refresh_from_db()
    assert (squatter.status, squatter.cancel_reason) == ("cancelled", "claimed_at_window")
    held = Selection.objects.get(account=squatter)
    assert held.status == SelectionStatus.VOIDED
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.AVAILABLE
    owner = PlateAccount.objects.get(status="active", id_number=owner_id)
    assert owner.phone == "13700000321"

    # 王五 logs in on the public site with the ID number.
    desktop.context.clear_cookies()
    desktop.goto(url("/plates/login/"))
    desktop.fill("#id_username", owner_id)
    desktop.fill("#id_password", "owner2026ok")
    desktop.click("main form button.primary")
    expect(desktop).to_have_url(url("/plates/account/"))
    expect(desktop.locator("header .who")).to_contain_text("王五")
