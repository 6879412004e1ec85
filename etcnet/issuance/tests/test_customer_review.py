"""An existing customer's name or phone is never changed silently by an
application (of any outlet): the application waits for a review by a clerk of
the customer's outlet, who accepts (approved, the change audited with old and
new values) or refuses (back to the application's clerk, refused)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from conftest import complete_application, make_user
from etcnet.core.errors import Forbidden, InvalidInput, NotFound
from etcnet.core.models import AuditEvent
from etcnet.issuance import samples, services
from etcnet.issuance.models import Application, Customer, Outlet, Vehicle
from etcnet.issuance.services import decision as decision_module

pytestmark = pytest.mark.django_db

BASE = "/api/v1/issuance/applications"
SECOND_CAR = samples.passenger_car(
    plate="陕AD12345", plate_color="4", vin=samples.vin("LGXC16DF4N0")
)


@pytest.fixture
def north(db: Any) -> Outlet:
    return Outlet.objects.create(code="610101002", name="西安城北网点")


@pytest.fixture
def dan(north: Outlet) -> Any:
    """A clerk of another outlet (城北)."""
    return make_user("dan", "issuance_clerk", outlet=north)


@pytest.fixture
def customer(clerk: Any) -> Customer:
    """张三, 13800138000, opened by alice at 城南."""
    first = complete_application(clerk)
    assert services.submit_application(first.pk, actor=clerk).approved
    return Customer.objects.get()


def changing(clerk: Any, *, name: str = "张三丰", phone: str = "13900001111") -> Application:
    """A second car for the same ID number, with a new name and phone."""
    return complete_application(
        clerk, customer=samples.personal_customer(name=name), vehicle=SECOND_CAR, phone=phone
    )


def snapshot() -> dict[str, Any]:
    return {
        "customers": list(Customer.objects.values_list("pk", "name", "phone", "address")),
        "vehicles": Vehicle.objects.count(),
    }


def test_another_outlets_application_does_not_silently_change_the_customer(customer, dan):
    application = changing(dan)
    before = snapshot()

    decision = services.submit_application(application.pk, actor=dan)

    # The customer keeps name and phone; no vehicle yet; the change waits.
    assert not decision.approved
    application.refresh_from_db()
    assert application.status == "review"
    assert application.customer_changes == {
        "name": ["张三", "张三丰"],
        "phone": ["13800138000", "13900001111"],
    }
    assert snapshot() == before
    event = AuditEvent.objects.get(action="issuance.customer_change_requested")
    assert event.before == {"name": "张三", "phone": "13800138000"}
    assert event.after == {
        "name": "张三丰",
        "phone": "13900001111",
        "customer": customer.pk,
        "review_outlet": "610101001",
    }
    assert not AuditEvent.objects.filter(action="issuance.customer_updated").exists()
    # Submitting again while it waits changes nothing.
    assert not services.submit_application(application.pk, actor=dan).approved
    assert AuditEvent.objects.filter(action="issuance.customer_change_requested").count() == 1


def test_a_clerk_of_the_customers_outlet_accepts_and_the_change_is_audited(
    customer, dan, other_clerk
):
    application = changing(dan)
    services.submit_application(application.pk, actor=dan)

    decision = services.review_customer_change(application.pk, accept=True, actor=other_clerk)

    assert decision.approved
    application.refresh_from_db()
    assert (application.status, application.reviewed_by, application.customer_id) == (
        "approved",
        other_clerk,
        customer.pk,
    )
    customer.refresh_from_db()
    assert (customer.name, customer.phone, customer.vehicles.count()) == (
        "张三丰",
        "13900001111",
        2,
    )
    updated = AuditEvent.objects.get(action="issuance.customer_updated")
    assert (updated.actor, updated.before, updated.after) == (
        other_clerk,
        {"name": "张三", "phone": "13800138000"},
        {"name": "张三丰", "phone": "13900001111"},
    )
    accepted = AuditEvent.objects.get(action="issuance.customer_change_accepted")
    assert accepted.before == {"name": "张三", "phone": "13800138000"}
    assert accepted.after["note"] == ""


def test_a_refusal_needs_a_reason_and_sends_the_application_back(customer, dan, clerk):
    application = changing(dan, name="张三")  # only the phone changes
    services.submit_application(application.pk, actor=dan)
    events = AuditEvent.objects.count()

    with pytest.raises(InvalidInput) as no_reason:
        services.review_customer_change(application.pk, accept=False, note=" ", actor=clerk)
    assert [(i.field, i.code) for i in no_reason.value.issues] == [("note", "required")]
    assert AuditEvent.objects.count() == events

    decision = services.review_customer_change(
        application.pk, accept=False, note="客户电话未经本人确认", actor=clerk
    )

    assert not decision.approved
    application.refresh_from_db()
    assert application.status == "refused"
    [reason] = application.refusal_reasons
    assert (reason["field"], reason["code"]) == ("phone", "customer_change_refused")
    customer.refresh_from_db()
    assert customer.phone == "13800138000"
    refused = AuditEvent.objects.get(action="issuance.customer_change_refused")
    assert (refused.before, refused.after["phone"], refused.after["note"]) == (
        {"phone": "13800138000"},
        "13900001111",
        "客户电话未经本人确认",
    )


def test_the_reviewer_is_a_clerk_of_the_customers_outlet_but_not_the_applications_clerk(
    customer, dan, clerk, other_clerk
):
    elsewhere = changing(dan)
    services.submit_application(elsewhere.pk, actor=dan)
    at_home = changing(clerk, phone="13900002222")
    at_home.plate = "陕AD54321"
    at_home.save()
    services.submit_application(at_home.pk, actor=clerk)
    before = snapshot()

    with pytest.raises(Forbidden) as not_reviewer:  # dan's outlet is not the customer's
        services.review_customer_change(elsewhere.pk, accept=True, actor=dan)
    with pytest.raises(Forbidden) as own:  # four eyes
        services.review_customer_change(at_home.pk, accept=True, actor=clerk)

    assert own.value.code == "own_application"
    assert not_reviewer.value.code == "not_reviewer"
    stranger = make_user(
        "erin", "issuance_clerk", outlet=Outlet.objects.create(code="3", name="东")
    )
    with pytest.raises(NotFound):  # neither outlet: not even found
        services.review_customer_change(elsewhere.pk, accept=True, actor=stranger)
    assert snapshot() == before
    assert services.review_customer_change(at_home.pk, accept=True, actor=other_clerk).approved


def east() -> Outlet:
    return Outlet.objects.create(code="610101003", name="西安城东网点")


def api(user: Any = None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("other_clerk", 200),  # a clerk of the customer's outlet
        ("dan", 403),  # the application's own clerk, of another outlet
        ("erin", 404),  # a clerk of another outlet: not even found
        ("operator", 403),
        ("auditor", 403),
        ("collector", 403),
        (None, 401),
    ],
)
def test_roles_on_the_review_endpoint(request, customer, dan, persona, status):
    make_user("erin", "issuance_clerk", outlet=east())
    application = changing(dan)
    services.submit_application(application.pk, actor=dan)
    if persona == "erin":
        user = User.objects.get(username="erin")
    else:
        user = request.getfixturevalue(persona) if persona else None
    before = snapshot()

    answer = api(user).post(
        f"{BASE}/{application.pk}/customer-change",
        {"accept": True},
        content_type="application/json",
    )

    assert answer.status_code == status
    if status == 200:
        body = answer.json()
        assert body["approved"] is True
        assert body["application"]["status"] == "approved"
    else:
        assert snapshot() == before
        assert Application.objects.get(pk=application.pk).status == "review"


def test_the_api_shows_the_changes_masked_to_an_auditor(customer, dan, auditor, other_clerk):
    application = changing(dan)
    services.submit_application(application.pk, actor=dan)

    seen = {
        who: api(user).get(f"{BASE}/{application.pk}").json()["customer_changes"]
        for who, user in (("auditor", auditor), ("reviewer", other_clerk))
    }

    assert seen["reviewer"] == {
        "name": ["张三", "张三丰"],
        "phone": ["13800138000", "13900001111"],
    }
    assert seen["auditor"] == {"name": ["张*", "张*丰"], "phone": ["138****8000", "139****1111"]}


def test_the_review_page_flow(customer, dan, other_clerk):
    application = changing(dan)
    submitted = api(dan).post(f"/issuance/applications/{application.pk}/submit/", follow=True)
    assert "客户姓名或电话与档案不一致" in submitted.content.decode()
    reviewer = api(other_clerk)

    queue = reviewer.get("/issuance/", {"status": "review"}).content.decode()
    page = reviewer.get(f"/issuance/applications/{application.pk}/").content.decode()
    refused = reviewer.post(
        f"/issuance/applications/{application.pk}/customer-change/", {"decision": "refuse"}
    )
    accepted = reviewer.post(
        f"/issuance/applications/{application.pk}/customer-change/",
        {"decision": "accept"},
        follow=True,
    )

    assert application.number in queue
    assert 'data-testid="review-form"' in page
    assert "13900001111" in page
    assert "张三丰" in page
    assert refused.status_code == 400
    assert "请填写不同意变更的原因" in refused.content.decode()
    assert accepted.status_code == 200
    assert "已同意变更" in accepted.content.decode()
    assert Application.objects.get(pk=application.pk).status == "approved"
    # The application's own clerk sees the waiting state, not the form.
    own = api(dan).get(f"/issuance/applications/{application.pk}/").content.decode()
    assert 'data-testid="review-form"' not in own


def test_a_customer_created_between_the_check_and_the_approval_is_still_not_changed(
    customer, dan, monkeypatch
):
    # The first look finds no customer (another approval commits right after it).
    monkeypatch.setattr(decision_module, "_customer_changes", lambda application: (None, {}))
    application = changing(dan)

    decision = services.submit_application(application.pk, actor=dan)

    assert not decision.approved
    application.refresh_from_db()
    assert application.status == "review"
    customer.refresh_from_db()
    assert (customer.name, customer.phone) == ("张三", "13800138000")
    assert Vehicle.objects.count() == 1


def test_existing_customers_get_the_outlet_of_their_first_application(customer, dan, clerk):
    """The data migration that gave customers their outlet, run on the current
    tables: the first application's outlet, a later one elsewhere notwithstanding."""
    import importlib

    from django.apps import apps

    later = changing(dan, name="张三", phone="13800138000")
    assert services.submit_application(later.pk, actor=dan).approved
    Customer.objects.update(outlet=None)
    backfill = importlib.import_module(
        "etcnet.issuance.migrations.0003_customer_outlet_from_first_application"
    ).backfill

    backfill(apps, None)

    assert Customer.objects.get().outlet.code == "610101001"
