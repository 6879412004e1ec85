"""A customer's name or phone change in a real browser: a clerk of another
outlet submits an application that would change an existing customer's phone;
it waits for review; a clerk of the customer's outlet finds it in the review
queue, must give a reason to refuse, and accepts it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conftest import complete_application, make_user
from etcnet.issuance import samples, services
from etcnet.issuance.models import Application, Customer, Outlet
from tests.browser.conftest import submit

pytestmark = pytest.mark.browser


def test_a_clerk_of_the_customers_outlet_reviews_a_phone_change(
    handheld: Page, clerk: Any, other_clerk: Any, log_in: Any, url: Any, snap: Any
) -> None:
    # 张三 opened at 城南 by alice; dan at 城北 takes a second car with a new phone.
    first = complete_application(clerk)
    assert services.submit_application(first.pk, actor=clerk).approved
    dan = make_user(
        "dan", "issuance_clerk", outlet=Outlet.objects.create(code="610101002", name="西安城北网点")
    )
    second = complete_application(
        dan,
        vehicle=samples.passenger_car(
            plate="陕AD12345", plate_color="4", vin=samples.vin("LGXC16DF4N0")
        ),
        phone="13900001111",
    )
    page = handheld

    # dan submits: the application waits for the customer's outlet.
    log_in(page, "dan")
    page.goto(url(f"/issuance/applications/{second.pk}/review/"))
    submit(page, "main form.actions button.primary")
    expect(page.get_by_test_id("status")).to_have_text("待客户开户网点审核变更")
    expect(page.get_by_test_id("review-waiting")).to_contain_text("西安城南网点")
    expect(page.get_by_test_id("review-form")).to_have_count(0)
    snap(page, "01-waiting")

    # bob at 城南 finds it in the review queue and opens it.
    page.context.clear_cookies()
    log_in(page, "bob")
    page.goto(url("/issuance/?status=review"))
    submit(page, f"a[href='/issuance/applications/{second.pk}/']")
    expect(page.get_by_test_id("old-phone")).to_have_text("13800138000")
    expect(page.get_by_test_id("new-phone")).to_have_text("13900001111")
    snap(page, "02-review")

    # Refusing needs a reason; nothing changes without one.
    submit(page, "[data-testid=refuse-change]")
    expect(page.locator("#e-note")).to_contain_text("请填写不同意变更的原因")
    assert Application.objects.get(pk=second.pk).status == "review"

    # bob accepts: the application is approved and the phone changed.
    submit(page, "[data-testid=accept-change]")
    expect(page.locator("body")).to_contain_text("已同意变更")
    snap(page, "03-accepted")
    assert Application.objects.get(pk=second.pk).status == "approved"
    assert Customer.objects.get().phone == "13900001111"
