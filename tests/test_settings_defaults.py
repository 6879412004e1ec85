"""Defaults of the settings that guard personal data and trust, read from the
environment-driven settings module itself (not a test's override)."""

from __future__ import annotations

import importlib

import pytest

import etcnet.settings as module


def reloaded(monkeypatch: pytest.MonkeyPatch, **env: str) -> object:
    for name in ("ETCNET_LIST_IMPORT_UNSIGNED", "ETCNET_TRUSTED_PROXY_HEADER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return importlib.reload(module)


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    yield
    monkeypatch.undo()
    importlib.reload(module)


def test_unsigned_list_imports_are_off_unless_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert reloaded(monkeypatch).ETCNET_LIST_IMPORT_UNSIGNED is False  # type: ignore[attr-defined]
    on = reloaded(monkeypatch, ETCNET_LIST_IMPORT_UNSIGNED="true")
    assert on.ETCNET_LIST_IMPORT_UNSIGNED is True  # type: ignore[attr-defined]


def test_the_client_address_is_remote_addr_unless_a_proxy_header_is_trusted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = reloaded(monkeypatch)
    assert plain.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]  # type: ignore[attr-defined]
    # Axes asks core.middleware.client_ip, which reads the trusted header only
    # when one is configured (its behaviour: etcnet/core/tests/test_login.py).
    assert plain.AXES_CLIENT_IP_CALLABLE == "etcnet.core.middleware.client_ip"  # type: ignore[attr-defined]
    assert plain.ETCNET_TRUSTED_PROXY_HEADER == ""  # type: ignore[attr-defined]
    behind = reloaded(monkeypatch, ETCNET_TRUSTED_PROXY_HEADER="X-Forwarded-For")
    assert behind.ETCNET_TRUSTED_PROXY_HEADER == "X-Forwarded-For"  # type: ignore[attr-defined]
