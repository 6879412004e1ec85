"""Pure rules of plate pre-selection: no database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcnet.plates import domain
from etcnet.plates.domain import PlateKind

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_patterns_expand_classes_sets_and_ranges_without_i_or_o() -> None:
    assert domain.parse_pattern(PlateKind.ORDINARY, "@#[A-C]*5") == (
        domain.LETTERS,
        domain.DIGITS,
        "ABC",
        domain.SERIAL_CHARS,
        "5",
    )
    assert "I" not in domain.parse_pattern(PlateKind.ORDINARY, "[H-P]####")[0]
    assert domain.parse_pattern(PlateKind.ORDINARY, "[H-P]####")[0] == "HJKLMNP"


@pytest.mark.parametrize(
    ("kind", "pattern", "code_hint"),
    [
        (PlateKind.ORDINARY, "A###", "positions"),
        (PlateKind.ORDINARY, "AI###", "I or O"),
        (PlateKind.ORDINARY, "A##?#", "not a pattern character"),
        (PlateKind.ORDINARY, "[A##", "closing"),
        (PlateKind.NEW_ENERGY, "A#####", "Position 1"),
        (PlateKind.NEW_ENERGY, "D*@###", "Position 3"),
        (PlateKind.ORDINARY, "[C-A]####", "backwards"),
    ],
)
def test_bad_patterns_are_refused_with_the_reason(
    kind: PlateKind, pattern: str, code_hint: str
) -> None:
    with pytest.raises(domain.PoolError) as refused:
        domain.parse_pattern(kind, pattern)
    assert refused.value.field == "patterns"
    assert code_hint in refused.value.issue.message


def test_new_energy_serials_follow_ga36_d_f_rules() -> None:
    assert domain.check_serial(PlateKind.NEW_ENERGY, "DA1234") == []
    assert domain.check_serial(PlateKind.NEW_ENERGY, "F81234") == []
    assert [i.params for i in domain.check_serial(PlateKind.NEW_ENERGY, "AD1234")] == [
        {"char": "A", "position": 1}
    ]
    assert [i.params for i in domain.check_serial(PlateKind.NEW_ENERGY, "DAB234")] == [
        {"char": "B", "position": 3}
    ]
    assert domain.check_serial(PlateKind.ORDINARY, "A1234") == []
    assert domain.check_serial(PlateKind.ORDINARY, "A12O4")[0].code == "serial.char"
    assert domain.check_serial(PlateKind.ORDINARY, "A123")[0].code == "serial.length"


def test_pool_generation_splits_reserved_and_drops_forbidden() -> None:
    pool = domain.generate_pool(
        PlateKind.ORDINARY,
        ["A00##", "A000#"],  # the second repeats ten serials of the first
        reserved=[r"(\d)\1{3}$"],
        forbidden=[r"4$"],
    )
    assert len(pool.available) + len(pool.reserved) == 90
    assert pool.forbidden_count == 10
    assert pool.reserved == ("A0000",)
    assert "A0014" not in pool.available
    assert pool.available[:3] == ("A0001", "A0002", "A0003")


def test_pool_size_limit_and_bad_rules() -> None:
    with pytest.raises(domain.PoolError) as too_large:
        domain.generate_pool(PlateKind.ORDINARY, ["@####"], limit=1000)
    assert too_large.value.issue.params == {"size": 240_000, "limit": 1000}
    with pytest.raises(domain.PoolError) as bad_rule:
        domain.generate_pool(PlateKind.ORDINARY, ["A00##"], reserved=["(unclosed"])
    assert bad_rule.value.field == "reserved"


@given(st.lists(st.text(alphabet="AB12", min_size=5, max_size=5), min_size=1, max_size=30))
def test_keyboard_characters_lead_to_available_numbers(available: list[str]) -> None:
    for prefix in ("", available[0][:2], available[0][:4]):
        for char in domain.next_characters(available, prefix):
            assert any(s.startswith(prefix + char) for s in available)
        assert {s[len(prefix)] for s in available if s.startswith(prefix)} == set(
            domain.next_characters(available, prefix)
        )


def test_keyboard_order_is_shuffled_per_session_and_position_but_stable() -> None:
    a0 = domain.keyboard_order("seed-a", PlateKind.ORDINARY, 0)
    assert sorted(a0) == sorted(domain.SERIAL_CHARS)
    assert a0 == domain.keyboard_order("seed-a", PlateKind.ORDINARY, 0)
    assert a0 != domain.keyboard_order("seed-a", PlateKind.ORDINARY, 1)
    assert a0 != domain.keyboard_order("seed-b", PlateKind.ORDINARY, 0)
    assert sorted(domain.keyboard_order("s", PlateKind.NEW_ENERGY, 0)) == ["D", "F"]


def test_working_days_skip_weekends_and_holidays_and_count_make_up_days() -> None:
    friday = dt.date(2026, 9, 25)
    assert domain.add_working_days(friday, 1, {}) == dt.date(2026, 9, 28)
    assert domain.add_working_days(friday, 10, {}) == dt.date(2026, 10, 9)
    # National Day week: 1–8 October off, Sunday 27 September and Saturday 10 October worked.
    calendar = {dt.date(2026, 10, d): False for d in range(1, 9)}
    calendar[dt.date(2026, 9, 27)] = True
    calendar[dt.date(2026, 10, 10)] = True
    assert domain.add_working_days(friday, 1, calendar) == dt.date(2026, 9, 27)
    assert domain.add_working_days(friday, 5, calendar) == dt.date(2026, 10, 9)
    with pytest.raises(ValueError, match="at least 1"):
        domain.add_working_days(friday, 0, {})


def test_closed_outside_hours_and_in_maintenance() -> None:
    hours = {"opens": dt.time(8, 0), "closes": dt.time(20, 0)}
    at = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    assert domain.closed_reason(at, maintenance=[], **hours) is None
    late = domain.closed_reason(at.replace(hour=20), maintenance=[], **hours)
    assert late is not None
    assert (late.code, late.params) == ("not_open", {"opens": "08:00", "closes": "20:00"})
    window = (at - dt.timedelta(hours=1), at + dt.timedelta(minutes=30))
    down = domain.closed_reason(at, maintenance=[window], **hours)
    assert down is not None
    assert (down.code, down.params) == ("maintenance", {"until": "2026-11-23 10:30"})


def test_window_states() -> None:
    closes = dt.datetime(2026, 11, 23, 2, 1, 30, tzinfo=dt.UTC)
    grace = dt.timedelta(seconds=30)
    second = dt.timedelta(seconds=1)
    assert domain.window_state(closes - second, closes, grace=grace) is domain.WindowState.EARLY
    assert domain.window_state(closes, closes, grace=grace) is domain.WindowState.DUE
    assert domain.window_state(closes + grace, closes, grace=grace) is domain.WindowState.DUE
    assert (
        domain.window_state(closes + grace + second, closes, grace=grace) is domain.WindowState.LATE
    )


@pytest.mark.parametrize(
    ("password", "codes"),
    [
        ("plates2026", []),
        ("short1", ["password.length"]),
        ("onlyletters", ["password.mix"]),
        ("12345678", ["password.mix"]),
        ("with space1", ["password.space"]),
        ("a1" * 11, ["password.length"]),
    ],
)
def test_password_strength(password: str, codes: list[str]) -> None:
    assert [i.code for i in domain.password_issues(password)] == codes


def test_user_types_and_what_they_may_do() -> None:
    assert all(domain.Service.PRESELECT_PLATE in s for s in domain.SERVICES.values())
    assert domain.SERVICES[domain.UserType.NEW_VEHICLE_OWNER] == {domain.Service.PRESELECT_PLATE}
    assert domain.Service.EXAM_BOOKING in domain.SERVICES[domain.UserType.LEARNER]
    assert domain.REQUIRED_RECORD[domain.UserType.VEHICLE_OWNER] == "vehicle"
    assert domain.REQUIRED_RECORD[domain.UserType.NEW_VEHICLE_OWNER] is None


@given(
    st.text(alphabet=domain.SERIAL_CHARS, min_size=5, max_size=5),
    st.text(alphabet=domain.DIGITS + "AZ9", min_size=0, max_size=4),
)
def test_prefix_range_holds_exactly_the_serials_with_the_prefix(serial: str, prefix: str) -> None:
    upper = domain.prefix_successor(prefix)
    inside = prefix <= serial and (upper is None or serial < upper)
    assert inside == serial.startswith(prefix)


def test_prefix_successor_carries() -> None:
    assert domain.prefix_successor("A1") == "A2"
    assert domain.prefix_successor("A9") == "AA"
    assert domain.prefix_successor("AZ") == "B"
    assert domain.prefix_successor("ZZ") is None
    assert domain.prefix_successor("") is None
