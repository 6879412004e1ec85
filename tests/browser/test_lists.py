"""The operator's status-list pages in a real browser: a lost card found by its
plate with the versions that carried it; a national file imported and a bad one
refused with the reason; publishing from the page. Handheld and desktop widths."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from etcnet.cards import services as cards
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS, _vault, approved, stock  # noqa: F401
from etcnet.lists import services as lists
from etcnet.lists.models import ListEntry, ListVersion
from etcnet.lists.versionfile import Line, Manifest, write_version
from etcnet.tolling.tests.conftest import card  # noqa: F401  (fixture)
from tests.browser.conftest import submit
from tests.browser.test_issuance_wizard import Tour

pytestmark = pytest.mark.browser


def national_file(folder: Path) -> Path:
    out = io.BytesIO()
    write_version(
        out,
        Manifest(
            kind="full",
            version="202611210800",
            previous=None,
            publisher="000000",
            created_at="2026-11-21T00:00:00+00:00",
            issuers=("1101",),
        ),
        [Line("card", "11010000000000000001", 5, reason="合作机构黑名单")],
        signer=None,
    )
    path = folder / "BLACK_ALL_000000_202611210800.zip"
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.parametrize("viewport", ["handheld", "desktop"])
def test_operator_finds_a_listed_card_imports_a_file_and_publishes(
    request: pytest.FixtureRequest,
    viewport: str,
    operator: Any,
    clerk: Any,
    card: Any,  # noqa: F811
    log_in: Callable[..., None],
    url: Callable[[str], str],
    snap: Any,
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.ETCNET_LIST_IMPORT_UNSIGNED = True  # the file imported below is unsigned
    page: Page = request.getfixturevalue(viewport)
    tour = Tour(page, snap)
    cards.report_loss(card.card_no, reason="车主挂失", actor=clerk)
    lists.publish()
    plate = card.bindings.get().vehicle.plate
    log_in(page, "olga")

    page.goto(url("/lists/"))
    page.fill("[data-testid=q]", plate)
    submit(page, "form.filters button")
    history = page.locator("[data-testid=history]").first
    expect(history).to_contain_text(CARD_NOS[0])
    expect(history.locator("[data-testid=on-list]")).to_contain_text("1 卡挂失")
    expect(history).to_contain_text("车主挂失")
    expect(history).to_contain_text(ListVersion.objects.get().number)
    expect(page.locator("[data-testid=history]").nth(1)).to_contain_text(OBU_NOS[0])
    tour.visit(f"{viewport}-01-history")

    page.goto(url("/lists/import/"))
    page.set_input_files("#f-file", str(national_file(tmp_path)))
    submit(page)
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-result", "applied")
    tour.visit(f"{viewport}-02-imported")

    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"this is not a zip")
    page.goto(url("/lists/import/"))
    page.set_input_files("#f-file", str(bad))
    submit(page)
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-result", "refused")
    expect(page.locator("[data-testid=report]")).to_contain_text("zip")
    tour.visit(f"{viewport}-03-refused")
    assert ListEntry.objects.filter(source="import:000000").count() == 1

    page.goto(url("/lists/"))
    submit(page, "[data-testid=publish]")
    latest = ListVersion.objects.order_by("-number").first()
    assert latest is not None
    assert latest.full_file
    expect(page.locator("[data-testid=versions]")).to_contain_text(latest.number)
    tour.visit(f"{viewport}-04-versions")
    assert tour.overflow == {}
