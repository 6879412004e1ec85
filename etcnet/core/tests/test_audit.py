"""The audit trail is append-only and written inside the service's transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from conftest import verified_application
from etcnet.core import audit
from etcnet.core.masking import mask_id_number, mask_name, mask_phone
from etcnet.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_events_cannot_be_changed_or_deleted(clerk):
    verified_application(clerk)
    event = AuditEvent.objects.first()
    event.action = "tampered"
    with pytest.raises(RuntimeError, match="append-only"):
        event.save()
    with pytest.raises(RuntimeError, match="append-only"):
        event.delete()


def test_record_outside_a_transaction_is_refused(db, clerk):
    connection = transaction.get_connection()
    # pytest-django wraps each test in a transaction; leave it to see the guard.
    connection.in_atomic_block, saved = False, connection.in_atomic_block
    try:
        with pytest.raises(RuntimeError, match="inside the service's transaction"):
            audit.record(actor=clerk, action="x.y", subject=("thing", 1))
    finally:
        connection.in_atomic_block = saved


def test_record_keeps_actor_request_id_and_data(clerk):
    with transaction.atomic():
        event = audit.record(
            actor=clerk, action="core.tested", subject=("thing", 7), before={"a": 1}, after={"a": 2}
        )
    assert (event.actor, event.actor_name, event.actor_type) == (clerk, "alice", "user")
    assert (event.subject_type, event.subject_id) == ("thing", "7")
    assert (event.before, event.after) == ({"a": 1}, {"a": 2})


def test_changes_keeps_only_what_differs():
    assert audit.changes({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == (
        {"b": 2, "c": None},
        {"b": 3, "c": 4},
    )


def test_request_id_reaches_the_audit_event(client, clerk):
    client.force_login(clerk)
    client.post(
        "/api/v1/issuance/applications",
        {"phone": "13800138000"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-42",
    )
    assert AuditEvent.objects.get(action="issuance.application_started").request_id == "req-42"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("610102199001011231", "6101**********1231"),
        ("11010519491231002X", "1101**********002X"),
        ("", ""),
    ],
)
def test_id_numbers_keep_four_and_four(value, masked):
    assert mask_id_number(value) == masked


def test_phones_and_names_are_masked():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳小明") == "欧**明"
