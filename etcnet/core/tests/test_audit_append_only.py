"""The database refuses UPDATE and DELETE of audit events, whether the SQL is raw or
comes from `QuerySet.update()` / `.delete()` (which bypass the model's own refusal);
a flush (test teardown, `etcnet flush`) still empties the table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from etcnet.core import audit
from etcnet.core.models import AuditEvent


def write_event(action: str = "cards.lost_reported") -> AuditEvent:
    with transaction.atomic():
        return audit.record(
            actor=None, action=action, subject=("cards.cardunit", 7), after={"state": "lost"}
        )


def trail() -> list[tuple[Any, ...]]:
    return list(
        AuditEvent.objects.order_by("pk").values_list(
            "pk", "occurred_at", "action", "subject_type", "subject_id", "before", "after"
        )
    )


@contextmanager
def refused() -> Iterator[None]:
    """IntegrityError inside a savepoint of its own: the test's transaction stays usable."""
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        yield


def raw(statement: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["raw SQL", "QuerySet"])
def test_an_audit_event_cannot_be_updated(how):
    event = write_event()
    before = trail()

    with refused():
        if how == "raw SQL":
            raw("UPDATE core_auditevent SET action = 'tampered' WHERE id = %s", [event.pk])
        else:
            AuditEvent.objects.filter(pk=event.pk).update(action="tampered")

    assert trail() == before


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["raw SQL", "QuerySet"])
def test_an_audit_event_cannot_be_deleted(how):
    event = write_event()
    before = trail()

    with refused():
        if how == "raw SQL":
            raw("DELETE FROM core_auditevent WHERE id = %s", [event.pk])
        else:
            AuditEvent.objects.filter(pk=event.pk).delete()

    assert trail() == before


@pytest.mark.django_db
def test_a_bulk_update_of_the_whole_trail_is_refused_and_changes_nothing():
    write_event("cards.lost_reported")
    write_event("cards.unlost")
    before = trail()

    with refused():
        AuditEvent.objects.update(after=None)

    assert trail() == before


@pytest.mark.django_db
def test_new_events_are_still_appended():
    write_event("cards.lost_reported")
    write_event("cards.unlost")

    assert [row[2] for row in trail()] == ["cards.lost_reported", "cards.unlost"]


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_trail_and_leaves_the_triggers_armed():
    write_event()

    call_command("flush", verbosity=0, interactive=False)

    assert AuditEvent.objects.count() == 0
    event = write_event()
    with refused():
        raw("DELETE FROM core_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the flush guard is SQLite's")
@pytest.mark.django_db(transaction=True)
def test_sqlite_flush_guard_is_only_set_inside_the_flush():
    write_event()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM core_append_only_guard")
        assert cursor.fetchone() == (0,)

    call_command("flush", verbosity=0, interactive=False)

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM core_append_only_guard")
        assert cursor.fetchone() == (0,)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the flush guard is SQLite's")
@pytest.mark.django_db(transaction=True)
def test_sqlite_djangos_own_flush_is_refused_which_is_why_core_overrides_it():
    from django.core.management.commands.flush import Command as DjangoFlush

    write_event()

    with pytest.raises(CommandError, match="couldn't be flushed"):
        call_command(DjangoFlush(), verbosity=0, interactive=False)

    assert AuditEvent.objects.count() == 1
