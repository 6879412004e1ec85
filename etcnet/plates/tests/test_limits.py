"""The public site's image captcha and its limits per address and per number,
through the pages as a browser (or a script) posts them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from captcha.conf import settings as captcha_settings
from captcha.models import CaptchaStore
from django.test import Client

from conftest import committed
from etcnet.core.models import RateCounter
from etcnet.core.sms import MemorySmsSender
from etcnet.issuance import samples as issuance_samples
from etcnet.plates.models import PlateAccount, RegistrationCode
from etcnet.plates.tests.factories import MONDAY_10, PASSWORD, register

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


@pytest.fixture
def real_captcha(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captcha_settings, "CAPTCHA_TEST_MODE", False)


def form(n: int = 1, **overrides: str) -> dict[str, str]:
    return {
        "user_type": "new_vehicle_owner",
        "id_type": "101",
        "id_number": issuance_samples.resident_id(seq=f"{n:03d}"),
        "name": "张三",
        "phone": f"139{n:08d}",
        "city": "湛江市",
        "password": PASSWORD,
        "password_again": PASSWORD,
        "agreed": "on",
        "captcha_key": "k",
        "captcha": "PASSED",
        **overrides,
    }


def captcha_key(page: str) -> str:
    found = re.search(r'name="captcha_key" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


# --- The captcha --------------------------------------------------------------------------


def test_no_code_is_texted_without_the_image_code(client: Client, real_captcha: None) -> None:
    page = client.get("/plates/register/").content.decode()
    key = captcha_key(page)
    assert f'src="/captcha/image/{key}/"' in page

    missing = client.post("/plates/register/", {**form(), "action": "send_code", "captcha": ""})
    assert missing.status_code == 400
    assert 'data-field="captcha"' in missing.content.decode()
    assert "请输入图片中的字符" in missing.content.decode()
    wrong = client.post(
        "/plates/register/",
        {**form(), "action": "send_code", "captcha_key": key, "captcha": "nope"},
    )
    assert wrong.status_code == 400
    assert MemorySmsSender.outbox == []
    assert RegistrationCode.objects.count() == 0

    # The challenge was used up by the wrong try: its right answer fails now.
    fresh = captcha_key(wrong.content.decode())
    assert fresh != key
    answer = CaptchaStore.objects.get(hashkey=fresh).response
    with committed():
        sent = client.post(
            "/plates/register/",
            {**form(), "action": "send_code", "captcha_key": fresh, "captcha": answer.upper()},
        )
    assert sent.status_code == 200
    assert 'data-testid="code-sent"' in sent.content.decode()
    assert len(MemorySmsSender.outbox) == 1


def test_registering_needs_the_image_code_too(client: Client, real_captcha: None) -> None:
    with committed():
        key = captcha_key(client.get("/plates/register/").content.decode())
        answer = CaptchaStore.objects.get(hashkey=key).response
        client.post(
            "/plates/register/",
            {**form(), "action": "send_code", "captcha_key": key, "captcha": answer},
        )
    code = re.findall(r"\d{6}", MemorySmsSender.outbox[-1].text)[-1]
    refused = client.post(
        "/plates/register/", {**form(), "action": "register", "sms_code": code, "captcha": "x"}
    )
    assert refused.status_code == 400
    assert PlateAccount.objects.count() == 0
    key = captcha_key(refused.content.decode())
    answer = CaptchaStore.objects.get(hashkey=key).response
    done = client.post(
        "/plates/register/",
        {**form(), "action": "register", "sms_code": code, "captcha_key": key, "captcha": answer},
    )
    assert done["Location"] == "/plates/account/"


def test_the_captcha_image_is_drawn(client: Client) -> None:
    """Pillow draws it with the TrueType font django-simple-captcha ships."""
    key = captcha_key(client.get("/plates/register/").content.decode())
    image = client.get(f"/captcha/image/{key}/")
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"


# --- Limits -------------------------------------------------------------------------------


def test_registration_attempts_per_address_are_limited(
    client: Client, clock: Any, settings: Any
) -> None:
    settings.ETCNET_RATE_REGISTER_PER_IP = (2, 3600)
    for n in (1, 2):
        assert (
            client.post("/plates/register/", {**form(n), "action": "register"}).status_code == 400
        )

    refused = client.post("/plates/register/", {**form(3), "action": "register"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "3600"
    assert "操作过于频繁，请于 2026-11-23 11:00:00 后再试" in refused.content.decode()
    assert PlateAccount.objects.count() == 0

    # Another address is not held up; this one is again after the hour.
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.post("/plates/register/", {**form(4), "action": "register"}).status_code == 400
    clock.shift(3600)
    assert client.post("/plates/register/", {**form(5), "action": "register"}).status_code == 400


def test_behind_the_trusted_proxy_the_limits_count_the_forwarded_client(
    clock: Any, settings: Any
) -> None:
    """The limits count the address django-axes counts: behind our proxy the
    forwarded client, each of its own; a client's own prepended entry changes
    nothing."""
    settings.ETCNET_TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    settings.ETCNET_TRUSTED_PROXY_COUNT = 1
    settings.ETCNET_RATE_REGISTER_PER_IP = (1, 3600)
    proxy = "10.0.0.1"

    def post(n: int, forwarded: str) -> int:
        return (
            Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded)
            .post("/plates/register/", {**form(n), "action": "register"})
            .status_code
        )

    assert post(1, "203.0.113.5") == 400
    assert post(2, "203.0.113.6") == 400  # another client behind the same proxy
    assert post(3, "198.51.100.1, 203.0.113.5") == 429  # a spoofed first entry


def test_registration_attempts_per_mobile_are_limited(
    client: Client, clock: Any, settings: Any
) -> None:
    settings.ETCNET_RATE_REGISTER_PER_MOBILE = (2, 3600)
    for ip in ("10.0.0.1", "10.0.0.2"):
        assert Client(REMOTE_ADDR=ip).post("/plates/register/", form()).status_code == 400
    refused = Client(REMOTE_ADDR="10.0.0.3").post("/plates/register/", form())
    assert refused.status_code == 429


def test_sms_codes_per_address_are_limited(client: Client, clock: Any, settings: Any) -> None:
    settings.ETCNET_RATE_SMS_PER_IP = (2, 3600)
    with committed():
        for n in (1, 2):
            sent = client.post("/plates/register/", {**form(n), "action": "send_code"})
            assert sent.status_code == 200
    refused = client.post("/plates/register/", {**form(3), "action": "send_code"})
    assert refused.status_code == 429
    assert len(MemorySmsSender.outbox) == 2
    assert RegistrationCode.objects.count() == 2


def test_logins_per_address_and_per_name_are_limited(
    client: Client, clock: Any, settings: Any
) -> None:
    settings.ETCNET_RATE_LOGIN_PER_USER = (3, 600)
    settings.ETCNET_RATE_LOGIN_PER_IP = (5, 600)
    # The plates' own limits under test; django-axes' lockout (per name across
    # addresses, per address: etcnet/core/tests/test_login.py) stays out of it.
    settings.AXES_FAILURE_LIMIT = 50
    account = register()
    for _ in range(3):
        wrong = client.post("/plates/login/", {"username": account.phone, "password": "x"})
        assert wrong.status_code == 200
    # Even the right password waits: the name's tries are spent.
    refused = Client(REMOTE_ADDR="10.0.0.7").post(
        "/plates/login/", {"username": account.phone, "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert 'data-code="rate_limited"' in refused.content.decode()
    assert "2026-11-23 10:10:00" in refused.content.decode()
    # The staff login page is no way round: the account's backend refuses there too.
    staff_page = Client(REMOTE_ADDR="10.0.0.8").post(
        "/login/", {"username": account.phone, "password": PASSWORD}
    )
    assert staff_page.status_code == 200
    assert "_auth_user_id" not in staff_page.wsgi_request.session
    # The address: two more tries of other names, then it is refused too.
    for name in ("13900000009", "13900000008"):
        client.post("/plates/login/", {"username": name, "password": "x"})
    assert client.post("/plates/login/", {"username": "x", "password": "x"}).status_code == 429

    clock.shift(600)
    done = client.post("/plates/login/", {"username": account.phone, "password": PASSWORD})
    assert done["Location"] == "/plates/account/"
    assert RateCounter.objects.filter(scope="plates.login.user").count() >= 1
