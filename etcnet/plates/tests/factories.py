"""Plain factories for the plate tests: an office with a small released pool,
internet users, and a selection taken to a given step."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from conftest import make_user
from etcnet.core.sms import MemorySmsSender
from etcnet.issuance import samples as issuance_samples
from etcnet.plates import flow, samples, services
from etcnet.plates.models import (
    NumberPool,
    PlateAccount,
    RegistrationCode,
    SelectionSession,
    VehicleOffice,
)
from etcnet.plates.services import accounts

PASSWORD = "plates2026ok"
# 10:00 Asia/Shanghai on a Monday: inside the default opening hours.
MONDAY_10 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)


def operator() -> User:
    return make_user("olga", "center_operator")


def office_with_pool(
    *,
    patterns: tuple[str, ...] = ("A00##",),
    kind: str = "ordinary",
    reserved: tuple[str, ...] = (),
    forbidden: tuple[str, ...] = (),
    actor: User | None = None,
) -> tuple[VehicleOffice, NumberPool]:
    offices = samples.create_offices()
    actor = actor or operator()
    pool = services.create_pool(
        office_code=offices[0].code,
        kind=kind,
        title="test pool",
        patterns=list(patterns),
        reserved=list(reserved),
        forbidden=list(forbidden),
        announcement="test",
        actor=actor,
    )
    return offices[0], services.release_pool(pool.pk, actor=actor)


def register(
    n: int = 1, *, user_type: str = "new_vehicle_owner", now: dt.datetime | None = None, **kw: Any
) -> PlateAccount:
    fields: dict[str, Any] = {
        "user_type": user_type,
        "id_type": 101,
        "id_number": issuance_samples.resident_id(seq=f"{n:03d}"),
        "name": "张三" if n == 1 else f"李{n}",
        "phone": f"139{n:08d}",
        "city": "湛江市",
        "password": PASSWORD,
        "password_again": PASSWORD,
        "agreed": True,
        "now": now,
    }
    fields.update(kw)
    if "sms_code" not in fields:
        fields["sms_code"] = registration_code(fields["phone"], now=now)
    return services.register_account(**fields)


def registration_code(phone: str, *, now: dt.datetime | None = None) -> str:
    """A registration code for ``phone``, stored as sending one would (without
    the SMS and its limits: the tests of sending do that)."""
    code = "246810"
    sent_at = now or timezone.now()
    RegistrationCode.objects.create(
        phone=phone,
        code_digest=accounts._code_digest(phone, code),
        sent_at=sent_at,
        expires_at=sent_at + dt.timedelta(minutes=5),
    )
    return code


def to_choose(
    account: PlateAccount,
    office: VehicleOffice,
    *,
    token: str = "browser-1",
    vin: str | None = None,
    kind: str = "ordinary",
    now: dt.datetime | None = None,
) -> SelectionSession:
    user = account.user
    district = office.districts.first()
    assert district is not None
    flow.start(actor=user, token=token, office_id=office.pk, district_id=district.pk, now=now)
    flow.accept_notice(actor=user, token=token, now=now)
    flow.enter_vehicle(
        actor=user, token=token, vin=vin or issuance_samples.vin(), kind=kind, now=now
    )
    return flow.enter_contact(
        actor=user, token=token, address="湛江市赤坎区南桥路 1 号", postal_code="524000", now=now
    )


def last_code() -> str:
    return re.findall(r"(?<!\d)\d{6}(?!\d)", MemorySmsSender.outbox[-1].text)[-1]
