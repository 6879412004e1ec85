"""Status lists over the national center link (issue 6's version files): ours
go out signed as files and are acknowledged; the national list comes in,
verified twice over (the link's SM2 and the file's own Ed25519), applied all or
nothing and once; a file the list import refuses is answered 4."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from etcnet.exchange import link
from etcnet.exchange.models import Transfer
from etcnet.lists import services as lists
from etcnet.lists.models import ListEntry
from etcnet.lists.tests.test_import import FULL, NATIONAL, national
from etcnet.lists.versionfile import public_key_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _trust_the_national_list(settings: Any) -> None:
    settings.ETCNET_LIST_TRUSTED_KEYS = [public_key_text(NATIONAL.public_key())]


def test_our_list_versions_go_out_as_signed_files(national):
    lists.publish(now=dt.datetime(2026, 12, 3, 4, 0, tzinfo=dt.UTC))
    assert link.queue() == 1
    assert link.send().acked == 1
    sent = Transfer.objects.get(direction="out")
    assert (sent.kind, sent.state, sent.response_code) == ("statuslist", "acked", 1)
    (file,) = national.state()["files"]
    assert file["file_id"] == sent.message_id
    assert file["name"].endswith(".zip")
    assert link.queue() == 0  # each version once


def test_the_national_list_comes_in_applied_once(national):
    national.behave(mode="twice")
    national.queue_file(national_full(), "BLACK_ALL_000000.zip")
    got = link.receive()
    assert (got.applied, got.duplicates, got.refused) == (1, 1, 0)
    assert ListEntry.objects.filter(left_at__isnull=True).count() == len(FULL)
    taken = Transfer.objects.get(direction="in")
    assert (taken.kind, taken.state, taken.response_code, taken.deliveries) == (
        "statuslist", "applied", 1, 2,
    )  # fmt: skip


def test_a_list_file_the_import_refuses_is_answered_4(national, settings):
    settings.ETCNET_LIST_TRUSTED_KEYS = []  # its Ed25519 signature is nobody's we trust
    national.queue_file(national_full(), "BLACK_ALL_000000.zip")
    assert link.receive().refused == 1
    taken = Transfer.objects.get(direction="in")
    assert (taken.state, taken.response_code) == ("refused", 4)
    assert not ListEntry.objects.exists()
    assert all(o["waiting"] == 0 for o in national.state()["outbox"])  # answered


def national_full() -> bytes:
    return national("full", "202612031200", FULL)
