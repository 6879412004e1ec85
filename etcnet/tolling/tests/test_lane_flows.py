"""The terminal's lane work (``etcnet.terminal.lane``) against the real center
over HTTP: an entry at one station and a closed-road exit at another, with the
station master's authorisation for the minimum fee; a card pulled out while the
DEBIT is under way; a status-listed card; the center unreachable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password

from etcnet.cards import devices
from etcnet.cards import services as cards
from etcnet.lists import services as lists
from etcnet.smartcard.transport import TransportError, open_emulated
from etcnet.terminal.center import HttpCenter
from etcnet.terminal.lane import ExitRequest, Grey, LaneError, LaneTerminal
from etcnet.tolling.models import TollTransaction
from etcnet.tolling.tests.lanes import enter, lane_terminal
from etcnet.tolling.tests.test_terminal_sync import closed_port

pytestmark = pytest.mark.usefixtures("live_server", "role_groups")


class PulledAfterDebit:
    """A card taken out of the reader just as the DEBIT reached it: the card
    debits, the answer never comes back."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def transmit(self, apdu: bytes) -> bytes:
        answer = self.inner.transmit(apdu)
        if apdu[:2] == b"\x80\x54":
            raise TransportError("card removed")
        return answer


def test_entry_then_closed_exit_with_the_station_master(terminals, card, staff):
    entry_lane, exit_lane = terminals
    # Nothing uploaded yet, but the downloads measured the clock (same machine: ~0).
    offset = exit_lane.outbox.status().clock_offset_ms
    assert offset is not None
    assert abs(offset) < 2_000
    enter(entry_lane, card)
    carl = exit_lane.sign_in("carl", "pw-12345678")
    shift = exit_lane.start_shift(carl, lane=3)
    transport = devices.open_unit(card)

    reading = exit_lane.read(transport)
    assert reading.entry is not None
    assert reading.entry.node_id == "S1201048"
    quote = exit_lane.quote(
        reading, plate=reading.plate, plate_color=reading.plate_color, vehicle_class=1
    )
    assert quote.fee.method.value == "minimum"
    assert quote.needs_authorisation
    assert (quote.station_name, quote.station_hex) == ("小孙庄", "12010301")
    common = {
        "collector": carl,
        "shift": shift,
        "plate": reading.plate,
        "plate_color": reading.plate_color,
    }

    with pytest.raises(LaneError) as refused:
        exit_lane.exit(ExitRequest(transport, reading, quote, station_hex="12010301", **common))
    assert refused.value.code == "authorisation_needed"
    with pytest.raises(LaneError) as wrong_hex:
        exit_lane.exit(ExitRequest(transport, reading, quote, station_hex="12010302", **common))
    assert wrong_hex.value.code == "hex_mismatch"
    with pytest.raises(LaneError):
        exit_lane.authorise("sam", "wrong")
    sam = exit_lane.authorise("sam", "pw-12345678")
    done = exit_lane.exit(
        ExitRequest(transport, reading, quote, station_hex="12010301", authorised_by=sam, **common)
    )

    assert done.balance_after == 10_000 - quote.fee.payable_fen
    assert exit_lane.outbox.status().waiting == 1
    exit_lane.sync()
    entry_lane.sync()
    txns = {t.direction: t for t in TollTransaction.objects.all()}
    assert txns["entry"].status == "accepted"
    assert txns["entry"].station.node_id == "S1201048"
    ex = txns["exit"]
    assert (ex.status, ex.tac_verified, ex.payable_fen, ex.authorised_by) == (
        "accepted",
        True,
        quote.fee.payable_fen,
        "sam",
    )
    assert (ex.entry_station, ex.special_case, ex.method) == ("S1201048", "minimum_fee", "minimum")
    card.refresh_from_db()
    assert card.shadow_balance_fen == 10_000 - quote.fee.payable_fen
    totals = exit_lane.end_shift(shift.shift_no)
    assert (totals.count, totals.total_fen, totals.by_payment) == (
        1,
        quote.fee.payable_fen,
        {22: (1, quote.fee.payable_fen)},
    )


def test_a_card_pulled_during_the_debit_is_settled_once_on_the_next_read(terminals, card, staff):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    carl = exit_lane.sign_in("carl", "pw-12345678")
    shift = exit_lane.start_shift(carl, lane=3)
    sam = exit_lane.authorise("sam", "pw-12345678")
    reading = exit_lane.read(devices.open_unit(card))
    quote = exit_lane.quote(
        reading, plate=reading.plate, plate_color=reading.plate_color, vehicle_class=1
    )

    with pytest.raises(Grey):
        exit_lane.exit(
            ExitRequest(
                PulledAfterDebit(devices.open_unit(card)),
                reading,
                quote,
                collector=carl,
                shift=shift,
                plate=reading.plate,
                plate_color=reading.plate_color,
                authorised_by=sam,
            )
        )
    assert exit_lane.outbox.status().waiting == 0  # nothing recorded yet ...
    assert exit_lane.open_intents() == 1  # ... but the purchase is remembered
    with pytest.raises(Grey):  # and no second purchase starts before it is settled
        exit_lane.exit(
            ExitRequest(
                devices.open_unit(card),
                reading,
                quote,
                collector=carl,
                shift=shift,
                plate=reading.plate,
                plate_color=reading.plate_color,
                authorised_by=sam,
            )
        )

    again = exit_lane.read(devices.open_unit(card))

    assert again.recovered == "completed"
    assert exit_lane.open_intents() == 0
    assert again.balance == 10_000 - quote.fee.payable_fen  # debited once
    exit_lane.sync()
    ex = TollTransaction.objects.get(direction="exit")
    assert (ex.status, ex.tac_verified, ex.special_case) == ("accepted", True, "minimum_fee")
    assert "interrupted purchase completed" in ex.special_reason
    card.refresh_from_db()
    assert card.shadow_balance_fen == 10_000 - quote.fee.payable_fen


def test_a_pull_before_the_debit_is_abandoned_and_charged_once_after(terminals, card, staff):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    carl = exit_lane.sign_in("carl", "pw-12345678")
    shift = exit_lane.start_shift(carl, lane=3)
    sam = exit_lane.authorise("sam", "pw-12345678")
    reading = exit_lane.read(devices.open_unit(card))
    quote = exit_lane.quote(
        reading, plate=reading.plate, plate_color=reading.plate_color, vehicle_class=1
    )

    class PulledBeforeDebit(PulledAfterDebit):
        def transmit(self, apdu: bytes) -> bytes:
            if apdu[:2] == b"\x80\x54":
                raise TransportError("card removed")
            return self.inner.transmit(apdu)

    common = {
        "collector": carl,
        "shift": shift,
        "plate": reading.plate,
        "plate_color": reading.plate_color,
        "authorised_by": sam,
    }
    with pytest.raises(Grey):
        exit_lane.exit(
            ExitRequest(PulledBeforeDebit(devices.open_unit(card)), reading, quote, **common)
        )
    again = exit_lane.read(devices.open_unit(card))
    assert again.recovered == "abandoned"
    assert again.balance == 10_000
    exit_lane.exit(ExitRequest(devices.open_unit(card), again, quote, **common))
    assert devices.read_card(card).balance == 10_000 - quote.fee.payable_fen


def test_a_listed_card_is_refused_and_the_vehicle_pays_cash(terminals, card, staff, clerk):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    cards.report_loss(card.card_no, actor=clerk)
    lists.publish()  # the next version carries the loss to the lanes
    exit_lane.sync()
    carl = exit_lane.sign_in("carl", "pw-12345678")
    shift = exit_lane.start_shift(carl, lane=3)
    sam = exit_lane.authorise("sam", "pw-12345678")
    reading = exit_lane.read(devices.open_unit(card))
    assert reading.list_types["card"] == (1,)
    assert reading.card_refused
    quote = exit_lane.quote(
        reading, plate=reading.plate, plate_color=reading.plate_color, vehicle_class=1
    )
    common = {
        "collector": carl,
        "shift": shift,
        "plate": reading.plate,
        "plate_color": reading.plate_color,
        "authorised_by": sam,
    }

    with pytest.raises(LaneError) as no_reason:
        exit_lane.exit(
            ExitRequest(devices.open_unit(card), reading, quote, payment_type=1, **common)
        )
    assert no_reason.value.code == "reason_needed"
    with pytest.raises(LaneError) as by_card:
        exit_lane.exit(
            ExitRequest(devices.open_unit(card), reading, quote, reason="挂失卡", **common)
        )
    assert by_card.value.code == "card_cannot_pay"
    done = exit_lane.exit(
        ExitRequest(
            devices.open_unit(card), reading, quote, payment_type=1, reason="挂失卡", **common
        )
    )

    assert done.payable_fen % 100 == 0
    assert done.payment_type == 1
    assert devices.read_card(card).balance == 10_000
    exit_lane.sync()
    ex = TollTransaction.objects.get(direction="exit")
    assert (ex.status, ex.payment_type, ex.special_case) == ("accepted", 1, "status_list")
    assert "挂失卡" in ex.special_reason
    assert "card [1]" in ex.special_reason


def test_offline_a_master_moved_away_no_longer_authorises_with_his_cached_roles(
    live_server, operator, tianjin, tmp_path, staff
):
    from etcnet.network.models import Node
    from etcnet.tolling.models import StationMembership

    lane = lane_terminal(live_server, operator, tmp_path, "HH-2", "S1201005", [3])
    assert not lane.authorise("sam", "pw-12345678").offline  # online: roles cached here
    StationMembership.objects.filter(user=staff["sam"]).update(
        station=Node.objects.get(node_id="S1201048")
    )
    lane.sync()  # the verifiers now name only 小孙庄's staff: sam is not among them
    lane.close()
    offline = LaneTerminal(
        terminal_id="HH-2",
        store=tmp_path / "HH-2.sqlite3",
        center=HttpCenter(f"http://127.0.0.1:{closed_port()}", terminal_id="HH-2", secret="x"),
        psam=lambda: open_emulated(tmp_path / "none.json"),
        verify_password=check_password,
    )

    with pytest.raises(LaneError) as refused:
        offline.authorise("sam", "pw-12345678")
    assert refused.value.code == "login_offline_refused"


def test_collectors_sign_in_offline_only_after_a_recent_online_sign_in(
    live_server, operator, tianjin, tmp_path, staff
):
    online = lane_terminal(live_server, operator, tmp_path, "HH-2", "S1201005", [3])
    online.sign_in("carl", "pw-12345678")
    online.close()
    offline = LaneTerminal(
        terminal_id="HH-2",
        store=tmp_path / "HH-2.sqlite3",
        center=HttpCenter(f"http://127.0.0.1:{closed_port()}", terminal_id="HH-2", secret="x"),
        psam=lambda: open_emulated(tmp_path / "none.json"),
        verify_password=check_password,
    )

    assert offline.sign_in("carl", "pw-12345678").offline
    with pytest.raises(LaneError) as wrong:
        offline.sign_in("carl", "nope")
    assert wrong.value.code == "login_offline_refused"
    # The station master never signed in here, but the downloaded verifiers hold them.
    assert offline.authorise("sam", "pw-12345678").offline
    later = LaneTerminal(
        terminal_id="HH-2",
        store=tmp_path / "HH-2.sqlite3",
        center=HttpCenter(f"http://127.0.0.1:{closed_port()}", terminal_id="HH-2", secret="x"),
        psam=lambda: open_emulated(tmp_path / "none.json"),
        verify_password=check_password,
        clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=8),
    )
    with pytest.raises(LaneError):
        later.sign_in("carl", "pw-12345678")
