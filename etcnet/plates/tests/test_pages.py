"""The pages through Django's test client: what a browser posts, what it gets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.test import Client

from conftest import committed, make_user
from etcnet.core.models import AuditEvent
from etcnet.issuance import samples as issuance_samples
from etcnet.plates.models import (
    Blacklist,
    NumberStatus,
    PlateAccount,
    PoolNumber,
    Selection,
    SelectionSession,
)
from etcnet.plates.tests.factories import MONDAY_10, PASSWORD, last_code, office_with_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


def sign_up(client: Client, *, send_code: bool = True, **overrides: str) -> Any:
    """Fills the form, 「获取短信验证码」, then 「注册」 with the texted code
    (the captcha answered in its test mode)."""
    form = {
        "user_type": "new_vehicle_owner",
        "id_type": "101",
        "id_number": issuance_samples.resident_id(seq="123"),
        "name": "张三",
        "phone": "13912345678",
        "city": "湛江市",
        "password": PASSWORD,
        "password_again": PASSWORD,
        "agreed": "on",
        "captcha_key": "any",
        "captcha": "PASSED",
        **overrides,
    }
    if send_code:
        with committed():
            sent = client.post("/plates/register/", {**form, "action": "send_code"})
        assert sent.status_code == 200, sent.content.decode()
        form.setdefault("sms_code", last_code())
    return client.post("/plates/register/", {**form, "action": "register"})


def through_step_3(client: Client, office: Any) -> None:
    district = office.districts.first()
    response = client.post("/plates/select/", {"office": office.pk, "district": district.pk})
    assert response["Location"] == "/plates/select/notice/"
    assert (
        client.post("/plates/select/notice/", {"read": "on"})["Location"] == "/plates/select/vin/"
    )
    response = client.post(
        "/plates/select/vin/", {"vin": issuance_samples.vin(), "kind": "ordinary"}
    )
    assert response["Location"] == "/plates/select/contact/"
    response = client.post(
        "/plates/select/contact/", {"address": "湛江市赤坎区南桥路 1 号", "postal_code": "524000"}
    )
    assert response["Location"] == "/plates/select/choose/"


def test_register_page_names_the_bad_fields_and_keeps_the_values(client: Client) -> None:
    response = sign_up(
        client, send_code=False, id_number="440802199001011230", phone="12", agreed=""
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-field="id_number"' in page
    assert page.count('class="field-error"') == 4  # id_number, phone, agreed, sms_code
    assert 'value="张三"' in page
    assert PlateAccount.objects.count() == 0


def test_a_new_user_registers_and_selects_a_number_through_the_pages(
    client: Client, clock: Any
) -> None:
    office, _ = office_with_pool(patterns=("A00##",))
    PoolNumber.objects.filter(serial__startswith="A001").update(status=NumberStatus.REGISTERED)
    assert sign_up(client)["Location"] == "/plates/account/"
    account_page = client.get("/plates/account/").content.decode()
    services = account_page.split('data-testid="services"')[1].split("</p>")[0]
    assert "预选号牌" in services
    assert "考试预约" not in services  # a new-vehicle owner may only pre-select
    through_step_3(client, office)

    assert client.post("/plates/select/choose/")["Location"] == "/plates/select/compose/"
    page = client.get("/plates/select/compose/").content.decode()
    assert 'data-char="A"' in page
    assert page.count(" disabled>") == 33  # every key but A
    keys = client.get("/plates/select/keys/", {"prefix": "A00"}).json()["keys"]
    assert sorted(k["char"] for k in keys if k["enabled"]) == list("023456789")
    assert 'name="captcha"' in page  # 「验证」 asks for the image code
    refused = client.post("/plates/select/verify/", {"serial": "A0015", "captcha": ""})
    assert refused.status_code == 400
    assert [e["field"] for e in refused.json()["errors"]] == ["captcha"]
    assert refused.json()["captcha"]["image_url"].startswith("/captcha/image/")
    verified = client.post(
        "/plates/select/verify/", {"serial": "A0015", "captcha_key": "k", "captcha": "PASSED"}
    ).json()
    assert (verified["available"], verified["verifications_left"]) == (False, 9)

    clock.shift(90)
    with committed():
        assert client.post("/plates/select/submit/", {"serial": "A0042"})["Location"] == (
            "/plates/select/sms/"
        )
    response = client.post("/plates/select/sms/", {"code": last_code()})
    selection = Selection.objects.get()
    assert response["Location"] == f"/plates/selections/{selection.number}/"
    page = client.get(response["Location"]).content.decode()
    assert "粤GA0042" in page
    assert "2026-12-07" in page

    pdf = client.get(f"/plates/selections/{selection.number}/form.pdf")
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert selection.number.encode() in pdf.content
    assert selection.vin.encode() in pdf.content
    english = client.get(
        f"/plates/selections/{selection.number}/form.pdf", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert b"Small car" not in english.content  # the form is always in Chinese
    # Printed again later: the same form.
    assert client.get(f"/plates/selections/{selection.number}/form.pdf").status_code == 200
    other = Client()
    sign_up(other, id_number=issuance_samples.resident_id(seq="124"), phone="13912345679")
    assert other.get(f"/plates/selections/{selection.number}/form.pdf").status_code == 404


def test_a_tampered_page_submitting_early_is_voided_and_blacklisted(
    client: Client, clock: Any
) -> None:
    office, _ = office_with_pool()
    sign_up(client)
    through_step_3(client, office)
    client.post("/plates/select/choose/")
    clock.shift(30)

    response = client.post("/plates/select/submit/", {"serial": "A0042"}, follow=True)

    assert response.redirect_chain[-1][0] == "/plates/account/"
    page = response.content.decode()
    assert 'data-testid="blacklist"' in page
    assert "2027-11-23" in page
    assert Blacklist.objects.get().reason == "early_submission"
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.AVAILABLE
    assert SelectionSession.objects.get().status == "voided"


def test_a_second_computer_voids_the_selection(client: Client, clock: Any) -> None:
    office, _ = office_with_pool()
    sign_up(client)
    through_step_3(client, office)
    second = Client()
    logged_in = second.post("/plates/login/", {"username": "13912345678", "password": PASSWORD})
    assert logged_in["Location"] == "/plates/account/"

    response = second.get("/plates/select/vin/", follow=True)

    assert response.redirect_chain[-1][0] == "/plates/select/"
    assert Blacklist.objects.get().reason == "concurrent_sessions"
    assert SelectionSession.objects.get().status == "voided"


def test_outside_hours_the_select_page_says_so_and_nothing_starts(
    client: Client, clock: Any
) -> None:
    office, _ = office_with_pool()
    sign_up(client)
    clock.move_to(dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC))  # 21:00 local

    page = client.get("/plates/select/").content.decode()
    district = office.districts.first()
    response = client.post("/plates/select/", {"office": office.pk, "district": district.pk})

    assert 'data-testid="closed"' in page
    assert response.status_code == 403
    assert "08:00" in response.content.decode()
    assert SelectionSession.objects.count() == 0


def test_the_office_page_registers_the_vehicle(client: Client, clock: Any) -> None:
    office, _ = office_with_pool()
    sign_up(client)
    through_step_3(client, office)
    client.post("/plates/select/choose/")
    clock.shift(90)
    with committed():
        client.post("/plates/select/submit/", {"serial": "A0042"})
    client.post("/plates/select/sms/", {"code": last_code()})
    clerk = make_user("vera", "vehicle_office_clerk")
    office.clerks.add(clerk)
    desk = Client()
    desk.force_login(clerk)
    selection = Selection.objects.get()

    page = desk.get("/plates/office/", {"q": "粤G·A0042"}).content.decode()
    assert selection.number in page
    refused = desk.post(
        "/plates/office/",
        {"q": "粤GA0042", "invoice_name": "李四", "invoice_number": "1", "vin": selection.vin},
    )
    assert refused.status_code == 400
    assert 'data-field="invoice_name"' in refused.content.decode()
    done = desk.post(
        "/plates/office/",
        {"q": "粤GA0042", "invoice_name": "张三", "invoice_number": "1", "vin": selection.vin},
    )
    assert done.status_code == 302
    assert Selection.objects.get().status == "registered"


def test_the_operator_changes_settings_and_releases_a_pool(client: Client) -> None:
    from etcnet.plates import samples

    samples.create_offices()
    client.force_login(make_user("olga", "center_operator"))
    page = client.get("/plates/manage/")
    assert page.status_code == 200

    client.post(
        "/plates/manage/",
        {
            "action": "pool",
            "office": "440800",
            "kind": "new_energy",
            "title": "新能源 1 期",
            "patterns": "D[A-B]####",
            "reserved": r"(\d)\1{3}$",
            "forbidden": "",
            "announcement": "公告",
        },
    )
    from etcnet.plates.models import NumberPool

    pool = NumberPool.objects.get()
    client.post("/plates/manage/", {"action": "release", "pool": pool.pk})
    pool.refresh_from_db()
    assert (pool.status, pool.available_count, pool.reserved_count) == ("released", 19980, 20)
    assert "新能源 1 期" in Client().get("/plates/announcements/").content.decode()

    bad = client.post(
        "/plates/manage/",
        {
            "action": "pool",
            "office": "440800",
            "kind": "ordinary",
            "title": "x",
            "patterns": "AI###",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert bad.status_code == 400
    assert "Plate numbers never contain I or O." in bad.content.decode()
    assert AuditEvent.objects.filter(action__startswith="plates.pool_").count() == 2
    vera = Client()
    vera.force_login(make_user("vic", "vehicle_office_clerk"))
    assert vera.get("/plates/manage/").status_code == 403
