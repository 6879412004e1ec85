"""Publishing status-list versions: the chain of files reproduces the center's
list exactly; a second run changes nothing; timeliness is on record."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from etcnet.core.models import AuditEvent
from etcnet.lists import selectors, services
from etcnet.lists.models import (
    ListEntry,
    ListEvent,
    ListIssuer,
    ListStatus,
    ListType,
    ListVersion,
    Medium,
)
from etcnet.lists.signing import trusted_keys
from etcnet.lists.versionfile import read_version

T0 = dt.datetime(2026, 11, 21, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
CARDS = ["61010000000000000001", "61010000000000000002", "12010000000000000009"]
OBUS = ["4301190220052902", "6101000000000001"]
IDS = [(Medium.CARD, c) for c in CARDS] + [(Medium.OBU, o) for o in OBUS]

pytestmark = pytest.mark.django_db


def event(medium: str, medium_id: str, list_type: int, status: int, reason: str = "") -> None:
    with transaction.atomic():
        services.record_event(
            medium=Medium(medium),
            medium_id=medium_id,
            list_type=ListType(list_type),
            status=ListStatus(status),
            reason=reason or f"test {status}",
            actor=None,
            issuer_id="61010001",
        )


def read(name: str) -> Any:
    return read_version(Path(settings.ETCNET_LIST_DIR) / name, trusted_keys=trusted_keys())


def replay(versions: list[ListVersion], *, from_full: ListVersion | None = None) -> set[Any]:
    """What a terminal holds after the chain: (medium, id, type) triples."""
    held: set[tuple[str, str, int]] = set()
    chain = versions
    if from_full is not None:
        held = {(x.medium, x.id, x.type) for x in read(from_full.full_file).lines()}
        chain = [v for v in versions if v.number > from_full.number]
    previous = from_full.number if from_full else None
    for version in chain:
        found = read(version.file)
        assert (found.manifest.previous or None) == previous
        for line in found.lines():
            key = (line.medium, line.id, line.type)
            if line.status == ListStatus.IN:
                assert key not in held
                held.add(key)
            else:
                held.remove(key)
        assert len(held) == found.manifest.list_size
        previous = version.number
    return held


def center_list() -> set[tuple[str, str, int]]:
    """The list as the center's events say it is now (the latest event per
    medium, id and type decides)."""
    latest: dict[tuple[str, str, int], int] = {}
    for medium, medium_id, list_type, status in ListEvent.objects.order_by(
        "occurred_at", "id"
    ).values_list("medium", "medium_id", "list_type", "status"):
        latest[(medium, medium_id, list_type)] = status
    return {key for key, status in latest.items() if status == ListStatus.IN}


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("event"),
            st.sampled_from(IDS),
            st.integers(1, 7),
            st.sampled_from([ListStatus.IN, ListStatus.IN, ListStatus.OUT]),
        ),
        st.tuples(st.just("publish"), st.booleans()),
    ),
    max_size=40,
)


@hsettings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_the_version_chain_reproduces_the_centers_list(ops: list[Any]) -> None:
    ListEntry.objects.all().delete()
    ListVersion.objects.all().delete()
    ListEvent.objects.all().delete()
    ListIssuer.objects.all().delete()
    shutil.rmtree(settings.ETCNET_LIST_DIR, ignore_errors=True)
    minute = 0
    for op in [*ops, ("publish", True)]:
        if op[0] == "event":
            _, (medium, medium_id), list_type, status = op
            event(medium, medium_id, list_type, status)
            continue
        minute += 5
        services.publish(now=T0 + dt.timedelta(minutes=minute), full=op[1])
        versions = list(ListVersion.objects.order_by("number"))
        expected = center_list()
        assert replay(versions) == expected
        fulls = [v for v in versions if v.full_file]
        if fulls:
            assert replay(versions, from_full=fulls[0]) == expected
            assert replay(versions, from_full=fulls[-1]) == expected


def test_a_card_that_leaves_and_comes_back_between_versions_is_on_the_next() -> None:
    event("card", CARDS[0], 1, ListStatus.IN)
    services.publish(now=T0)
    event("card", CARDS[0], 1, ListStatus.OUT)
    event("card", CARDS[0], 1, ListStatus.IN)
    services.publish(now=T0 + dt.timedelta(minutes=5))
    assert replay(list(ListVersion.objects.order_by("number"))) == {("card", CARDS[0], 1)}
    assert ListEntry.objects.filter(medium_id=CARDS[0], left_at__isnull=True).count() == 1


def test_publishing_twice_in_a_minute_makes_one_version(operator: Any) -> None:
    event("card", CARDS[0], 1, ListStatus.IN, "挂失")
    first = services.publish(now=T0, actor=operator)
    again = services.publish(now=T0 + dt.timedelta(seconds=30), actor=operator)
    assert first.created
    assert not again.created
    assert again.version == first.version
    assert ListVersion.objects.count() == 1
    assert AuditEvent.objects.filter(action="lists.version_published").count() == 1
    assert AuditEvent.objects.filter(action="lists.full_version_published").count() == 1
    # The first version is full too, so a new terminal can start from it.
    assert first.full_written
    assert not services.publish(now=T0 + dt.timedelta(seconds=50), full=True).full_written
    # Later, asking for the full version in the same minute adds it, once.
    services.publish(now=T0 + dt.timedelta(minutes=5))
    full = services.publish(now=T0 + dt.timedelta(minutes=5, seconds=40), full=True)
    assert full.full_written
    assert not services.publish(
        now=T0 + dt.timedelta(minutes=5, seconds=50), full=True
    ).full_written

    v = ListVersion.objects.get(number="202611211200")
    assert (v.number, v.previous, v.adds, v.removes, v.list_size) == ("202611211200", "", 1, 0, 1)
    increment = read(v.file)
    assert increment.manifest.signature is not None
    assert [(x.medium, x.id, x.type, x.status, x.reason) for x in increment.lines()] == [
        ("card", CARDS[0], 1, 1, "挂失")
    ]
    assert increment.manifest.issuers == ("6101",)


def test_an_entry_keeps_when_it_entered_and_which_versions_carried_it() -> None:
    event("card", CARDS[0], 1, ListStatus.IN)
    first = services.publish(now=T0).version
    full = services.publish(now=T0 + dt.timedelta(minutes=5), full=True).version
    event("card", CARDS[0], 1, ListStatus.OUT)
    last = services.publish(now=T0 + dt.timedelta(minutes=10)).version

    entry = ListEntry.objects.get(medium_id=CARDS[0])
    assert entry.since == ListEvent.objects.filter(status=ListStatus.IN).get().occurred_at
    assert (entry.added_in, entry.removed_in) == (first, last)
    assert entry.left_at is not None
    carried = selectors.versions_carrying(entry)
    assert [v.number for v in carried["increments"]] == [first.number, last.number]
    assert [v.number for v in carried["full"]] == [first.number, full.number]  # first is full
    assert (first.adds, full.adds, last.removes) == (1, 0, 1)


def test_an_entry_in_and_out_between_two_versions_never_reaches_a_lane() -> None:
    services.publish(now=T0)
    event("obu", OBUS[0], 2, ListStatus.IN)
    event("obu", OBUS[0], 2, ListStatus.OUT)
    v = services.publish(now=T0 + dt.timedelta(minutes=5)).version
    assert (v.adds, v.removes, v.list_size) == (0, 0, 0)
    assert list(read(v.file).lines()) == []
