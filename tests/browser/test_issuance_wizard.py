"""The issuance wizard in a real browser: a clerk on a handheld takes an
application from the phone step to automatic approval; a refused application
shows its reasons; the list masks personal data.

Every page visited is saved as a full-page screenshot in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conftest import complete_application, last_code, make_user, verified_application
from etcnet.core.masking import mask_id_number, mask_phone
from etcnet.core.validators import resident_id_check_char
from etcnet.issuance import samples, services
from etcnet.issuance.models import (
    Application,
    ApplicationStatus,
    Customer,
    Vehicle,
    VehicleStatus,
)
from tests.browser.conftest import submit  # the other browser tests import it from here

pytestmark = pytest.mark.browser

APPLICATION_URL = re.compile(r"/issuance/applications/(\d+)/")
# The vehicle step's text, number and date inputs, and its selects.
VEHICLE_INPUTS = (
    "plate",
    "owner_name",
    "brand_model",
    "vin",
    "engine_no",
    "register_date",
    "issue_date",
    "seats",
    "axles",
    "wheels",
    "length_mm",
    "width_mm",
    "height_mm",
    "total_mass_kg",
    "curb_mass_kg",
    "approved_load_kg",
    "contact_name",
    "contact_phone",
)
VEHICLE_SELECTS = ("plate_color", "category", "toll_class", "user_type", "use_nature")


# The outermost elements that stick out past the right edge of the viewport
# (their parents fit), described as tag.class, to tell what makes a page too wide.
CULPRITS_JS = """() => {
  const limit = document.documentElement.clientWidth + 1;
  const right = (el) => el.getBoundingClientRect().right;
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const parent = el.parentElement;
    if (right(el) <= limit) continue;
    if (parent && parent !== document.body && right(parent) > limit) continue;
    const cls = typeof el.className === "string" && el.className.trim()
      ? "." + el.className.trim().split(/\\s+/).join(".") : "";
    out.push(el.tagName.toLowerCase() + cls + " → " + Math.round(right(el)) + "px");
  }
  return out.slice(0, 5);
}"""


class Tour:
    """Screenshots each page visited and notes any horizontal overflow, so one
    run reports every page that is too wide rather than the first."""

    def __init__(self, page: Page, snap: Callable[[Page, str], None]) -> None:
        self.page = page
        self.snap = snap
        self.overflow: dict[str, str] = {}

    def visit(self, step: str, *, check_width: bool = True) -> None:
        self.page.wait_for_load_state("load")
        self.snap(self.page, step)
        if not check_width:
            return
        width = self.page.evaluate("document.documentElement.scrollWidth")
        allowed = self.page.viewport_size["width"]  # type: ignore[index]
        if width > allowed:
            culprits = ", ".join(self.page.evaluate(CULPRITS_JS))
            self.overflow[step] = f"{width}px wide ({culprits})"


def write_photos(folder: Path, *kinds: str) -> dict[str, Path]:
    paths = {}
    for kind in kinds:
        path = folder / f"{kind}.jpg"
        path.write_bytes(samples.photo_bytes(kind))
        paths[kind] = path
    return paths


def wrong_check_char(number: str) -> str:
    """The same ID number with another (wrong) check character."""
    return number[:17] + ("1" if number[17] != "1" else "2")


def test_clerk_completes_the_wizard_on_a_handheld(
    handheld: Page, clerk: Any, url: Any, snap: Any, tmp_path: Path
) -> None:
    page = handheld
    tour = Tour(page, snap)
    customer = samples.personal_customer()
    car = samples.passenger_car()
    photos = write_photos(
        tmp_path, "id_photo", "licence_main", "licence_supplement", "vehicle_head"
    )

    # The clerk logs in on the handheld and lands on the application list.
    page.goto(url("/login/"))
    tour.visit("00-login")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-12345678")
    submit(page)
    expect(page).to_have_url(url("/issuance/"))
    tour.visit("01-list")

    # Step 1a: the customer's phone; a code is texted.
    page.goto(url("/issuance/applications/new/"))
    tour.visit("02-start")
    page.fill("input[name=phone]", "13800138000")
    submit(page)
    expect(page).to_have_url(re.compile(r"/issuance/applications/\d+/phone/$"))
    match = APPLICATION_URL.search(page.url)
    assert match is not None
    application_id = int(match.group(1))
    base = url(f"/issuance/applications/{application_id}")
    code = last_code()
    tour.visit("03-phone")

    # Step 1b: a wrong code first, then the one the customer reads out.
    page.fill("input[name=code]", "000000" if code != "000000" else "111111")
    submit(page)
    expect(page).to_have_url(f"{base}/phone/")
    expect(page.locator("[data-field=code] .field-error")).to_contain_text("验证码错误")
    tour.visit("04-phone-wrong-code")
    page.fill("input[name=code]", code)
    submit(page)
    expect(page).to_have_url(f"{base}/customer/")

    # Step 2: a personal customer. The organization fields show only for an
    # organization, and the document types follow the customer type.
    org_fields = page.locator("#org-fields")
    expect(page.locator("input[name=customer_type][value='1']")).to_be_checked()
    expect(org_fields).to_be_hidden()
    page.check("input[name=customer_type][value='2']")
    expect(org_fields).to_be_visible()
    expect(page.locator("#f-id_type")).to_have_value("201")
    page.check("input[name=customer_type][value='1']")
    expect(org_fields).to_be_hidden()
    expect(page.locator("#f-id_type")).to_have_value("101")
    tour.visit("05-customer")

    page.fill("#f-name", customer["name"])
    page.select_option("#f-id_type", customer["id_type"])
    page.fill("#f-id_number", wrong_check_char(customer["id_number"]))
    page.fill("#f-address", customer["address"])
    submit(page)
    # A mistyped ID number is refused by its check character, and nothing typed is lost.
    expect(page).to_have_url(f"{base}/customer/")
    error = page.locator("[data-field=id_number] .field-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("校验位为 2")
    expect(page.locator("#f-name")).to_have_value(customer["name"])
    expect(page.locator("#f-address")).to_have_value(customer["address"])
    tour.visit("06-customer-bad-id")
    page.fill("#f-id_number", customer["id_number"])
    submit(page)
    expect(page).to_have_url(f"{base}/id-photo/")

    # Step 3: the ID photo (a person: no entrust letter).
    expect(page.locator("input[name=entrust_letter]")).to_have_count(0)
    tour.visit("07-id-photo")
    page.set_input_files("input[name=id_photo]", photos["id_photo"])
    submit(page)
    expect(page).to_have_url(f"{base}/vehicle/")

    # Step 4: the vehicle. The contact is prefilled from the verified phone.
    expect(page.locator("#f-contact_phone")).to_have_value("13800138000")
    expect(page.locator("#f-owner_name")).to_have_value(customer["name"])
    tour.visit("08-vehicle")
    for name in VEHICLE_SELECTS:
        page.select_option(f"#f-{name}", car[name])
    for name in VEHICLE_INPUTS:
        page.fill(f"#f-{name}", car[name])
    submit(page)
    expect(page).to_have_url(f"{base}/vehicle-photos/")

    # Step 5: driving licence pages and the vehicle head.
    tour.visit("09-vehicle-photos")
    for kind in ("licence_main", "licence_supplement", "vehicle_head"):
        page.set_input_files(f"input[name={kind}]", photos[kind])
    submit(page)
    expect(page).to_have_url(f"{base}/review/")

    # Step 6: the review shows what was entered, the photos, and no reasons.
    expect(page.locator("[data-testid=refusal-reasons]")).to_have_count(0)
    summary = page.locator(".summary")
    expect(summary).to_contain_text(customer["id_number"])
    expect(summary).to_contain_text(car["plate"])
    expect(summary).to_contain_text(car["vin"])
    thumbs = page.locator(".thumbs img")
    expect(thumbs).to_have_count(4)
    for img in thumbs.all():
        img.scroll_into_view_if_needed()
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), img.get_attribute("src")
    tour.visit("10-review")
    submit(page, f"form[action$='/applications/{application_id}/submit/'] button.primary")

    # Approved at once: the detail page says so.
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("[data-testid=status]")).to_have_text("已通过，待发行")
    expect(page.locator("[data-testid=refusal-reasons]")).to_have_count(0)
    expect(page.locator(".history tbody tr").first).to_be_visible()
    tour.visit("11-detail-approved")

    # The customer and the vehicle now exist.
    application = Application.objects.get(pk=application_id)
    assert application.status == ApplicationStatus.APPROVED
    saved = Customer.objects.get(id_type=101, id_number=customer["id_number"])
    assert (saved.name, saved.phone, saved.customer_type) == ("张三", "13800138000", 1)
    vehicle = Vehicle.objects.get(plate=car["plate"], plate_color=0)
    assert vehicle.customer == saved
    assert vehicle.status == VehicleStatus.AWAITING_ISSUANCE
    assert (vehicle.vin, vehicle.toll_class, vehicle.seats) == (car["vin"], 1, 5)
    assert (application.customer, application.vehicle) == (saved, vehicle)
    assert set(application.documents.values_list("kind", flat=True)) == set(photos)

    # No page of the wizard is wider than the handheld.
    assert tour.overflow == {}, f"pages wider than 390 px: {tour.overflow}"


def test_refused_application_shows_its_reasons(
    handheld: Page, clerk: Any, log_in: Any, url: Any, snap: Any
) -> None:
    # A truck declared 1类货车 (its size makes it 2类货车), whose plate another
    # clerk's application takes first.
    application = complete_application(clerk, vehicle=samples.two_axle_truck(toll_class="11"))
    rival_clerk = make_user("rival", "issuance_clerk", outlet=clerk.outlet_membership.outlet)
    rival = complete_application(
        rival_clerk,
        customer=samples.personal_customer(name="赵六", id_number=samples.resident_id(seq="555")),
        vehicle=samples.two_axle_truck(vin=samples.vin(serial="700001")),
        phone="13911112222",
    )
    assert services.submit_application(rival.pk, actor=rival_clerk).approved
    page = handheld
    tour = Tour(page, snap)
    log_in(page, "alice")

    # The review does not judge yet; submitting does.
    page.goto(url(f"/issuance/applications/{application.pk}/review/"))
    expect(page.locator("[data-testid=refusal-reasons]")).to_have_count(0)
    tour.visit("01-review")
    submit(page, f"form[action$='/applications/{application.pk}/submit/'] button.primary")

    expect(page).to_have_url(url(f"/issuance/applications/{application.pk}/"))
    expect(page.locator("[data-testid=status]")).to_have_text("未通过")
    reasons = page.locator("[data-testid=refusal-reasons]")
    expect(reasons).to_be_visible()
    expect(reasons.locator("h2")).to_have_text("未通过原因")
    items = reasons.locator("li[data-code]")
    expect(items).to_have_count(2)
    codes = [li.get_attribute("data-code") for li in items.all()]
    assert codes == ["class_inconsistent", "plate_already_bound"]
    expect(items.nth(0)).to_have_text(
        "收费车型“1类货车”与车辆不符：按座位数、车长、轴数和质量应为“2类货车”。"
    )
    expect(items.nth(1)).to_have_text("该车牌及颜色已绑定有效的ETC（一车一签一卡）。")
    expect(page.locator(".msg.error")).to_contain_text("未通过")
    # The clerk is offered the way back to correct it.
    expect(
        page.locator(f"a.button[href$='/applications/{application.pk}/review/']")
    ).to_be_visible()
    tour.visit("02-detail-refused")

    # The review now carries the same reasons.
    page.goto(url(f"/issuance/applications/{application.pk}/review/"))
    review_codes = page.locator("[data-testid=refusal-reasons] li[data-code]")
    expect(review_codes).to_have_count(2)
    tour.visit("03-review-with-reasons")

    application.refresh_from_db()
    assert application.status == ApplicationStatus.REFUSED
    # Only the rival's customer and vehicle exist.
    assert list(Customer.objects.values_list("name", flat=True)) == ["赵六"]
    assert Vehicle.objects.count() == 1
    assert tour.overflow == {}, f"pages wider than 390 px: {tour.overflow}"


def test_application_list_masks_personal_data_on_a_desktop(
    desktop: Page, clerk: Any, log_in: Any, url: Any, snap: Any
) -> None:
    person = samples.personal_customer()
    company = samples.organization_customer()
    complete_application(clerk, customer=person)
    complete_application(
        clerk,
        customer=company,
        vehicle=samples.two_axle_truck(),
        phone="13900139000",
    )
    page = desktop
    tour = Tour(page, snap)
    log_in(page, "alice")
    page.goto(url("/issuance/"))

    rows = page.locator("#rows tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#rows thead")).to_be_visible()
    tour.visit("01-list")

    # Document numbers and phones are masked; a person's name too, not a company's.
    html = page.content()
    text = page.locator("main").inner_text()
    for full in (person["id_number"], company["id_number"], "13800138000", "13900139000"):
        assert full not in html
    for masked in (
        mask_id_number(person["id_number"]),
        mask_id_number(company["id_number"]),
        mask_phone("13800138000"),
        mask_phone("13900139000"),
        "张*",
        company["name"],
    ):
        assert masked in text
    assert person["name"] not in text

    # Searching by the whole ID number finds the row, still masked.
    page.fill("input[name=q]", person["id_number"])
    with page.expect_response(lambda r: "/issuance/?" in r.url and r.ok):
        page.press("input[name=q]", "Enter")
    expect(rows).to_have_count(1)
    found = page.locator("#rows").inner_text()
    assert mask_id_number(person["id_number"]) in found
    assert person["id_number"] not in found
    tour.visit("02-list-search")

    assert tour.overflow == {}, f"pages wider than 1280 px: {tour.overflow}"


# Regressions of defects found in review: the detail page's width, check
# character messages, hints that leaked to other fields, the list filters.


def test_detail_page_fits_a_handheld(
    handheld: Page, clerk: Any, log_in: Any, url: Any, snap: Any
) -> None:
    application = complete_application(clerk)
    assert services.submit_application(application.pk, actor=clerk).approved
    page = handheld
    tour = Tour(page, snap)
    log_in(page, "alice")
    page.goto(url(f"/issuance/applications/{application.pk}/"))
    expect(page.locator("[data-testid=status]")).to_have_text("已通过，待发行")
    tour.visit("01-detail")
    assert tour.overflow == {}, f"pages wider than 390 px: {tour.overflow}"


def _id_with_check_char(char: str) -> str:
    """A valid resident ID number whose check character is `char`."""
    for seq in range(100, 1000):
        number = samples.resident_id(seq=str(seq))
        if number[17] == char:
            return number
    raise AssertionError(f"no sequence gives the check character {char}")


@pytest.mark.parametrize("expected", ["1", "X"])
def test_check_character_error_names_the_character(
    expected: str, desktop: Page, clerk: Any, log_in: Any, url: Any, snap: Any
) -> None:
    application = verified_application(clerk)
    right = _id_with_check_char(expected)
    assert resident_id_check_char(right[:17]) == expected
    typed = right[:17] + ("2" if expected != "2" else "3")
    page = desktop
    log_in(page, "alice")
    page.goto(url(f"/issuance/applications/{application.pk}/customer/"))
    page.fill("#f-name", "张三")
    page.fill("#f-id_number", typed)
    page.fill("#f-address", "陕西省西安市碑林区南大街1号")
    with page.expect_navigation() as navigation:
        page.click("main form button.primary")
    snap(page, f"customer-check-char-{expected}")
    response = navigation.value
    assert response is not None
    assert response.status == 400
    # The page has loaded: read the message once rather than wait for a change.
    message = page.locator("[data-field=id_number] .field-error").inner_text()
    assert message == f"校验位为 {typed[17]}，应为 {expected}，可能输错了某一位。"


def test_vehicle_hints_stay_with_their_fields(
    handheld: Page, clerk: Any, log_in: Any, url: Any, snap: Any
) -> None:
    application = verified_application(clerk)
    services.save_customer(application.pk, data=samples.personal_customer(), actor=clerk)
    page = handheld
    log_in(page, "alice")
    page.goto(url(f"/issuance/applications/{application.pk}/vehicle/"))
    snap(page, "vehicle")
    with_hint = [
        el.get_attribute("data-field")
        for el in page.locator("[data-field]").all()
        if el.locator(".hint").count()
    ]
    assert with_hint == ["plate", "toll_class"]


@pytest.mark.parametrize("device", ["handheld", "desktop"])
def test_list_filters_fit_their_card(
    device: str, request: pytest.FixtureRequest, clerk: Any, log_in: Any, url: Any, snap: Any
) -> None:
    page: Page = request.getfixturevalue(device)
    log_in(page, "alice")
    page.goto(url("/issuance/"))
    snap(page, f"list-{device}")
    card_right = page.evaluate(
        "() => { const c = document.querySelector('main .card');"
        " return c.getBoundingClientRect().right - parseFloat(getComputedStyle(c).paddingRight); }"
    )
    controls = page.locator(".filters > *")
    heights = set()
    for control in controls.all():
        box = control.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= card_right + 0.5, control.evaluate("e => e.outerHTML")
        heights.add(round(box["height"]))
    # One line of text each: no control is stretched by a wrapped neighbour.
    assert max(heights) <= 50, heights
