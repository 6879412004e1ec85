"""The terminal's outbox and reference data against the real center over HTTP: purchases made with
the terminal's PSAM reach the center once, through a center outage and through
an answer lost on the way back."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import httpx
import pytest
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import Group

from etcnet.cards import services as cards
from etcnet.core.roles import Role
from etcnet.lists import services as lists
from etcnet.smartcard.transport import open_emulated
from etcnet.terminal.center import HttpCenter
from etcnet.terminal.lane import LaneTerminal
from etcnet.terminal.outbox import Outbox
from etcnet.terminal.reference import DOCUMENTS
from etcnet.tolling.models import TollTransaction
from etcnet.tolling.tests.test_ingest import purchase, record


@pytest.fixture(autouse=True)
def _role_groups(transactional_db: Any) -> None:
    """A transactional test's flush removes the migration-made role groups."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


class DropAnswers(httpx.BaseTransport):
    """The network between terminal and center: requests arrive, and while
    ``drop`` is set the answer is lost on the way back."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.drop = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.drop:
            response.read()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def outbox(tmp_path: Any) -> Outbox:
    return Outbox(tmp_path / "terminal.sqlite3", terminal_id="HH-0001")


def commit_purchase(outbox: Outbox, terminal: Any, card: Any, amount: int) -> int:
    result = purchase(terminal, card, amount)
    return outbox.commit(lambda seq: record(result, seq=seq), now=utc_now())


def test_purchases_wait_out_a_center_outage_and_land_once(live_server, terminal, card, outbox):
    term, secret, _ = terminal
    commit_purchase(outbox, terminal, card, 7149)
    commit_purchase(outbox, terminal, card, 500)

    nowhere = f"http://127.0.0.1:{closed_port()}"
    down = HttpCenter(nowhere, terminal_id=term.terminal_id, secret=secret)
    report = outbox.sync_once(down, now=utc_now)
    assert "center unreachable" in report.error
    assert outbox.status().waiting == 2
    assert TollTransaction.objects.count() == 0

    later = lambda: utc_now() + dt.timedelta(minutes=10)  # noqa: E731  (past the backoff)
    up = HttpCenter(live_server.url, terminal_id=term.terminal_id, secret=secret)
    report = outbox.sync_once(up, now=later)
    assert report.answered == {"accepted": 2}
    # The terminal's clock ("later") runs ten minutes ahead of the center's.
    assert report.clock_offset_ms is not None
    assert abs(report.clock_offset_ms + 600_000) < 5_000
    assert TollTransaction.objects.filter(tac_verified=True).count() == 2
    assert outbox.status().waiting == 0


def test_an_answer_lost_on_the_way_back_is_recovered_not_doubled(
    live_server, terminal, card, outbox
):
    term, secret, _ = terminal
    network = DropAnswers()
    center = HttpCenter(
        live_server.url, terminal_id=term.terminal_id, secret=secret, transport=network
    )
    seq = commit_purchase(outbox, terminal, card, 7149)
    network.drop = True
    assert "answer lost" in outbox.sync_once(center, now=utc_now).error
    assert TollTransaction.objects.count() == 1  # the center has it; the terminal does not know
    assert outbox.state(seq)[0] == "waiting"

    network.drop = False
    later = lambda: utc_now() + dt.timedelta(minutes=10)  # noqa: E731
    report = outbox.sync_once(center, now=later)
    assert report.answered == {"accepted": 1}  # the first answer, replayed
    assert TollTransaction.objects.count() == 1
    assert outbox.state(seq)[1]["id"] == TollTransaction.objects.get().pk


def test_a_terminal_with_a_wrong_secret_uploads_nothing(live_server, terminal, card, outbox):
    term, _, _ = terminal
    commit_purchase(outbox, terminal, card, 7149)
    center = HttpCenter(live_server.url, terminal_id=term.terminal_id, secret="wrong")
    report = outbox.sync_once(center, now=utc_now)
    assert "401" in report.error
    assert outbox.status().waiting == 1
    assert TollTransaction.objects.count() == 0


def test_the_terminal_downloads_its_reference_data_and_its_list_and_works_offline(
    live_server, terminal, card, clerk, tmp_path
):
    term, secret, psam = terminal
    cards.report_loss(card.card_no, reason="lost at the station", actor=clerk)
    lists.publish(full=True)

    def lane_terminal(url: str, **kwargs: Any) -> LaneTerminal:
        return LaneTerminal(
            terminal_id=term.terminal_id,
            store=tmp_path / "terminal.sqlite3",
            center=HttpCenter(url, terminal_id=term.terminal_id, secret=secret),
            psam=lambda: open_emulated(psam),
            verify_password=check_password,
            **kwargs,
        )

    lane = lane_terminal(live_server.url)
    result = lane.sync()
    assert result["refresh"].failed == {}
    assert set(result["refresh"].updated) == set(DOCUMENTS)
    assert result["lists"]["error"] == ""
    assert lane.status_list.lookup("card", card.card_no) == (1,)  # 卡挂失
    station = lane.reference.get("station")
    assert station is not None
    assert [lane["number"] for lane in station["lanes"] if lane["allowed"]] == [3]

    # The center goes away: the terminal keeps what it has and says how old it is.
    later = utc_now() + dt.timedelta(hours=2)
    offline = lane_terminal(f"http://127.0.0.1:{closed_port()}", clock=lambda: later)
    result = offline.sync()
    assert result["refresh"].updated == ()
    assert set(result["refresh"].failed) == set(DOCUMENTS)
    assert "unreachable" in result["lists"]["error"]
    assert offline.status_list.lookup("card", card.card_no) == (1,)
    age = offline.status_list.age(later)
    assert age is not None
    assert age >= dt.timedelta(hours=2)
