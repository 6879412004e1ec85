"""One clock (北斗时钟同步, docs/clock.md), through the real center over HTTP:
the simulated Beidou receiver on a free port → the center's `server_time` →
lanes whose own clocks are off record the center's time (and the offset they
corrected by); a lane off by more than the maximum does no card work, its cash
exit goes through and clearing holds it with code 16; a lane that never
compared its clock records nothing."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from io import StringIO
from typing import Any

import httpx
import pytest
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from etcnet.cards import devices
from etcnet.cards.tests.conftest import _vault, approved, stock  # noqa: F401  (fixtures)
from etcnet.clearing import run
from etcnet.clearing.models import ClearingEntry
from etcnet.clock import selectors, services
from etcnet.clock.simulator import SntpSimulator
from etcnet.core.roles import Role
from etcnet.network import services as network
from etcnet.smartcard import ops
from etcnet.smartcard.transport import open_emulated
from etcnet.terminal.center import HttpCenter
from etcnet.terminal.lane import ExitRequest, LaneError, LaneTerminal
from etcnet.terminal.lane._base import CLOCK_MAX_MS
from etcnet.tolling import services as tolling
from etcnet.tolling.models import TollTransaction
from etcnet.tolling.tests.conftest import (  # noqa: F401  (fixtures)
    card,
    role_groups,
    staff,
    station_staff,
    terminal,
    tianjin,
)
from etcnet.tolling.tests.lanes import enter, lane_terminal

LOCAL = dt.timezone(dt.timedelta(hours=8))
#: Close enough for "the same moment" between the test, the lane and the center.
NEAR = dt.timedelta(seconds=3)


def skewed(seconds: float) -> Any:
    """A terminal clock ``seconds`` off the machine's (positive: ahead)."""
    return lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


def near(moment: dt.datetime | str, expected: dt.datetime) -> bool:
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return abs(moment - expected) < NEAR


@pytest.fixture(autouse=True)
def _no_cached_offset() -> Iterator[None]:
    selectors.forget()
    yield
    selectors.forget()


@pytest.fixture
def receiver(settings: Any) -> Iterator[SntpSimulator]:
    """The simulated Beidou receiver on a free port, the center's time source; it
    agrees with this machine's clock until a test sets its offset."""
    with SntpSimulator() as sim:
        settings.ETCNET_TIME_SOURCE = sim.source
        yield sim


def clock_check() -> None:
    call_command("clock", "check", stdout=StringIO())


@pytest.mark.django_db
def test_server_time_is_the_system_clock_plus_the_last_good_offset(
    receiver,
    terminal,  # noqa: F811
):
    term, secret, _ = terminal
    api = Client(HTTP_AUTHORIZATION=f"Bearer {term.terminal_id}.{secret}")
    receiver.set_offset(90_000)

    def server_time() -> dt.timedelta:
        before = timezone.now()
        body = api.get("/api/v1/tolling/downloads/station").json()
        return dt.datetime.fromisoformat(body["server_time"]) - before

    assert abs(server_time()) < NEAR  # no reading yet: the system clock as it is
    clock_check()
    assert abs(server_time() - dt.timedelta(seconds=90)) < NEAR
    # A failed reading leaves the last good offset in force.
    services.record_reading(source=receiver.source, at=timezone.now(), error="no answer")
    assert abs(server_time() - dt.timedelta(seconds=90)) < NEAR
    upload = api.post(
        "/api/v1/tolling/uploads",
        {"upload_key": "k", "records": []},
        content_type="application/json",
    ).json()
    skew = dt.datetime.fromisoformat(upload["server_time"]) - timezone.now()
    assert abs(skew - dt.timedelta(seconds=90)) < NEAR


@pytest.mark.usefixtures("live_server", "role_groups")
def test_lanes_whose_clocks_are_off_record_the_centers_time(
    live_server,
    operator,
    tianjin,  # noqa: F811
    tmp_path,
    card,  # noqa: F811
    staff,  # noqa: F811
):
    # given an entry lane 90 s fast and an exit lane 45 s slow
    network.add_lane("S1201048", number=1, direction="entry", lane_type="mixed", actor=operator)
    entry_lane = lane_terminal(
        live_server, operator, tmp_path, "EN-1", "S1201048", [1], clock=skewed(90)
    )
    exit_lane = lane_terminal(
        live_server, operator, tmp_path, "HH-1", "S1201005", [3], clock=skewed(-45)
    )
    assert abs(entry_lane.lane_clock().offset_ms + 90_000) < 2_000  # type: ignore[operator]
    assert abs(exit_lane.lane_clock().offset_ms - 45_000) < 2_000  # type: ignore[operator]

    # when the car enters and leaves
    enter(entry_lane, card)
    entered = dt.datetime.now(dt.UTC)
    carl = exit_lane.sign_in("carl", "pw-12345678")
    shift = exit_lane.start_shift(carl, lane=3)
    transport = devices.open_unit(card)
    reading = exit_lane.read(transport)
    quote = exit_lane.quote(
        reading, plate=reading.plate, plate_color=reading.plate_color, vehicle_class=1
    )
    exit_lane.exit(
        ExitRequest(
            transport,
            reading,
            quote,
            collector=carl,
            shift=shift,
            plate=reading.plate,
            plate_color=reading.plate_color,
            station_hex="12010301",
            authorised_by=exit_lane.authorise("sam", "pw-12345678"),
        )
    )
    left = dt.datetime.now(dt.UTC)

    # then every time recorded is the center's, not the lane's own
    assert reading.entry is not None
    assert near(reading.entry.time, entered)  # written on the card as the center's time
    assert near(shift.started_utc, left)
    ((_, _, entry_record),) = entry_lane.outbox.recent()
    ((_, _, exit_record),) = exit_lane.outbox.recent()
    assert near(entry_record["exit_time"], entered)
    assert near(exit_record["exit_time"], left)
    assert near(exit_record["entry_time"], entered)
    # each record carries what its lane's clock was off by (terminal minus center)
    assert abs(entry_record["clock_offset_ms"] - 90_000) < 2_000
    assert abs(exit_record["clock_offset_ms"] + 45_000) < 2_000
    # the card's purse log dates the debit so too (the TAC signs that time)
    newest = ops.read_log(devices.open_unit(card))[0]
    assert near(newest.when.replace(tzinfo=LOCAL), left)
    entry_lane.sync()
    exit_lane.sync()
    txns = {t.direction: t for t in TollTransaction.objects.all()}
    assert {d: (t.status, t.tac_verified) for d, t in txns.items()} == {
        "entry": ("accepted", True),  # the TAC signed the corrected time
        "exit": ("accepted", True),
    }
    assert near(txns["exit"].exit_time, txns["exit"].received_at)
    assert abs(txns["exit"].clock_offset_ms + 45_000) < 2_000


@pytest.mark.usefixtures("live_server", "role_groups")
def test_the_chain_beidou_center_lane(
    live_server,
    operator,
    tianjin,  # noqa: F811
    tmp_path,
    card,  # noqa: F811
    staff,  # noqa: F811
    receiver,
):
    # given a receiver 2 minutes ahead of the center's system clock, read by the center
    receiver.set_offset(120_000)
    clock_check()
    # when a lane whose clock agrees with the center's system clock syncs and works
    network.add_lane("S1201048", number=1, direction="entry", lane_type="mixed", actor=operator)
    lane = lane_terminal(live_server, operator, tmp_path, "EN-1", "S1201048", [1])
    enter(lane, card)
    # then it measured the receiver's time through the center and recorded it
    assert abs(lane.lane_clock().offset_ms - 120_000) < 2_000  # type: ignore[operator]
    ((_, _, record),) = lane.outbox.recent()
    assert near(record["exit_time"], dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))
    assert abs(record["clock_offset_ms"] + 120_000) < 2_000


@pytest.mark.usefixtures("live_server", "role_groups")
def test_beyond_the_maximum_no_card_work_but_cash_and_clearing_holds_it_with_code_16(
    live_server,
    operator,
    tianjin,  # noqa: F811
    tmp_path,
    card,  # noqa: F811
):
    # given the open-road station 轻纺城匝道北 and a lane whose clock is 10 minutes slow
    network.add_lane("S1201035", number=3, direction="exit", lane_type="mixed", actor=operator)
    network.add_lane("S1201035", number=1, direction="entry", lane_type="mixed", actor=operator)
    station_staff("cora", Role.TOLL_COLLECTOR, "S1201035")
    lane = lane_terminal(
        live_server, operator, tmp_path, "HH-9", "S1201035", [1, 3], clock=skewed(-600)
    )
    clock = lane.lane_clock()
    assert clock.max_ms == CLOCK_MAX_MS == 300_000
    assert clock.beyond
    cora = lane.sign_in("cora", "pw-12345678")
    shift = lane.start_shift(cora, lane=3)
    transport = devices.open_unit(card)
    reading = lane.read(transport)
    quote = lane.quote(
        reading, plate=reading.plate, plate_color=reading.plate_color, vehicle_class=1
    )
    before = (devices.read_card(card).balance, len(ops.read_log(devices.open_unit(card))))
    request = ExitRequest(
        transport,
        reading,
        quote,
        collector=cora,
        shift=shift,
        plate=reading.plate,
        plate_color=reading.plate_color,
    )

    # when the card would pay: refused, naming the payment type
    with pytest.raises(LaneError) as refused:
        lane.exit(request)
    assert (refused.value.code, refused.value.field) == ("clock_off", "payment_type")
    assert refused.value.params["max_ms"] == 300_000
    assert abs(refused.value.params["offset_ms"] - 600_000) < 2_000
    # nothing changed: the purse, its log, the store, no purchase begun
    assert (devices.read_card(card).balance, len(ops.read_log(devices.open_unit(card)))) == before
    assert lane.outbox.recent() == []
    assert lane.open_intents() == 0

    # cash goes through, corrected, with the offset it was corrected by
    paid = lane.exit(replace(request, payment_type=1))
    assert (paid.payment_type, paid.payable_fen) == (1, 500)
    assert (devices.read_card(card).balance, len(ops.read_log(devices.open_unit(card)))) == before

    # and on the entry lane no entry is written on a card either
    with pytest.raises(LaneError) as no_entry:
        lane.entry(
            transport,
            reading,
            collector=cora,
            shift=lane.start_shift(cora, lane=1),
            plate=reading.plate,
            plate_color=reading.plate_color,
            vehicle_class=1,
        )
    assert (no_entry.value.code, no_entry.value.field) == ("clock_off", "")
    assert devices.read_card(card).balance == before[0]
    assert len(lane.outbox.recent()) == 1
    lane.sync()
    txn = TollTransaction.objects.get()
    assert (txn.status, txn.payment_type) == ("accepted", 1)
    assert near(txn.exit_time, txn.received_at)
    assert abs(txn.clock_offset_ms + 600_000) < 2_000

    # then clearing holds it: 车道对时错误
    run.run_day(timezone.localtime(txn.exit_time).date())
    entry = ClearingEntry.objects.get(transaction_id=txn.pk)
    assert (entry.state, entry.hold_code) == ("held", 16)


class WithoutServerTime(httpx.BaseTransport):
    """A center that does not say its time (one from before `server_time`)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        if response.headers.get("content-type", "").startswith("application/json"):
            data = json.loads(body)
            if isinstance(data, dict):
                data.pop("server_time", None)
            body = json.dumps(data).encode()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)


@pytest.mark.usefixtures("live_server", "role_groups")
def test_a_lane_that_never_compared_its_clock_records_nothing_until_it_does(
    live_server,
    operator,
    tianjin,  # noqa: F811
    tmp_path,
    card,  # noqa: F811
    staff,  # noqa: F811
):
    network.add_lane("S1201048", number=1, direction="entry", lane_type="mixed", actor=operator)
    _, secret, psam = tolling.register_terminal(
        "EN-7", station_id="S1201048", lanes=[1], actor=operator
    )

    def lane_with(transport: httpx.BaseTransport | None) -> LaneTerminal:
        return LaneTerminal(
            terminal_id="EN-7",
            store=tmp_path / "EN-7.sqlite3",
            center=HttpCenter(
                live_server.url, terminal_id="EN-7", secret=secret, transport=transport
            ),
            psam=lambda: open_emulated(psam),
            verify_password=check_password,
        )

    lane = lane_with(WithoutServerTime())
    lane.sync()
    assert lane.reference.get("station") is not None  # it has its station ...
    assert not lane.lane_clock().measured  # ... but no offset
    with pytest.raises(LaneError) as refused:
        enter(lane, card)
    assert refused.value.code == "clock_unknown"
    assert lane.outbox.recent() == []
    assert devices.read_card(card).balance == 10_000

    lane.close()
    lane = lane_with(None)
    lane.sync()
    enter(lane, card)
    ((_, _, record),) = lane.outbox.recent()
    assert abs(record["clock_offset_ms"]) < 2_000


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"ETCNET_TIME_SOURCE": "beidou:99999"}, "ETCNET_TIME_SOURCE: 'beidou:99999': the port"),
        ({"ETCNET_TIME_SOURCE_STALE_S": "0"}, "ETCNET_TIME_SOURCE_STALE_S >= 1"),
        ({"ETCNET_TIME_SOURCE_MAX_MS": "-1"}, "ETCNET_TIME_SOURCE_MAX_MS >= 0"),
    ],
)
def test_a_malformed_time_source_setting_stops_the_start_up(monkeypatch, env, says):
    module = importlib.import_module("etcnet.settings")

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(ImproperlyConfigured, match=re.escape(says)):
            importlib.reload(module)
    finally:
        monkeypatch.undo()
        importlib.reload(module)
