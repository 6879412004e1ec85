"""Card, OBU and account services: inventory, issuing, activation, top-up and the
lifecycle (loss, suspension, replacement, cancellation, recycling, renewal).

Each top-level service is one durable transaction that locks the rows it
changes in primary-key order, checks the state allows the change (refusing
with `WrongState` and a reason otherwise), writes its audit events and its
status-list events inside that transaction, and moves money only through
balanced ledger entries. Card I/O happens while the rows are locked, so a
failed write rolls the whole change back; writes to a card are idempotent
(personalising twice writes the same files).

Top-up is the exception that needs two transactions, because the center must
record the money before it lets the card credit itself: (1) record the money
and hand the card MAC2, (2) on the card's TAC move the money onto the purse.
A card pulled out in between leaves a pending top-up that a retry finishes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from etcnet.cards import devices, ledger, vault
from etcnet.cards.errors import (
    AlreadyBound,
    CardFault,
    DisputePeriod,
    IdempotencyConflict,
    LoadInterrupted,
    MacRejected,
    NotApproved,
    NotInStock,
    TopUpPending,
    VehicleMismatch,
    WrongState,
)
from etcnet.cards.models import (
    BOUND_STATES,
    Account,
    BalanceSettlement,
    Batch,
    Binding,
    BindingStatus,
    CardUnit,
    EntryKind,
    JournalEntry,
    ObuUnit,
    SettlementKind,
    SettlementStatus,
    TopUp,
    TopUpChannel,
    TopUpStatus,
    UnitKind,
    UnitState,
)
from etcnet.core import audit
from etcnet.core.codes import CardType
from etcnet.core.errors import FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.issuance import images
from etcnet.issuance.models import (
    Application,
    ApplicationStatus,
    Outlet,
    OutletMembership,
    Vehicle,
    VehicleStatus,
)
from etcnet.lists.models import ListEvent, ListStatus, ListType, Medium
from etcnet.lists.services import record_event
from etcnet.smartcard.crypto import Alg

MAX_TOP_UP_FEN = 5_000_000  # 50,000 yuan per load; a purse holds at most 4 bytes of fen anyway


def _require(actor: Any, *roles: Role) -> None:
    if not has_role(actor, *roles):
        raise Forbidden()


def _outlet_of(actor: Any) -> Outlet:
    membership = OutletMembership.objects.filter(user=actor).select_related("outlet").first()
    if membership is None or not membership.outlet.is_active:
        raise Forbidden(
            gettext_noop("You are not assigned to an active service outlet."), code="no_outlet"
        )
    return membership.outlet


def _label(state: str) -> str:
    return str(UnitState(state).label)


def _wrong_state(unit: CardUnit | ObuUnit) -> WrongState:
    return WrongState(params={"unit": str(unit), "state": _label(unit.state)})


def _lock_card(card_no: str) -> CardUnit:
    try:
        return CardUnit.objects.select_for_update().get(card_no=card_no)
    except CardUnit.DoesNotExist:
        raise NotFound(gettext_noop("Card {card} not found."), params={"card": card_no}) from None


def _lock_obu(contract_no: str) -> ObuUnit:
    try:
        return ObuUnit.objects.select_for_update().get(contract_no=contract_no)
    except ObuUnit.DoesNotExist:
        raise NotFound(gettext_noop("OBU {obu} not found."), params={"obu": contract_no}) from None


def _unit_event(
    actor: Any, unit: CardUnit | ObuUnit, action: str, before: str, **after: Any
) -> None:
    audit.record(
        actor=actor,
        action=action,
        subject=unit,
        before={"state": before},
        after={"state": unit.state, **after},
    )


# --- inventory -------------------------------------------------------------------


def receive_batch(
    *,
    kind: UnitKind,
    reference: str,
    serials: list[str],
    emulated: bool,
    alg: Alg = Alg.TDES,
    actor: Any,
) -> Batch:
    """Blank cards or OBUs received into the actor's outlet (or warehouse).

    Serials are 20-digit card numbers or 16-digit OBU contract serials. With
    `emulated`, a blank software card/OBU state file is made for each unit (its
    keys derived by the vault). Audits `cards.batch_received` and
    `cards.unit_received` per unit."""
    _require(actor, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR)
    outlet = _outlet_of(actor)
    width = 20 if kind == UnitKind.CARD else 16
    bad = [s for s in serials if len(s) != width or not s.isdigit()]
    if not serials or bad or len(set(serials)) != len(serials):
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "serials",
                    "bad_serials",
                    gettext_noop("Give distinct serials of {width} digits; not valid: {bad}."),
                    {"width": width, "bad": ", ".join(bad[:5]) or "—"},
                )
            ]
        )
    model: Any = CardUnit if kind == UnitKind.CARD else ObuUnit
    field = "card_no" if kind == UnitKind.CARD else "contract_no"
    taken = list(model.objects.filter(**{f"{field}__in": serials}).values_list(field, flat=True))
    if taken:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "serials",
                    "serial_taken",
                    gettext_noop("Already in inventory: {serials}."),
                    {"serials": ", ".join(sorted(taken)[:5])},
                )
            ]
        )
    made: list[str] = []
    try:
        with transaction.atomic(durable=True):
            try:
                batch = Batch.objects.create(
                    kind=kind,
                    reference=reference,
                    location=outlet,
                    quantity=len(serials),
                    received_at=timezone.now(),
                    received_by=actor,
                )
            except IntegrityError:
                raise InvalidInput(
                    issues=[
                        FieldIssue(
                            "reference",
                            "batch_exists",
                            gettext_noop("A batch with this reference was already received."),
                        )
                    ]
                ) from None
            units: list[Any] = []
            for serial in serials:
                emulator_file = ""
                if emulated:
                    if kind == UnitKind.CARD:
                        emulator_file = devices.create_blank_card(serial, alg)
                    else:
                        emulator_file = devices.create_blank_obu(serial)
                    made.append(emulator_file)
                if kind == UnitKind.CARD:
                    units.append(
                        CardUnit(
                            card_no=serial,
                            batch=batch,
                            location=outlet,
                            alg=alg.value,
                            emulator_file=emulator_file,
                        )
                    )
                else:
                    units.append(
                        ObuUnit(
                            contract_no=serial,
                            batch=batch,
                            location=outlet,
                            emulator_file=emulator_file,
                        )
                    )
            model.objects.bulk_create(units)
            audit.record(
                actor=actor,
                action="cards.batch_received",
                subject=batch,
                after={
                    "kind": kind,
                    "reference": reference,
                    "quantity": len(serials),
                    "outlet": outlet.code,
                },
            )
            for unit in model.objects.filter(batch=batch).order_by("pk"):
                audit.record(
                    actor=actor,
                    action="cards.unit_received",
                    subject=unit,
                    after={"state": unit.state, "outlet": outlet.code, "batch": reference},
                )
    except BaseException:
        devices.remove(made)
        raise
    return batch


def move_units(*, kind: UnitKind, serials: list[str], to_outlet: str, actor: Any) -> int:
    """Moves in-stock units from the actor's outlet to another outlet.

    Audits `cards.unit_moved` per unit."""
    _require(actor, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR)
    here = _outlet_of(actor)
    target = Outlet.objects.filter(code=to_outlet, is_active=True).first()
    if target is None:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "to_outlet", "invalid_choice", gettext_noop("Choose one of the listed values.")
                )
            ]
        )
    model: Any = CardUnit if kind == UnitKind.CARD else ObuUnit
    field = "card_no" if kind == UnitKind.CARD else "contract_no"
    with transaction.atomic(durable=True):
        units = list(
            model.objects.select_for_update().filter(**{f"{field}__in": serials}).order_by("pk")
        )
        found = {getattr(u, field) for u in units}
        for serial in serials:
            if serial not in found:
                raise NotFound(gettext_noop("{unit} not found."), params={"unit": serial})
        for unit in units:
            if unit.state != UnitState.IN_STOCK or unit.location_id != here.pk:
                raise NotInStock(params={"unit": str(unit), "outlet": here.code})
        for unit in units:
            unit.location = target
            unit.save(update_fields=["location", "updated_at"])
            audit.record(
                actor=actor,
                action="cards.unit_moved",
                subject=unit,
                before={"outlet": here.code},
                after={"outlet": target.code},
            )
    return len(units)


# --- issuing and activation --------------------------------------------------------


def _account_for(customer: Any, actor: Any) -> Account:
    account = Account.objects.filter(customer=customer).first()
    if account is None:
        account = Account.objects.create(customer=customer, number=f"A{customer.pk:011d}")
        audit.record(
            actor=actor,
            action="cards.account_opened",
            subject=account,
            after={"customer": customer.pk, "number": account.number},
        )
    return account


def issue(
    application_id: int,
    *,
    card_no: str,
    contract_no: str,
    card_type: int,
    actor: Any,
) -> Binding:
    """用户卡注册 and OBU issuance for an approved application.

    The application must be one of the clerk's outlet (another outlet's is not
    found) and the card and the OBU in that outlet's stock. The card is
    personalised (0015 with the vehicle, 0016 with the holder) and the OBU gets
    its system and vehicle files, with MACs from the vault; then vehicle, OBU
    and card are bound (one of each among live bindings). The first card of an
    account is its master card. Audits `cards.card_issued`, `cards.obu_issued`,
    `cards.binding_created` (and `cards.account_opened` for a new account)."""
    _require(actor, Role.ISSUANCE_CLERK)
    outlet = _outlet_of(actor)
    try:
        kind = CardType.from_code(int(card_type))
    except (TypeError, ValueError):
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "card_type", "invalid_choice", gettext_noop("Choose one of the listed values.")
                )
            ]
        ) from None
    with transaction.atomic(durable=True):
        try:
            # Another outlet's application is not found, as on every outlet-bound
            # object: a clerk may not even learn that it exists.
            application = Application.objects.select_for_update().get(
                pk=application_id, outlet=outlet
            )
        except Application.DoesNotExist:
            raise NotFound(gettext_noop("Application not found.")) from None
        if application.status != ApplicationStatus.APPROVED or application.vehicle_id is None:
            raise NotApproved()
        vehicle = Vehicle.objects.select_for_update().get(pk=application.vehicle_id)
        if (
            vehicle.status != VehicleStatus.AWAITING_ISSUANCE
            or Binding.objects.filter(vehicle=vehicle).exclude(status=BindingStatus.ENDED).exists()
        ):
            raise AlreadyBound()
        card = _lock_card(card_no)
        obu = _lock_obu(contract_no)
        for unit in (card, obu):
            if unit.state != UnitState.IN_STOCK or unit.location_id != outlet.pk:
                raise NotInStock(params={"unit": str(unit), "outlet": outlet.code})
        customer = vehicle.customer
        account = _account_for(customer, actor)
        now = timezone.now()
        card.card_type = int(kind)
        card.account = account
        card.is_master = not account.cards.filter(state__in=BOUND_STATES).exists()
        card.expiry_date = _years_later(timezone.localdate(), settings.ETCNET_CARD_VALID_YEARS)
        card.state = UnitState.ISSUED
        card.issued_at = now
        card.save()
        obu.state = UnitState.ISSUED
        obu.save()
        try:
            binding = Binding.objects.create(
                vehicle=vehicle, card=card, obu=obu, status=BindingStatus.ISSUED, created_at=now
            )
        except IntegrityError:
            raise AlreadyBound() from None
        if card.is_stored_value:
            ledger.purse_account(card)
        # The devices last: any refusal above has left them untouched.
        devices.personalize_card(card, vehicle=vehicle, customer=customer)
        devices.personalize_obu(obu, vehicle=vehicle)
        _unit_event(
            actor,
            card,
            "cards.card_issued",
            UnitState.IN_STOCK,
            card_type=card.card_type,
            vehicle=vehicle.pk,
            account=account.number,
            master=card.is_master,
        )
        _unit_event(actor, obu, "cards.obu_issued", UnitState.IN_STOCK, vehicle=vehicle.pk)
        audit.record(
            actor=actor,
            action="cards.binding_created",
            subject=binding,
            after={"vehicle": vehicle.pk, "card": card.card_no, "obu": obu.contract_no},
        )
    return binding


def _years_later(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def activate(binding_id: int, *, photo: UploadedFile, actor: Any) -> Binding:
    """Activates the OBU after the clerk confirms the installation with a photo.

    The OBU's vehicle file is read back and must match the vehicle (plate,
    colour, class); then the tamper/activation flag is written. The binding,
    the card, the OBU and the vehicle become active. Audits `cards.obu_activated`."""
    _require(actor, Role.ISSUANCE_CLERK)
    prepared = images.prepare(photo)
    if isinstance(prepared, FieldIssue):
        raise InvalidInput(
            issues=[FieldIssue("photo", prepared.code, prepared.template, prepared.params)]
        )
    stored: list[str] = []
    try:
        with transaction.atomic(durable=True):
            try:
                binding = Binding.objects.select_for_update().get(pk=binding_id)
            except Binding.DoesNotExist:
                raise NotFound(gettext_noop("Binding not found.")) from None
            vehicle = Vehicle.objects.select_for_update().get(pk=binding.vehicle_id)
            card = CardUnit.objects.select_for_update().get(pk=binding.card_id)
            obu = ObuUnit.objects.select_for_update().get(pk=binding.obu_id)
            if binding.status != BindingStatus.ISSUED or obu.state != UnitState.ISSUED:
                raise _wrong_state(obu)
            if card.state not in (UnitState.ISSUED, UnitState.ACTIVE):
                # A lost or suspended card stays what it is (and listed).
                raise _wrong_state(card)
            found = devices.obu_vehicle(obu)
            expected = (vehicle.plate, vehicle.plate_color, vehicle.toll_class)
            if found != expected:
                raise VehicleMismatch(
                    params={"found": _describe(found), "expected": _describe(expected)}
                )
            devices.activate_obu(obu)
            now = timezone.now()
            obu.installation_photo.save(
                f"obu-{obu.contract_no}.{prepared.extension}", prepared.content, save=False
            )
            stored.append(obu.installation_photo.name)
            obu.state = UnitState.ACTIVE
            obu.activated_at = now
            obu.save()
            card_before = card.state
            card.state = UnitState.ACTIVE
            card.save(update_fields=["state", "updated_at"])
            binding.status = BindingStatus.ACTIVE
            binding.activated_at = now
            binding.save(update_fields=["status", "activated_at"])
            vehicle.status = VehicleStatus.ACTIVE
            vehicle.save(update_fields=["status", "updated_at"])
            _unit_event(
                actor, obu, "cards.obu_activated", UnitState.ISSUED, photo_sha256=prepared.sha256
            )
            _unit_event(actor, card, "cards.card_activated", card_before)
            audit.record(
                actor=actor,
                action="issuance.vehicle_activated",
                subject=vehicle,
                before={"status": VehicleStatus.AWAITING_ISSUANCE},
                after={"status": vehicle.status},
            )
    except BaseException:
        images.delete_files(stored)
        raise
    return binding


def _describe(found: tuple[str, int, int]) -> str:
    plate, color, vehicle_class = found
    return f"{plate}_{color} / {vehicle_class}"


# --- top-up (圈存) ------------------------------------------------------------------

_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,60}$")
LOAD_TYPE = 0x02


def _request_hash(card_no: str, amount_fen: int, channel: str) -> str:
    return hashlib.sha256(f"{card_no}|{amount_fen}|{channel}".encode()).hexdigest()


def _replay(existing: TopUp, request_hash: str) -> TopUp:
    """A repeated request: the first result, or 409 when the key was used for
    another request (STYLE: same key + other payload is a conflict)."""
    if existing.request_hash != request_hash:
        raise IdempotencyConflict()
    return existing


def top_up(
    card_no: str,
    *,
    amount_fen: int,
    channel: str,
    idempotency_key: str,
    actor: Any,
) -> TopUp:
    """Loads money onto a stored-value card at the counter.

    1. The card proves itself (MAC1 verified by the vault); the money is
       recorded (`top_up_received`: channel → loads pending) and committed.
    2. Only then the vault computes MAC2 and the card credits its purse.
    3. The card's TAC is verified; the money moves onto the purse
       (`top_up_loaded`) and the shadow balance rises.

    A wrong MAC1 records nothing. A card that fails after step 1 leaves a
    pending top-up (`load_interrupted`): the money is safe in loads pending
    and `retry_top_up` finishes it or `refund_pending_top_up` gives it back.
    While a card has a pending top-up no other top-up starts on it, so the
    card's online counter tells exactly which load it executed. A TAC that
    does not verify credits nothing. The idempotency key (1–60 characters)
    returns the first result for the same request and 409 for another.
    Audits `cards.top_up_received` and `cards.top_up_loaded`."""
    _require(actor, Role.ISSUANCE_CLERK)
    outlet = _outlet_of(actor)
    key = idempotency_key or ""
    request_hash = _request_hash(card_no, amount_fen, channel)
    issues = []
    if not _KEY.match(key):
        issues.append(
            FieldIssue(
                "idempotency_key",
                "bad_idempotency_key",
                gettext_noop("Send an idempotency key of 1 to 60 letters, digits or . _ : -."),
            )
        )
    else:
        existing = TopUp.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return _replay(existing, request_hash)
    if not isinstance(amount_fen, int) or not 0 < amount_fen <= MAX_TOP_UP_FEN:
        issues.append(
            FieldIssue(
                "amount",
                "out_of_range",
                gettext_noop("Enter an amount from 0.01 to {max} yuan."),
                {"max": MAX_TOP_UP_FEN // 100},
            )
        )
    if channel not in (TopUpChannel.CASH, TopUpChannel.BANK_TRANSFER, TopUpChannel.MOBILE_PAYMENT):
        issues.append(
            FieldIssue(
                "channel", "invalid_choice", gettext_noop("Choose one of the listed values.")
            )
        )
    if issues:
        raise InvalidInput(issues=issues)
    channel_code = {
        TopUpChannel.CASH: ledger.cash_code(outlet.code),
        TopUpChannel.BANK_TRANSFER: ledger.BANK,
        TopUpChannel.MOBILE_PAYMENT: ledger.MOBILE,
    }[TopUpChannel(channel)]
    terminal = settings.ETCNET_COUNTER_TERMINAL_NO

    # Step 1: the card's MAC1, then the money, in one transaction. The same
    # transport carries the whole load: the card keeps its load session only
    # while nothing else is sent to it.
    top: TopUp | None = None
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        _require_loadable(card)
        _refuse_if_pending(card)
        transport = devices.open_unit(card)
        init = devices.init_load(transport, card, amount_fen, terminal)
        _check_mac1(card, init, amount_fen, terminal)
        try:
            with transaction.atomic():
                entry = ledger.post(
                    EntryKind.TOP_UP_RECEIVED,
                    ledger.lines(
                        (ledger.account(channel_code), amount_fen),
                        (ledger.account(ledger.LOADS_PENDING), -amount_fen),
                    ),
                    actor=actor,
                    memo=f"{card.card_no} {channel}",
                    idempotency_key=f"topup:{key}:received",
                )
                top = TopUp.objects.create(
                    card=card,
                    amount_fen=amount_fen,
                    channel=channel,
                    status=TopUpStatus.PENDING,
                    terminal_no=terminal,
                    balance_before_fen=init.balance,
                    online_atc=init.online_atc,
                    received_entry=entry,
                    outlet=outlet,
                    created_by=actor,
                    created_at=timezone.now(),
                    idempotency_key=key,
                    request_hash=request_hash,
                )
        except IntegrityError:
            top = None  # the same key won a race a moment ago: answer with its result
        else:
            audit.record(
                actor=actor,
                action="cards.top_up_received",
                subject=card,
                after={"top_up": top.pk, "amount_fen": amount_fen, "channel": channel},
            )
    if top is None:
        return _replay(TopUp.objects.get(idempotency_key=key), request_hash)
    # Steps 2 and 3.
    return _load_onto_card(top.pk, transport, init, actor)


def retry_top_up(top_up_id: int, *, actor: Any) -> TopUp:
    """Finishes a pending top-up — one interrupted at the counter, or a balance
    moved from a replaced card — through the normal MAC1/MAC2/TAC path.

    If the card's online counter has moved since the top-up began, the card
    executed a load meanwhile; since no other top-up can start while one is
    pending, its transaction log must show exactly this one (type 02, this
    amount, this terminal, this counter) — then the top-up is confirmed on
    that evidence; otherwise it stays pending for an operator."""
    _require(actor, Role.ISSUANCE_CLERK)
    with transaction.atomic(durable=True):
        top = _lock_top_up(top_up_id)
        if top.status != TopUpStatus.PENDING:
            return top
        card = CardUnit.objects.select_for_update().get(pk=top.card_id)
        if card.state not in (UnitState.ISSUED, UnitState.ACTIVE):
            raise _wrong_state(card)
        transport = devices.open_unit(card)
        init = devices.init_load(transport, card, top.amount_fen, top.terminal_no)
        _check_mac1(card, init, top.amount_fen, top.terminal_no)
        if top.online_atc is not None and init.online_atc != top.online_atc:
            evidence = _load_in_log(card, top)
            if evidence is None:
                raise CardFault(
                    params={
                        "meaning": "the card's online counter moved without this top-up; "
                        "reconcile it from the card's log"
                    }
                )
            return _confirm(top.pk, "", actor, evidence=evidence)
        if top.online_atc is None:  # a balance transfer's first load
            top.online_atc = init.online_atc
            top.balance_before_fen = init.balance
            top.save(update_fields=["online_atc", "balance_before_fen"])
        return _credit(top, transport, init, actor)


def _lock_top_up(top_up_id: int) -> TopUp:
    try:
        return TopUp.objects.select_for_update().get(pk=top_up_id)
    except TopUp.DoesNotExist:
        raise NotFound(gettext_noop("Top-up not found.")) from None


def _load_in_log(card: CardUnit, top: TopUp) -> dict[str, Any] | None:
    for record in devices.read_log(card):
        if (
            record.trans_type == LOAD_TYPE
            and record.atc == top.online_atc
            and record.amount == top.amount_fen
            and record.terminal.hex().upper() == top.terminal_no.upper()
        ):
            return {"atc": record.atc, "amount": record.amount, "when": record.when.isoformat()}
    return None


def _refuse_in_dispute_period(card: CardUnit) -> None:
    """A card still waiting for a replaced card's balance may not be replaced or
    cancelled before the fund-dispute period ends: the balance would have no card
    to go to."""
    waiting = BalanceSettlement.objects.filter(
        to_card=card, status=SettlementStatus.WAITING
    ).first()
    if waiting is not None:
        raise DisputePeriod(
            params={
                "card": waiting.from_card.card_no,
                "date": timezone.localtime(waiting.due_at).date().isoformat(),
            }
        )


def _refuse_if_pending(card: CardUnit) -> None:
    pending = TopUp.objects.filter(card=card, status=TopUpStatus.PENDING).first()
    if pending is not None:
        raise TopUpPending(params={"card": card.card_no, "top_up": pending.pk})


def _require_loadable(card: CardUnit) -> None:
    if card.card_type != CardType.STORED_VALUE:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "card",
                    "not_stored_value",
                    gettext_noop(
                        "Only a stored-value card (储值卡) is topped up; "
                        "a debit card is settled by its bank."
                    ),
                )
            ]
        )
    if card.state not in (UnitState.ISSUED, UnitState.ACTIVE):
        raise _wrong_state(card)


def _check_mac1(card: CardUnit, init: Any, amount_fen: int, terminal: str) -> None:
    ok = vault.verify_load_mac1(
        Alg(card.alg),
        card.internal_no,
        random=init.random,
        online_atc=init.online_atc,
        balance_before=init.balance,
        amount=amount_fen,
        terminal_no=bytes.fromhex(terminal),
        mac1=init.mac1,
    )
    if not ok:
        raise MacRejected(params={"what": "MAC1"})


def _load_onto_card(top_up_id: int, transport: Any, init: Any, actor: Any) -> TopUp:
    """MAC2, the card's credit and its TAC, under the top-up's row lock: a retry
    running at the same time waits, then finds the top-up done and leaves the
    card alone — the card is credited once."""
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        top = _lock_top_up(top_up_id)
        if top.status != TopUpStatus.PENDING:
            return top
        return _credit(top, transport, init, actor)


def _credit(top: TopUp, transport: Any, init: Any, actor: Any) -> TopUp:
    card = top.card
    when = timezone.localtime().replace(microsecond=0)
    mac2 = vault.load_mac2(
        Alg(card.alg),
        card.internal_no,
        random=init.random,
        online_atc=init.online_atc,
        amount=top.amount_fen,
        terminal_no=bytes.fromhex(top.terminal_no),
        when=when,
    )
    try:
        tac = devices.finish_load(transport, mac2, when)
    except CardFault as error:
        # The money is recorded and safe in loads_pending; the card was not
        # credited (or its answer was lost): the top-up stays pending.
        raise LoadInterrupted(params={"meaning": error.params.get("meaning", "")}) from error
    verified = vault.verify_load_tac(
        Alg(card.alg),
        card.internal_no,
        balance_after=init.balance + top.amount_fen,
        online_atc=init.online_atc,
        amount=top.amount_fen,
        terminal_no=bytes.fromhex(top.terminal_no),
        when=when,
        tac=tac,
    )
    if not verified:
        raise MacRejected(params={"what": "TAC"})
    return _confirm(top.pk, tac.hex().upper(), actor)


def _confirm(top_up_id: int, tac: str, actor: Any, evidence: dict[str, Any] | None = None) -> TopUp:
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        top = TopUp.objects.select_for_update().get(pk=top_up_id)
        if top.status != TopUpStatus.PENDING:
            return top
        card = CardUnit.objects.select_for_update().get(pk=top.card_id)
        entry = ledger.post(
            EntryKind.TOP_UP_LOADED,
            ledger.lines(
                (ledger.account(ledger.LOADS_PENDING), top.amount_fen),
                (ledger.purse_account(card), -top.amount_fen),
            ),
            actor=actor,
            memo=card.card_no,
            idempotency_key=f"topup:{top.pk}:loaded",
        )
        top.status = TopUpStatus.LOADED
        top.tac = tac
        top.loaded_at = timezone.now()
        top.loaded_entry = entry
        top.save()
        card.refresh_from_db(fields=["shadow_balance_fen"])
        audit.record(
            actor=actor,
            action="cards.top_up_loaded",
            subject=card,
            before={"balance_fen": card.shadow_balance_fen - top.amount_fen},
            after={
                "balance_fen": card.shadow_balance_fen,
                "top_up": top.pk,
                "tac": tac,
                **({"confirmed_from_card_log": evidence} if evidence else {}),
            },
        )
    return top


def refund_pending_top_up(top_up_id: int, *, actor: Any) -> TopUp:
    """Gives back the money of a pending top-up the card never took: under the
    top-up's lock, the card's online counter must not have moved since the
    top-up began. Balance transfers are not refunded here (they are the
    customer's money waiting for the new card). Audits `cards.top_up_refunded`."""
    _require(actor, Role.ISSUANCE_CLERK)
    with transaction.atomic(durable=True):
        top = _lock_top_up(top_up_id)
        if top.status != TopUpStatus.PENDING or top.channel == TopUpChannel.BALANCE_TRANSFER:
            raise WrongState(
                params={"unit": f"top-up {top.pk}", "state": str(top.get_status_display())}
            )
        card = CardUnit.objects.select_for_update().get(pk=top.card_id)
        transport = devices.open_unit(card)
        init = devices.init_load(transport, card, top.amount_fen, top.terminal_no)
        _check_mac1(card, init, top.amount_fen, top.terminal_no)
        if init.online_atc != top.online_atc:
            raise CardFault(
                params={"meaning": "the card's online counter moved: it took a load; retry instead"}
            )
        ledger.reverse(top.received_entry, actor=actor, memo=f"top-up {top.pk} refunded")
        top.status = TopUpStatus.REFUNDED
        top.save(update_fields=["status"])
        audit.record(
            actor=actor,
            action="cards.top_up_refunded",
            subject=card,
            after={"top_up": top.pk, "amount_fen": top.amount_fen},
        )
    return top


# --- lifecycle ----------------------------------------------------------------------


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
    card_no: str, *, new_card_no: str, actor: Any, card_returned: bool = True
) -> Binding:
    """换卡/补卡: the old card is cancelled (and stays on the list if it was lost),
    a new card from this outlet's stock takes its place in a new binding, and the
    old balance moves to the new card once the fund-dispute period ends.
    Audits `cards.card_replaced`, `cards.card_issued`, `cards.binding_created`."""
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
    account until the fund-dispute period ends."""
    card.refresh_from_db(fields=["shadow_balance_fen"])
    amount = card.shadow_balance_fen
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
    settlement is done once."""
    now = now or timezone.now()
    done = 0
    for settlement_id in BalanceSettlement.objects.filter(
        status=SettlementStatus.WAITING, due_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            settlement = BalanceSettlement.objects.select_for_update().get(pk=settlement_id)
            if settlement.status != SettlementStatus.WAITING:
                continue
            transfer = settlement.kind == SettlementKind.TRANSFER
            if settlement.amount_fen > 0:
                entry = ledger.post(
                    EntryKind.BALANCE_TRANSFER if transfer else EntryKind.REFUND_DUE,
                    ledger.lines(
                        (ledger.account(ledger.SETTLEMENTS_HELD), settlement.amount_fen),
                        (
                            ledger.account(
                                ledger.LOADS_PENDING if transfer else ledger.REFUNDS_PAYABLE
                            ),
                            -settlement.amount_fen,
                        ),
                    ),
                    actor=actor,
                    memo=f"settlement {settlement.pk}",
                    idempotency_key=f"settlement:{settlement.pk}",
                )
                if transfer and settlement.to_card is not None:
                    TopUp.objects.create(
                        card=settlement.to_card,
                        amount_fen=settlement.amount_fen,
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
            settlement.status = SettlementStatus.DONE
            settlement.done_at = now
            settlement.save(update_fields=["status", "done_at"])
            audit.record(
                actor=actor,
                action="cards.balance_settled",
                subject=settlement,
                after={"kind": settlement.kind, "amount_fen": settlement.amount_fen},
            )
            done += 1
    return done


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


# --- uploaded purchases -------------------------------------------------------------


def record_purchase(
    card_no: str,
    *,
    amount_fen: int,
    trans_type: int,
    terminal_no: str,
    terminal_seq: int,
    when: dt.datetime,
    tac: str,
    actor: Any,
) -> JournalEntry | None:
    """A purchase a terminal uploaded: the card's TAC is verified by the vault
    first (no TAC, no debit — a card pulled out before 8054 left none); then a
    stored-value card's purse pays the toll (`purse → tolls payable`), a debit
    card's account owes it (`receivable → tolls payable`, settled by the bank).
    Idempotent by (terminal, terminal sequence): an upload repeated returns the
    first entry. Audits `cards.purchase_recorded`."""
    key = f"purchase:{terminal_no}:{terminal_seq}"
    try:
        tac_bytes = bytes.fromhex(tac)
        terminal = bytes.fromhex(terminal_no)
    except ValueError:
        tac_bytes, terminal = b"", b""
    if len(tac_bytes) != 4 or len(terminal) != 6 or not 0 <= amount_fen <= 0xFFFFFFFF:
        raise InvalidInput(
            issues=[FieldIssue("tac", "invalid", gettext_noop("This value is not valid."))]
        )
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        if card.card_type is None:
            raise _wrong_state(card)
        if not vault.verify_purchase_tac(
            Alg(card.alg),
            card.internal_no,
            amount=amount_fen,
            trans_type=trans_type,
            terminal_no=terminal,
            terminal_seq=terminal_seq.to_bytes(4, "big"),
            when=when,
            tac=tac_bytes,
        ):
            raise MacRejected(params={"what": "TAC"})
        # Only after the TAC: a repeated upload finds its entry, a forged one never does.
        existing = JournalEntry.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return existing
        if card.is_stored_value:
            payer = ledger.purse_account(card)
        else:
            payer = ledger.account(
                ledger.receivable_code(card.account.number if card.account else card.card_no)
            )
        entry: JournalEntry | None = None
        if amount_fen > 0:
            entry = ledger.post(
                EntryKind.PURCHASE,
                ledger.lines(
                    (payer, amount_fen), (ledger.account(ledger.TOLLS_PAYABLE), -amount_fen)
                ),
                actor=actor,
                memo=f"{card.card_no} {terminal_no}:{terminal_seq}",
                idempotency_key=key,
            )
        # A debit card's zero-amount composite purchase only proves the passage;
        # clearing posts its toll from the exit record.
        audit.record(
            actor=actor,
            action="cards.purchase_recorded",
            subject=card,
            after={"amount_fen": amount_fen, "terminal": terminal_no, "seq": terminal_seq},
        )
    return entry
