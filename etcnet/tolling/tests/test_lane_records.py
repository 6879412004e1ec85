"""The lane's exit against the real center over HTTP: a weight typed wrong stops
it before the card is touched, an overweight truck is flagged and still pays by
class, and every record carries the list and tariff versions the lane decided
with and the purse it read before the debit; a record the center fails on
holds up no other.

``LaneTerminal`` driven directly, as the screens do, against the center's
fixtures (the terminal package's own tests may not import the center)."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from django.contrib.auth.hashers import check_password

from etcnet.cards import devices
from etcnet.lists import services as lists
from etcnet.network import services as network
from etcnet.network.models import TariffVersion
from etcnet.smartcard.transport import open_emulated
from etcnet.terminal.center import HttpCenter
from etcnet.terminal.lane import ExitRequest, LaneError, LaneTerminal
from etcnet.tolling import services
from etcnet.tolling.models import TollTransaction
from etcnet.tolling.tests.lanes import enter

pytestmark = pytest.mark.usefixtures("live_server", "role_groups")

TRUCK_2 = 12  # 2类货车: two axles, a limit of 18,000 kg (reference §5)


def exit_ready(terminals, card, *, vehicle_class=1, axles="", weight=""):
    """The card entered at 杨村 and is read at 小孙庄 lane 3 with a quote;
    the request's common fields."""
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    carl = exit_lane.sign_in("carl", "pw-12345678")
    shift = exit_lane.start_shift(carl, lane=3)
    transport = devices.open_unit(card)
    reading = exit_lane.read(transport)
    quote = exit_lane.quote(
        reading,
        plate=reading.plate,
        plate_color=reading.plate_color,
        vehicle_class=vehicle_class,
        axles=axles,
        total_weight_kg=weight,
    )
    common = {
        "collector": carl,
        "shift": shift,
        "plate": reading.plate,
        "plate_color": reading.plate_color,
        "station_hex": "12010301",
        "authorised_by": exit_lane.authorise("sam", "pw-12345678"),  # the minimum fee
    }
    return exit_lane, transport, reading, quote, common


@pytest.mark.parametrize("typed", ["-100", "abc", "1.5", "🚚"])
def test_a_bad_weight_stops_the_exit_before_the_card_is_touched(terminals, card, staff, typed):
    exit_lane, transport, reading, quote, common = exit_ready(terminals, card)

    with pytest.raises(LaneError) as refused:
        exit_lane.exit(
            ExitRequest(transport, reading, quote, axles="2", total_weight_kg=typed, **common)
        )
    with pytest.raises(LaneError) as refused_quote:
        exit_lane.quote(
            reading,
            plate=reading.plate,
            plate_color=reading.plate_color,
            vehicle_class=1,
            axles="2",
            total_weight_kg=typed,
        )

    for error in (refused.value, refused_quote.value):
        assert (error.code, error.field) == ("weight_not_whole", "total_weight_kg")
    assert devices.read_card(card).balance == 10_000  # nothing charged
    assert exit_lane.open_intents() == 0  # no purchase was begun
    assert exit_lane.outbox.recent() == []  # no record
    # The next good input still goes through.
    done = exit_lane.exit(
        ExitRequest(transport, reading, quote, axles="2", total_weight_kg="1800", **common)
    )
    assert devices.read_card(card).balance == 10_000 - done.payable_fen


def test_an_overweight_truck_is_flagged_and_pays_by_class(terminals, card, staff):
    exit_lane, transport, reading, quote, common = exit_ready(
        terminals, card, vehicle_class=TRUCK_2, axles="2", weight="20500"
    )
    assert (quote.axles, quote.total_weight_kg, quote.weight_limit_kg, quote.overweight) == (
        2,
        20_500,
        18_000,
        True,
    )
    assert quote.fee.vehicle_class == TRUCK_2  # the toll is the class's

    done = exit_lane.exit(
        ExitRequest(
            transport,
            reading,
            quote,
            axles="2",
            total_weight_kg="20500",
            reason="a truck on a car's card",
            **common,
        )
    )

    record = exit_lane.outbox.record(done.seq)
    assert {
        k: record[k] for k in ("axles", "total_weight_kg", "weight_limit_kg", "overweight")
    } == {
        "axles": 2,
        "total_weight_kg": 20_500,
        "weight_limit_kg": 18_000,
        "overweight": True,
    }
    assert (record["payable_fen"], record["amount_fen"]) == (quote.fee.payable_fen,) * 2


def test_records_carry_the_list_and_tariff_versions_and_the_purse_read(terminals, card, staff):
    entry_lane, exit_lane = terminals
    held = lists.publish(full=True).version.number
    for lane in terminals:
        lane.sync()  # the lanes take the list
    exit_lane, transport, reading, quote, common = exit_ready(terminals, card)
    tariff = TariffVersion.objects.get().number
    assert (reading.list_version, quote.tariff_version) == (held, tariff)

    done = exit_lane.exit(ExitRequest(transport, reading, quote, **common))

    exit_record = exit_lane.outbox.record(done.seq)
    (entry_seq, _, entry_record) = entry_lane.outbox.recent()[0]
    assert {
        k: exit_record[k] for k in ("list_version", "tariff_version", "balance_before_fen")
    } == {
        "list_version": held,
        "tariff_version": tariff,
        "balance_before_fen": 10_000,  # the purse before this exit's debit
    }
    assert {
        k: entry_record[k] for k in ("list_version", "tariff_version", "balance_before_fen")
    } == {
        "list_version": held,
        "tariff_version": None,  # an entry charges nothing
        "balance_before_fen": 10_000,
    }
    assert len(held) <= 12  # what the center takes
    assert len(tariff) <= 13
    # The center takes them (the terminal's side of the contract).
    for lane in terminals:
        lane.sync()
    assert exit_lane.outbox.state(done.seq)[0] == "accepted"
    assert entry_lane.outbox.state(entry_seq)[0] == "accepted"


def test_a_cash_exit_reads_no_purse(terminals, card, staff):
    exit_lane, transport, reading, quote, common = exit_ready(terminals, card)
    done = exit_lane.exit(
        ExitRequest(transport, reading, quote, payment_type=1, reason="driver pays cash", **common)
    )
    record = exit_lane.outbox.record(done.seq)
    assert (record["payment_type"], record["balance_before_fen"]) == (1, None)
    assert record["tariff_version"] == quote.tariff_version
    assert devices.read_card(card).balance == 10_000


class FailsOn(httpx.BaseTransport):
    """The network to the center, where an upload holding one of the ``poison``
    seqs gets a 500 (the center failing on that record) and the rest goes through."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.poison: set[int] = set()
        self.uploads: list[list[int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/uploads"):
            seqs = [int(r["seq"]) for r in json.loads(request.read())["records"]]
            self.uploads.append(seqs)
            if self.poison & set(seqs):
                return httpx.Response(500, text="Internal Server Error")
        return self.inner.handle_request(request)


def test_a_record_the_center_fails_on_does_not_hold_up_the_others(
    live_server,
    operator,
    tianjin,
    tmp_path,
    card,
    staff,
):
    network.add_lane("S1201048", number=1, direction="entry", lane_type="mixed", actor=operator)
    _, secret, psam = services.register_terminal(
        "EN-9", station_id="S1201048", lanes=[1], actor=operator
    )
    wire = FailsOn()
    lane = LaneTerminal(
        terminal_id="EN-9",
        store=tmp_path / "EN-9.sqlite3",
        center=HttpCenter(live_server.url, terminal_id="EN-9", secret=secret, transport=wire),
        psam=lambda: open_emulated(psam),
        verify_password=check_password,
    )
    lane.sync()
    for _ in range(3):  # three entries recorded while the center is away
        enter(lane, card)  # kept in the store, not uploaded yet
    wire.poison = {2}

    lane.sync()

    assert wire.uploads == [[1, 2, 3], [1, 2], [1], [2], [3]]
    assert [lane.outbox.state(seq)[0] for seq in (1, 2, 3)] == ["accepted", "waiting", "accepted"]
    assert sorted(TollTransaction.objects.values_list("seq", flat=True)) == [1, 3]
    assert lane.outbox.status().held_back == 1
    assert lane.outbox.status().last_error == ""

    wire.poison.clear()  # the center is fixed; past the record's backoff it goes, alone
    later = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)  # noqa: E731
    reports = lane.outbox.sync_all(lane.center, now=later)
    assert [r.answered for r in reports] == [{"accepted": 1}]
    assert sorted(TollTransaction.objects.values_list("seq", flat=True)) == [1, 2, 3]  # once each
    lane.close()
