"""Inventory: batches received into stock and units moved between outlets."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from etcnet.cards import devices
from etcnet.cards.errors import (
    NotInStock,
)
from etcnet.cards.models import (
    Batch,
    CardUnit,
    ObuUnit,
    UnitKind,
    UnitState,
)
from etcnet.cards.services._common import (
    _outlet_of,
    _require,
)
from etcnet.core import audit
from etcnet.core.errors import FieldIssue, InvalidInput, NotFound
from etcnet.core.roles import Role
from etcnet.core.validators import gettext_noop
from etcnet.issuance.models import (
    Outlet,
)
from etcnet.smartcard.crypto import Alg


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
