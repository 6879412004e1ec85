"""One clock in Chromium (docs/clock.md): the simulated Beidou receiver says the
center's system clock is 10 minutes slow; the operator's panel (1280 px) shows
the offset, past its maximum; a handheld (390 px, its own process, its system
clock the machine's) measures the same 10 minutes against the center, shows
that card work is refused, writes no entry on the card, offers only cash and
mobile payments at the exit and records the cash with the offset it was
corrected by."""

from __future__ import annotations

import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from etcnet.cards import devices
from etcnet.cards.models import Binding
from etcnet.clock import selectors
from etcnet.clock.simulator import SntpSimulator
from etcnet.network import services as network
from etcnet.tolling.models import TollTransaction
from etcnet.tolling.tests.conftest import card, tianjin  # noqa: F401  (fixtures)
from tests.browser.test_terminal import (  # noqa: F401  (fixtures)
    _vault,
    approved,
    no_overflow,
    outbox_rows,
    read_and_photo,
    sign_in_on_lane,
    staff,
    stock,
    synced,
    terminal_ui,
)

pytestmark = pytest.mark.browser

TEN_MINUTES_MS = 600_000


@pytest.fixture
def receiver(settings: Any) -> Iterator[SntpSimulator]:
    selectors.forget()
    with SntpSimulator(offset_ms=TEN_MINUTES_MS) as sim:
        settings.ETCNET_TIME_SOURCE = sim.source
        yield sim
    selectors.forget()


def measured(base: str, timeout_s: float = 90) -> dict[str, Any]:
    """The terminal's clock once its sync loop has measured it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        clock: dict[str, Any] = httpx.get(base + "/status.json", timeout=10).json()["clock"]
        if clock["offset_ms"] is not None:
            return clock
        time.sleep(0.3)
    raise AssertionError("the terminal never measured its clock")


def test_the_operator_sees_the_offset_and_the_handheld_refuses_card_work(
    desktop,
    handheld,
    url,
    log_in,
    operator,
    card,  # noqa: F811
    staff,  # noqa: F811
    terminal_ui,  # noqa: F811
    receiver,
    tmp_path,
    snap,
):
    call_command("clock", "check", stdout=StringIO())

    # The center operator's panel on the transactions page: the offset, beyond 1000 ms.
    log_in(desktop, "olga")
    desktop.goto(url("/tolling/"))
    panel = desktop.get_by_test_id("clock-panel")
    expect(panel).to_have_attribute("data-state", "warn")
    offset = int(desktop.get_by_test_id("clock-status").get_attribute("data-offset-ms") or "0")
    assert abs(offset - TEN_MINUTES_MS) <= 50
    expect(panel).to_contain_text(receiver.source)
    expect(panel).to_contain_text(f"{offset:+d}")
    expect(desktop.get_by_test_id("clock-state")).to_have_class("status status-refused")
    snap(desktop, "operator-panel")
    desktop.goto(url("/clock/"))
    expect(desktop.get_by_test_id("readings").locator("tbody tr")).to_have_count(1)

    # A handheld at 轻纺城匝道北 (open road, 4.75 by card) measures the same 10 minutes.
    for number, direction in ((1, "entry"), (3, "exit")):
        network.add_lane(
            "S1201035", number=number, direction=direction, lane_type="mixed", actor=operator
        )
    base = terminal_ui("HH-2", "S1201035", [1, 3])
    clock = measured(base)
    assert abs(clock["offset_ms"] - TEN_MINUTES_MS) < 3_000
    assert (clock["max_ms"], clock["card_work_refused"]) == (300_000, True)
    page = handheld

    # On the entry lane: the bar says card work is refused, and no entry is written.
    sign_in_on_lane(page, base, "1")
    expect(page.get_by_test_id("clock-refusal")).to_have_attribute("data-code", "clock_off")
    page.click("[data-testid=entry]")
    page.select_option("[data-testid=card]", card.emulator_file)
    read_and_photo(page)
    page.click("[data-testid=commit]")
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "clock_off")
    expect(page.get_by_test_id("done")).to_have_count(0)
    snap(page, "entry-refused")
    no_overflow(page)
    assert devices.read_card(card).balance == 10_000
    assert outbox_rows(tmp_path / "HH-2") == 0

    # On the exit lane the card may not pay: only cash and mobile payments are offered.
    page.goto(base + "/")
    page.click("[data-testid=end-shift]")
    page.click("[data-testid=confirm-end]")
    expect(page.get_by_test_id("shift-ended")).to_be_visible()
    page.goto(base + "/")
    page.select_option("[data-testid=lane]", "3")
    page.click("form[action$='shift/start'] button")
    page.click("[data-testid=linkage]")
    page.select_option("[data-testid=card]", card.emulator_file)
    page.select_option("[data-testid=obu]", Binding.objects.get(card=card).obu.emulator_file)
    read_and_photo(page)
    page.click("[data-testid=quote]")
    expect(page.get_by_test_id("amount")).to_have_text("4.75")
    options = page.get_by_test_id("payment-type").locator("option")
    expect(options).to_have_count(3)
    assert [o.get_attribute("value") for o in options.all()] == ["1", "10", "11"]
    snap(page, "cash-only")
    no_overflow(page)
    page.click("[data-testid=commit]")
    expect(page.get_by_test_id("done")).to_be_visible()
    expect(page.get_by_test_id("paid")).to_have_text("5.00")
    synced(base)
    txn = TollTransaction.objects.get()
    assert (txn.payment_type, txn.payable_fen, txn.tac) == (1, 500, "")
    assert abs(txn.clock_offset_ms + TEN_MINUTES_MS) < 3_000  # the lane's clock, 10 min slow
    assert devices.read_card(card).balance == 10_000
