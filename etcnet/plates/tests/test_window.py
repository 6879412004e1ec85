"""Registration at the vehicle office's window (窗口注册): the owner of an ID
number that someone else registered online takes it back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from conftest import committed, make_user
from etcnet.core.errors import Conflict, Forbidden, InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.issuance import samples as issuance_samples
from etcnet.plates import flow, services
from etcnet.plates.auth import PlateAccountBackend
from etcnet.plates.models import (
    Blacklist,
    BlacklistReason,
    NumberStatus,
    PlateAccount,
    PoolNumber,
    RegistrationBan,
    Selection,
)
from etcnet.plates.tests.factories import (
    MONDAY_10,
    PASSWORD,
    last_code,
    office_with_pool,
    register,
    to_choose,
)

pytestmark = pytest.mark.django_db

OWNER_ID = issuance_samples.resident_id(seq="321")
OWNER_PHONE = "13700000321"


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


def clerk_of(office: Any, username: str = "vera") -> User:
    clerk = make_user(username, "vehicle_office_clerk")
    office.clerks.add(clerk)
    return clerk


def owner_fields(**overrides: Any) -> dict[str, Any]:
    return {
        "user_type": "new_vehicle_owner",
        "id_type": "101",
        "id_number": OWNER_ID,
        "name": "王五",
        "phone": OWNER_PHONE,
        "city": "湛江市",
        "password": "owner2026ok",
        "password_again": "owner2026ok",
        "id_card_seen": True,
        **overrides,
    }


def squat_and_preselect(office: Any, clock: Any) -> PlateAccount:
    """Someone registers the owner's ID number online, pre-selects A0042 and
    gets blacklisted for another try from a second computer."""
    squatter = register(9, id_number=OWNER_ID, name="王五", phone="13900000009")
    to_choose(squatter, office)
    flow.open_window(actor=squatter.user, token="browser-1")
    clock.shift(90)
    with committed():
        flow.submit(actor=squatter.user, token="browser-1", serial="A0042")
    flow.confirm_code(actor=squatter.user, token="browser-1", code=last_code())
    return squatter


def test_the_owner_takes_the_id_number_back_at_the_window(clock: Any) -> None:
    office, _ = office_with_pool()
    squatter = squat_and_preselect(office, clock)
    with pytest.raises(InvalidInput) as online:  # online the ID number is taken
        register(3, id_number=OWNER_ID, phone=OWNER_PHONE)
    assert [(i.field, i.code) for i in online.value.issues] == [("id_number", "registered")]
    with transaction.atomic():
        services.blacklist(
            squatter, reason=BlacklistReason.CONCURRENT_SESSIONS, now=MONDAY_10, actor="test"
        )
    clerk = clerk_of(office)

    done = services.register_at_window(**owner_fields(), actor=clerk)

    # The owner has an account with the ID number and logs in with it.
    owner = done.account
    assert (owner.id_number, owner.phone, owner.status) == (OWNER_ID, OWNER_PHONE, "active")
    backend = PlateAccountBackend()
    assert backend.authenticate(None, username=OWNER_ID, password="owner2026ok") == owner.user
    # The squatting account is cancelled, without a registration ban on the ID.
    squatter.refresh_from_db()
    assert (squatter.status, squatter.cancel_reason) == ("cancelled", "claimed_at_window")
    assert squatter.user.is_active is False
    assert backend.authenticate(None, username="13900000009", password=PASSWORD) is None
    assert RegistrationBan.objects.count() == 0
    # The number it pre-selected is void and back in the pool.
    assert done.voided == ["粤GA0042"]
    held = Selection.objects.get(account=squatter)
    assert (held.status, held.end_reason) == ("voided", "claimed_at_window")
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.AVAILABLE
    # Its blacklisting no longer holds the ID number (the owner may select).
    assert done.lifted == 1
    assert Blacklist.objects.get().ends_at == MONDAY_10 + dt.timedelta(seconds=90)
    session = flow.start(
        actor=owner.user,
        token="owner",
        office_id=office.pk,
        district_id=office.districts.first().pk,  # type: ignore[union-attr]
    )
    assert session.account == owner
    # Audited: the claim on the squatting account, the lifting, the registration.
    claimed = AuditEvent.objects.get(action="plates.account_claimed")
    assert claimed.actor == clerk
    assert claimed.after["reason"] == "claimed_at_window"
    assert claimed.after["voided"] == ["粤GA0042"]
    assert claimed.after["squatter_phone"] == "139****0009"
    assert AuditEvent.objects.filter(action="plates.blacklist_lifted").count() == 1
    registered = AuditEvent.objects.filter(action="plates.account_registered").last()
    assert registered is not None
    assert registered.actor == clerk
    assert registered.after["at_window"] == office.code
    assert registered.after["claimed_from"] == squatter.pk


def test_anyone_may_register_at_the_window_without_a_squatter() -> None:
    office, _ = office_with_pool()
    done = services.register_at_window(**owner_fields(), actor=clerk_of(office))
    assert done.cancelled is None
    assert done.voided == []
    assert PlateAccount.objects.get().phone == OWNER_PHONE
    assert not AuditEvent.objects.filter(action="plates.account_claimed").exists()


def test_refusals_at_the_window_change_nothing() -> None:
    office, _ = office_with_pool()
    own = register(4, id_number=OWNER_ID, phone=OWNER_PHONE)
    clerk = clerk_of(office)
    events = AuditEvent.objects.count()

    with pytest.raises(Conflict) as mine:  # the account is the person's own
        services.register_at_window(**owner_fields(), actor=clerk)
    assert mine.value.code == "own_account"
    with pytest.raises(InvalidInput) as unchecked:
        services.register_at_window(
            **owner_fields(id_card_seen=False, phone="13700000999"), actor=clerk
        )
    assert [i.field for i in unchecked.value.issues] == ["id_card_seen"]
    with pytest.raises(Forbidden):  # not a clerk
        services.register_at_window(**owner_fields(), actor=make_user("olaf", "center_operator"))
    with pytest.raises(Forbidden):  # a clerk of no office
        services.register_at_window(
            **owner_fields(), actor=make_user("vic", "vehicle_office_clerk")
        )
    register(1)  # 13900000001 is taken
    with pytest.raises(InvalidInput) as taken:
        services.register_at_window(**owner_fields(phone="13900000001"), actor=clerk)
    assert [(i.field, i.code) for i in taken.value.issues] == [("phone", "registered")]

    own.refresh_from_db()
    assert own.status == "active"
    assert PlateAccount.objects.count() == 2
    assert AuditEvent.objects.count() == events + 1  # only register(1)'s


def test_the_clerk_page_looks_up_the_id_and_registers_its_owner(clock: Any) -> None:
    office, _ = office_with_pool()
    squatter = squat_and_preselect(office, clock)
    desk = Client()
    desk.force_login(clerk_of(office))
    assert "窗口注册" in desk.get("/plates/office/").content.decode()

    page = desk.get("/plates/office/window/", {"id_number": OWNER_ID}).content.decode()
    assert "王*" in page
    assert "139****0009" in page
    assert "粤GA0042" in page

    form = {k: v for k, v in owner_fields().items() if k != "id_card_seen"}
    refused = desk.post("/plates/office/window/", form)
    assert refused.status_code == 400
    assert "窗口注册前请核验身份证明原件" in refused.content.decode()

    done = desk.post("/plates/office/window/", {**form, "id_card_seen": "on"}, follow=True)
    text = done.content.decode()
    assert "已为 王五 办理窗口注册（手机 137****0321）" in text
    assert "占用该身份证明号码的账号（手机 139****0009）已注销" in text
    assert "粤GA0042" in text
    squatter.refresh_from_db()
    assert squatter.status == "cancelled"

    other = Client()
    other.force_login(make_user("walt", "issuance_clerk"))
    assert other.get("/plates/office/window/").status_code == 403
