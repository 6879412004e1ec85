"""The issuance pages through the Django test client: role checks, the wizard's
steps and their field errors, masking in lists, documents behind the role check."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import (
    ALL_PHOTOS,
    committed,
    complete_application,
    last_code,
    photo,
    verified_application,
)
from etcnet.core.models import AuditEvent
from etcnet.issuance import samples, services
from etcnet.issuance.models import Application, ApplicationStatus, Customer

pytestmark = pytest.mark.django_db


def browser(user: Any = None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    if user is not None:
        client.force_login(user)
    return client


def test_anonymous_visitor_is_sent_to_login(db):
    response = Client().get("/issuance/applications/new/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/issuance/applications/new/"


def test_login_page_logs_a_clerk_in_and_lands_on_the_list(clerk):
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": "pw-12345678"})
    assert response.status_code == 302
    assert client.get("/").url == "/issuance/"
    page = client.get("/issuance/")
    assert "办理申请" in page.content.decode()


def test_login_page_locks_out_after_repeated_failures(clerk, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    codes = [
        client.post("/login/", {"username": "alice", "password": "nope"}).status_code
        for _ in range(3)
    ]
    locked = client.post("/login/", {"username": "alice", "password": "pw-12345678"})
    assert codes == [200, 200, 429]
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_passwords_are_hashed_with_argon2_by_default(settings, db):
    from django.contrib.auth.hashers import make_password

    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    assert make_password("secret").startswith("argon2$")


def test_logout_ends_the_session(clerk):
    client = browser(clerk)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/issuance/").status_code == 302


@pytest.mark.parametrize(
    ("persona", "path", "status"),
    [
        ("collector", "/issuance/", 403),
        ("collector", "/issuance/applications/new/", 403),
        ("auditor", "/issuance/applications/new/", 403),
        ("operator", "/issuance/applications/new/", 403),
        ("auditor", "/issuance/", 200),
        ("operator", "/issuance/", 200),
    ],
)
def test_each_page_checks_the_role(request, persona, path, status):
    user = request.getfixturevalue(persona)
    response = browser(user).get(path)
    assert response.status_code == status
    if status == 403:
        assert "无权操作" in response.content.decode()


def test_wizard_through_the_pages(clerk):
    client = browser(clerk)

    # 1. phone
    with committed():
        response = client.post("/issuance/applications/new/", {"phone": "13800138000"})
    application = Application.objects.get()
    assert response["Location"] == f"/issuance/applications/{application.pk}/phone/"
    response = client.post(f"/issuance/applications/{application.pk}/phone/", {"code": last_code()})
    assert response["Location"] == f"/issuance/applications/{application.pk}/customer/"

    # 2. customer
    response = client.post(
        f"/issuance/applications/{application.pk}/customer/", samples.personal_customer()
    )
    assert response["Location"] == f"/issuance/applications/{application.pk}/id-photo/"

    # 3. ID photo
    response = client.post(
        f"/issuance/applications/{application.pk}/id-photo/", {"id_photo": photo("id")}
    )
    assert response["Location"] == f"/issuance/applications/{application.pk}/vehicle/"

    # 4. vehicle (the form prefills contact from the customer step)
    form = client.get(f"/issuance/applications/{application.pk}/vehicle/").content.decode()
    assert 'value="13800138000"' in form
    vehicle = {k: v for k, v in samples.passenger_car().items() if k != "vin_imported"}
    response = client.post(f"/issuance/applications/{application.pk}/vehicle/", vehicle)
    assert response["Location"] == f"/issuance/applications/{application.pk}/vehicle-photos/"

    # 5. licence and head photos
    response = client.post(
        f"/issuance/applications/{application.pk}/vehicle-photos/",
        {k: photo(k) for k in ("licence_main", "licence_supplement", "vehicle_head")},
    )
    assert response["Location"] == f"/issuance/applications/{application.pk}/review/"

    # 6. review and submit
    review = client.get(f"/issuance/applications/{application.pk}/review/").content.decode()
    assert "陕A12345" in review
    assert samples.resident_id() in review
    response = client.post(f"/issuance/applications/{application.pk}/submit/")
    assert response["Location"] == f"/issuance/applications/{application.pk}/"
    detail = client.get(response["Location"]).content.decode()
    assert "已通过，待发行" in detail
    assert "issuance.application_approved" in detail
    application.refresh_from_db()
    assert application.status == ApplicationStatus.APPROVED


def test_wizard_step_shows_field_errors_and_keeps_the_input(clerk):
    application = verified_application(clerk)
    events = AuditEvent.objects.count()
    bad_id = samples.resident_id()[:-1] + "0"

    response = browser(clerk).post(
        f"/issuance/applications/{application.pk}/customer/",
        samples.personal_customer(id_number=bad_id, address=""),
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "校验位为 0" in page
    assert "此项为必填项。" in page
    assert f'value="{bad_id}"' in page
    assert AuditEvent.objects.count() == events
    application.refresh_from_db()
    assert application.customer_saved_at is None


def test_photo_step_needs_every_photo(clerk):
    application = verified_application(clerk)
    services.save_customer(application.pk, data=samples.organization_customer(), actor=clerk)

    response = browser(clerk).post(
        f"/issuance/applications/{application.pk}/id-photo/", {"id_photo": photo()}
    )

    assert response.status_code == 400
    assert "缺少照片“委托书”。" in response.content.decode()


def test_non_image_upload_on_the_page_is_refused(clerk, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    application = verified_application(clerk)
    services.save_customer(application.pk, data=samples.personal_customer(), actor=clerk)

    response = browser(clerk).post(
        f"/issuance/applications/{application.pk}/id-photo/",
        {"id_photo": SimpleUploadedFile("x.txt", b"plain text", "text/plain")},
    )

    assert response.status_code == 400
    assert "请上传 JPEG 或 PNG 照片。" in response.content.decode()
    assert application.documents.count() == 0


def test_refused_application_detail_lists_reasons(clerk):
    application = complete_application(clerk, vehicle=samples.two_axle_truck(toll_class="11"))
    services.submit_application(application.pk, actor=clerk)

    page = browser(clerk).get(f"/issuance/applications/{application.pk}/").content.decode()

    assert 'data-code="class_inconsistent"' in page
    assert "收费车型“1类货车”与车辆不符" in page
    assert "修改后重新提交" in page


def test_list_masks_id_numbers_and_phones(clerk, operator):
    complete_application(clerk)
    page = browser(operator).get("/issuance/").content.decode()
    assert samples.resident_id() not in page
    assert "6101**********1231" in page
    assert "138****8000" in page
    assert "13800138000" not in page


def test_list_filters_by_status_and_plate(clerk):
    approved = complete_application(clerk)
    services.submit_application(approved.pk, actor=clerk)
    draft = verified_application(clerk, phone="13700137000")
    client = browser(clerk)

    drafts = client.get("/issuance/", {"status": "draft"}).content.decode()
    by_plate = client.get("/issuance/", {"plate": "陕A123"}).content.decode()
    bad_date = client.get("/issuance/", {"date_from": "21/11/2026"}).content.decode()

    assert draft.number in drafts
    assert approved.number not in drafts
    assert approved.number in by_plate
    assert draft.number not in by_plate
    assert "请按 YYYY-MM-DD 格式输入日期。" in bad_date


def test_htmx_list_request_returns_only_the_rows(clerk):
    complete_application(clerk)
    response = browser(clerk).get("/issuance/", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert "<table" in page
    assert "<html" not in page


def test_auditor_detail_is_masked_and_clerk_detail_is_not(clerk, auditor):
    application = complete_application(clerk)
    audit_page = browser(auditor).get(f"/issuance/applications/{application.pk}/").content.decode()
    clerk_page = browser(clerk).get(f"/issuance/applications/{application.pk}/").content.decode()
    assert samples.resident_id() not in audit_page
    assert "6101**********1231" in audit_page
    assert samples.resident_id() in clerk_page


def test_documents_are_served_only_to_roles_that_may_read(clerk, collector):
    application = complete_application(clerk, photos=ALL_PHOTOS)
    url = f"/issuance/applications/{application.pk}/documents/id_photo/"

    assert browser(clerk).get(url).status_code == 200
    assert browser(collector).get(url).status_code == 403
    assert Client().get(url).status_code == 302
    assert browser(clerk).get(url.replace("id_photo", "entrust_letter")).status_code == 404


def test_unknown_application_is_a_404_page(clerk):
    response = browser(clerk).get("/issuance/applications/999999/")
    assert response.status_code == 404
    assert "未找到该申请。" in response.content.decode()


def test_existing_customer_is_announced_on_the_customer_step(clerk):
    application = complete_application(clerk)
    services.submit_application(application.pk, actor=clerk)

    response = browser(clerk).get(
        "/issuance/customers/lookup/", {"id_type": "101", "id_number": samples.resident_id()}
    )

    assert "已有客户 张*（1 辆车）" in response.content.decode()
    assert Customer.objects.count() == 1


def test_language_can_be_switched_to_english(clerk):
    client = browser(clerk)
    client.post("/i18n/setlang/", {"language": "en", "next": "/issuance/"})
    page = client.get("/issuance/").content.decode()
    assert "New application" in page


def test_operator_keeps_outlets_in_the_admin_and_sees_customers_read_only(clerk, operator):
    operator.is_staff = True
    operator.is_superuser = True
    operator.save()
    application = complete_application(clerk)
    services.submit_application(application.pk, actor=clerk)
    client = browser(operator)

    assert client.get("/admin/issuance/outlet/").status_code == 200
    assert client.get(f"/admin/auth/user/{clerk.pk}/change/").status_code == 200
    customer = Customer.objects.get()
    page = client.get(f"/admin/issuance/customer/{customer.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
