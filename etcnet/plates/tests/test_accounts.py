"""Registration of internet users, logging in, the four user types."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.test import RequestFactory

from etcnet.core.errors import InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.issuance import samples as issuance_samples
from etcnet.plates import services
from etcnet.plates.models import PlateAccount
from etcnet.plates.tests.factories import PASSWORD, operator, register

pytestmark = pytest.mark.django_db


def codes(error: InvalidInput) -> list[tuple[str, str]]:
    return [(i.field, i.code) for i in error.issues]


def test_a_new_vehicle_owner_registers_and_logs_in_with_id_or_mobile() -> None:
    account = register()

    assert (account.user_type, account.name, account.phone, account.status) == (
        "new_vehicle_owner",
        "张三",
        "13900000001",
        "active",
    )
    assert account.user.groups.count() == 0
    request = RequestFactory().post("/plates/login/")
    assert authenticate(request, username=account.id_number, password=PASSWORD) == account.user
    assert authenticate(request, username="13900000001", password=PASSWORD) == account.user
    assert authenticate(request, username="13900000001", password="wrong-pass1") is None
    event = AuditEvent.objects.get(action="plates.account_registered")
    assert event.after["id_number"] == account.id_number


def test_every_bad_field_is_named_and_nothing_is_created() -> None:
    with pytest.raises(InvalidInput) as refused:
        services.register_account(
            user_type="king",
            id_type="101",
            id_number="110101199003071234",
            name="张",
            phone="1234",
            city="",
            password="password",
            password_again="other",
            agreed=False,
            sms_code="",
        )
    fields = [f for f, _ in codes(refused.value)]
    assert fields == [
        "user_type",
        "id_number",
        "name",
        "phone",
        "city",
        "password",
        "password_again",
        "agreed",
        "sms_code",
    ]
    assert (User.objects.count(), PlateAccount.objects.count(), AuditEvent.objects.count()) == (
        0,
        0,
        0,
    )


def test_one_active_account_per_id_and_per_mobile() -> None:
    first = register()
    with pytest.raises(InvalidInput) as same_id:
        register(2, id_number=first.id_number)
    assert codes(same_id.value) == [("id_number", "registered")]
    with pytest.raises(InvalidInput) as same_phone:
        register(2, phone=first.phone)
    assert codes(same_phone.value) == [("phone", "registered")]
    assert PlateAccount.objects.count() == 1


@pytest.mark.parametrize(
    ("user_type", "kind"),
    [("vehicle_owner", "vehicle"), ("driver", "licence"), ("learner", "learner")],
)
def test_owner_driver_and_learner_need_a_local_record_with_the_same_mobile(
    user_type: str, kind: str
) -> None:
    id_number = issuance_samples.resident_id(seq="777")
    with pytest.raises(InvalidInput) as refused:
        register(7, user_type=user_type, id_number=id_number)
    assert codes(refused.value) == [("user_type", "no_local_record")]

    services.add_local_record(
        kind=kind,
        id_type=101,
        id_number=id_number,
        phone="13800000000",
        reference="x",
        actor=operator(),
    )
    with pytest.raises(InvalidInput):
        register(7, user_type=user_type, id_number=id_number)  # another mobile number

    account = register(7, user_type=user_type, id_number=id_number, phone="13800000000")
    assert account.user_type == user_type


def test_a_vehicle_or_licence_holder_may_not_register_as_a_new_vehicle_owner(
    db: Any,
) -> None:
    id_number = issuance_samples.resident_id(seq="778")
    services.add_local_record(
        kind="licence",
        id_type=101,
        id_number=id_number,
        phone="13800000001",
        reference="440802198503150778",
        actor=operator(),
    )
    with pytest.raises(InvalidInput) as refused:
        register(8, id_number=id_number)
    assert codes(refused.value) == [("user_type", "has_records")]


def test_django_password_rules_apply_too() -> None:
    with pytest.raises(InvalidInput) as refused:
        register(password="abcd1234", password_again="abcd1234")
    assert [f for f, _ in codes(refused.value)] == ["password"]
