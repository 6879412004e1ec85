"""The captcha's test mode for the plate tests: the answer "PASSED" is accepted
(django-simple-captcha reads the flag from its own settings module)."""

from __future__ import annotations

from typing import Any

import pytest
from captcha.conf import settings as captcha_settings


@pytest.fixture(autouse=True)
def _captcha_test_mode(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(captcha_settings, "CAPTCHA_TEST_MODE", True)
