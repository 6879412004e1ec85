"""Registration confirms the mobile number with an SMS code (seed 004), and
every application's codes to one mobile number share one limit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import translation

from conftest import committed, make_user
from etcnet.core.errors import Conflict, InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.core.ratelimit import RateLimited
from etcnet.core.sms import MemorySmsSender
from etcnet.issuance import services as issuance
from etcnet.issuance.models import Outlet, PhoneVerification
from etcnet.plates import services
from etcnet.plates.models import PlateAccount, RegistrationCode
from etcnet.plates.tests.factories import MONDAY_10, last_code, register

pytestmark = pytest.mark.django_db

PHONE = "13900000001"


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


def codes(error: Any) -> list[tuple[str, str]]:
    return [(i.field, i.code) for i in error.issues]


def send(phone: str = PHONE) -> str:
    with committed(), translation.override("zh-hans"):
        services.send_registration_code(phone=phone)
    return last_code()


def test_registration_needs_the_code_texted_to_the_mobile_number(clock: Any) -> None:
    code = send()
    assert MemorySmsSender.outbox[-1].phone == PHONE
    assert MemorySmsSender.outbox[-1].text == (
        f"互联网预选号牌注册：您的验证码为 {code}，5 分钟内有效。"
    )
    wrong = "000000" if code != "000000" else "111111"

    with pytest.raises(InvalidInput) as refused:
        register(sms_code=wrong, phone=PHONE)
    assert codes(refused.value) == [("sms_code", "code_wrong")]
    assert refused.value.issues[0].params == {"left": 4}
    assert PlateAccount.objects.count() == 0
    assert RegistrationCode.objects.get().attempts == 1  # the wrong try counted

    account = register(sms_code=code, phone=PHONE)
    assert account.phone == PHONE
    assert RegistrationCode.objects.get().used_at == MONDAY_10
    sent = AuditEvent.objects.get(action="plates.registration_code_sent")
    assert sent.after["phone"] == "139****0001"


def test_without_a_code_or_with_a_used_or_expired_one_nothing_is_registered(clock: Any) -> None:
    with pytest.raises(InvalidInput) as none_sent:
        register(sms_code="123456", phone=PHONE)
    assert codes(none_sent.value) == [("sms_code", "code_expired")]

    code = send()
    clock.shift(301)
    with pytest.raises(InvalidInput) as expired:
        register(sms_code=code, phone=PHONE)
    assert codes(expired.value) == [("sms_code", "code_expired")]
    assert PlateAccount.objects.count() == 0

    code = send()
    first = register(sms_code=code, phone=PHONE)
    with transaction.atomic():
        services.cancel_account(first, reason="test", now=MONDAY_10, actor="test")
    with pytest.raises(InvalidInput) as used:
        register(2, sms_code=code, phone=PHONE)  # the number is free again; the code is not
    assert codes(used.value) == [("sms_code", "code_expired")]


def test_five_wrong_codes_use_the_code_up(clock: Any) -> None:
    code = send()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(InvalidInput):
            register(sms_code=wrong, phone=PHONE)
    with pytest.raises(InvalidInput) as refused:
        register(sms_code=code, phone=PHONE)
    assert codes(refused.value) == [("sms_code", "code_tries_exhausted")]
    assert PlateAccount.objects.count() == 0


def test_a_code_is_not_sent_too_soon_again_nor_to_a_registered_number(clock: Any) -> None:
    send()
    clock.shift(59)
    with pytest.raises(Conflict) as too_soon:
        services.send_registration_code(phone=PHONE)
    assert (too_soon.value.code, too_soon.value.params) == ("resend_too_soon", {"seconds": 1})
    clock.shift(1)
    code = send()
    register(sms_code=code, phone=PHONE)
    with pytest.raises(InvalidInput) as taken:
        services.send_registration_code(phone=PHONE)
    assert codes(taken.value) == [("phone", "registered")]
    with pytest.raises(InvalidInput) as bad:
        services.send_registration_code(phone="1234")
    assert [f for f, _ in codes(bad.value)] == ["phone"]
    assert len(MemorySmsSender.outbox) == 2


def test_codes_to_one_mobile_are_limited_across_the_plate_site_and_issuance(
    clock: Any,
) -> None:
    """Five codes an hour to one number, whichever application asks: switching
    between the plate site and issuance's phone step does not get a sixth."""
    outlet = Outlet.objects.create(code="440802001", name="湛江赤坎网点")
    clerk = make_user("ivy", "issuance_clerk", outlet=outlet)
    with committed():
        issuance.start_application(phone=PHONE, actor=clerk)
        issuance.start_application(phone=PHONE, actor=clerk)
    for _ in range(3):
        send()
        clock.shift(60)
    assert len(MemorySmsSender.outbox) == 5

    with pytest.raises(RateLimited) as refused:
        services.send_registration_code(phone=PHONE)
    assert refused.value.status == 429
    assert refused.value.params["retry_at"] == "2026-11-23 11:00:00"
    assert RegistrationCode.objects.count() == 3  # nothing stored
    with pytest.raises(RateLimited):
        issuance.start_application(phone=PHONE, actor=clerk)
    assert PhoneVerification.objects.count() == 2
    assert len(MemorySmsSender.outbox) == 5

    # Another number is not held up; the next hour the number gets codes again.
    send("13900000002")
    clock.move_to(dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC))
    send()
