"""Browser fixtures: one headless Chromium per session, a fresh context per test.

The pages are driven against pytest-django's `live_server`, which commits for
real (`transactional_db`). The root conftest's personas and helpers still apply.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from etcnet.core.roles import Role

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# would otherwise refuse to run in the fixtures and helpers of these tests.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Response,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("ETCNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HANDHELD = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Every wait (an action's element, a navigation, an `expect`) waits for what it
# needs, up to this long: generous, because a loaded machine (parallel workers,
# CI) can take seconds over one page; a test that passes never waits it out.
# ETCNET_BROWSER_TIMEOUT_MS sets another.
TIMEOUT_MS = int(os.environ.get("ETCNET_BROWSER_TIMEOUT_MS", "30000"))
# `expect(...)` has its own default (5 s), which the context's does not change.
expect.set_options(timeout=TIMEOUT_MS)


def submit(page: Page, selector: str = "main form button.primary") -> Response | None:
    """Clicks a submit button (or a link) and waits for the page it leads to, never
    for a fixed time; returns that page's response."""
    with page.expect_navigation() as navigation:
        page.locator(selector).first.click()
    return navigation.value


@pytest.fixture(autouse=True)
def _role_groups(transactional_db: Any) -> None:
    """The role groups come from a data migration, which a transactional test's
    flush removes; recreate them before the persona fixtures use them."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            # In CI a missing browser must fail the run, not pass it untested.
            pytest.fail(f"no Chromium at {CHROMIUM}: `make browser-deps` installs it")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def _context(browser: Browser, viewport: dict[str, int]) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def handheld(browser: Browser, live_server: Any) -> Iterator[Page]:
    """A page on a 390×844 handheld (the clerk's phone)."""
    with _context(browser, HANDHELD) as context:
        yield context.new_page()


@pytest.fixture
def desktop(browser: Browser, live_server: Any) -> Iterator[Page]:
    """A page on a 1280×800 desktop."""
    with _context(browser, DESKTOP) as context:
        yield context.new_page()


@pytest.fixture
def url(live_server: Any) -> Callable[[str], str]:
    def build(path: str) -> str:
        return live_server.url + path

    return build


@pytest.fixture
def log_in(url: Callable[[str], str]) -> Callable[..., None]:
    """Logs in through the login page, as a person would."""

    def run(page: Page, username: str, password: str = "pw-12345678") -> None:
        page.goto(url("/login/"))
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        with page.expect_navigation():
            page.click("main form button[type=submit].primary")
        assert "/login/" not in page.url, f"{username} could not log in"

    return run


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def snap(artifacts: Path, request: pytest.FixtureRequest) -> Callable[[Page, str], None]:
    """Saves a full-page screenshot named after the test and the step."""
    prefix = request.node.name.removeprefix("test_")

    def take(page: Page, step: str) -> None:
        path = str(artifacts / f"{prefix}--{step}.png")
        # Chromium now and then answers "Unable to capture screenshot" on a busy
        # machine (the compositor not ready for a full-page capture); the page
        # itself is checked by the test's assertions, so the picture is taken
        # again after a pause, then as the viewport only.
        for attempt in range(3):
            try:
                page.screenshot(path=path, full_page=attempt < 2)
                return
            except PlaywrightError as error:
                if "Unable to capture screenshot" not in str(error) or attempt == 2:
                    raise
                page.wait_for_timeout(500)

    return take
