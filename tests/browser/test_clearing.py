"""The clearing pages in a real browser at 1280 px: an operator opens the month's
days and a day (their charts drawn by the vendored Chart.js), follows a total
down to its transactions and on to one of them, and downloads a report as an
Excel file that openpyxl opens. Two days closed by the real run (the scenario
of etcnet/clearing/tests/test_reports.py)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from etcnet.clearing.tests.test_reports import build_days
from etcnet.tolling.models import Terminal
from etcnet.tolling.tests.test_partitions import lane_terminal  # noqa: F401  (a fixture)
from tests.browser.test_issuance_wizard import Tour, submit

pytestmark = pytest.mark.browser

# True when the chart's canvas has a drawn (not transparent) pixel.
DRAWN_JS = """(canvas) => {
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
  return false;
}"""


def drawn(page: Page, testid: str) -> bool:
    canvas = page.locator(f"canvas[data-testid={testid}]")
    expect(canvas).to_have_attribute("data-rendered", "1")
    return bool(canvas.evaluate(DRAWN_JS))


def test_an_operator_reads_the_days_drills_down_and_downloads_a_report(
    desktop: Page,
    operator: Any,
    lane_terminal: Terminal,  # noqa: F811  (the fixture imported above)
    log_in: Callable[..., None],
    url: Callable[[str], str],
    snap: Any,
    tmp_path: Path,
) -> None:
    made = build_days(lane_terminal)
    page = desktop
    tour = Tour(page, snap)
    log_in(page, "olga")

    submit(page, "nav.nav a[href='/clearing/']")
    page.goto(url("/clearing/?month=2026-11"))
    day_row = page.locator("[data-testid=table-days] tr[data-row='2026-11-10']")
    expect(day_row.locator("td[data-col=status]")).to_have_text("已关闭")
    expect(day_row.locator("td[data-col=payable]")).to_have_text("146.74")
    assert drawn(page, "chart-days")
    tour.visit("01-days")

    submit(page, "[data-testid=table-days] tr[data-row='2026-11-10'] td[data-col=date] a")
    expect(page.locator("[data-testid=day-status]")).to_have_text("已关闭")
    assert drawn(page, "chart-owners")
    owner = page.locator("[data-testid=table-report-owner] tr[data-row='甲路公司 610001']")
    expect(owner.locator("td[data-col=amount]")).to_have_text("58.50")
    tour.visit("02-day")

    submit(page, "[data-testid=table-totals] tr[data-row='已清分'] td[data-col=count] a")
    rows = page.locator("[data-testid=table-transactions] tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("[data-testid=drill-filters]")).to_contain_text("2026-11-10")
    expect(rows.first.locator("td[data-col=payable]")).to_have_text("71.49")
    expect(rows.first.locator("td[data-col=card]")).to_have_text("61010000000000000001")
    tour.visit("03-transactions")

    submit(page, "[data-testid=table-transactions] tbody tr >> nth=0 >> td[data-col=exit_time] a")
    assert page.url.endswith(f"/tolling/{made['own'].pk}/")
    expect(page.locator("[data-testid=txn-status]")).to_be_visible()

    page.goto(url("/clearing/reports/?period=2026-11"))
    page.select_option("[data-testid=by-select]", "owner")
    submit(page, "main form button.primary")
    assert drawn(page, "chart-report")
    assert drawn(page, "chart-days")
    tour.visit("04-report")
    with page.expect_download() as download:
        page.click("[data-testid=export-report-owner]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)

    assert saved.name == "report-owner-2026-11.xlsx"
    sheet = load_workbook(saved).active
    rows_read = {r[0]: r for r in sheet.iter_rows(min_row=4, values_only=True)}
    assert rows_read["丙路公司 610003"][1] == 3
    assert Decimal(str(rows_read["丙路公司 610003"][4])) == Decimal("58.73")
    assert Decimal(str(rows_read["合计"][4])) == Decimal("165.98")
    assert tour.overflow == {}


def test_an_auditor_sees_the_held_disputes_masked(
    desktop: Page,
    auditor: Any,
    lane_terminal: Terminal,  # noqa: F811
    log_in: Callable[..., None],
    url: Callable[[str], str],
    snap: Any,
) -> None:
    build_days(lane_terminal)
    page = desktop
    tour = Tour(page, snap)
    log_in(page, "audrey")

    page.goto(url("/clearing/disputes/"))
    codes = page.locator("[data-testid=table-held-codes] tbody tr")
    expect(codes).to_have_count(3)  # codes 1 and 6, and the total
    submit(page, "[data-testid=table-held-codes] tr[data-row='6 交易数据域错'] td[data-col=code] a")
    held = page.locator("[data-testid=table-held] tbody tr")
    expect(held).to_have_count(1)
    expect(held.first.locator("td[data-col=card]")).to_have_text("6101************0004")
    tour.visit("01-disputes")
    assert tour.overflow == {}
