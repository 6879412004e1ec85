"""The collector's terminal in a 390×844 browser: seed 002 (ETC single card,
station hex, station master's minimum-fee authorisation) and seed 001 (ETC
linkage at an open-road station), then a status-listed card refused and paid
in cash; a weight typed wrong refused on the handheld before any charge. The
terminal runs as its own process against the live center."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from PIL import Image
from playwright.sync_api import Page, expect

from conftest import make_user
from etcnet.cards import devices
from etcnet.cards import services as cards
from etcnet.cards.models import Binding
from etcnet.cards.tests.conftest import _vault, approved, stock  # noqa: F401  (fixtures)
from etcnet.core.roles import Role
from etcnet.lists import services as lists
from etcnet.network import services as network
from etcnet.tolling import services
from etcnet.tolling.models import TollTransaction
from etcnet.tolling.tests.conftest import card, station_staff, tianjin  # noqa: F401  (fixtures)
from etcnet.tolling.tests.lanes import enter, lane_terminal
from tests.terminal_process import TerminalPages, free_port, start_terminal, stop


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 60, 60)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def staff(transactional_db: Any, tianjin: None) -> None:  # noqa: F811
    make_user("carl", Role.TOLL_COLLECTOR)
    station_staff("sam", Role.STATION_MASTER, "S1201005")  # the master of 小孙庄


@pytest.fixture
def terminal_ui(live_server, operator, tianjin, tmp_path) -> Iterator[Callable[..., str]]:  # noqa: F811
    started = []

    def start(terminal_id: str, station: str, lanes: list[int]) -> str:
        _, secret, _ = services.register_terminal(
            terminal_id, station_id=station, lanes=lanes, actor=operator
        )
        port = free_port()
        started.append(
            start_terminal(
                center=live_server.url,
                terminal_id=terminal_id,
                secret=secret,
                cards=settings.ETCNET_CARD_DIR,
                data=tmp_path / terminal_id,
                port=port,
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        stop(process)


def enter_at_yangcun(live_server: Any, operator: Any, tmp_path: Any, card_unit: Any) -> None:
    """The car entered at 杨村 (an entry lane worked in-process)."""
    network.add_lane("S1201048", number=1, direction="entry", lane_type="mixed", actor=operator)
    lane = lane_terminal(live_server, operator, tmp_path, "EN-1", "S1201048", [1])
    enter(lane, card_unit)
    lane.sync()
    lane.close()


def sign_in_on_lane(page: Page, base: str, lane: str) -> None:
    page.goto(base + "/")
    page.fill("input[name=username]", "carl")
    page.fill("input[name=password]", "pw-12345678")
    page.click("button[type=submit].primary")
    page.select_option("[data-testid=lane]", lane)
    page.click("form[action$='shift/start'] button")


def read_and_photo(page: Page) -> None:
    page.click("[data-testid=read]")
    expect(page.get_by_test_id("card-info")).to_be_visible()
    page.set_input_files(
        "[data-testid=photo]",
        files=[{"name": "car.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}],
    )
    page.click("[data-testid=submit-photo]")
    expect(page.get_by_test_id("photo-ok")).to_be_visible()


def single_card_read(page: Page, base: str, unit: Any) -> None:
    """Signed in on exit lane 3, the single-card flow has read the card and its photo."""
    sign_in_on_lane(page, base, "3")
    page.click("[data-testid=single]")
    page.select_option("[data-testid=card]", unit.emulator_file)
    read_and_photo(page)


def no_overflow(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide"


def synced(base: str) -> None:
    """Waits until the terminal has uploaded everything (as long as a loaded
    machine needs, no longer)."""
    TerminalPages(int(base.rsplit(":", 1)[1])).wait_synced()


def test_seed_002_single_card_with_station_hex_and_station_master(
    handheld,
    live_server,
    operator,
    tmp_path,
    card,  # noqa: F811
    staff,
    terminal_ui,
    snap,
):
    enter_at_yangcun(live_server, operator, tmp_path, card)
    base = terminal_ui("HH-1", "S1201005", [3])
    page = handheld
    single_card_read(page, base, card)
    expect(page.get_by_test_id("entry-info")).to_contain_text("杨村")
    page.click("[data-testid=weigh]")
    page.click("[data-testid=quote]")
    expect(page.get_by_test_id("station-name")).to_have_text("小孙庄")
    expect(page.get_by_test_id("station-hex")).to_have_text("12010301")
    amount = page.get_by_test_id("amount").inner_text()
    snap(page, "fee")
    no_overflow(page)

    page.fill("[data-testid=hex-confirm]", "12010301")
    page.click("[data-testid=commit]")  # no station master yet
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "authorisation_needed")
    page.fill("[data-testid=master-username]", "sam")
    page.fill("[data-testid=master-password]", "wrong")
    page.click("[data-testid=authorise]")
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "login_refused")
    page.fill("[data-testid=master-username]", "sam")
    page.fill("[data-testid=master-password]", "pw-12345678")
    page.click("[data-testid=authorise]")
    expect(page.get_by_test_id("authorised")).to_be_visible()
    page.fill("[data-testid=hex-confirm]", "12010302")
    page.click("[data-testid=commit]")
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "hex_mismatch")
    page.fill("[data-testid=hex-confirm]", "12010301")
    page.click("[data-testid=commit]")
    expect(page.get_by_test_id("done")).to_be_visible()
    expect(page.get_by_test_id("paid")).to_have_text(amount)
    snap(page, "saved")
    no_overflow(page)

    synced(base)
    txn = TollTransaction.objects.get(direction="exit")
    assert (txn.status, txn.tac_verified, txn.authorised_by, txn.method) == (
        "accepted",
        True,
        "sam",
        "minimum",
    )
    assert txn.payable_fen == round(float(amount) * 100)
    assert txn.photo


def test_seed_001_linkage_then_a_listed_card_is_refused_and_pays_cash(
    handheld,
    operator,
    card,  # noqa: F811
    clerk,
    staff,
    terminal_ui,
    snap,
):
    network.add_lane("S1201035", number=3, direction="exit", lane_type="mixed", actor=operator)
    base = terminal_ui("HH-2", "S1201035", [3])
    obu_file = Binding.objects.get(card=card).obu.emulator_file
    page = handheld
    sign_in_on_lane(page, base, "3")
    page.click("[data-testid=linkage]")
    page.select_option("[data-testid=card]", card.emulator_file)
    page.select_option("[data-testid=obu]", obu_file)
    read_and_photo(page)
    page.click("[data-testid=quote]")
    expect(page.get_by_test_id("amount")).to_have_text("4.75")
    page.click("[data-testid=commit]")
    expect(page.get_by_test_id("done")).to_be_visible()
    expect(page.get_by_test_id("balance-after")).to_have_text("95.25")
    expect(page.get_by_test_id("obu-written")).to_be_visible()
    no_overflow(page)

    cards.report_loss(card.card_no, actor=clerk)
    version = lists.publish().version.number  # the next version carries the loss to the lanes
    page.goto(base + "/")
    page.click("form[action$='sync'] button")
    expect(page.get_by_test_id("list-version")).to_contain_text(f"状态名单 {version}")
    page.click("[data-testid=linkage]")
    page.select_option("[data-testid=card]", card.emulator_file)
    page.select_option("[data-testid=obu]", obu_file)
    read_and_photo(page)
    expect(page.get_by_test_id("problem").first).to_have_attribute("data-code", "status_list")
    page.click("[data-testid=quote]")
    page.select_option("[data-testid=payment-type]", "1")
    page.click("[data-testid=commit]")
    expect(page.get_by_test_id("error")).to_have_attribute("data-code", "reason_needed")
    page.fill("[data-testid=reason]", "挂失卡，收现金")
    page.click("[data-testid=commit]")
    expect(page.get_by_test_id("done")).to_be_visible()
    expect(page.get_by_test_id("paid")).to_have_text("5.00")
    snap(page, "listed-card-cash")
    no_overflow(page)

    synced(base)
    listed = TollTransaction.objects.get(special_case="status_list")
    assert (listed.payment_type, listed.payable_fen, listed.tac) == (1, 500, "")
    assert devices.read_card(card).balance == 10_000 - 475


def outbox_rows(data: Path) -> int:
    """The records in a terminal's store (read-only, beside the running process)."""
    with closing(sqlite3.connect(f"file:{data / 'terminal.sqlite3'}?mode=ro", uri=True)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
    return int(count)


def test_a_bad_weight_is_refused_on_the_handheld_before_any_charge(
    handheld,
    live_server,
    operator,
    tmp_path,
    card,  # noqa: F811
    staff,
    terminal_ui,
    snap,
):
    enter_at_yangcun(live_server, operator, tmp_path, card)
    base = terminal_ui("HH-3", "S1201005", [3])
    page = handheld
    single_card_read(page, base, card)
    page.select_option("[data-testid=vehicle-class]", "12")  # a 2-axle truck on this card
    page.click("[data-testid=weigh]")
    page.fill("[data-testid=axles]", "2")

    # 算费 with a weight typed wrong: the field says what is wrong, no fee is shown.
    for typed in ("-100", "abc"):
        page.fill("[data-testid=total-weight]", typed)
        page.click("[data-testid=quote]")
        error = page.get_by_test_id("total-weight-error")
        expect(error).to_have_attribute("data-code", "weight_not_whole")
        expect(error).to_contain_text(f"车货总重须为整千克数，例如 18000，不能是“{typed}”")
        expect(page.get_by_test_id("total-weight")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_test_id("fee")).to_have_count(0)
        no_overflow(page)
    snap(page, "bad-weight")

    # A good weight: the fee, and the truck shown over its limit (it still pays).
    page.fill("[data-testid=total-weight]", "20500")
    page.click("[data-testid=quote]")
    expect(page.get_by_test_id("weight-limit")).to_have_text("18000")
    expect(page.get_by_test_id("overweight")).to_contain_text("超限")
    amount = page.get_by_test_id("amount").inner_text()
    snap(page, "overweight")
    page.fill("[data-testid=hex-confirm]", "12010301")
    page.fill("[data-testid=reason]", "货车持客车卡")
    page.fill("[data-testid=master-username]", "sam")
    page.fill("[data-testid=master-password]", "pw-12345678")
    page.click("[data-testid=authorise]")
    expect(page.get_by_test_id("authorised")).to_be_visible()

    # 数据保存 with the weight changed to something wrong after the fee was shown:
    # refused before the card, the fee gone until it is calculated again.
    for typed in ("1.5", "🚚"):
        page.fill("[data-testid=total-weight]", typed)
        page.click("[data-testid=commit]")
        expect(page.get_by_test_id("total-weight-error")).to_have_attribute(
            "data-code", "weight_not_whole"
        )
        expect(page.get_by_test_id("error")).to_contain_text(typed)
        expect(page.get_by_test_id("done")).to_have_count(0)
        expect(page.get_by_test_id("fee")).to_have_count(0)
        assert devices.read_card(card).balance == 10_000  # nothing charged
        assert outbox_rows(tmp_path / "HH-3") == 0  # nothing recorded
        expect(page.get_by_test_id("balance")).to_have_text("100.00")
        page.fill("[data-testid=total-weight]", "20500")
        page.click("[data-testid=quote]")  # the answers given (hex, reason, master) are kept
        expect(page.get_by_test_id("authorised")).to_be_visible()

    # The next good input goes through, the truck flagged on its record.
    page.click("[data-testid=commit]")
    expect(page.get_by_test_id("done")).to_be_visible()
    expect(page.get_by_test_id("paid")).to_have_text(amount)
    synced(base)
    txn = TollTransaction.objects.get(direction="exit")
    assert (txn.status, txn.axles, txn.total_weight_kg, txn.weight_limit_kg, txn.overweight) == (
        "accepted",
        2,
        20_500,
        18_000,
        True,
    )
    assert devices.read_card(card).balance == 10_000 - txn.amount_fen
