"""The six steps and their rules, through the real database, time controlled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import committed
from etcnet.core.errors import Conflict, Forbidden, InvalidInput
from etcnet.core.models import AuditEvent
from etcnet.core.sms import MemorySmsSender
from etcnet.issuance import samples as issuance_samples
from etcnet.plates import flow, selectors, services
from etcnet.plates.models import (
    Attempt,
    Blacklist,
    NumberStatus,
    PoolNumber,
    Selection,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
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


def numbers(status: str) -> list[str]:
    return sorted(PoolNumber.objects.filter(status=status).values_list("serial", flat=True))


def compose(account: Any, serial: str, clock: Any, token: str = "browser-1") -> Selection:
    flow.open_window(actor=account.user, token=token)
    clock.shift(90)
    with committed():
        return flow.submit(actor=account.user, token=token, serial=serial)


def test_self_composed_number_locked_at_90_seconds_then_preselected_by_sms(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    user = account.user

    session = flow.open_window(actor=user, token="browser-1")
    assert session.window_closes_at == MONDAY_10 + dt.timedelta(seconds=90)
    assert [
        k["char"] for k in flow.keys(actor=user, token="browser-1", prefix="") if k["enabled"]
    ] == ["A"]
    verified = flow.verify(actor=user, token="browser-1", serial="A0042")
    assert (verified.available, verified.remaining.verifications) == (True, 9)
    clock.shift(90)
    with committed():
        selection = flow.submit(actor=user, token="browser-1", serial="a0042")

    assert (selection.plate, selection.status) == ("粤GA0042", SelectionStatus.LOCKED)
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.LOCKED
    assert MemorySmsSender.outbox[-1].phone == account.phone
    selection = flow.confirm_code(actor=user, token="browser-1", code=last_code())
    assert selection.status == SelectionStatus.PRESELECTED
    # Monday 23 November + 10 working days = Monday 7 December.
    assert selection.deadline == dt.date(2026, 12, 7)
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.PRESELECTED
    assert SelectionSession.objects.get().status == SessionStatus.FINISHED
    assert list(
        AuditEvent.objects.filter(subject_type="plates.selection").values_list("action", flat=True)
    ) == ["plates.number_locked", "plates.number_preselected"]


def test_keyboard_enables_only_characters_that_lead_to_an_available_number(clock: Any) -> None:
    office, _ = office_with_pool(patterns=("A00#[12]", "B1234"))
    account = register()
    to_choose(account, office)
    user = account.user
    flow.open_window(actor=user, token="browser-1")

    def enabled(prefix: str) -> set[str]:
        keys = flow.keys(actor=user, token="browser-1", prefix=prefix)
        return {str(k["char"]) for k in keys if k["enabled"]}

    session = SelectionSession.objects.get(account=account)
    with CaptureQueriesContext(connection) as queries:
        assert selectors.next_characters(session, "") == {"A", "B"}
    assert len(queries) == 1  # one index probe per key, in one query
    assert enabled("") == {"A", "B"}
    assert enabled("A00") == set("0123456789")
    assert enabled("A007") == {"1", "2"}
    PoolNumber.objects.filter(serial__startswith="B").update(status=NumberStatus.PRESELECTED)
    assert enabled("") == {"A"}
    # Every key of the position is shown, in this session's shuffled order.
    order = [k["char"] for k in flow.keys(actor=user, token="browser-1", prefix="")]
    assert sorted(order) == sorted("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
    other = register(2)
    to_choose(other, office, token="browser-2")
    flow.open_window(actor=other.user, token="browser-2")
    orders = [
        [k["char"] for k in flow.keys(actor=u, token=t, prefix="")]
        for u, t in ((user, "browser-1"), (other.user, "browser-2"))
    ]
    assert orders[0] != orders[1]


def test_submission_before_the_window_closes_voids_and_blacklists(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    flow.open_window(actor=account.user, token="browser-1")
    clock.shift(89)

    with pytest.raises(Forbidden) as refused:
        flow.submit(actor=account.user, token="browser-1", serial="A0042")

    assert refused.value.code == "early_submission"
    assert numbers(NumberStatus.LOCKED) == []
    assert SelectionSession.objects.get().status == SessionStatus.VOIDED
    entry = Blacklist.objects.get()
    assert (entry.reason, entry.ends_at) == (
        "early_submission",
        clock_now() + dt.timedelta(days=365),
    )
    with pytest.raises(Forbidden) as again:
        flow.start(
            actor=account.user,
            token="browser-1",
            office_id=office.pk,
            district_id=office.districts.first().pk,  # type: ignore[union-attr]
        )
    assert again.value.code == "blacklisted"
    assert "2027-11-23 10:01" in again.value.message


def clock_now() -> dt.datetime:
    from django.utils import timezone

    return timezone.now()


def test_a_second_browser_voids_both_sessions_and_the_held_number(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    compose(account, "A0007", clock)
    district = office.districts.first()
    assert district is not None

    with pytest.raises(Forbidden) as concurrent:
        flow.start(
            actor=account.user, token="browser-2", office_id=office.pk, district_id=district.pk
        )

    assert concurrent.value.code == "concurrent_sessions"
    assert Selection.objects.get().status == SelectionStatus.VOIDED
    assert numbers(NumberStatus.LOCKED) == []
    assert SelectionSession.objects.get().status == SessionStatus.VOIDED
    assert Blacklist.objects.get().reason == "concurrent_sessions"


def test_two_sessions_started_from_two_browsers_are_both_void(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office, token="pc-1")
    district = office.districts.first()
    assert district is not None

    with pytest.raises(Forbidden) as refused:
        flow.start(actor=account.user, token="pc-2", office_id=office.pk, district_id=district.pk)

    assert refused.value.code == "concurrent_sessions"
    assert list(SelectionSession.objects.values_list("status", flat=True)) == ["voided"]
    assert Blacklist.objects.filter(reason="concurrent_sessions").count() == 1


def test_an_idle_session_is_not_a_second_computer(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office, token="pc-1")
    clock.shift(dt.timedelta(minutes=16))

    session = to_choose(account, office, token="pc-2")

    assert session.status == SessionStatus.ACTIVE
    assert Blacklist.objects.count() == 0
    assert sorted(SelectionSession.objects.values_list("status", flat=True)) == [
        "abandoned",
        "active",
    ]


def test_third_lock_attempt_of_the_day_is_refused_and_locks_nothing(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    PoolNumber.objects.filter(serial__in=["A0001", "A0002"]).update(status=NumberStatus.REGISTERED)
    for serial in ("A0001", "A0002"):
        with pytest.raises(InvalidInput) as taken:
            compose(account, serial, clock)
        assert taken.value.issues[0].code == "unavailable"
    remaining = selectors.remaining(
        account, vin="", now=clock_now(), config=selectors.plate_settings()
    )
    assert remaining.locks == 0

    with pytest.raises(Forbidden) as refused:
        flow.open_window(actor=account.user, token="browser-1")

    assert refused.value.code == "locks_exhausted"
    assert numbers(NumberStatus.LOCKED) == []
    assert Attempt.objects.filter(kind="lock").count() == 2
    # The next day the attempts are back.
    clock.shift(dt.timedelta(days=1))
    to_choose(account, office)
    assert compose(account, "A0003", clock).status == SelectionStatus.LOCKED


def test_verifications_are_limited_per_day(clock: Any) -> None:
    office, _ = office_with_pool()
    services.update_settings(changes={"verifications_per_day": 2}, actor=_operator())
    account = register()
    to_choose(account, office)
    flow.open_window(actor=account.user, token="browser-1")
    flow.verify(actor=account.user, token="browser-1", serial="A0001")
    last = flow.verify(actor=account.user, token="browser-1", serial="B0001")
    assert (last.available, last.remaining.verifications) == (False, 0)

    with pytest.raises(Forbidden) as refused:
        flow.verify(actor=account.user, token="browser-1", serial="A0002")
    assert refused.value.code == "verifications_exhausted"
    assert Attempt.objects.filter(kind="verify").count() == 2


def _operator() -> Any:
    from django.contrib.auth.models import User

    return User.objects.get(username="olga")


def test_malformed_or_outside_pool_numbers_lock_nothing(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)

    with pytest.raises(InvalidInput) as malformed:
        compose(account, "A00I2", clock)
    assert [(i.field, i.code) for i in malformed.value.issues] == [("serial", "serial.char")]
    with pytest.raises(InvalidInput) as outside:
        compose(account, "Z9999", clock)
    assert outside.value.issues[0].code == "unavailable"

    assert numbers(NumberStatus.LOCKED) == []
    assert Selection.objects.count() == 0
    # The malformed number did not count; the number outside the pool did.
    assert list(Attempt.objects.values_list("serial", "outcome")) == [("Z9999", "unavailable")]


def test_invalid_vin_is_refused_and_the_session_stays_at_step_2(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    district = office.districts.first()
    assert district is not None
    flow.start(actor=account.user, token="b", office_id=office.pk, district_id=district.pk)
    flow.accept_notice(actor=account.user, token="b")

    bad = issuance_samples.vin()[:8] + "0" + issuance_samples.vin()[9:]
    with pytest.raises(InvalidInput) as refused:
        flow.enter_vehicle(actor=account.user, token="b", vin=bad, kind="ordinary")

    assert refused.value.issues[0].field == "vin"
    session = SelectionSession.objects.get()
    assert (session.step, session.vin) == ("vin", "")


def test_random_draws_are_limited_per_vehicle_and_a_pick_locks_one_offered_number(
    clock: Any,
) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    user = account.user

    offered = flow.draw(actor=user, token="browser-1")
    assert len(offered) == 10
    assert all(PoolNumber.objects.get(serial=s).status == "available" for s in offered)
    flow.draw(actor=user, token="browser-1")
    last = flow.draw(actor=user, token="browser-1")
    with pytest.raises(Forbidden) as exhausted:
        flow.draw(actor=user, token="browser-1")
    assert exhausted.value.code == "draws_exhausted"
    with pytest.raises(Conflict) as fixed:  # another VIN would mean more draws
        flow.enter_vehicle(
            actor=user,
            token="browser-1",
            vin=issuance_samples.vin(serial="999999"),
            kind="ordinary",
        )
    assert fixed.value.code == "wrong_step"

    outside = next(s for s in numbers("available") if s not in last)
    with pytest.raises(InvalidInput) as refused:
        flow.pick(actor=user, token="browser-1", serial=outside)
    assert refused.value.issues[0].code == "not_offered"
    with committed():
        selection = flow.pick(actor=user, token="browser-1", serial=last[3])
    assert (selection.plate, selection.mode) == ("粤G" + last[3], "random")


def test_an_expired_sms_code_returns_the_number_and_locks_nothing(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    compose(account, "A0042", clock)
    code = last_code()
    clock.shift(dt.timedelta(minutes=5))

    with pytest.raises(InvalidInput) as refused:
        flow.confirm_code(actor=account.user, token="browser-1", code=code)

    assert refused.value.issues[0].code == "code_expired"
    assert Selection.objects.get().status == SelectionStatus.LAPSED
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.AVAILABLE
    assert selectors.holding(account) is None


def test_wrong_codes_are_counted_and_exhaust_the_lock(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    compose(account, "A0042", clock)
    good = last_code()
    wrong = "000000" if good != "000000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(InvalidInput) as refused:
            flow.confirm_code(actor=account.user, token="browser-1", code=wrong)
        assert refused.value.issues[0].params == {"left": left}
    with pytest.raises(InvalidInput) as exhausted:
        flow.confirm_code(actor=account.user, token="browser-1", code=wrong)
    assert exhausted.value.issues[0].code == "code_tries_exhausted"
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.AVAILABLE


def test_one_number_per_user(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    compose(account, "A0042", clock)
    flow.confirm_code(actor=account.user, token="browser-1", code=last_code())

    with pytest.raises(Conflict) as refused:
        to_choose(account, office, vin=issuance_samples.vin(serial="200001"))
    assert refused.value.code == "already_holding"


def test_a_vehicle_with_a_number_cannot_select_another(clock: Any) -> None:
    office, _ = office_with_pool()
    first = register()
    to_choose(first, office)
    compose(first, "A0042", clock)
    second = register(2)

    with pytest.raises(InvalidInput) as refused:
        to_choose(second, office, token="b2")
    assert refused.value.issues[0].code == "vin_has_number"


def test_selection_refuses_to_start_outside_hours_and_in_maintenance(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    operator = _operator()
    district = office.districts.first()
    assert district is not None
    clock.move_to(dt.datetime(2026, 11, 23, 21, 30, tzinfo=selectors.SHANGHAI))

    with pytest.raises(Forbidden) as closed:
        flow.start(actor=account.user, token="b", office_id=office.pk, district_id=district.pk)
    assert closed.value.code == "not_open"
    assert "08:00" in closed.value.message
    assert "20:00" in closed.value.message

    clock.move_to(MONDAY_10)
    services.add_maintenance(
        starts_at=MONDAY_10 - dt.timedelta(minutes=5),
        ends_at=MONDAY_10 + dt.timedelta(hours=1),
        note="upgrade",
        actor=operator,
    )
    with pytest.raises(Forbidden) as maintenance:
        flow.start(actor=account.user, token="b", office_id=office.pk, district_id=district.pk)
    assert maintenance.value.code == "maintenance"
    assert "2026-11-23 11:00" in maintenance.value.message
    assert SelectionSession.objects.count() == 0


def test_a_window_left_unsubmitted_is_replaced_by_a_new_one(clock: Any) -> None:
    office, _ = office_with_pool()
    account = register()
    to_choose(account, office)
    first = flow.open_window(actor=account.user, token="browser-1")
    closes = first.window_closes_at
    clock.shift(30)
    assert flow.open_window(actor=account.user, token="browser-1").window_closes_at == closes

    clock.shift(65)  # closed 5 seconds ago, never submitted
    again = flow.open_window(actor=account.user, token="browser-1")

    assert again.window_closes_at == clock_now() + dt.timedelta(seconds=90)
    assert Attempt.objects.count() == 0
