"""Shared fixtures: personas per role, isolated media, an in-memory SMS outbox."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from etcnet.core.sms import MemorySmsSender
from etcnet.issuance import samples, services
from etcnet.issuance.models import Application, Outlet, OutletMembership

# A loaded machine (parallel workers, CI) runs an example slower than Hypothesis'
# 200 ms deadline now and then: the properties are about answers, not speed.
hypothesis_settings.register_profile(
    "etcnet", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("etcnet")


@pytest.fixture(autouse=True)
def _isolated(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DATA_DIR = tmp_path / "data"  # clearing's extracted files, among others
    settings.ETCNET_LIST_DIR = tmp_path / "lists"
    # Emulated cards are files named by card number: one folder per test, so
    # parallel workers (pytest -n) never share one.
    settings.ETCNET_CARD_DIR = tmp_path / "cards"
    settings.ETCNET_LIST_KEY_FILE = tmp_path / "keys" / "status-list-ed25519.pem"
    settings.ETCNET_SMS_SENDER = "etcnet.core.sms.MemorySmsSender"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    MemorySmsSender.outbox.clear()
    yield
    MemorySmsSender.outbox.clear()


def make_user(
    username: str, *roles: str, outlet: Outlet | None = None, password: str = "pw-12345678"
) -> User:
    user = User.objects.create_user(username=username, password=password, first_name=username)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    if outlet is not None:
        OutletMembership.objects.create(user=user, outlet=outlet)
    return user


@pytest.fixture
def outlet(db: Any) -> Outlet:
    return Outlet.objects.create(code="610101001", name="西安城南网点")


@pytest.fixture
def clerk(outlet: Outlet) -> User:
    return make_user("alice", "issuance_clerk", outlet=outlet)


@pytest.fixture
def other_clerk(outlet: Outlet) -> User:
    return make_user("bob", "issuance_clerk", outlet=outlet)


@pytest.fixture
def operator(db: Any) -> User:
    return make_user("olga", "center_operator")


@pytest.fixture
def auditor(db: Any) -> User:
    return make_user("audrey", "auditor")


@pytest.fixture
def collector(db: Any) -> User:
    return make_user("carl", "toll_collector")


def last_code() -> str:
    """The code of the newest SMS in the outbox (the lone 6-digit run)."""
    return re.findall(r"(?<!\d)\d{6}(?!\d)", MemorySmsSender.outbox[-1].text)[-1]


def committed() -> Any:
    """Runs the on-commit callbacks (SMS, file clean-up) registered inside the
    block, as a real commit would; tests run inside a transaction."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def start(clerk: User, phone: str = "13800138000") -> Application:
    with committed():
        return services.start_application(phone=phone, actor=clerk)


def photo(kind: str = "photo", **kwargs: Any) -> SimpleUploadedFile:
    return SimpleUploadedFile(f"{kind}.jpg", samples.photo_bytes(kind, **kwargs), "image/jpeg")


ALL_PHOTOS = ["id_photo", "licence_main", "licence_supplement", "vehicle_head"]


def verified_application(clerk: User, phone: str = "13800138000") -> Application:
    application = start(clerk, phone)
    services.verify_phone(application.pk, code=last_code(), actor=clerk)
    return Application.objects.get(pk=application.pk)


def complete_application(
    clerk: User,
    *,
    customer: dict[str, Any] | None = None,
    vehicle: dict[str, Any] | None = None,
    photos: list[str] | None = None,
    phone: str = "13800138000",
) -> Application:
    """An application with every step saved, ready to submit."""
    application = verified_application(clerk, phone)
    services.save_customer(
        application.pk, data=customer or samples.personal_customer(), actor=clerk
    )
    services.save_vehicle(application.pk, data=vehicle or samples.passenger_car(), actor=clerk)
    kinds = ALL_PHOTOS if photos is None else photos
    if kinds:
        services.upload_documents(application.pk, files={k: photo(k) for k in kinds}, actor=clerk)
    return Application.objects.get(pk=application.pk)
