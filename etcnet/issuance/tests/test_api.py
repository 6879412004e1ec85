"""The issuance API through the real stack: session auth, JSON, multipart, errors.

Every bad input of the issue gets a field-level error in the caller's language
and changes nothing: no row, no file, no audit event."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from conftest import committed, complete_application, last_code, photo, verified_application
from etcnet.core.models import AuditEvent
from etcnet.issuance import samples, services
from etcnet.issuance.models import Application, ApplicationDocument, Customer, Vehicle

pytestmark = pytest.mark.django_db

BASE = "/api/v1/issuance/applications"


def state() -> dict[str, Any]:
    return {
        "applications": list(
            Application.objects.order_by("pk").values_list("pk", "status", "updated_at")
        ),
        "customers": Customer.objects.count(),
        "vehicles": Vehicle.objects.count(),
        "documents": ApplicationDocument.objects.count(),
        "events": AuditEvent.objects.count(),
    }


def files_in(settings: Any) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def api(user: Any = None, language: str = "zh-hans") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    if user is not None:
        client.force_login(user)
    return client


def errors(response: Any) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in response.json()["errors"]}


# --- the workflow ---------------------------------------------------------------


def test_whole_workflow_through_the_api(clerk):
    client = api(clerk)

    with committed():
        started = client.post(BASE, {"phone": "13800138000"}, content_type="application/json")
    assert started.status_code == 201
    app_id = started.json()["id"]
    assert started.json()["status"] == "draft"
    assert started.json()["steps"]["phone"] is False

    verified = client.post(
        f"{BASE}/{app_id}/phone/verify", {"code": last_code()}, content_type="application/json"
    )
    assert verified.status_code == 200
    assert verified.json()["phone_verified"] is True

    customer = client.put(
        f"{BASE}/{app_id}/customer", samples.personal_customer(), content_type="application/json"
    )
    assert customer.status_code == 200
    assert customer.json()["customer"]["id_number"] == samples.resident_id()

    vehicle = client.put(
        f"{BASE}/{app_id}/vehicle", samples.passenger_car(), content_type="application/json"
    )
    assert vehicle.status_code == 200
    assert vehicle.json()["vehicle"]["plate"] == "陕A12345"
    assert vehicle.json()["vehicle"]["register_date"] == "2021-03-15"

    for kind in ("id_photo", "licence_main", "licence_supplement", "vehicle_head"):
        uploaded = client.post(f"{BASE}/{app_id}/documents/{kind}", {"file": photo(kind)})
        assert uploaded.status_code == 200, uploaded.content
    assert [d["kind"] for d in uploaded.json()["documents"]] == [
        "id_photo",
        "licence_main",
        "licence_supplement",
        "vehicle_head",
    ]

    submitted = client.post(f"{BASE}/{app_id}/submit")
    assert submitted.status_code == 200
    body = submitted.json()
    assert body["approved"] is True
    assert body["application"]["status"] == "approved"
    assert body["application"]["status_label"] == "已通过，待发行"
    assert body["application"]["vehicle_id"] == Vehicle.objects.get().pk

    fetched = client.get(f"{BASE}/{app_id}")
    assert fetched.json()["number"].startswith("SQ")

    photo_url = body["application"]["documents"][0]["url"]
    image = client.get(photo_url)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert image["Cache-Control"] == "private, no-store"


def test_refused_submission_lists_every_reason(clerk, other_clerk):
    application = complete_application(clerk, vehicle=samples.two_axle_truck(toll_class="11"))
    rival = complete_application(
        other_clerk,
        customer=samples.personal_customer(name="赵六", id_number=samples.resident_id(seq="555")),
        vehicle=samples.two_axle_truck(vin=samples.vin(serial="700001")),
        phone="13911112222",
    )
    services.submit_application(rival.pk, actor=other_clerk)

    response = api(clerk).post(f"{BASE}/{application.pk}/submit")

    body = response.json()
    assert response.status_code == 200
    assert body["approved"] is False
    reasons = body["application"]["refusal_reasons"]
    assert [(r["field"], r["code"]) for r in reasons] == [
        ("toll_class", "class_inconsistent"),
        ("plate", "plate_already_bound"),
    ]
    assert reasons[0]["message"] == (
        "收费车型“1类货车”与车辆不符：按座位数、车长、轴数和质量应为“2类货车”。"
    )
    assert reasons[1]["message"] == "该车牌及颜色已绑定有效的ETC（一车一签一卡）。"


def test_errors_speak_the_callers_language(clerk):
    application = verified_application(clerk)
    bad = samples.personal_customer(id_number=samples.resident_id()[:-1] + "0")

    chinese = api(clerk).put(
        f"{BASE}/{application.pk}/customer", bad, content_type="application/json"
    )
    english = api(clerk, "en").put(
        f"{BASE}/{application.pk}/customer", bad, content_type="application/json"
    )

    assert chinese.status_code == english.status_code == 400
    assert chinese.json()["code"] == english.json()["code"] == "invalid_input"
    [zh] = chinese.json()["errors"]
    [en] = english.json()["errors"]
    expected = samples.resident_id()[-1]
    assert zh == {
        "field": "id_number",
        "code": "id.checksum",
        "message": f"校验位为 0，应为 {expected}，可能输错了某一位。",
    }
    assert en["message"] == (
        f"The check character is 0 but should be {expected}; a digit was probably mistyped."
    )


# --- every bad input of the issue ------------------------------------------------


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        (
            samples.personal_customer(id_number=samples.resident_id()[:-1] + "0"),
            ("id_number", "id.checksum"),
        ),
        (
            samples.personal_customer(id_number=samples.resident_id(birth="19900230")[:17] + "0"),
            ("id_number", "id.birth_date"),
        ),
        (
            samples.organization_customer(id_number="91110108551385082A"),
            ("id_number", "uscc.checksum"),
        ),
        (samples.personal_customer(address=""), ("address", "required")),
        ({"customer_type": "1"}, ("name", "required")),
    ],
)
def test_bad_customer_is_refused_and_changes_nothing(clerk, customer, expected):
    application = verified_application(clerk)
    before = state()

    response = api(clerk).put(
        f"{BASE}/{application.pk}/customer", customer, content_type="application/json"
    )

    assert response.status_code == 400
    assert expected in errors(response)
    assert state() == before


@pytest.mark.parametrize(
    ("vehicle", "expected"),
    [
        (
            samples.passenger_car(vin=samples.vin()[:8] + "X" + samples.vin()[9:]),
            ("vin", "vin.check_digit"),
        ),
        (samples.passenger_car(vin="LSVAM4187O2184127"), ("vin", "vin.forbidden_char")),
        (samples.passenger_car(plate="港A12345"), ("plate", "plate.province")),
        (
            samples.passenger_car(plate="陕AD12345", plate_color="0"),
            ("plate", "plate.color_mismatch"),
        ),
        (
            samples.passenger_car(plate="陕A1234学", plate_color="0"),
            ("plate", "plate.color_mismatch"),
        ),
        (samples.passenger_car(seats=""), ("seats", "required")),
        (samples.passenger_car(toll_class="99"), ("toll_class", "invalid_choice")),
    ],
)
def test_bad_vehicle_is_refused_and_changes_nothing(clerk, vehicle, expected):
    application = verified_application(clerk)
    before = state()

    response = api(clerk).put(
        f"{BASE}/{application.pk}/vehicle", vehicle, content_type="application/json"
    )

    assert response.status_code == 400
    assert expected in errors(response)
    assert state() == before


def test_duplicate_live_plate_binding_is_refused(clerk):
    approved = complete_application(clerk)
    services.submit_application(approved.pk, actor=clerk)
    application = verified_application(clerk, phone="13911112222")
    before = state()

    response = api(clerk).put(
        f"{BASE}/{application.pk}/vehicle", samples.passenger_car(), content_type="application/json"
    )

    assert response.status_code == 400
    assert errors(response) == {("plate", "plate_already_bound")}
    assert (
        response.json()["errors"][0]["message"] == "该车牌及颜色已绑定有效的ETC（一车一签一卡）。"
    )
    assert state() == before


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        (SimpleUploadedFile("a.txt", b"hello", "text/plain"), "file_not_image"),
        (SimpleUploadedFile("a.pdf", b"%PDF-1.4\n%%EOF", "image/jpeg"), "file_not_image"),
    ],
)
def test_non_image_upload_is_refused(clerk, settings, upload, code):
    application = verified_application(clerk)
    before = state()

    response = api(clerk).post(f"{BASE}/{application.pk}/documents/id_photo", {"file": upload})

    assert response.status_code == 400
    assert errors(response) == {("id_photo", code)}
    assert state() == before
    assert files_in(settings) == []


def test_oversize_upload_is_refused(clerk, settings):
    settings.ETCNET_UPLOAD_MAX_BYTES = 2048
    application = verified_application(clerk)
    before = state()

    response = api(clerk).post(
        f"{BASE}/{application.pk}/documents/id_photo", {"file": photo(size=(1600, 1200))}
    )

    assert response.status_code == 400
    assert errors(response) == {("id_photo", "file_too_large")}
    assert state() == before
    assert files_in(settings) == []


def test_unknown_document_kind_is_refused(clerk, settings):
    application = verified_application(clerk)
    before = state()

    response = api(clerk).post(f"{BASE}/{application.pk}/documents/selfie", {"file": photo()})

    assert response.status_code == 400
    assert errors(response) == {("selfie", "invalid_choice")}
    assert state() == before


def test_wrong_sms_code_is_refused(clerk):
    client = api(clerk)
    with committed():
        app_id = client.post(
            BASE, {"phone": "13800138000"}, content_type="application/json"
        ).json()["id"]
    wrong = "000000" if last_code() != "000000" else "111111"
    before = state()

    response = client.post(
        f"{BASE}/{app_id}/phone/verify", {"code": wrong}, content_type="application/json"
    )

    assert response.status_code == 400
    assert errors(response) == {("code", "code_wrong")}
    assert response.json()["errors"][0]["message"] == "验证码错误，还可尝试 4 次。"
    assert state() == before


def test_expired_sms_code_is_refused(clerk):
    client = api(clerk)
    start = dt.datetime(2026, 11, 21, 1, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        with committed():
            app_id = client.post(
                BASE, {"phone": "13800138000"}, content_type="application/json"
            ).json()["id"]
        code = last_code()
        traveller.shift(dt.timedelta(minutes=6))
        before = state()

        response = client.post(
            f"{BASE}/{app_id}/phone/verify", {"code": code}, content_type="application/json"
        )

    assert response.status_code == 400
    assert errors(response) == {("code", "code_expired")}
    assert state() == before


def test_organization_without_entrust_letter_is_refused_at_submit(clerk):
    application = complete_application(clerk, customer=samples.organization_customer())
    before = state()

    response = api(clerk).post(f"{BASE}/{application.pk}/submit")

    assert response.status_code == 400
    assert response.json()["code"] == "documents_missing"
    assert response.json()["errors"] == [
        {"field": "entrust_letter", "code": "document_missing", "message": "缺少照片“委托书”。"}
    ]
    assert state() == before


def test_missing_required_field_in_the_body_shape(clerk):
    before = state()
    response = api(clerk).post(BASE, {}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_input",
        "message": "部分信息有误，请更正后重试。",
        "errors": [{"field": "phone", "code": "required", "message": "此项为必填项。"}],
    }
    assert state() == before


def test_malformed_json_is_refused(clerk):
    before = state()
    response = api(clerk).post(BASE, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "body", "code": "malformed", "message": "无法读取请求内容。"}
    ]
    assert state() == before


# --- roles and authentication --------------------------------------------------


def test_anonymous_caller_gets_401_and_nothing_changes(db):
    before = state()
    response = api().post(BASE, {"phone": "13800138000"}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert state() == before


@pytest.mark.parametrize("persona", ["operator", "auditor", "collector"])
def test_roles_that_may_not_take_applications_get_403(request, clerk, persona):
    user = request.getfixturevalue(persona)
    application = verified_application(clerk)
    before = state()
    client = api(user)

    responses = [
        client.post(BASE, {"phone": "13800138000"}, content_type="application/json"),
        client.put(
            f"{BASE}/{application.pk}/customer",
            samples.personal_customer(),
            content_type="application/json",
        ),
        client.post(f"{BASE}/{application.pk}/documents/id_photo", {"file": photo()}),
        client.post(f"{BASE}/{application.pk}/submit"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert {r.json()["code"] for r in responses} == {"forbidden"}
    assert state() == before


def test_toll_collector_may_not_read_applications(clerk, collector):
    application = verified_application(clerk)
    assert api(collector).get(f"{BASE}/{application.pk}").status_code == 403
    assert api(collector).get(BASE).status_code == 403


def test_api_login_is_throttled_after_repeated_failures(clerk, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = api()
    statuses = [
        client.post(
            "/api/v1/auth/login",
            {"username": "alice", "password": "wrong"},
            content_type="application/json",
        ).status_code
        for _ in range(3)
    ]
    locked = client.post(
        "/api/v1/auth/login",
        {"username": "alice", "password": "pw-12345678"},
        content_type="application/json",
    )
    assert statuses == [400, 400, 429]
    assert locked.status_code == 429
    assert locked.json()["code"] == "login_locked"
    assert "_auth_user_id" not in client.session


def test_api_login_gives_a_session_and_csrf_token(clerk):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/auth/login",
        {"username": "alice", "password": "pw-12345678"},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["roles"] == ["issuance_clerk"]
    without = client.post(BASE, {"phone": "13800138000"}, content_type="application/json")
    assert without.status_code == 403
    with committed():
        with_token = client.post(
            BASE,
            {"phone": "13800138000"},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=body["csrf_token"],
        )
    assert with_token.status_code == 201


# --- reads ------------------------------------------------------------------------


def test_list_masks_personal_data_and_filters(clerk, operator):
    approved = complete_application(clerk)
    services.submit_application(approved.pk, actor=clerk)
    draft = verified_application(clerk, phone="13700137000")

    client = api(operator)
    everything = client.get(BASE).json()
    approved_only = client.get(BASE, {"status": "approved"}).json()
    by_plate = client.get(BASE, {"plate": "a123"}).json()
    by_full_id = client.get(BASE, {"q": samples.resident_id()}).json()
    by_id_fragment = client.get(BASE, {"q": samples.resident_id()[:10]}).json()

    assert everything["count"] == 2
    row = next(item for item in everything["items"] if item["id"] == approved.pk)
    assert row["id_number"] == "6101**********1231"
    assert row["phone"] == "138****8000"
    assert row["name"] == "张*"
    assert [i["id"] for i in approved_only["items"]] == [approved.pk]
    assert [i["id"] for i in by_plate["items"]] == [approved.pk]
    assert [i["id"] for i in by_full_id["items"]] == [approved.pk]
    assert by_id_fragment["items"] == []
    assert draft.pk in [i["id"] for i in everything["items"]]


def test_list_filters_by_local_date(clerk, operator):
    with time_machine.travel(dt.datetime(2026, 11, 20, 17, 30, tzinfo=dt.UTC), tick=False):
        # 01:30 on 21 November in Shanghai
        application = verified_application(clerk)
    client = api(operator)
    on_21 = client.get(BASE, {"date_from": "2026-11-21", "date_to": "2026-11-21"}).json()
    on_20 = client.get(BASE, {"date_from": "2026-11-20", "date_to": "2026-11-20"}).json()
    assert [i["id"] for i in on_21["items"]] == [application.pk]
    assert on_20["items"] == []


def test_auditor_sees_details_masked(clerk, auditor):
    application = complete_application(clerk)
    body = api(auditor).get(f"{BASE}/{application.pk}").json()
    assert body["customer"]["id_number"] == "6101**********1231"
    assert body["customer"]["name"] == "张*"
    assert body["phone"] == "138****8000"


def test_openapi_schema_lists_the_workflow(db):
    schema = Client().get("/api/v1/openapi.json").json()
    assert {
        "/api/v1/issuance/applications",
        "/api/v1/issuance/applications/{application_id}/phone/verify",
        "/api/v1/issuance/applications/{application_id}/customer",
        "/api/v1/issuance/applications/{application_id}/vehicle",
        "/api/v1/issuance/applications/{application_id}/documents/{kind}",
        "/api/v1/issuance/applications/{application_id}/submit",
    } <= set(schema["paths"])
    assert Client().get("/api/v1/docs").status_code == 200


# --- outlets, languages, error shapes (review findings) ---------------------------


@pytest.fixture
def far_clerk(db):
    from conftest import make_user
    from etcnet.issuance.models import Outlet

    elsewhere = Outlet.objects.create(code="610202001", name="铜川网点")
    return make_user("frank", "issuance_clerk", outlet=elsewhere)


def test_a_clerk_sees_and_changes_only_its_outlets_applications(clerk, far_clerk, operator):
    application = complete_application(clerk)
    before = state()
    far = api(far_clerk)

    assert far.get(f"{BASE}/{application.pk}").status_code == 404
    assert far.get(BASE).json()["count"] == 0
    changed = far.put(
        f"{BASE}/{application.pk}/customer",
        samples.personal_customer(),
        content_type="application/json",
    )
    submitted = far.post(f"{BASE}/{application.pk}/submit")
    detail_page = Client()
    detail_page.force_login(far_clerk)
    photo_page = detail_page.get(f"/issuance/applications/{application.pk}/")

    assert changed.status_code == 404
    assert submitted.status_code == 404
    assert photo_page.status_code == 404
    assert state() == before
    assert api(operator).get(BASE).json()["count"] == 1
    assert api(clerk).get(BASE).json()["count"] == 1


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("zh-hans", "小型新能源号牌不能使用蓝色，允许的颜色：渐变绿。"),
        (
            "en",
            "The colour blue is not allowed for a plate of shape small new-energy; "
            "allowed: gradient green.",
        ),
    ],
)
def test_plate_colour_message_is_wholly_in_the_callers_language(clerk, language, message):
    application = verified_application(clerk)
    response = api(clerk, language).put(
        f"{BASE}/{application.pk}/vehicle",
        samples.passenger_car(plate="陕AD12345", plate_color="0"),
        content_type="application/json",
    )
    [error] = [e for e in response.json()["errors"] if e["field"] == "plate"]
    assert error["message"] == message


def test_document_shape_message_names_the_document_in_chinese(clerk):
    application = verified_application(clerk)
    response = api(clerk).put(
        f"{BASE}/{application.pk}/customer",
        samples.personal_customer(id_type="103", id_number="E1"),
        content_type="application/json",
    )
    [error] = response.json()["errors"]
    assert error["message"] == "E1 不符合护照的格式：5至17位字母或数字。"


def test_incomplete_steps_are_named_by_field(clerk):
    application = verified_application(clerk)
    body = api(clerk, "en").post(f"{BASE}/{application.pk}/submit").json()
    assert body["code"] == "step_incomplete"
    assert body["message"] == "Complete every step before submitting."
    assert [e["field"] for e in body["errors"]] == ["customer", "vehicle"]


def test_a_wrongly_typed_field_is_named_once(clerk):
    application = verified_application(clerk)
    response = api(clerk).put(
        f"{BASE}/{application.pk}/vehicle",
        {**samples.passenger_car(), "seats": [5]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "seats", "code": "invalid", "message": "该值无效。"}
    ]


def test_upload_without_its_file_part_names_the_file(clerk):
    application = verified_application(clerk)
    response = api(clerk).post(f"{BASE}/{application.pk}/documents/id_photo", {})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "file"


def test_write_without_csrf_token_gets_a_translated_error(clerk):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(clerk)
    response = client.post(BASE, {"phone": "13800138000"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert response.json()["message"].startswith("请求缺少 CSRF 令牌")


def test_list_page_size_is_capped(clerk, operator):
    response = api(operator).get(BASE, {"limit": 100000})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["count"] == 0


def test_latin_names_may_have_single_spaces_but_chinese_names_may_not(clerk):
    application = verified_application(clerk)
    passport = samples.personal_customer(id_type="103", id_number="E12345678", name="JOHN SMITH")
    ok = api(clerk).put(
        f"{BASE}/{application.pk}/customer", passport, content_type="application/json"
    )
    spaced = api(clerk).put(
        f"{BASE}/{application.pk}/customer",
        samples.personal_customer(name="张 三"),
        content_type="application/json",
    )
    double = api(clerk).put(
        f"{BASE}/{application.pk}/customer",
        {**passport, "name": "JOHN  SMITH"},
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert errors(spaced) == {("name", "bad_characters")}
    assert errors(double) == {("name", "bad_characters")}


def test_search_by_application_number(clerk, operator):
    application = verified_application(clerk)
    found = api(operator).get(BASE, {"q": application.number}).json()
    assert [i["id"] for i in found["items"]] == [application.pk]
