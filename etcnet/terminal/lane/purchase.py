"""The transactions: the exit purchase, the entry write, the OBU's fee file, and the
intents that settle an interrupted purchase from the card itself.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from etcnet.core.money import round_cash
from etcnet.core.validators import gettext_noop
from etcnet.network.engine import EXEMPT_KINDS, FeeResult, Method
from etcnet.smartcard import ops
from etcnet.smartcard.codec import hexu
from etcnet.smartcard.files import Card0019, FileFormatError, ObuFeeFile
from etcnet.smartcard.transport import Transport, TransportError
from etcnet.terminal.lane._base import (
    CARD_PAYMENTS,
    ENTRY_CLOSED_ETC,
    EXIT_CLOSED,
    EXIT_OPEN,
    FALLBACK_PAYMENTS,
    FREE,
    LOCAL,
    STORED_VALUE,
    Committed,
    ExitRequest,
    Grey,
    LaneError,
    Person,
    Quote,
    Reading,
    Shift,
    _b64,
    _iso,
)
from etcnet.terminal.lane.shifts import Shifts
from etcnet.terminal.lane.weighing import weighing


class Purchases(Shifts):
    """Exit and entry transactions, committed to the store before success is shown."""

    # -- transactions ------------------------------------------------------------

    def exit(self, request: ExitRequest) -> Committed:
        """提交数据 / 数据保存: the purchase (stored value: the payable amount;
        debit card: a zero-amount composite purchase with TAC), the exit info in
        0019, and the record in the store — or, when the card cannot pay, the
        record with the fallback payment type."""
        card_t, reading, quote = request.card_t, request.reading, request.quote
        collector, shift = request.collector, request.shift
        authorised_by, reason = request.authorised_by, request.reason
        station_hex = request.station_hex
        # 计重信息 first: a weight typed wrong must stop the exit before the card
        # is touched (nothing is charged), whatever screen typed it.
        weighed = weighing(
            request.axles, request.total_weight_kg, vehicle_class=quote.fee.vehicle_class
        )
        station = self.station()["station"]
        if station_hex is not None and station_hex.strip().upper() != station["hex"].upper():
            raise LaneError(
                "hex_mismatch",
                gettext_noop("The station hex code does not match: check it and type it again."),
                field="station_hex",
            )
        if quote.needs_authorisation and (
            authorised_by is None or "station_master" not in authorised_by.roles
        ):
            raise LaneError(
                "authorisation_needed",
                gettext_noop("Minimum-fee charging needs the station master's authorisation."),
                field="master_username",
            )
        if quote.needs_reason and not reason.strip():
            raise LaneError(
                "reason_needed",
                gettext_noop("Give the reason for this special case; it is kept for audit."),
                field="reason",
            )
        if request.vehicle_kind == 21 and not request.photo_jpeg:
            raise LaneError(
                "inspection_photo_needed",
                gettext_noop("A green-channel vehicle needs the inspection photo."),
                field="photo",
            )
        pay = quote.payment_type if request.payment_type is None else request.payment_type
        card_can_pay = not reading.card_refused and not quote.insufficient_balance
        if pay in CARD_PAYMENTS and not card_can_pay:
            raise LaneError(
                "card_cannot_pay",
                gettext_noop("This card cannot pay: choose cash or a mobile payment."),
                field="payment_type",
            )
        if pay not in (*CARD_PAYMENTS, *FALLBACK_PAYMENTS, FREE) or (
            pay == FREE and quote.fee.method is not Method.EXEMPT
        ):
            raise LaneError(
                "bad_payment_type",
                gettext_noop("Choose a payment type of the list."),
                field="payment_type",
            )
        if pay in CARD_PAYMENTS and pay != reading.card_type:
            pay = reading.card_type
        # A free passage is still closed on a card that may be used: a zero-amount
        # composite purchase writes the exit, so the entry is not charged again.
        by_card = pay in CARD_PAYMENTS or (pay == FREE and not reading.card_refused)
        # The clock last, before anything is recorded: the time of the record, of
        # the card's 0019 and of its purse log is the center's (docs/clock.md).
        clock = self.lane_clock()
        refused = clock.refusal(card=by_card)
        if refused is not None:
            raise refused
        fee = quote.fee
        when = clock.correct(self.clock())
        local = when.astimezone(LOCAL)
        lane = shift.lane
        base: dict[str, Any] = {
            "direction": "exit",
            "lane": lane,
            "exit_time": local.isoformat(),
            "clock_offset_ms": clock.record_offset_ms,  # what `when` was corrected by
            "entry_station": fee.entry or "",
            "entry_time": reading.entry.time.isoformat() if reading.entry else None,
            "card_no": reading.card_no,
            "obu_no": reading.obu_no,
            "plate": request.plate.strip(),
            "plate_color": request.plate_color,
            "vehicle_class": fee.vehicle_class,
            "vehicle_kind": request.vehicle_kind,
            "method": fee.method.value,
            "fee_fen": fee.fee_fen,
            "discount_fen": fee.discount_fen,
            "payable_fen": fee.payable_fen,
            "intervals": [charge.as_json() for charge in fee.intervals],
            "payment_type": pay,
            "axles": weighed.axles,
            "total_weight_kg": weighed.total_weight_kg,
            "weight_limit_kg": weighed.weight_limit_kg,
            "overweight": weighed.overweight or bool(fee.overweight),
            "special_case": quote.special_cases[0] if quote.special_cases else "",
            "special_reason": _reason(quote, reading, fee, reason),
            "collector": collector.username,
            "shift": shift.shift_no,
            "authorised_by": authorised_by.username if authorised_by else "",
            "photo_jpeg": _b64(request.photo_jpeg),
            "list_version": reading.list_version,
            "tariff_version": quote.tariff_version,
            "balance_before_fen": None,  # a card purchase reads it (_purchase_fields)
        }
        if not by_card:
            if pay != FREE:
                # Cash or a mobile payment: the toll without the ETC discount,
                # to the whole yuan by the cash rule (Part 1).
                base["discount_fen"] = 0
                base["payable_fen"] = round_cash(fee.fee_fen)
            seq = self._commit(base, username=collector.username)
            return Committed(seq, int(base["payable_fen"]), pay, "", None)
        amount = fee.payable_fen if pay == STORED_VALUE else 0
        exit_record = Card0019(
            network=station["hex"][:4],
            station=int(station["hex"][4:8], 16),
            lane=lane,
            time=int(when.timestamp()),
            vehicle_class=fee.vehicle_class,
            lane_status=EXIT_OPEN if fee.method is Method.OPEN else EXIT_CLOSED,
            plate=request.plate.strip(),
            plate_color=request.plate_color,
            axles=weighed.axles or 0,
            total_weight_kg=weighed.total_weight_kg or 0,
        )
        return self._purchase(
            card_t,
            reading,
            base,
            amount=amount,
            record0019=exit_record,
            when=local,
            username=collector.username,
            obu_t=request.obu_t,
            fee=fee,
        )

    def entry(
        self,
        card_t: Transport,
        reading: Reading,
        *,
        collector: Person,
        shift: Shift,
        plate: str,
        plate_color: int,
        vehicle_class: int,
        vehicle_kind: int = 0,
        axles: int | str | None = None,
        total_weight_kg: int | str | None = None,
        photo_jpeg: bytes | None = None,
        obu_t: Transport | None = None,
    ) -> Committed:
        """入口: the entry info written into 0019 by a zero-amount composite
        purchase (as real entry lanes do), and the entry recorded; with an OBU
        (read with the card), a fresh fee file (EF04) carrying the entry.
        ``axles`` and ``total_weight_kg`` (text as typed, or numbers) are
        checked before the card is touched (``lane.weighing``)."""
        weighed = weighing(axles, total_weight_kg, vehicle_class=vehicle_class)
        if reading.card_refused:
            raise LaneError(
                "card_cannot_enter",
                gettext_noop("This card is refused here: {problems}."),
                problems=", ".join(p.code for p in reading.problems),
            )
        station = self.station()["station"]
        clock = self.lane_clock()
        refused = clock.refusal(card=True, entry=True)
        if refused is not None:
            raise refused
        when = clock.correct(self.clock())
        local = when.astimezone(LOCAL)
        base: dict[str, Any] = {
            "direction": "entry",
            "lane": shift.lane,
            "exit_time": local.isoformat(),
            "clock_offset_ms": clock.record_offset_ms,
            "entry_station": station["node_id"],
            "entry_time": local.isoformat(),
            "card_no": reading.card_no,
            "obu_no": reading.obu_no,
            "plate": plate.strip(),
            "plate_color": plate_color,
            "vehicle_class": vehicle_class,
            "vehicle_kind": vehicle_kind,
            "method": "entry",
            "fee_fen": 0,
            "payable_fen": 0,
            "payment_type": reading.card_type,
            "axles": weighed.axles,
            "total_weight_kg": weighed.total_weight_kg,
            "weight_limit_kg": weighed.weight_limit_kg,
            "overweight": weighed.overweight,
            "collector": collector.username,
            "shift": shift.shift_no,
            "photo_jpeg": _b64(photo_jpeg),
            "list_version": reading.list_version,
            "tariff_version": None,  # an entry charges nothing: no fee engine took part
            "balance_before_fen": None,  # its zero-amount purchase reads it
        }
        record = Card0019(
            network=station["hex"][:4],
            station=int(station["hex"][4:8], 16),
            lane=shift.lane,
            time=int(when.timestamp()),
            vehicle_class=vehicle_class,
            lane_status=ENTRY_CLOSED_ETC,
            plate=plate.strip(),
            plate_color=plate_color,
            axles=weighed.axles or 0,
            total_weight_kg=weighed.total_weight_kg or 0,
        )
        return self._purchase(
            card_t,
            reading,
            base,
            amount=0,
            record0019=record,
            when=local,
            username=collector.username,
            obu_t=obu_t,
        )

    def _write_obu(
        self,
        obu_t: Transport,
        reading: Reading,
        record0019: Card0019,
        committed: Committed,
        *,
        fee: FeeResult | None,
        username: str,
    ) -> Committed:
        """After the record is committed: the trip into the OBU's EF04 (§2.4). At
        an entry a fresh block; at an exit the trip's block with this station's
        charge added (a block of another trip is started afresh). A failure loses
        nothing — the transaction stands — and is journalled and shown."""
        station_hex = self.station()["station"]["hex"]
        try:
            chip = ops.read_obu(obu_t)
            if chip.obu_no != reading.obu_no:
                raise ops.OperationError(f"OBU {chip.obu_no} is not {reading.obu_no}")
            before = ops.read_obu_fee(obu_t) if fee is not None else None
            block = _fee_block(
                before,
                record0019,
                reading,
                fee=fee,
                committed=committed,
                user_type=chip.vehicle.user_type if chip.vehicle else 0,
                province=station_hex[:2],
            )
            ops.write_obu_fee(obu_t, block)
        except (TransportError, ops.CardError, ops.OperationError, FileFormatError, OSError) as e:
            self._db.execute("BEGIN IMMEDIATE")
            self._journal(
                self._db,
                username,
                "obu_write_failed",
                seq=committed.seq,
                obu_no=reading.obu_no,
                error=str(e),
            )
            self._db.execute("COMMIT")
            return replace(committed, obu_write="failed")
        return replace(committed, obu_write="written")

    def _purchase(
        self,
        card_t: Transport,
        reading: Reading,
        base: dict[str, Any],
        *,
        amount: int,
        record0019: Card0019,
        when: dt.datetime,
        username: str,
        obu_t: Transport | None = None,
        fee: FeeResult | None = None,
    ) -> Committed:
        """The card's purchase and its record; then, with the OBU read with the
        card, the trip into its EF04 (``fee`` None: an entry)."""
        if self._open_intent(reading.card_no) is not None:
            raise Grey(
                "grey_open",
                gettext_noop(
                    "An interrupted purchase of this card is not settled yet: read the card again."
                ),
            )
        intent_id: list[int] = []

        def remember(intent: ops.PurchaseIntent) -> None:
            if intent.card_no != reading.card_no:
                raise LaneError(
                    "other_card",
                    gettext_noop("Another card is in the reader: place card {card_no}."),
                    card_no=reading.card_no,
                )
            body = {"intent": _intent_json(intent), "record": base}
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "INSERT INTO intents (card_no, atc, body, created_utc) VALUES (?, ?, ?, ?)",
                (
                    intent.card_no,
                    intent.offline_atc,
                    json.dumps(body, ensure_ascii=False),
                    _iso(self.now()),
                ),
            )
            self._db.execute("COMMIT")
            intent_id.append(int(cursor.lastrowid or 0))

        try:
            result = ops.purchase(
                card_t,
                self._psam(),
                amount=amount,
                when=when.replace(tzinfo=None),
                trans_type=ops.COMPOSITE_TRANS_TYPE,
                record0019=record0019,
                before_debit=remember,
            )
        except (TransportError, ops.CardError, ops.OperationError, OSError) as error:
            if intent_id:
                self._db.execute("BEGIN IMMEDIATE")
                self._journal(
                    self._db,
                    username,
                    "purchase_interrupted",
                    card_no=reading.card_no,
                    error=str(error),
                )
                self._db.execute("COMMIT")
                raise Grey(
                    "grey",
                    gettext_noop(
                        "The card left the reader during the purchase. Place card {card_no} "
                        "again and read it: the terminal settles the purchase from the card "
                        "itself, without charging twice."
                    ),
                    card_no=reading.card_no,
                ) from error
            if isinstance(error, ops.CardError) and error.sw == 0x9401:
                raise LaneError(
                    "insufficient_balance",
                    gettext_noop("The balance is not enough: choose cash or a mobile payment."),
                    field="payment_type",
                ) from error
            raise LaneError(
                "purchase_failed",
                gettext_noop("The card refused the purchase ({error}); nothing was charged."),
                error=str(error),
            ) from error
        record = {**base, **_purchase_fields(result)}
        seq = self._commit(record, username=username, intent=intent_id[0])
        committed = Committed(
            seq,
            int(str(base["payable_fen"])),
            int(str(base["payment_type"])),
            record["tac"],
            result.balance_after,
            terminal_seq=int(record["terminal_trans_seq"]),
        )
        if obu_t is None or not reading.obu_no:
            return committed
        return self._write_obu(obu_t, reading, record0019, committed, fee=fee, username=username)

    def _commit(
        self,
        record: Mapping[str, Any],
        *,
        username: str,
        intent: int | None = None,
        state: str = "completed",
    ) -> int:
        # The offset its time was corrected by; a record kept in an intent from
        # before offsets were recorded takes today's.
        full = {"clock_offset_ms": self.lane_clock().record_offset_ms, **record}
        now = self.clock()  # the outbox's own schedule runs on the machine's clock
        resolved = self.now()

        def also(db: sqlite3.Connection, seq: int) -> None:
            if intent is not None:
                db.execute(
                    "UPDATE intents SET state = ?, resolved_utc = ?, seq = ? WHERE id = ?",
                    (state, _iso(resolved), seq, intent),
                )
            self._journal(
                db,
                username,
                f"{record['direction']}_recorded",
                seq=seq,
                card_no=record.get("card_no", ""),
                payable_fen=record.get("payable_fen", 0),
                special_case=record.get("special_case", ""),
            )

        return self.outbox.commit(lambda seq: full, now=now, also=also)

    # -- interrupted purchases -----------------------------------------------------

    def _open_intent(self, card_no: str) -> tuple[int, dict[str, Any]] | None:
        row = self._db.execute(
            "SELECT id, body FROM intents WHERE card_no = ? AND state = 'open' ORDER BY id LIMIT 1",
            (card_no,),
        ).fetchone()
        return (int(row[0]), json.loads(row[1])) if row else None

    def open_intents(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM intents WHERE state = 'open'").fetchone()
        return int(count)

    def _settle_intents(self, card_t: Transport, card_no: str) -> tuple[str, int | None]:
        """The card is back: did the interrupted DEBIT happen? Its log says (the
        ATC, amount, PSAM number); 805A gives the TAC. Completed → the record is
        committed as it would have been; not debited → the intent is abandoned."""
        found = self._open_intent(card_no)
        if found is None:
            return "", None
        intent_id, body = found
        intent = body["intent"]
        log = ops.read_log(card_t)
        debited = any(
            entry.atc == intent["offline_atc"]
            and entry.amount == intent["amount"]
            and entry.trans_type == intent["trans_type"]
            and hexu(entry.terminal) == intent["terminal_no"]
            for entry in log
        )
        username = str(body["record"].get("collector", ""))
        if not debited:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE intents SET state = 'abandoned', resolved_utc = ? WHERE id = ?",
                (_iso(self.now()), intent_id),
            )
            self._journal(
                self._db, username, "purchase_abandoned", card_no=card_no, atc=intent["offline_atc"]
            )
            self._db.execute("COMMIT")
            return "abandoned", None
        proof = ops.transaction_prove(
            card_t, atc=intent["offline_atc"], trans_type=intent["trans_type"]
        )
        record = dict(body["record"])
        record.update(
            amount_fen=intent["amount"],
            trans_type=intent["trans_type"],
            terminal_trans_seq=int(intent["terminal_seq"], 16),
            card_trans_no=intent["offline_atc"],
            tac=proof[1].hex().upper() if proof else "",
            balance_before_fen=_purse(intent.get("balance_before")),
            special_case=record.get("special_case") or "grey_completed",
            special_reason=(
                (record.get("special_reason") or "")
                + " | interrupted purchase completed from the card's log (ATC "
                + str(intent["offline_atc"])
                + (", TAC by 805A)" if proof else ", TAC no longer on the card)")
            ).strip(" |"),
        )
        seq = self._commit(record, username=username, intent=intent_id)
        return "completed", seq


def _intent_json(intent: ops.PurchaseIntent) -> dict[str, Any]:
    return {
        "card_no": intent.card_no,
        "trans_type": intent.trans_type,
        "amount": intent.amount,
        "when": intent.when.isoformat(),
        "balance_before": intent.balance_before,
        "offline_atc": intent.offline_atc,
        "terminal_no": hexu(intent.terminal_no),
        "terminal_seq": hexu(intent.terminal_seq),
    }


def _purchase_fields(result: ops.PurchaseResult) -> dict[str, Any]:
    """What the card's purchase adds to the record: the debit and its proof, and
    ``balance_before_fen``, the purse as GET BALANCE read it just before the
    DEBIT (the center follows the card's own history with it)."""
    return {
        "amount_fen": result.amount,
        "trans_type": result.trans_type,
        "terminal_trans_seq": int.from_bytes(result.terminal_seq, "big"),
        "card_trans_no": result.offline_atc,
        "tac": result.tac.hex().upper(),
        "balance_before_fen": _purse(result.balance_before),
    }


#: What the center takes as ``balance_before_fen`` (docs/terminal.md).
PURSE_RANGE = (0, 2**31 - 1)


def _purse(balance: object) -> int | None:
    """The purse read at the lane as the record carries it; None when there is
    none or the card gave something no purse holds (the record says nothing
    rather than something the center must refuse)."""
    if type(balance) is not int or not PURSE_RANGE[0] <= balance <= PURSE_RANGE[1]:
        return None
    return balance


#: The largest value of a 3-byte counter in EF04.
_MAX3 = 0xFFFFFF


def _fee_block(
    before: ObuFeeFile | None,
    record0019: Card0019,
    reading: Reading,
    *,
    fee: FeeResult | None,
    committed: Committed,
    user_type: int,
    province: str,
) -> ObuFeeFile:
    """The EF04 block after this transaction. ``fee`` None is an entry."""
    digest = bytes.fromhex(committed.tac) + committed.terminal_seq.to_bytes(4, "big")
    start = ObuFeeFile(
        entry_0019=record0019.encode()[:39],
        card_0015=reading.card_0015_head,
        user_type=user_type,
        province_count=1,
        digest=digest,
    )
    if fee is None:
        return start
    trip = before
    same_trip = (
        trip is not None
        and trip.entry is not None
        and reading.entry is not None
        and trip.entry.time == int(reading.entry.time.timestamp())
    )
    if not same_trip or trip is None:
        trip = start
    paid = committed.payable_fen
    provinces = dict(trip.provinces)
    provinces[province] = min(provinces.get(province, 0) + paid, _MAX3)
    return replace(
        start,
        province_count=max(trip.province_count, len(provinces)),
        receivable_fen=min(trip.receivable_fen + fee.fee_fen, _MAX3),
        actual_fen=min(trip.actual_fen + paid, _MAX3),
        successes=min(trip.successes + 1, 0xFFFF),
        mileage_m=min(trip.mileage_m + fee.length_m, _MAX3),
        no_card_count=trip.no_card_count,
        province_entry=trip.province_entry,
        province_receivable_fen=min(trip.province_receivable_fen + fee.fee_fen, _MAX3),
        province_successes=min(trip.province_successes + 1, 0xFF),
        province_actual_fen=min(trip.province_actual_fen + paid, _MAX3),
        provinces=tuple(provinces.items()),
    )


def _reason(quote: Quote, reading: Reading, fee: FeeResult, typed: str) -> str:
    parts = [typed.strip()] if typed.strip() else []
    if len(quote.special_cases) > 1:
        parts.append("cases: " + ", ".join(quote.special_cases))
    if reading.list_types.get("card") or reading.list_types.get("obu"):
        parts.append(
            "status list: "
            + ", ".join(
                f"{medium} {list(types)}" for medium, types in reading.list_types.items() if types
            )
        )
    if fee.reason:
        parts.append(fee.reason)
    if fee.method is Method.EXEMPT and fee.vehicle_kind in {int(k) for k in EXEMPT_KINDS}:
        parts.append(f"exempt 车种 {fee.vehicle_kind}")
    return " | ".join(parts)[:200]
