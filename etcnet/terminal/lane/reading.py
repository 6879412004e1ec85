"""Reading a card and OBU with the checks of seed 001/002, and the fee (算费) on the
downloaded tariff.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from etcnet.core.validators import gettext_noop
from etcnet.network.bundle import Interval, Network, Node, Owner
from etcnet.network.engine import FeeEngine, FeeError, Method, Payment
from etcnet.smartcard import ops
from etcnet.smartcard.files import Card0019, FileFormatError
from etcnet.smartcard.transport import Transport, TransportError
from etcnet.terminal.lane._base import (
    ENTRY_STATUSES,
    FREE,
    LOCAL,
    STORED_VALUE,
    Entry,
    LaneError,
    Problem,
    Quote,
    Reading,
)
from etcnet.terminal.lane.purchase import Purchases
from etcnet.terminal.lane.weighing import weighing
from etcnet.terminal.reference import StatusListCheck


class Readings(Purchases):
    """读卡 and 算费: an interrupted purchase is settled before the checks."""

    # -- the fee engine on the downloaded tariff ----------------------------------

    def engine(self) -> FeeEngine:
        doc = self.reference.get("tariff") or {}
        version, network = doc.get("version"), doc.get("network")
        if not version or not network:
            raise LaneError(
                "no_tariff",
                gettext_noop("This terminal has no tariff yet: connect it to the center once."),
            )
        if self._engine is None or self._engine[0] != version:
            built = Network.from_rows(
                owners=[Owner(*row) for row in network["owners"]],
                nodes=[Node(*row) for row in network["nodes"]],
                intervals=[Interval(*row) for row in network["intervals"]],
                fees=[tuple(row) for row in network["fees"]],
                open_fees=[tuple(row) for row in network["open_fees"]],
            )
            self._engine = (version, FeeEngine(built, discount_bp=int(doc["discount_bp"])))
        return self._engine[1]

    def _node_by_hex(self, network: str, station: int) -> Node | None:
        code = f"{network}{station:04X}"
        for node in self.engine().network.nodes.values():
            if node.hex.upper() == code and node.kind == "station":
                return node
        return None

    # -- reading -----------------------------------------------------------------

    def read(self, card_t: Transport, obu_t: Transport | None = None) -> Reading:
        """读卡: the card (and OBU), an interrupted purchase of this card settled
        first, then the checks of seed 001: card–OBU–vehicle consistency,
        validity dates, the status list."""
        try:
            card = ops.read_card(card_t)
            obu = ops.read_obu(obu_t) if obu_t is not None else None
        except (TransportError, ops.CardError, FileFormatError, OSError) as error:
            raise LaneError(
                "read_failed",
                gettext_noop("The card could not be read ({error}); place it again."),
                error=str(error),
            ) from error
        if card.f0015 is None:
            raise LaneError("card_blank", gettext_noop("This card is not issued."))
        recovered, recovered_seq = self._settle_intents(card_t, card.card_no)
        if recovered:
            card = ops.read_card(card_t)
        f = card.f0015
        assert f is not None
        today = self.now().astimezone(LOCAL).date()  # the center's date, as the card is dated
        problems: list[Problem] = []
        listed: StatusListCheck = self.status_list
        list_version = self.status_list.version  # what the checks below look up
        list_types = {"card": listed.lookup("card", card.card_no)}
        if list_types["card"]:
            problems.append(
                Problem(
                    "status_list",
                    gettext_noop("The card is on the status list (types {types})."),
                    {"types": ", ".join(str(t) for t in list_types["card"])},
                )
            )
        if not f.start_date <= today <= f.expiry_date:
            problems.append(
                Problem(
                    "expired",
                    gettext_noop("The card is valid from {start} to {end}."),
                    {"start": f.start_date.isoformat(), "end": f.expiry_date.isoformat()},
                )
            )
        reading: dict[str, Any] = {}
        if obu is not None:
            if obu.system is None or obu.vehicle is None:
                raise LaneError("obu_blank", gettext_noop("This OBU is not issued."))
            list_types["obu"] = listed.lookup("obu", obu.obu_no)
            if list_types["obu"]:
                problems.append(
                    Problem(
                        "status_list",
                        gettext_noop("The OBU is on the status list (types {types})."),
                        {"types": ", ".join(str(t) for t in list_types["obu"])},
                    )
                )
            if not obu.activated or not obu.system.signed_date <= today <= obu.system.expiry_date:
                problems.append(
                    Problem(
                        "expired", gettext_noop("The OBU is not active or out of its validity.")
                    )
                )
            v = obu.vehicle
            if (v.plate, int(v.plate_color)) != (f.plate, int(f.plate_color)) or (
                f.vehicle_class is not None and int(v.vehicle_class) != int(f.vehicle_class)
            ):
                problems.append(
                    Problem(
                        "mismatch",
                        gettext_noop("Card and OBU do not match (卡签不一致): {card} / {obu}."),
                        {"card": f.plate, "obu": v.plate},
                    )
                )
            reading = {
                "obu_no": obu.obu_no,
                "obu_plate": v.plate,
                "obu_plate_color": int(v.plate_color),
                "obu_vehicle_class": int(v.vehicle_class),
                "obu_expiry_date": obu.system.expiry_date,
            }
        return Reading(
            card_no=card.card_no,
            card_type=int(f.card_type),
            balance=card.balance,
            plate=f.plate,
            plate_color=int(f.plate_color),
            vehicle_class=int(f.vehicle_class) if f.vehicle_class is not None else None,
            start_date=f.start_date,
            expiry_date=f.expiry_date,
            entry=self._entry_of(card.f0019),
            list_types=list_types,
            problems=tuple(problems),
            recovered=recovered,
            recovered_seq=recovered_seq,
            card_0015_head=card.raw_0015[:20],
            list_version=list_version,
            **reading,
        )

    def _entry_of(self, f0019: Card0019 | None) -> Entry | None:
        if f0019 is None or f0019.lane_status not in ENTRY_STATUSES:
            return None
        node = self._node_by_hex(f0019.network, f0019.station)
        if node is None:
            return None
        return Entry(
            node_id=node.node_id,
            name=node.name,
            hex=node.hex,
            lane=f0019.lane,
            time=dt.datetime.fromtimestamp(f0019.time, dt.UTC),
            vehicle_class=f0019.vehicle_class,
        )

    # -- the fee -----------------------------------------------------------------

    def quote(
        self,
        reading: Reading,
        *,
        plate: str,
        plate_color: int,
        vehicle_class: int,
        vehicle_kind: int = 0,
        axles: int | str | None = None,
        total_weight_kg: int | str | None = None,
        use_entry: bool = True,
    ) -> Quote:
        """算费 at this station for the vehicle as the collector sees it. The
        closed-road fee without the gantries' path is the minimum fee (or, with
        no entry, the farthest entry's): both need the station master.
        ``axles`` and ``total_weight_kg`` may be the text as typed: they are
        checked first (``LaneError`` naming the field), and an overweight truck
        is flagged on the quote (it still pays by class, §5)."""
        weighed = weighing(axles, total_weight_kg, vehicle_class=vehicle_class)
        station = self.station()["station"]
        entry = reading.entry.node_id if (use_entry and reading.entry) else None
        try:
            engine = self.engine()
            fee = engine.trip(
                exit=station["node_id"],
                vehicle_class=vehicle_class,
                entry=entry,
                payment=Payment.ETC,
                vehicle_kind=vehicle_kind,
                axles=weighed.axles,
                total_mass_kg=weighed.total_weight_kg,
            )
        except FeeError as error:
            raise LaneError(
                "fee_failed", gettext_noop("The fee cannot be computed: {error}"), error=str(error)
            ) from error
        specials = [p.code for p in reading.problems]
        if (plate.strip(), plate_color) != (reading.plate, reading.plate_color) or (
            reading.vehicle_class is not None and reading.vehicle_class != vehicle_class
        ):
            specials.append("mismatch")
        if fee.method is Method.EXEMPT:
            specials.append("exempt")
        if fee.method is Method.FARTHEST_ENTRY:
            specials.append("no_entry")
        needs_authorisation = fee.method in (Method.MINIMUM, Method.FARTHEST_ENTRY)
        if fee.method is Method.MINIMUM:
            specials.append("minimum_fee")
        insufficient = (
            reading.card_type == STORED_VALUE
            and not reading.card_refused
            and fee.payable_fen > reading.balance
        )
        if insufficient:
            specials.append("insufficient_balance")
        payment = FREE if fee.method is Method.EXEMPT else reading.card_type
        return Quote(
            fee=fee,
            station_name=station["name"],
            station_hex=station["hex"],
            needs_authorisation=needs_authorisation,
            special_cases=tuple(dict.fromkeys(specials)),
            insufficient_balance=insufficient,
            payment_type=payment,
            tariff_version=self._engine[0] if self._engine else None,
            axles=weighed.axles,
            total_weight_kg=weighed.total_weight_kg,
            weight_limit_kg=weighed.weight_limit_kg,
            overweight=weighed.overweight or bool(fee.overweight),
        )
