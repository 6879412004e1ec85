"""The lifecycle: loss, suspension, replacement, cancellation with the balance
settled after the dispute period, recycling, renewal, OBU replacement and the
account's bank link.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from etcnet.cards import devices, ledger, vault
from etcnet.cards.errors import (
    CardFault,
    DisputePeriod,
    NotInStock,
)
from etcnet.cards.models import (
    BOUND_STATES,
    Account,
    BalanceSettlement,
    Binding,
    BindingStatus,
    CardUnit,
    EntryKind,
    ObuUnit,
    SettlementKind,
    SettlementStatus,
    TopUp,
    TopUpChannel,
    TopUpStatus,
    UnitKind,
    UnitState,
)
from etcnet.cards.services._common import (
    _lock_card,
    _lock_obu,
    _outlet_of,
    _refuse_if_pending,
    _refuse_in_dispute_period,
    _require,
    _unit_event,
    _wrong_state,
    _years_later,
)
from etcnet.core import audit
from etcnet.core.errors import FieldIssue, InvalidInput, NotFound
from etcnet.core.roles import Role
from etcnet.core.validators import gettext_noop
from etcnet.issuance.models import (
    Vehicle,
    VehicleStatus,
)
from etcnet.lists.models import ListEvent, ListStatus, ListType, Medium
from etcnet.lists.services import record_event
from etcnet.smartcard import ops


def _check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > 200:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "reason",
                    "too_long",
                    gettext_noop("Use at most {max} characters."),
                    {"max": 200},
                )
            ]
        )
    return reason


def _list_event(
    unit: CardUnit | ObuUnit, list_type: ListType, status: ListStatus, *, reason: str, actor: Any
) -> None:
    """The unit enters (status 1) or leaves (status 2) the status list for one type."""
    record_event(
        medium=Medium.CARD if isinstance(unit, CardUnit) else Medium.OBU,
        medium_id=unit.card_no if isinstance(unit, CardUnit) else unit.contract_no,
        list_type=list_type,
        status=status,
        reason=reason,
        actor=actor,
        issuer_id=_issuer_id(),
    )


def _mark_lost(unit: CardUnit | ObuUnit, *, reason: str, action: str, actor: Any) -> None:
    if unit.state not in (UnitState.ISSUED, UnitState.ACTIVE, UnitState.SUSPENDED):
        raise _wrong_state(unit)
    before = unit.state
    unit.state = UnitState.LOST
    unit.save(update_fields=["state", "updated_at"])
    _list_event(unit, ListType.LOST, ListStatus.IN, reason=reason or "loss reported", actor=actor)
    _unit_event(actor, unit, action, before, reason=reason)


def report_loss(card_no: str, *, reason: str = "", actor: Any) -> CardUnit:
    """挂失: effective at once — the card enters the status list (type 1).

    Allowed for an issued or active card. Audits `cards.card_reported_lost`."""
    _require(actor, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR)
    reason = _check_reason(reason)
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        _mark_lost(card, reason=reason, action="cards.card_reported_lost", actor=actor)
    return card


def listed_types(medium: Medium, medium_id: str) -> set[int]:
    """The list types a card or OBU is on now: those whose latest event is IN."""
    latest: dict[int, int] = {}
    for list_type, status in (
        ListEvent.objects.filter(medium=medium, medium_id=medium_id)
        .order_by("occurred_at", "pk")
        .values_list("list_type", "status")
    ):
        latest[list_type] = status
    return {t for t, status in latest.items() if status == ListStatus.IN}


def _lift_all(medium: Medium, medium_id: str, *, reason: str, actor: Any) -> None:
    """Takes a unit off every list type it is on (a recycled unit starts clean)."""
    for list_type in sorted(listed_types(medium, medium_id)):
        record_event(
            medium=medium,
            medium_id=medium_id,
            list_type=ListType(list_type),
            status=ListStatus.OUT,
            reason=reason,
            actor=actor,
            issuer_id=_issuer_id(),
        )


def _in_use_state(card: CardUnit) -> UnitState:
    binding = card.bindings.exclude(status=BindingStatus.ENDED).first()
    return (
        UnitState.ACTIVE if binding and binding.status == BindingStatus.ACTIVE else UnitState.ISSUED
    )


def resume(card_no: str, *, actor: Any) -> CardUnit:
    """Lifts a suspension (解除挂起): the card leaves list type 2."""
    _require(actor, Role.CENTER_OPERATOR, Role.ISSUANCE_CLERK)
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        if card.state != UnitState.SUSPENDED:
            raise _wrong_state(card)
        card.state = _in_use_state(card)
        card.save(update_fields=["state", "updated_at"])
        _list_event(
            card, ListType.SUSPENDED, ListStatus.OUT, reason="suspension lifted", actor=actor
        )
        _unit_event(actor, card, "cards.card_resumed", UnitState.SUSPENDED)
    return card


def cancel_loss_report(card_no: str, *, actor: Any) -> CardUnit:
    """解挂: the holder found the card; it leaves the list (type 1, status 2)."""
    _require(actor, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR)
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        if card.state != UnitState.LOST:
            raise _wrong_state(card)
        if ListType.SUSPENDED in listed_types(Medium.CARD, card.card_no):
            card.state = UnitState.SUSPENDED  # still suspended: only the loss is withdrawn
        else:
            card.state = _in_use_state(card)
        card.save(update_fields=["state", "updated_at"])
        _list_event(
            card, ListType.LOST, ListStatus.OUT, reason="loss report withdrawn", actor=actor
        )
        _unit_event(actor, card, "cards.card_loss_withdrawn", UnitState.LOST)
    return card


def report_obu_loss(contract_no: str, *, reason: str = "", actor: Any) -> ObuUnit:
    """OBU挂失: the OBU enters the status list at once."""
    _require(actor, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR)
    reason = _check_reason(reason)
    with transaction.atomic(durable=True):
        obu = _lock_obu(contract_no)
        _mark_lost(obu, reason=reason, action="cards.obu_reported_lost", actor=actor)
    return obu


def suspend(card_no: str, *, reason: str, actor: Any) -> CardUnit:
    """挂起 (without the card): the card enters the list as type 2."""
    _require(actor, Role.CENTER_OPERATOR, Role.ISSUANCE_CLERK)
    reason = _check_reason(reason)
    if not reason:
        raise InvalidInput(
            issues=[FieldIssue("reason", "required", gettext_noop("This field is required."))]
        )
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        if card.state not in (UnitState.ISSUED, UnitState.ACTIVE):
            raise _wrong_state(card)
        before = card.state
        card.state = UnitState.SUSPENDED
        card.save(update_fields=["state", "updated_at"])
        _list_event(card, ListType.SUSPENDED, ListStatus.IN, reason=reason, actor=actor)
        _unit_event(actor, card, "cards.card_suspended", before, reason=reason)
    return card


def replace_card(
    card_no: str,
    *,
    new_card_no: str,
    actor: Any,
    card_returned: bool = True,
    read_old_card: bool = False,
) -> Binding:
    """换卡/补卡: the old card is cancelled (and stays on the list if it was lost),
    a new card from this outlet's stock takes its place in a new binding.

    The old card missing (`read_old_card` false): its balance moves to the new
    card once the fund-dispute period ends (`settle_due`). The old card handed
    in and read at the counter (`read_old_card`): its own purse is the truth of
    what is left, and that moves at once — a pending load of the new card
    (channel `balance_transfer`) that the counter loads onto it now
    (`retry_top_up`), as after a settlement. What the center holds beyond the
    purse is debits the card logged that have not arrived yet: only that much
    is held for the dispute period and netted against them as before. A purse
    holding more than the center knows moves only what the center holds. A
    read that fails or finds another card refuses the replacement (field
    `old_card`), changing nothing.
    Audits `cards.card_replaced`, `cards.card_issued`, `cards.binding_created`,
    and `cards.balance_transferred` for a read card."""
    _require(actor, Role.ISSUANCE_CLERK)
    outlet = _outlet_of(actor)
    with transaction.atomic(durable=True):
        old, new = sorted([_lock_card(card_no), _lock_card(new_card_no)], key=lambda c: c.pk)
        if old.card_no != card_no:
            old, new = new, old
        if old.state not in BOUND_STATES:
            raise _wrong_state(old)
        _refuse_if_pending(old)
        _refuse_in_dispute_period(old)
        if new.state != UnitState.IN_STOCK or new.location_id != outlet.pk:
            raise NotInStock(params={"unit": str(new), "outlet": outlet.code})
        purse = _read_handed_in(old) if read_old_card else None
        if purse is not None:
            card_returned = True  # read at the counter: the clerk holds it
        binding = Binding.objects.select_for_update().get(
            card=old, status__in=[BindingStatus.ISSUED, BindingStatus.ACTIVE]
        )
        vehicle = binding.vehicle
        now = timezone.now()
        old_before = old.state
        binding.status = BindingStatus.ENDED
        binding.ended_at = now
        binding.ended_reason = "card replaced"
        binding.save(update_fields=["status", "ended_at", "ended_reason"])
        _cancel_card(
            old,
            actor,
            reason="replaced",
            on_list=not card_returned and old_before != UnitState.LOST,
        )
        new.card_type = old.card_type
        new.account = old.account
        new.is_master = old.is_master
        old.is_master = False
        old.save(update_fields=["is_master"])
        new.expiry_date = _years_later(timezone.localdate(), settings.ETCNET_CARD_VALID_YEARS)
        new.state = UnitState.ACTIVE if binding.activated_at else UnitState.ISSUED
        new.issued_at = now
        new.save()
        replacement = Binding.objects.create(
            vehicle=vehicle,
            card=new,
            obu=binding.obu,
            status=BindingStatus.ACTIVE if binding.activated_at else BindingStatus.ISSUED,
            created_at=now,
            activated_at=now if binding.activated_at else None,
        )
        if new.is_stored_value:
            ledger.purse_account(new)
            if purse is not None:
                _transfer_at_once(old, new, purse, actor=actor)
            old.refresh_from_db(fields=["shadow_balance_fen"])
            if purse is None or old.shadow_balance_fen > 0:
                _hold_balance(old, SettlementKind.TRANSFER, to_card=new, actor=actor)
        devices.personalize_card(new, vehicle=vehicle, customer=vehicle.customer)
        _unit_event(actor, old, "cards.card_replaced", old_before, replaced_by=new.card_no)
        _unit_event(actor, new, "cards.card_issued", UnitState.IN_STOCK, replaces=old.card_no)
        audit.record(
            actor=actor,
            action="cards.binding_created",
            subject=replacement,
            after={"vehicle": vehicle.pk, "card": new.card_no, "obu": binding.obu.contract_no},
        )
    return replacement


def _read_handed_in(old: CardUnit) -> tuple[ops.CardReading, list[Any]]:
    """The old card read at the counter, with its purse log: it must answer
    and be this card."""
    try:
        reading = devices.read_card(old)
        log = devices.read_log(old)
    except CardFault as fault:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "old_card",
                    "unreadable",
                    gettext_noop("The old card could not be read ({meaning})."),
                    {"meaning": fault.params.get("meaning", "")},
                )
            ]
        ) from fault
    if reading.card_no != old.card_no:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "old_card",
                    "wrong_card",
                    gettext_noop("The card read is {found}, not the card {expected} replaced."),
                    {"found": reading.card_no or "-", "expected": old.card_no},
                )
            ]
        )
    return reading, log


def _transfer_at_once(
    old: CardUnit, new: CardUnit, read: tuple[ops.CardReading, list[Any]], *, actor: Any
) -> TopUp | None:
    """Moves what the handed-in card's purse holds (no more than the center
    holds for it) to a pending load of the new card; the rest of the shadow
    balance is the card's logged debits the center has not received yet."""
    reading, log = read
    old.refresh_from_db(fields=["shadow_balance_fen"])
    shadow = old.shadow_balance_fen
    moved = min(reading.balance, max(shadow, 0))
    audit.record(
        actor=actor,
        action="cards.balance_transferred",
        subject=old,
        after={
            "to_card": new.card_no,
            "purse_fen": reading.balance,
            "shadow_fen": shadow,
            "moved_fen": moved,
            "late_debits_fen": max(shadow - moved, 0),
            "log": [
                {
                    "atc": r.atc,
                    "type": r.trans_type,
                    "amount_fen": r.amount,
                    "terminal": r.terminal.hex(),
                }
                for r in log
            ],
        },
    )
    if moved <= 0:
        return None
    entry = ledger.post(
        EntryKind.BALANCE_TRANSFER,
        ledger.lines(
            (ledger.purse_account(old), moved),
            (ledger.account(ledger.LOADS_PENDING), -moved),
        ),
        actor=actor,
        memo=f"{old.card_no} handed in: its purse to {new.card_no}",
        idempotency_key=f"transfer:read:{old.card_no}",
    )
    return TopUp.objects.create(
        card=new,
        amount_fen=moved,
        channel=TopUpChannel.BALANCE_TRANSFER,
        status=TopUpStatus.PENDING,
        terminal_no=settings.ETCNET_COUNTER_TERMINAL_NO,
        received_entry=entry,
        outlet=new.location,
        created_by=actor,
        created_at=timezone.now(),
        idempotency_key=f"transfer:read:{old.card_no}",
        request_hash="",
    )


def _cancel_card(card: CardUnit, actor: Any, *, reason: str, on_list: bool) -> None:
    card.state = UnitState.CANCELLED
    card.save(update_fields=["state", "updated_at"])
    if on_list:
        # The card may still be out there: it stays refused at the lanes.
        _list_event(
            card, ListType.CANCELLED_WITHOUT_CARD, ListStatus.IN, reason=reason, actor=actor
        )


def _hold_balance(
    card: CardUnit, kind: SettlementKind, *, to_card: CardUnit | None, actor: Any
) -> None:
    """Moves a cancelled card's shadow balance out of its purse into the held
    account until the fund-dispute period ends.

    Only what the purse holds moves: a shadow balance already below zero (a
    TAC-verified debit the center did not expect, dispute 14) holds nothing and
    stays negative on the old purse — the counter never makes a negative
    balance, nor a negative hold, by itself. Debits that arrive later are
    netted against the hold by `settle_due`."""
    card.refresh_from_db(fields=["shadow_balance_fen"])
    amount = max(card.shadow_balance_fen, 0)
    if amount > 0:
        ledger.post(
            EntryKind.BALANCE_TRANSFER if kind == SettlementKind.TRANSFER else EntryKind.REFUND_DUE,
            ledger.lines(
                (ledger.purse_account(card), amount),
                (ledger.account(ledger.SETTLEMENTS_HELD), -amount),
            ),
            actor=actor,
            memo=f"{card.card_no} held for the dispute period",
        )
    now = timezone.now()
    BalanceSettlement.objects.create(
        kind=kind,
        status=SettlementStatus.WAITING,
        from_card=card,
        to_card=to_card,
        amount_fen=amount,
        due_at=now + dt.timedelta(days=settings.ETCNET_FUND_DISPUTE_DAYS),
        created_at=now,
    )


def cancel(card_no: str, *, obu_returned: bool, actor: Any, card_returned: bool = True) -> CardUnit:
    """销户: the card is cancelled, the binding ends, the OBU comes back (or goes
    on the list when it does not), and the balance is refunded after the
    fund-dispute period. Audits `cards.card_cancelled`."""
    _require(actor, Role.ISSUANCE_CLERK)
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        if card.state not in BOUND_STATES:
            raise _wrong_state(card)
        _refuse_if_pending(card)
        _refuse_in_dispute_period(card)
        before = card.state
        binding = (
            Binding.objects.select_for_update()
            .filter(card=card)
            .exclude(status=BindingStatus.ENDED)
            .first()
        )
        now = timezone.now()
        # A card handed in cannot be used again: only a card kept by the
        # customer is listed as cancelled without card (a lost one stays listed).
        _cancel_card(
            card,
            actor,
            reason="account cancelled",
            on_list=not card_returned and before != UnitState.LOST,
        )
        if binding is not None:
            binding.status = BindingStatus.ENDED
            binding.ended_at = now
            binding.ended_reason = "cancelled"
            binding.save(update_fields=["status", "ended_at", "ended_reason"])
            obu = ObuUnit.objects.select_for_update().get(pk=binding.obu_id)
            obu_before = obu.state
            obu.state = UnitState.CANCELLED
            obu.save(update_fields=["state", "updated_at"])
            if not obu_returned:
                _list_event(
                    obu,
                    ListType.CANCELLED_WITHOUT_CARD,
                    ListStatus.IN,
                    reason="cancelled, OBU not returned",
                    actor=actor,
                )
            _unit_event(actor, obu, "cards.obu_cancelled", obu_before, returned=obu_returned)
            vehicle = Vehicle.objects.select_for_update().get(pk=binding.vehicle_id)
            vehicle_before = vehicle.status
            vehicle.status = VehicleStatus.CANCELLED
            vehicle.save(update_fields=["status", "updated_at"])
            audit.record(
                actor=actor,
                action="issuance.vehicle_cancelled",
                subject=vehicle,
                before={"status": vehicle_before},
                after={"status": vehicle.status},
            )
        if card.is_stored_value:
            _hold_balance(card, SettlementKind.REFUND, to_card=None, actor=actor)
        _unit_event(actor, card, "cards.card_cancelled", before)
    return card


def settle_due(*, now: dt.datetime | None = None, actor: Any = None) -> int:
    """Batch job: settlements whose fund-dispute period has ended. A transfer
    becomes a pending top-up of the replacement card (channel
    `balance_transfer`), which the counter loads onto the card through the
    normal MAC2/TAC path; a refund becomes payable. Safe to run again: each
    settlement is done once.

    The old card's own log is the truth: purchases it made before it was
    cancelled may be uploaded after the hold, and are posted to its purse
    whatever its state, running its shadow balance below zero. What the card
    really held is therefore the hold minus those late debits, and only that
    moves: the held money first covers the old purse's shortfall (held → old
    purse, back to zero), then the rest goes on. Late debits larger than the
    hold take all of it and leave the old purse negative — visible to `ledger
    check` readers and the disputes queue (dispute 14). Audits
    `cards.balance_settled` with the held, netted, moved and still uncovered
    amounts."""
    now = now or timezone.now()
    done = 0
    for settlement_id, card_id in BalanceSettlement.objects.filter(
        status=SettlementStatus.WAITING, due_at__lte=now
    ).values_list("pk", "from_card_id"):
        with transaction.atomic(durable=True):
            # The card first, as every service locks it (record_purchase too):
            # no late debit can land between the netting and the move.
            old = CardUnit.objects.select_for_update().get(pk=card_id)
            settlement = BalanceSettlement.objects.select_for_update().get(pk=settlement_id)
            if settlement.status != SettlementStatus.WAITING:
                continue
            moved = _settle(settlement, old, now=now, actor=actor)
            settlement.status = SettlementStatus.DONE
            settlement.done_at = now
            settlement.save(update_fields=["status", "done_at"])
            old.refresh_from_db(fields=["shadow_balance_fen"])
            audit.record(
                actor=actor,
                action="cards.balance_settled",
                subject=settlement,
                after={
                    "kind": settlement.kind,
                    "amount_fen": settlement.amount_fen,
                    "late_debits_fen": settlement.amount_fen - moved,
                    "moved_fen": moved,
                    "uncovered_fen": max(-old.shadow_balance_fen, 0),
                },
            )
            done += 1
    return done


def _settle(settlement: BalanceSettlement, old: CardUnit, *, now: dt.datetime, actor: Any) -> int:
    """Nets the old purse's late debits against the hold, then moves the rest to
    the replacement card's pending load or to refunds payable; the amount moved."""
    transfer = settlement.kind == SettlementKind.TRANSFER
    kind = EntryKind.BALANCE_TRANSFER if transfer else EntryKind.REFUND_DUE
    held = ledger.account(ledger.SETTLEMENTS_HELD)
    late = min(max(-old.shadow_balance_fen, 0), settlement.amount_fen)
    if late > 0:
        ledger.post(
            kind,
            ledger.lines((held, late), (ledger.purse_account(old), -late)),
            actor=actor,
            memo=f"settlement {settlement.pk}: covers {old.card_no}'s late debits",
            idempotency_key=f"settlement:{settlement.pk}:late-debits",
        )
    rest = settlement.amount_fen - late
    if rest <= 0:
        return 0
    entry = ledger.post(
        kind,
        ledger.lines(
            (held, rest),
            (ledger.account(ledger.LOADS_PENDING if transfer else ledger.REFUNDS_PAYABLE), -rest),
        ),
        actor=actor,
        memo=f"settlement {settlement.pk}",
        idempotency_key=f"settlement:{settlement.pk}",
    )
    if transfer and settlement.to_card is not None:
        TopUp.objects.create(
            card=settlement.to_card,
            amount_fen=rest,
            channel=TopUpChannel.BALANCE_TRANSFER,
            status=TopUpStatus.PENDING,
            terminal_no=settings.ETCNET_COUNTER_TERMINAL_NO,
            received_entry=entry,
            outlet=settlement.to_card.location,
            created_by=None,
            created_at=now,
            idempotency_key=f"transfer:{settlement.pk}",
            request_hash="",
        )
    return rest


def recycle(kind: UnitKind, serial: str, *, actor: Any) -> CardUnit | ObuUnit:
    """A returned, cancelled card or OBU is reformatted to blank and goes back
    into this outlet's stock. Audits `cards.unit_recycled`."""
    _require(actor, Role.ISSUANCE_CLERK)
    outlet = _outlet_of(actor)
    with transaction.atomic(durable=True):
        unit: CardUnit | ObuUnit = (
            _lock_card(serial) if kind == UnitKind.CARD else _lock_obu(serial)
        )
        if unit.state != UnitState.CANCELLED:
            raise _wrong_state(unit)
        if isinstance(unit, CardUnit):
            settlement = getattr(unit, "settlement", None)
            if settlement is not None and settlement.status == SettlementStatus.WAITING:
                raise DisputePeriod(
                    params={
                        "card": unit.card_no,
                        "date": timezone.localtime(settlement.due_at).date().isoformat(),
                    }
                )
            devices.format_card(unit)
            _lift_all(Medium.CARD, unit.card_no, reason="recycled", actor=actor)
            unit.card_type = None
            unit.account = None
            unit.is_master = False
            unit.expiry_date = None
            unit.issued_at = None
        else:
            devices.format_obu(unit)
            _lift_all(Medium.OBU, unit.contract_no, reason="recycled", actor=actor)
            unit.activated_at = None
        unit.state = UnitState.IN_STOCK
        unit.location = outlet
        unit.save()
        _unit_event(actor, unit, "cards.unit_recycled", UnitState.CANCELLED, outlet=outlet.code)
    return unit


def _issuer_id() -> str:
    try:
        return vault.master().issuer_id.hex().upper()
    except Exception:  # the list records the issuer when the vault knows it
        return ""


def new_idempotency_key() -> str:
    return secrets.token_hex(16)


def renew(card_no: str, *, actor: Any) -> CardUnit:
    """Renewal of an expiring card: a new expiry date written to 0015 at offset
    0x18 with line protection, and recorded. Audits `cards.card_renewed`."""
    _require(actor, Role.ISSUANCE_CLERK)
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        if card.state not in (UnitState.ISSUED, UnitState.ACTIVE):
            raise _wrong_state(card)
        before = card.expiry_date
        card.expiry_date = _years_later(
            max(timezone.localdate(), card.expiry_date or timezone.localdate()),
            settings.ETCNET_CARD_VALID_YEARS,
        )
        card.save(update_fields=["expiry_date", "updated_at"])
        devices.write_expiry(card)
        audit.record(
            actor=actor,
            action="cards.card_renewed",
            subject=card,
            before={"expiry_date": before},
            after={"expiry_date": card.expiry_date},
        )
    return card


def replace_obu(contract_no: str, *, new_contract_no: str, actor: Any) -> Binding:
    """OBU replacement: the old OBU is cancelled (and stays listed if it is not
    returned), a new OBU from this outlet's stock is personalised for the vehicle
    and must be activated again. Audits `cards.obu_replaced`, `cards.obu_issued`."""
    _require(actor, Role.ISSUANCE_CLERK)
    outlet = _outlet_of(actor)
    with transaction.atomic(durable=True):
        units = sorted([_lock_obu(contract_no), _lock_obu(new_contract_no)], key=lambda u: u.pk)
        old = next(u for u in units if u.contract_no == contract_no)
        new = next(u for u in units if u.contract_no == new_contract_no)
        if old.state not in BOUND_STATES:
            raise _wrong_state(old)
        if new.state != UnitState.IN_STOCK or new.location_id != outlet.pk:
            raise NotInStock(params={"unit": str(new), "outlet": outlet.code})
        binding = (
            Binding.objects.select_for_update()
            .select_related("vehicle", "card")
            .get(obu=old, status__in=[BindingStatus.ISSUED, BindingStatus.ACTIVE])
        )
        now = timezone.now()
        binding.status = BindingStatus.ENDED
        binding.ended_at = now
        binding.ended_reason = "OBU replaced"
        binding.save(update_fields=["status", "ended_at", "ended_reason"])
        old_before = old.state
        old.state = UnitState.CANCELLED
        old.save(update_fields=["state", "updated_at"])
        if old_before != UnitState.LOST:
            _list_event(
                old,
                ListType.CANCELLED_WITHOUT_CARD,
                ListStatus.IN,
                reason="OBU replaced",
                actor=actor,
            )
        new.state = UnitState.ISSUED
        new.save(update_fields=["state", "updated_at"])
        replacement = Binding.objects.create(
            vehicle=binding.vehicle,
            card=binding.card,
            obu=new,
            status=BindingStatus.ISSUED,
            created_at=now,
        )
        devices.personalize_obu(new, vehicle=binding.vehicle)
        _unit_event(actor, old, "cards.obu_replaced", old_before, replaced_by=new.contract_no)
        _unit_event(actor, new, "cards.obu_issued", UnitState.IN_STOCK, replaces=old.contract_no)
        audit.record(
            actor=actor,
            action="cards.binding_created",
            subject=replacement,
            after={
                "vehicle": binding.vehicle_id,
                "card": binding.card.card_no,
                "obu": new.contract_no,
            },
        )
    return replacement


def link_bank_account(
    account_number: str, *, bank_name: str, bank_account_no: str, actor: Any
) -> Account:
    """Links a debit account (记账卡) to the bank account that settles its tolls,
    with the signed agreement's date. Audits `cards.bank_account_linked`."""
    _require(actor, Role.ISSUANCE_CLERK)
    issues = []
    if not bank_name.strip():
        issues.append(FieldIssue("bank_name", "required", gettext_noop("This field is required.")))
    number = bank_account_no.replace(" ", "")
    if not (number.isdigit() and 8 <= len(number) <= 32):
        issues.append(
            FieldIssue(
                "bank_account_no",
                "bad_bank_account",
                gettext_noop("A bank account number has 8 to 32 digits."),
            )
        )
    if issues:
        raise InvalidInput(issues=issues)
    with transaction.atomic(durable=True):
        account = Account.objects.select_for_update().filter(number=account_number).first()
        if account is None:
            raise NotFound(gettext_noop("Account not found."))
        before = {"bank_name": account.bank_name, "bank_account_no": account.bank_account_no}
        account.bank_name = bank_name.strip()
        account.bank_account_no = number
        account.agreement_signed_at = timezone.now()
        account.save(update_fields=["bank_name", "bank_account_no", "agreement_signed_at"])
        audit.record(
            actor=actor,
            action="cards.bank_account_linked",
            subject=account,
            before=before,
            after={"bank_name": account.bank_name, "bank_account_no": account.bank_account_no},
        )
    return account
