"""The special cases a collector resolves at the exit (issue 5 §2), each kept
with its reason for audit, and the OBU's fee file (EF04) written at entry and
exit — all through the terminal's lane work against the real center over HTTP."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from etcnet.cards import devices
from etcnet.cards.models import CardUnit, ObuUnit
from etcnet.cards.tests.conftest import OBU_NOS
from etcnet.issuance import samples
from etcnet.smartcard import ops
from etcnet.smartcard.emulator import SFI_0015, SoftCard, SoftObu
from etcnet.smartcard.files import Card0015, ObuVehicleFile
from etcnet.smartcard.transport import TransportError
from etcnet.terminal.lane import ExitRequest, LaneError, LaneTerminal, Quote, Reading
from etcnet.tolling.models import TollTransaction
from etcnet.tolling.tests.lanes import enter

pytestmark = pytest.mark.usefixtures("live_server", "role_groups")


def obu_of(card: CardUnit) -> ObuUnit:
    return ObuUnit.objects.get(contract_no=OBU_NOS[0])


def edit_card(card: CardUnit, *, balance: int | None = None, **f0015: Any) -> None:
    """Change the emulated card behind the center's back (what a worn or
    tampered card presents at the lane)."""
    soft = SoftCard.load(devices.path_of(card))
    if f0015:
        current = Card0015.decode(bytes(soft.adf_files[SFI_0015]))
        soft.adf_files[SFI_0015][:] = replace(current, **f0015).encode()
    if balance is not None:
        soft.balance = balance
    soft.save()


def at_the_exit(lane: LaneTerminal) -> dict[str, Any]:
    carl = lane.sign_in("carl", "pw-12345678")
    return {"collector": carl, "shift": lane.start_shift(carl, lane=3)}


def read_and_quote(
    lane: LaneTerminal, card: CardUnit, *, obu: ObuUnit | None = None, **quote: Any
) -> tuple[Reading, Quote]:
    """读卡 (card, and OBU when given) and 算费 for the plate read, class 1 unless said."""
    reading = lane.read(devices.open_unit(card), devices.open_unit(obu) if obu else None)
    asked = {
        "plate": reading.plate,
        "plate_color": reading.plate_color,
        "vehicle_class": 1,
        **quote,
    }
    return reading, lane.quote(reading, **asked)


def test_an_expired_card_is_refused_and_the_vehicle_pays_cash(terminals, card, staff):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    today = dt.date.today()
    edit_card(card, start_date=today - dt.timedelta(days=800), expiry_date=today - dt.timedelta(1))
    who = at_the_exit(exit_lane)
    sam = exit_lane.authorise("sam", "pw-12345678")
    reading, quote = read_and_quote(exit_lane, card)

    assert [p.code for p in reading.problems] == ["expired"]
    assert reading.card_refused
    assert quote.special_cases[0] == "expired"
    common = {
        **who,
        "plate": reading.plate,
        "plate_color": reading.plate_color,
        "authorised_by": sam,
    }
    with pytest.raises(LaneError) as by_card:
        exit_lane.exit(
            ExitRequest(devices.open_unit(card), reading, quote, reason="卡已过期", **common)
        )
    assert by_card.value.code == "card_cannot_pay"
    done = exit_lane.exit(
        ExitRequest(
            devices.open_unit(card), reading, quote, payment_type=1, reason="卡已过期", **common
        )
    )

    assert (done.payment_type, done.tac) == (1, "")
    assert devices.read_card(card).balance == 10_000  # the card was not touched
    exit_lane.sync()
    ex = TollTransaction.objects.get(direction="exit")
    assert (ex.status, ex.special_case, ex.payment_type) == ("accepted", "expired", 1)
    assert "卡已过期" in ex.special_reason


def test_card_obu_and_typed_plate_mismatch_need_a_reason(terminals, card, staff):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    soft = SoftObu.load(devices.path_of(obu_of(card)))
    vehicle = ObuVehicleFile.decode(bytes(soft.df_files[1]))
    soft.df_files[1][:] = replace(vehicle, plate="津B99999").encode()
    soft.save()
    who = at_the_exit(exit_lane)
    sam = exit_lane.authorise("sam", "pw-12345678")

    reading = exit_lane.read(devices.open_unit(card), devices.open_unit(obu_of(card)))
    assert [p.code for p in reading.problems] == ["mismatch"]
    assert not reading.card_refused  # a mismatch is resolved by the collector, not refused
    quote = exit_lane.quote(reading, plate="津B99999", plate_color=0, vehicle_class=1)
    assert quote.special_cases[:2] == ("mismatch", "minimum_fee")
    assert quote.needs_reason
    common = {**who, "plate": "津B99999", "plate_color": 0, "authorised_by": sam}
    with pytest.raises(LaneError) as no_reason:
        exit_lane.exit(ExitRequest(devices.open_unit(card), reading, quote, **common))
    assert no_reason.value.code == "reason_needed"
    done = exit_lane.exit(
        ExitRequest(
            devices.open_unit(card),
            reading,
            quote,
            reason="实际车牌津B99999，标签信息有误",
            obu_t=devices.open_unit(obu_of(card)),
            **common,
        )
    )

    assert done.tac
    assert done.balance_after == 10_000 - quote.fee.payable_fen
    exit_lane.sync()
    ex = TollTransaction.objects.get(direction="exit")
    assert (ex.status, ex.tac_verified, ex.special_case, ex.plate) == (
        "accepted",
        True,
        "mismatch",
        "津B99999",
    )
    assert "标签信息有误" in ex.special_reason

    # A typed plate other than the card's is a mismatch even when card and OBU agree.
    clean = replace(reading, problems=())
    typed = exit_lane.quote(clean, plate="津C00001", plate_color=0, vehicle_class=1)
    assert "mismatch" in typed.special_cases


def test_insufficient_balance_falls_back_to_a_mobile_payment(terminals, card, staff):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    edit_card(card, balance=100)
    who = at_the_exit(exit_lane)
    sam = exit_lane.authorise("sam", "pw-12345678")
    reading, quote = read_and_quote(exit_lane, card)

    assert quote.insufficient_balance
    assert "insufficient_balance" in quote.special_cases
    common = {
        **who,
        "plate": reading.plate,
        "plate_color": reading.plate_color,
        "authorised_by": sam,
        "reason": "余额不足，支付宝支付",
    }
    with pytest.raises(LaneError) as by_card:
        exit_lane.exit(ExitRequest(devices.open_unit(card), reading, quote, **common))
    assert by_card.value.code == "card_cannot_pay"
    with pytest.raises(LaneError) as unknown:
        exit_lane.exit(
            ExitRequest(devices.open_unit(card), reading, quote, payment_type=99, **common)
        )
    assert unknown.value.code == "bad_payment_type"
    done = exit_lane.exit(
        ExitRequest(devices.open_unit(card), reading, quote, payment_type=10, **common)
    )

    # Mobile payment: the toll without the ETC discount, rounded to the yuan.
    assert done.payment_type == 10
    assert done.payable_fen == (quote.fee.fee_fen + 50) // 100 * 100
    assert devices.read_card(card).balance == 100
    exit_lane.sync()
    ex = TollTransaction.objects.get(direction="exit")
    assert (ex.status, ex.payment_type, ex.special_case, ex.tac_verified) == (
        "accepted",
        10,
        "minimum_fee",
        False,
    )
    # The record keeps its first case; the reason lists them all.
    assert "cases: minimum_fee, insufficient_balance" in ex.special_reason
    totals = exit_lane.shift_totals(who["shift"].shift_no)
    assert totals.by_payment == {10: (1, done.payable_fen)}


def test_a_green_channel_vehicle_needs_the_inspection_photo_and_passes_free(terminals, card, staff):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    who = at_the_exit(exit_lane)
    reading, quote = read_and_quote(exit_lane, card, vehicle_kind=21)

    assert (quote.fee.method.value, quote.fee.payable_fen, quote.payment_type) == ("exempt", 0, 0)
    assert not quote.needs_authorisation
    assert quote.special_cases == ("exempt",)
    common = {
        **who,
        "plate": reading.plate,
        "plate_color": reading.plate_color,
        "vehicle_kind": 21,
        "reason": "鲜活农产品，查验合格",
    }
    with pytest.raises(LaneError) as no_photo:
        exit_lane.exit(ExitRequest(devices.open_unit(card), reading, quote, **common))
    assert no_photo.value.code == "inspection_photo_needed"
    done = exit_lane.exit(
        ExitRequest(
            devices.open_unit(card),
            reading,
            quote,
            photo_jpeg=samples.photo_bytes("vehicle_head"),
            **common,
        )
    )

    # Free, but the trip is closed on the card by a zero-amount purchase with TAC.
    assert (done.payable_fen, done.payment_type, done.balance_after) == (0, 0, 10_000)
    assert done.tac
    assert exit_lane.read(devices.open_unit(card)).entry is None
    exit_lane.sync()
    ex = TollTransaction.objects.get(direction="exit")
    assert (ex.status, ex.special_case, ex.payment_type, ex.payable_fen, ex.tac_verified) == (
        "accepted",
        "exempt",
        0,
        0,
        True,
    )
    assert ex.photo
    assert "查验合格" in ex.special_reason
    assert "exempt 车种 21" in ex.special_reason


def test_an_emergency_vehicle_passes_free_without_a_photo(terminals, card, staff):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    who = at_the_exit(exit_lane)
    reading, quote = read_and_quote(exit_lane, card, vehicle_kind=10)
    done = exit_lane.exit(
        ExitRequest(
            devices.open_unit(card),
            reading,
            quote,
            plate=reading.plate,
            plate_color=reading.plate_color,
            vehicle_kind=10,
            reason="抢险救援车辆",
            **who,
        )
    )
    assert (done.payable_fen, done.payment_type) == (0, 0)


def test_entry_and_exit_write_the_trip_into_the_obu(terminals, card, staff):
    entry_lane, exit_lane = terminals
    obu = obu_of(card)
    carl = entry_lane.sign_in("carl", "pw-12345678")
    shift = entry_lane.start_shift(carl, lane=1)
    reading = entry_lane.read(devices.open_unit(card), devices.open_unit(obu))
    entered = entry_lane.entry(
        devices.open_unit(card),
        reading,
        collector=carl,
        shift=shift,
        plate=reading.plate,
        plate_color=reading.plate_color,
        vehicle_class=1,
        obu_t=devices.open_unit(obu),
    )
    assert entered.obu_write == "written"
    at_entry = ops.read_obu_fee(devices.open_unit(obu))
    assert at_entry is not None
    assert at_entry.entry is not None
    assert (at_entry.entry.lane_status, at_entry.successes, at_entry.actual_fen) == (3, 0, 0)
    assert at_entry.card_0015 == devices.read_card(card).raw_0015[:20]

    who = at_the_exit(exit_lane)
    sam = exit_lane.authorise("sam", "pw-12345678")
    reading, quote = read_and_quote(exit_lane, card, obu=obu)
    assert reading.problems == ()
    done = exit_lane.exit(
        ExitRequest(
            devices.open_unit(card),
            reading,
            quote,
            plate=reading.plate,
            plate_color=reading.plate_color,
            authorised_by=sam,
            obu_t=devices.open_unit(obu),
            **who,
        )
    )

    assert done.obu_write == "written"
    block = ops.read_obu_fee(devices.open_unit(obu))
    assert block is not None
    assert block.entry is not None
    assert (block.entry.lane_status, block.entry.station, block.entry.lane) == (4, 0x0301, 3)
    assert (block.successes, block.receivable_fen, block.actual_fen) == (
        1,
        quote.fee.fee_fen,
        quote.fee.payable_fen,
    )
    assert block.provinces == (("12", quote.fee.payable_fen),)
    assert block.digest == bytes.fromhex(done.tac) + done.terminal_seq.to_bytes(4, "big")
    exit_lane.sync()
    ex = TollTransaction.objects.get(direction="exit")
    assert (ex.tac_verified, ex.terminal_trans_seq) == (True, done.terminal_seq)


class NoUpdates:
    """An OBU that leaves the antenna's range before the fee file is written."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[1] == 0xD6:
            raise TransportError("OBU out of range")
        return self.inner.transmit(apdu)


def test_a_failed_obu_write_keeps_the_transaction(terminals, card, staff):
    entry_lane, exit_lane = terminals
    enter(entry_lane, card)
    obu = obu_of(card)
    who = at_the_exit(exit_lane)
    sam = exit_lane.authorise("sam", "pw-12345678")
    reading, quote = read_and_quote(exit_lane, card, obu=obu)
    done = exit_lane.exit(
        ExitRequest(
            devices.open_unit(card),
            reading,
            quote,
            plate=reading.plate,
            plate_color=reading.plate_color,
            authorised_by=sam,
            obu_t=NoUpdates(devices.open_unit(obu)),
            **who,
        )
    )

    assert done.obu_write == "failed"
    assert exit_lane.outbox.status().waiting == 1  # the transaction stands
    assert ops.read_obu_fee(devices.open_unit(obu)) is None
    assert exit_lane.journal()[0]["action"] == "obu_write_failed"
