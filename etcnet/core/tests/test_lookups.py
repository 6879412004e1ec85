"""`field__any`: one array parameter on PostgreSQL, `IN` elsewhere, same rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from etcnet.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def events() -> list[AuditEvent]:
    return [
        AuditEvent.objects.create(
            occurred_at="2026-12-03T02:00:00Z",
            actor_type="system",
            action="core.test",
            subject_type="t",
            subject_id=str(n),
        )
        for n in range(5)
    ]


def test_any_finds_the_rows_in_the_list_as_in_does(events):
    wanted = [events[1].pk, events[3].pk, 10**9]

    found = set(AuditEvent.objects.filter(pk__any=wanted).values_list("pk", flat=True))

    assert found == set(AuditEvent.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    assert found == {events[1].pk, events[3].pk}
    names = {"1", "4"}
    assert set(
        AuditEvent.objects.filter(subject_id__any=names).values_list("subject_id", flat=True)
    ) == {"1", "4"}


def test_any_of_nothing_matches_nothing_and_an_or_keeps_its_other_side(events):
    assert not AuditEvent.objects.filter(pk__any=[]).exists()
    either = AuditEvent.objects.filter(Q(pk__any=[]) | Q(subject_id__any=["2"]))
    assert list(either.values_list("subject_id", flat=True)) == ["2"]


def test_any_sends_one_array_typed_as_the_column_on_postgresql(events):
    with CaptureQueriesContext(connection) as queries:
        list(AuditEvent.objects.filter(pk__any=[e.pk for e in events]))

    (query,) = queries.captured_queries
    if connection.vendor == "postgresql":
        # typed as the column, or its index is of no use (psycopg would send smallint[])
        assert "= ANY('{" in query["sql"]
        assert "::bigint[])" in query["sql"]
    else:
        assert " IN (" in query["sql"]
