"""Issuing and activation: a card and OBU bound to an approved application, then
activated with the installation photo.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from etcnet.cards import devices, ledger
from etcnet.cards.errors import (
    AlreadyBound,
    NotApproved,
    NotInStock,
    VehicleMismatch,
)
from etcnet.cards.models import (
    BOUND_STATES,
    Account,
    Binding,
    BindingStatus,
    CardUnit,
    ObuUnit,
    UnitState,
)
from etcnet.cards.services._common import (
    _lock_card,
    _lock_obu,
    _outlet_of,
    _require,
    _unit_event,
    _wrong_state,
    _years_later,
)
from etcnet.core import audit
from etcnet.core.codes import CardType
from etcnet.core.errors import FieldIssue, InvalidInput, NotFound
from etcnet.core.roles import Role
from etcnet.core.validators import gettext_noop
from etcnet.issuance import images
from etcnet.issuance.models import (
    Application,
    ApplicationStatus,
    Vehicle,
    VehicleStatus,
)


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
