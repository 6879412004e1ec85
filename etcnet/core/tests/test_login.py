"""Signing in through POST /api/v1/auth/login: JSON only (a cross-site form
cannot log a browser in), failures locked out per username across addresses
and per address across usernames, and the address is REMOTE_ADDR unless a
trusted proxy header is configured (a client cannot choose it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory

from conftest import make_user
from etcnet.core.middleware import client_ip

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/login"
GOOD = {"username": "alice", "password": "pw-12345678"}


@pytest.fixture
def alice(db: Any) -> Any:
    return make_user("alice", "issuance_clerk")


def login(data: dict[str, str], *, address: str = "127.0.0.1", **extra: Any) -> Any:
    client = Client(REMOTE_ADDR=address)
    response = client.post(URL, data, content_type="application/json", **extra)
    response.client_session = client.session
    return response


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "username=alice&password=pw-12345678"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--x--\r\n',
        ),
        ("text/plain", json.dumps(GOOD)),  # what <form enctype="text/plain"> can forge
    ],
)
def test_a_form_post_cannot_sign_in(alice, content_type, body):
    client = Client()

    response = client.post(URL, body, content_type=content_type)

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert client.post(URL, GOOD, content_type="application/json").status_code == 200


def test_the_json_refusal_names_its_reason(alice):
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post(
        URL, json.dumps(GOOD), content_type="text/plain"
    )

    assert response.json()["code"] == "json_required"


def test_failures_for_one_username_lock_it_whatever_the_address(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    wrong = {**GOOD, "password": "wrong"}

    statuses = [login(wrong, address=f"10.0.0.{n}").status_code for n in (1, 2, 3)]
    locked = login(GOOD, address="10.0.0.4")

    assert statuses == [400, 400, 429]
    assert locked.status_code == 429
    assert locked.json()["code"] == "login_locked"
    assert "_auth_user_id" not in locked.client_session


def test_failures_from_one_address_lock_it_whatever_the_username(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3

    statuses = [
        login({"username": name, "password": "wrong"}, address="10.0.0.9").status_code
        for name in ("bob", "carol", "dave")
    ]
    locked = login(GOOD, address="10.0.0.9")
    elsewhere = login(GOOD, address="10.0.0.10")

    assert statuses == [400, 400, 429]
    assert locked.status_code == 429
    assert elsewhere.status_code == 200


def test_a_client_cannot_choose_its_address_with_x_forwarded_for(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3

    statuses = [
        login(
            {"username": name, "password": "wrong"},
            address="10.0.0.9",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        ).status_code
        for n, name in enumerate(("bob", "carol", "dave"))
    ]

    assert statuses == [400, 400, 429]
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"10.0.0.9"}


def request(remote: str = "10.0.0.9", **headers: str) -> Any:
    return RequestFactory().get("/", REMOTE_ADDR=remote, **headers)


def test_client_ip_is_remote_addr_unless_a_trusted_proxy_header_is_configured(settings):
    forwarded = {"HTTP_X_FORWARDED_FOR": "198.51.100.7, 203.0.113.5"}
    assert client_ip(request(**forwarded)) == "10.0.0.9"

    settings.ETCNET_TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    settings.ETCNET_TRUSTED_PROXY_COUNT = 1
    # Our proxy appended what it saw; the client could only prepend.
    assert client_ip(request(**forwarded)) == "203.0.113.5"
    settings.ETCNET_TRUSTED_PROXY_COUNT = 2
    assert client_ip(request(**forwarded)) == "198.51.100.7"
    settings.ETCNET_TRUSTED_PROXY_COUNT = 3  # fewer entries than proxies
    assert client_ip(request(**forwarded)) == "10.0.0.9"
    settings.ETCNET_TRUSTED_PROXY_COUNT = 1
    assert client_ip(request(HTTP_X_FORWARDED_FOR="not-an-address")) == "10.0.0.9"
    assert client_ip(request()) == "10.0.0.9"
    settings.ETCNET_TRUSTED_PROXY_HEADER = "X-Real-IP"
    assert client_ip(request(HTTP_X_REAL_IP="2001:db8::1")) == "2001:db8::1"
