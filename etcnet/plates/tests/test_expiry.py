"""The expiry job, the 24-hour cancellation, registration at the vehicle office
and the audited settings, with time controlled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from conftest import committed, make_user
from etcnet.core.errors import Conflict, Forbidden, InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.plates import flow, services
from etcnet.plates.models import (
    Blacklist,
    LocalRecord,
    NumberStatus,
    PlateAccount,
    PoolNumber,
    RegistrationBan,
    Selection,
    SelectionStatus,
)
from etcnet.plates.tests.factories import (
    MONDAY_10,
    last_code,
    office_with_pool,
    register,
    to_choose,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


def preselect(account: PlateAccount, office: Any, clock: Any, serial: str = "A0042") -> Selection:
    to_choose(account, office)
    flow.open_window(actor=account.user, token="browser-1")
    clock.shift(90)
    with committed():
        flow.submit(actor=account.user, token="browser-1", serial=serial)
    return flow.confirm_code(actor=account.user, token="browser-1", code=last_code())


def test_overdue_number_returns_to_the_pool_and_the_user_is_blacklisted(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register(user_type="learner", id_number=_learner())
    selection = preselect(account, office, clock)
    assert selection.deadline == dt.date(2026, 12, 7)

    clock.move_to(dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC))  # 8 December 07:00 local
    report = services.expire()

    assert report.as_dict() == {
        "lapsed_locks": 0,
        "expired": 1,
        "cancelled_accounts": 0,
        "abandoned_sessions": 0,
    }
    selection.refresh_from_db()
    assert (selection.status, selection.end_reason) == ("expired", "registration_overdue")
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.AVAILABLE
    entry = Blacklist.objects.get()
    assert entry.reason == "registration_overdue"
    assert entry.ends_at == dt.datetime(2027, 12, 7, 23, 0, tzinfo=dt.UTC)
    assert PlateAccount.objects.get().status == "active"  # a learner keeps the account
    assert services.expire().as_dict()["expired"] == 0  # the job is safe to run again


def _learner() -> str:
    from etcnet.issuance import samples

    id_number = samples.resident_id(seq="321")
    LocalRecord.objects.create(
        kind="learner",
        id_type=101,
        id_number=id_number,
        phone="13900000001",
        created_at=MONDAY_10,
    )
    return id_number


def test_the_deadline_skips_the_holiday_calendar(clock: Any) -> None:
    office, _ = office_with_pool()
    operator = make_user("hank", "center_operator")
    services.set_calendar_day(day=dt.date(2026, 11, 25), working=False, note="x", actor=operator)
    services.set_calendar_day(day=dt.date(2026, 11, 28), working=True, note="y", actor=operator)
    services.update_settings(changes={"registration_working_days": 4}, actor=operator)
    account = register()

    selection = preselect(account, office, clock)

    # Tue 24, (Wed 25 off), Thu 26, Fri 27, Sat 28 worked: the fourth working day.
    assert selection.deadline == dt.date(2026, 11, 28)


def test_a_new_vehicle_owner_overdue_is_cancelled_and_banned_from_registering_again(
    clock: Any,
) -> None:
    office, _ = office_with_pool()
    account = register()
    preselect(account, office, clock)
    clock.move_to(dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC))

    report = services.expire()

    assert (report.expired, report.cancelled_accounts) == (1, 1)
    account.refresh_from_db()
    assert (account.status, account.cancel_reason) == ("cancelled", "registration_overdue")
    assert account.user.is_active is False
    ban = RegistrationBan.objects.get()
    assert ban.until == dt.datetime(2028, 12, 7, 2, 0, tzinfo=dt.UTC)
    with pytest.raises(InvalidInput) as refused:
        register()
    assert [(i.field, i.code) for i in refused.value.issues] == [
        ("id_number", "registration_banned")
    ]
    assert "2028-12-07" in refused.value.issues[0].message
    # Another mobile number is not under the ban, but the blacklist follows the ID.
    again = register(phone="13700000001")
    with pytest.raises(Forbidden) as blacklisted:
        to_choose(again, office, token="b2")
    assert blacklisted.value.code == "blacklisted"


def test_a_new_vehicle_owner_who_does_not_preselect_within_24_hours_is_cancelled(
    clock: Any,
) -> None:
    office, _ = office_with_pool()
    idle = register()
    busy = register(2)
    preselect(busy, office, clock)  # 90 seconds pass

    clock.shift(dt.timedelta(hours=23, minutes=58))
    assert services.expire().cancelled_accounts == 0
    clock.shift(dt.timedelta(seconds=30))
    report = services.expire()

    assert report.cancelled_accounts == 1
    idle.refresh_from_db()
    busy.refresh_from_db()
    assert (idle.status, idle.cancel_reason, busy.status) == (
        "cancelled",
        "no_preselection",
        "active",
    )
    assert RegistrationBan.objects.get().account == idle
    assert AuditEvent.objects.filter(action="plates.account_cancelled").count() == 1
    assert services.expire().cancelled_accounts == 0


def test_a_lock_without_its_sms_code_lapses_through_the_job(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    flow.open_window(actor=account.user, token="browser-1")
    clock.shift(90)
    with committed():
        flow.submit(actor=account.user, token="browser-1", serial="A0042")
    clock.shift(dt.timedelta(minutes=5))

    call_command("plates", "expire")

    assert Selection.objects.get().status == SelectionStatus.LAPSED
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.AVAILABLE


def test_the_office_registers_only_when_the_invoice_name_matches(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    selection = preselect(account, office, clock)
    clerk = make_user("vera", "vehicle_office_clerk")
    stranger = make_user("otto", "vehicle_office_clerk")
    office.clerks.add(clerk)

    with pytest.raises(Forbidden):
        services.confirm_registration(
            selection.pk, invoice_name="张三", invoice_number="1", vin=selection.vin, actor=stranger
        )
    with pytest.raises(InvalidInput) as refused:
        services.confirm_registration(
            selection.pk,
            invoice_name="张四",
            invoice_number="",
            vin="LSVAM4187C2184128",
            actor=clerk,
        )
    assert [(i.field, i.code) for i in refused.value.issues] == [
        ("invoice_number", "required"),
        ("invoice_name", "mismatch"),
        ("vin", "mismatch"),
    ]
    assert Selection.objects.get().status == SelectionStatus.PRESELECTED

    done = services.confirm_registration(
        selection.pk,
        invoice_name=" 张 三",
        invoice_number="04400123",
        vin=selection.vin,
        actor=clerk,
    )

    assert done.status == SelectionStatus.REGISTERED
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.REGISTERED
    assert LocalRecord.objects.get(reference="粤GA0042").id_number == account.id_number
    assert services.expire().expired == 0  # a registered number never expires
    with pytest.raises(Conflict):
        services.confirm_registration(
            selection.pk, invoice_name="张三", invoice_number="1", vin=selection.vin, actor=clerk
        )


def test_the_office_may_refuse_and_blacklist(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    selection = preselect(account, office, clock)
    clerk = make_user("vera", "vehicle_office_clerk")
    office.clerks.add(clerk)

    services.refuse_registration(
        selection.pk, reason="发票名称不一致", blacklist_user=True, actor=clerk
    )

    assert Selection.objects.get().status == SelectionStatus.VOIDED
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.AVAILABLE
    assert Blacklist.objects.get().reason == "invoice_mismatch"


def test_settings_changes_are_checked_and_audited(db: Any) -> None:
    operator = make_user("hank", "center_operator")
    clerk = make_user("vera", "vehicle_office_clerk")

    services.update_settings(
        changes={"locks_per_day": 3, "blacklist_days": 180, "window_seconds": 90}, actor=operator
    )

    event = AuditEvent.objects.get(action="plates.settings_changed")
    assert (event.before, event.after) == (
        {"locks_per_day": 2, "blacklist_days": 365},
        {"locks_per_day": 3, "blacklist_days": 180},
    )
    services.update_settings(
        changes={"opens": dt.time(7, 30), "closes": dt.time(21, 0)}, actor=operator
    )
    hours = AuditEvent.objects.filter(action="plates.settings_changed").last()
    assert hours is not None
    assert (hours.before, hours.after) == (
        {"opens": "08:00:00", "closes": "20:00:00"},
        {"opens": "07:30:00", "closes": "21:00:00"},
    )
    with pytest.raises(InvalidInput) as refused:
        services.update_settings(
            changes={"window_seconds": 0, "sms_code_minutes": "x"}, actor=operator
        )
    assert [i.field for i in refused.value.issues] == ["window_seconds", "sms_code_minutes"]
    with pytest.raises(InvalidInput):
        services.update_settings(
            changes={"opens": dt.time(21, 0), "closes": dt.time(20, 0)}, actor=operator
        )
    with pytest.raises(Forbidden):
        services.update_settings(changes={"locks_per_day": 9}, actor=clerk)
    assert AuditEvent.objects.filter(action="plates.settings_changed").count() == 2
