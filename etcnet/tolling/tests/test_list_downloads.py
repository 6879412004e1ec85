"""Terminals download status-list versions: the plan (increments after the
version held, or the latest full version), the signed files, the center's key."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.test import Client

from etcnet.lists import services as lists
from etcnet.lists.models import ListStatus, ListType, Medium
from etcnet.lists.versionfile import key_id, public_key_from_text, read_version

T0 = dt.datetime(2026, 11, 21, 4, 0, tzinfo=dt.UTC)
FILES = "/api/v1/tolling/downloads/status-list"
PLAN = f"{FILES}/plan"


@pytest.fixture(autouse=True)
def _at_t0() -> Any:
    """The versions are published at T0 and the plan compares them with now (kept
    ETCNET_LIST_KEEP_DAYS): the clock stands just after T0, so any date passes."""
    with time_machine.travel(T0 + dt.timedelta(minutes=15), tick=True):
        yield


def listed(card_no: str, status: int = ListStatus.IN) -> None:
    with transaction.atomic():
        lists.record_event(
            medium=Medium.CARD,
            medium_id=card_no,
            list_type=ListType.LOST,
            status=ListStatus(status),
            reason="挂失",
            actor=None,
        )


@pytest.fixture
def client(terminal: Any) -> Client:
    term, secret, _psam = terminal
    return Client(HTTP_AUTHORIZATION=f"Bearer {term.terminal_id}.{secret}")


def test_the_plan_leads_a_terminal_from_nothing_to_the_latest_version(client: Client) -> None:
    listed("61010000000000000001")
    lists.publish(now=T0, full=True)
    listed("61010000000000000002")
    lists.publish(now=T0 + dt.timedelta(minutes=5))
    listed("61010000000000000001", ListStatus.OUT)
    lists.publish(now=T0 + dt.timedelta(minutes=10))

    fresh = client.get(PLAN).json()
    assert fresh["full_needed"]
    assert fresh["full"]["number"] == "202611211200"
    assert [i["number"] for i in fresh["increments"]] == ["202611211205", "202611211210"]
    key = public_key_from_text(fresh["public_key"])
    assert key_id(key) == fresh["key_id"]
    trusted = {fresh["key_id"]: key}

    full = client.get(f"{FILES}/full/latest")
    assert full["Content-Type"] == "application/zip"
    held = {(x.id, x.type) for x in read_version(b"".join(full), trusted_keys=trusted).lines()}
    for step in fresh["increments"]:
        body = b"".join(
            client.get(f"/api/v1/tolling/downloads/status-list/increment/{step['number']}")
        )
        found = read_version(body, trusted_keys=trusted)
        assert found.manifest.previous == (
            "202611211200" if step["number"].endswith("05") else "202611211205"
        )
        for line in found.lines():
            (held.add if line.status == ListStatus.IN else held.remove)((line.id, line.type))
    assert held == {("61010000000000000002", 1)}

    current = client.get(PLAN, {"held": "202611211210"}).json()
    assert (current["full_needed"], current["increments"]) == (False, [])
    behind = client.get(PLAN, {"held": "202611211205"}).json()
    assert [i["number"] for i in behind["increments"]] == ["202611211210"]
    unknown = client.get(PLAN, {"held": "202601010000"}).json()
    assert unknown["full_needed"]


def test_files_need_the_terminal_and_exist(client: Client, terminal: Any) -> None:
    lists.publish(now=T0)
    assert Client().get(PLAN).status_code == 401
    missing = client.get(f"{FILES}/full/209901010000")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert client.get("/api/v1/tolling/downloads/status-list/other/latest").status_code == 404
    assert (
        client.get("/api/v1/tolling/downloads/status-list/increment/202611211200").status_code
        == 200
    )
