"""Plate pre-selection in a real browser: a new-vehicle owner registers on a
handheld (the image captcha, the SMS code to the mobile number) and composes a
number on the virtual keyboard (whose unavailable keys cannot be pressed; 「验证」
asks for the image code), confirms it with the SMS code and downloads the form; a
second user takes a random number on a desktop; a user selecting from two
computers at once is refused and blacklisted.

Selection is opened all day and the self-composed window shortened, so the tests
need neither a wall-clock hour nor time-machine (the live server runs in another
thread, on real time). The captcha runs in its test mode (the answer "PASSED";
the live server shares this process). Every page visited is saved in test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from captcha.conf import settings as captcha_settings
from django.utils import timezone, translation
from playwright.sync_api import Locator, Page, expect

from conftest import last_code
from etcnet.issuance import samples as issuance_samples
from etcnet.plates import domain, selectors
from etcnet.plates.models import (
    Blacklist,
    BlacklistReason,
    NumberStatus,
    PlateAccount,
    PlateSettings,
    PoolNumber,
    Selection,
    SelectionMode,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
    VehicleOffice,
)
from etcnet.plates.tests import factories
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_issuance_wizard import Tour, submit

pytestmark = pytest.mark.browser

# Long enough to press five keys and verify, short enough to wait for.
WINDOW_SECONDS = 10
# The pool "A00##" is A0000–A0099; these ten are registered already.
TAKEN_PREFIX = "A001"
PASSWORD = factories.PASSWORD
SELECT_URL = "/plates/select/"
SMS_URL = "/plates/select/sms/"


@pytest.fixture(autouse=True)
def _captcha_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captcha_settings, "CAPTCHA_TEST_MODE", True)


def expect_captcha_image(page: Page, scope: str = "main") -> None:
    """The captcha's image is there and drawn (Pillow with the shipped font)."""
    image = page.locator(f"{scope} img.captcha-image")
    expect(image).to_have_attribute("src", re.compile(r"^/captcha/image/[0-9a-f]+/$"))
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0


@pytest.fixture
def pool(transactional_db: Any) -> VehicleOffice:
    """Selection open around the clock with a short window; the first office's
    pool A0000–A0099 released, A0010–A0019 registered already."""
    PlateSettings.objects.update_or_create(
        pk=1,
        defaults={
            "opens": dt.time(0, 0),
            "closes": dt.time(23, 59, 59),
            "window_seconds": WINDOW_SECONDS,
        },
    )
    office, _released = factories.office_with_pool(patterns=("A00##",))
    taken = PoolNumber.objects.filter(serial__startswith=TAKEN_PREFIX).update(
        status=NumberStatus.REGISTERED
    )
    assert taken == 10
    return office


def shown(message: str, **params: object) -> str:
    """A message as the zh-CN browser reads it (the English template until the
    catalogue translates it); templates' %(name)s or services' {name} filled in."""
    with translation.override("zh-hans"):
        text = translation.gettext(message)
    return text % params if "%(" in message else text.format(**params)


def remaining_text(verifications: int, locks: int, draws: int) -> str:
    return (
        shown(
            "Left today: %(v)s verifications of a self-composed number, "
            "%(l)s verify-and-lock attempts.",
            v=verifications,
            l=locks,
        )
        + " "
        + shown("Random draws left for this vehicle: %(d)s.", d=draws)
    )


def local(moment: dt.datetime) -> str:
    return selectors.local_now(moment).strftime("%Y-%m-%d %H:%M")


def register_on_page(
    page: Page, url: Callable[[str], str], tour: Tour, *, id_number: str, name: str, phone: str
) -> None:
    page.goto(url("/plates/register/"))
    tour.visit("01-register")
    page.check("input[name=user_type][value=new_vehicle_owner]")
    page.select_option("#f-id_type", "101")
    page.fill("#f-id_number", id_number)
    page.fill("#f-name", name)
    page.fill("#f-city", "湛江市")
    page.fill("#f-phone", phone)
    page.check("input[name=agreed]")
    # 「获取短信验证码」 needs the image code; the page comes back with the
    # fields kept, a new image and the code on its way to the mobile number.
    expect_captcha_image(page)
    page.fill("#f-captcha", "PASSED")
    submit(page, "#send-code")
    expect(page.get_by_test_id("code-sent")).to_contain_text(phone[:3] + "****" + phone[-4:])
    expect(page.locator("#f-phone")).to_have_value(phone)
    expect(page.locator("#f-captcha")).to_have_value("")
    tour.visit("01-register-code-sent")
    page.fill("#f-sms_code", last_code())
    page.fill("#f-captcha", "PASSED")
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_again", PASSWORD)
    expect(page.locator("input[name=agreed]")).to_be_checked()
    submit(page, "#register")


def log_in_plates(page: Page, url: Callable[[str], str], username: str) -> None:
    page.goto(url("/plates/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    submit(page)
    expect(page).to_have_url(url("/plates/account/"))


def start_selection(
    page: Page, url: Callable[[str], str], office: VehicleOffice, tour: Tour
) -> None:
    """Chooses the office's first district and 「开始选号」: lands on the notice."""
    district = office.districts.order_by("code").first()
    assert district is not None
    page.goto(url(SELECT_URL))
    tour.visit("03-select")
    page.select_option("#f-district", label=district.name)
    expect(page.locator("#f-office")).to_have_value(str(office.pk))
    submit(page)
    expect(page).to_have_url(url(SELECT_URL + "notice/"))


def steps_to_choose(page: Page, url: Callable[[str], str], vin: str, tour: Tour) -> None:
    """Steps 1 to 3 from the notice: lands on step 4."""
    current = page.locator("ol.steps li[aria-current=step]")
    expect(current).to_have_text(shown("Notice"))
    tour.visit("04-notice")
    page.check("input[name=read]")
    submit(page)
    expect(page).to_have_url(url(SELECT_URL + "vin/"))

    expect(current).to_have_text(shown("Vehicle identification number"))
    expect(page.locator("input[name=kind][value=ordinary]")).to_be_checked()
    tour.visit("05-vin")
    page.fill("#f-vin", vin)
    submit(page)
    expect(page).to_have_url(url(SELECT_URL + "contact/"))

    expect(current).to_have_text(shown("Owner contact information"))
    tour.visit("06-contact")
    page.fill("#f-address", "湛江市赤坎区南桥路 1 号")
    page.fill("#f-postal_code", "524000")
    submit(page)
    expect(page).to_have_url(url(SELECT_URL + "choose/"))
    expect(current).to_have_text(shown("Choose a number"))


def confirm_sms(page: Page, url: Callable[[str], str], plate: str, tour: Tour) -> Selection:
    """Step 5 with the code from the outbox: lands on step 6."""
    expect(page).to_have_url(url(SMS_URL))
    selection = Selection.objects.get(plate=plate)
    assert selection.status == SelectionStatus.LOCKED
    expect(page.locator("main strong.mono")).to_have_text(plate)
    tour.visit("09-sms")
    page.fill("#f-code", last_code())
    submit(page)
    expect(page).to_have_url(url(f"/plates/selections/{selection.number}/"))
    selection.refresh_from_db()
    return selection


def check_done_page(page: Page, selection: Selection) -> None:
    """Step 6 shows the number, the form number, the VIN and the deadline: the
    tenth working day after today."""
    assert selection.status == SelectionStatus.PRESELECTED
    assert selection.confirmed_at is not None
    assert selection.deadline is not None
    today = selectors.local_now(selection.confirmed_at).date()
    assert selection.deadline == domain.add_working_days(today, 10, {})
    expect(page.locator("ol.steps li[aria-current=step]")).to_have_text(
        shown("Pre-selected number")
    )
    expect(page.get_by_test_id("plate")).to_have_text(selection.plate)
    expect(page.get_by_test_id("deadline")).to_have_text(selection.deadline.isoformat())
    summary = page.locator("dl.summary")
    expect(summary).to_contain_text(selection.number)
    expect(summary).to_contain_text(selection.vin)
    expect(summary).to_contain_text(shown("Pre-selected"))


def key(page: Page, char: str) -> Locator:
    return page.locator(f"#keyboard button.key[data-char='{char}']")


def expect_keys(page: Page, enabled: list[str], position: int) -> None:
    """The keyboard of a position, loaded: only ``enabled`` can be pressed."""
    keyboard = page.locator("#keyboard")
    expect(keyboard).not_to_have_attribute("aria-busy", "true")
    order = domain.keyboard_order(
        SelectionSession.objects.get(status=SessionStatus.ACTIVE).keyboard_seed,
        domain.PlateKind.ORDINARY,
        position,
    )
    expect(keyboard.locator("button.key")).to_have_text(list(order))
    expect(keyboard.locator("button.key:enabled")).to_have_text([c for c in order if c in enabled])


def test_new_vehicle_owner_composes_a_number_on_a_handheld(
    handheld: Page, pool: VehicleOffice, url: Any, snap: Any
) -> None:
    page = handheld
    tour = Tour(page, snap)
    id_number = issuance_samples.resident_id(seq="123")
    vin = issuance_samples.vin()

    # A new-vehicle owner registers and lands on the account page.
    register_on_page(page, url, tour, id_number=id_number, name="张三", phone="13912345678")
    expect(page).to_have_url(url("/plates/account/"))
    expect(page.locator(".msg.success")).to_have_text(
        shown("Registered. You can pre-select a plate now.")
    )
    account = PlateAccount.objects.get(id_number=id_number)
    assert (account.user_type, account.name, account.phone) == (
        "new_vehicle_owner",
        "张三",
        "13912345678",
    )
    select_by = account.registered_at + dt.timedelta(hours=24)
    expect(page.locator("main")).to_contain_text(local(select_by))
    tour.visit("02-account")

    # Office and district, then steps 1 to 3.
    start_selection(page, url, pool, tour)
    steps_to_choose(page, url, vin, tour)
    expect(page.get_by_test_id("remaining")).to_have_text(remaining_text(10, 2, 3))
    tour.visit("07-choose")

    # Step 4: the keyboard opens; only "A" leads to a number of the pool.
    submit(page, "main form button.primary")
    expect(page).to_have_url(url(SELECT_URL + "compose/"))
    expect_keys(page, ["A"], 0)
    expect(key(page, "B")).to_be_disabled()
    key(page, "A").click()
    expect(page.locator("#composed")).to_have_text("A")
    expect_keys(page, ["0"], 1)
    key(page, "0").click()
    expect_keys(page, ["0"], 2)
    key(page, "0").click()
    expect(page.locator("#composed")).to_have_text("A00")
    # A0010–A0019 are registered: "1" cannot follow "A00".
    expect_keys(page, list("023456789"), 3)
    expect(key(page, "1")).to_be_disabled()
    key(page, "1").click(force=True)
    expect(page.locator("#composed")).to_have_text("A00")
    key(page, "2").click()
    expect_keys(page, list("0123456789"), 4)
    key(page, "3").click()
    expect(page.locator("#composed")).to_have_text("A0023")
    # The number is complete: no key can be pressed any more.
    expect(page.locator("#keyboard button.key:enabled")).to_have_count(0)

    # 「验证」 needs the image code: without it nothing is counted.
    expect_captcha_image(page, "#verify-captcha")
    first_image = page.locator("#verify-captcha img").get_attribute("src")
    page.click("#verify")
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text(shown("Enter the characters in the image."))
    expect(page.locator("#verify-captcha img")).not_to_have_attribute("src", first_image or "")
    # With it, 「验证」 says the number is available and counts a verification.
    page.fill("#verify-captcha input[name=captcha]", "PASSED")
    page.click("#verify")
    expect(verdict).to_have_text(
        shown("%(serial)s is available.", serial="A0023")
        + " "
        + shown("Verifications left today: %(left)d.", left=9)
    )
    expect(verdict).to_have_attribute("data-available", "yes")
    tour.visit("08-keyboard")
    assert PoolNumber.objects.get(serial="A0023").status == NumberStatus.AVAILABLE

    # The page submits the number by itself when the window closes.
    page.wait_for_url(url(SMS_URL), timeout=WINDOW_SECONDS * 1000 + TIMEOUT_MS)
    selection = confirm_sms(page, url, "粤GA0023", tour)
    assert selection.mode == SelectionMode.SELF_COMPOSED
    assert (selection.vin, selection.owner_name) == (vin, "张三")
    assert PoolNumber.objects.get(serial="A0023").status == NumberStatus.PRESELECTED
    check_done_page(page, selection)
    tour.visit("10-done")

    # The form: a PDF with the form number, the plate and the VIN as text.
    with page.expect_download() as download_info:
        page.click(f"a[href$='/plates/selections/{selection.number}/form.pdf']")
    download = download_info.value
    assert download.suggested_filename == f"{selection.number}.pdf"
    pdf = download.path().read_bytes()
    assert pdf.startswith(b"%PDF-")
    # ASCII runs are drawn in Helvetica: the form number (after "表号"), the
    # plate's serial (after "粤") and the VIN.
    for run in (f" {selection.number}", "G A0023", vin):
        assert f"({run}) Tj".encode() in pdf, run

    # The account lists the number.
    page.goto(url("/plates/account/"))
    row = page.locator("table.table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.mono")).to_have_text("粤GA0023")
    assert tour.overflow == {}, f"pages wider than 390 px: {tour.overflow}"


def test_user_takes_a_random_number_on_a_desktop(
    desktop: Page, pool: VehicleOffice, url: Any, snap: Any
) -> None:
    account = factories.register(2)
    page = desktop
    tour = Tour(page, snap)
    vin = issuance_samples.vin(serial="700002")

    # The user logs in with the mobile number and walks to step 4.
    log_in_plates(page, url, account.phone)
    start_selection(page, url, pool, tour)
    steps_to_choose(page, url, vin, tour)
    tour.visit("07-choose")
    with page.expect_navigation():
        page.click(f"main a.button[href$='{SELECT_URL}random/']")
    expect(page).to_have_url(url(SELECT_URL + "random/"))
    remaining = page.get_by_test_id("remaining")
    expect(remaining).to_have_text(remaining_text(10, 2, 3))
    expect(page.locator("input[name=serial]")).to_have_count(0)

    # A draw offers ten available numbers, never a registered one.
    submit(page, "main form button[name=draw]")
    expect(page).to_have_url(url(SELECT_URL + "random/"))
    offers = page.locator("input[name=serial]")
    expect(offers).to_have_count(10)
    offered = [offer.get_attribute("value") or "" for offer in offers.all()]
    assert offered == sorted(offered)
    assert not [s for s in offered if s.startswith(TAKEN_PREFIX)]
    available = set(
        PoolNumber.objects.filter(status=NumberStatus.AVAILABLE).values_list("serial", flat=True)
    )
    assert set(offered) <= available
    session = SelectionSession.objects.get(status=SessionStatus.ACTIVE)
    assert session.offered == offered
    expect(page.locator(".offered .mono").first).to_have_text(f"粤G {offered[0]}")
    expect(remaining).to_have_text(remaining_text(10, 2, 2))
    tour.visit("08-random")

    # The user picks the third and locks it.
    page.check(f"input[name=serial][value='{offered[2]}']")
    submit(page, "main form button[name=pick]")
    plate = f"粤G{offered[2]}"
    selection = confirm_sms(page, url, plate, tour)
    assert selection.mode == SelectionMode.RANDOM
    assert selection.vin == vin
    check_done_page(page, selection)
    tour.visit("10-done")
    assert PoolNumber.objects.get(serial=offered[2]).status == NumberStatus.PRESELECTED
    # The other offers stay in the pool.
    assert PoolNumber.objects.filter(serial__in=offered, status=NumberStatus.AVAILABLE).count() == 9
    assert tour.overflow == {}, f"pages wider than 1280 px: {tour.overflow}"


def test_selecting_from_two_computers_voids_and_blacklists(
    desktop: Page, handheld: Page, pool: VehicleOffice, url: Any, snap: Any
) -> None:
    account = factories.register(3)
    first = Tour(desktop, snap)
    second = Tour(handheld, snap)

    # The user starts on the desktop and reaches the notice.
    log_in_plates(desktop, url, account.id_number)
    start_selection(desktop, url, pool, first)

    # Meanwhile the same user starts on a phone: both are refused.
    log_in_plates(handheld, url, account.phone)
    district = pool.districts.order_by("code").first()
    assert district is not None
    handheld.goto(url(SELECT_URL))
    handheld.select_option("#f-district", label=district.name)
    with handheld.expect_navigation() as navigation:
        handheld.click("main form button.primary")
    response = navigation.value
    assert response is not None
    assert response.status == 403
    error = handheld.locator("main > p.error[data-code=concurrent_sessions]")
    expect(error).to_have_text(
        shown(
            "Selection was going on from two computers at once for this user: both "
            "selections are void and the user is blacklisted."
        )
    )
    with translation.override("zh-hans"):
        reason = str(BlacklistReason.CONCURRENT_SESSIONS.label)
    # The refusal has just blacklisted the user: the page says so at once.
    expect(handheld.locator("main section p.error[role=alert]")).to_contain_text(reason)
    second.visit("10-phone-refused")

    entry = Blacklist.objects.get(id_number=account.id_number)
    assert entry.reason == BlacklistReason.CONCURRENT_SESSIONS
    assert entry.ends_at - entry.starts_at == dt.timedelta(days=365)
    assert entry.starts_at <= timezone.now()
    assert list(SelectionSession.objects.values_list("status", flat=True)) == [SessionStatus.VOIDED]

    # The desktop's selection is gone too: it is sent back to the office choice.
    desktop.check("input[name=read]")
    submit(desktop)
    expect(desktop).to_have_url(url(SELECT_URL))
    expect(desktop.locator(".msg.error")).to_have_text(
        shown("No selection is in progress; start from the office choice.")
    )
    blacklisted = shown(
        "You are on the blacklist (%(reason)s) until %(until)s; plate pre-selection is "
        "refused until then.",
        reason=reason,
        until=local(entry.ends_at),
    )
    expect(desktop.locator("main section p.error[role=alert]")).to_have_text(blacklisted)
    first.visit("11-desktop-sent-back")

    # The account page shows the blacklist and its end.
    handheld.goto(url("/plates/account/"))
    expect(handheld.get_by_test_id("blacklist")).to_have_text(blacklisted)
    second.visit("12-phone-account")
    assert first.overflow == {}, f"pages wider than 1280 px: {first.overflow}"
    assert second.overflow == {}, f"pages wider than 390 px: {second.overflow}"
