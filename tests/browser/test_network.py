"""The operator's network pages in a real browser: import the demo bundle as a
zip, read the report, disable an exit lane, and compute a fee from the form."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from etcnet.network.models import Lane, TariffVersion
from tests.browser.test_issuance_wizard import Tour, submit

pytestmark = pytest.mark.browser

DEMO = Path(__file__).resolve().parents[2] / "etcnet" / "network" / "demo_bundle"


def test_operator_imports_a_bundle_toggles_a_lane_and_computes_a_fee(
    desktop: Page,
    operator: Any,
    log_in: Callable[..., None],
    url: Callable[[str], str],
    snap: Any,
    tmp_path: Path,
) -> None:
    archive = tmp_path / "tianjin.zip"
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zipped:
        for csv_file in sorted(DEMO.glob("*.csv")):
            zipped.write(csv_file, f"tianjin/{csv_file.name}")
    archive.write_bytes(data.getvalue())
    page = desktop
    tour = Tour(page, snap)
    log_in(page, "olga")

    page.goto(url("/network/import/"))
    page.set_input_files("#f-bundle", str(archive))
    page.fill("#f-effective", "2026-01-01T00:00")
    submit(page)
    expect(page.locator("[data-testid=import-status]")).to_have_text("已导入")
    tour.visit("01-report")
    assert TariffVersion.objects.get().number == "1220260101001"

    page.goto(url("/network/stations/S1201005/"))
    expect(page.locator("[data-testid=station-hex]")).to_have_text("12010301")
    page.fill("input[name=number]", "3")
    page.select_option("select[name=direction]", "exit")
    page.select_option("select[name=lane_type]", "etc")
    submit(page, "form[action$='/lanes/'] button")
    expect(page.locator("tr[data-lane='3']")).to_contain_text("已启用")
    submit(page, "tr[data-lane='3'] button")
    expect(page.locator("tr[data-lane='3']")).to_contain_text("已停用")
    assert Lane.objects.get(number=3).enabled is False
    tour.visit("02-station")

    page.goto(url("/network/fee/"))
    page.select_option("#f-entry", "S1201001")
    page.select_option("#f-exit", "S1201005")
    page.select_option("#f-vehicle_class", "1")
    submit(page)
    expect(page.locator("[data-testid=fee-method]")).to_have_attribute("data-method", "minimum")
    expect(page.locator("[data-testid=fee-fen]")).to_have_text("¥ 75.25")
    expect(page.locator("[data-testid=payable]")).to_have_text("¥ 71.49")
    tour.visit("03-fee")
    assert tour.overflow == {}
