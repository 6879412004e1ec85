"""Steps 1 to 3: the notice, the vehicle (VIN and plate kind), the owner's contact."""

from __future__ import annotations

import datetime as dt
from typing import Any

from etcnet.core.errors import FieldIssue, InvalidInput
from etcnet.core.validators import check_vin, gettext_noop
from etcnet.plates.flow.session import Context, run
from etcnet.plates.models import PlateKind, Selection, SelectionSession, SelectionStatus, Step


def accept_notice(*, actor: Any, token: str, now: dt.datetime | None = None) -> SelectionSession:
    def body(ctx: Context) -> SelectionSession:
        ctx.session.step = Step.VIN
        ctx.session.save(update_fields=["step"])
        return ctx.session

    return run(actor, token, (Step.NOTICE,), body, now)


def enter_vehicle(
    *, actor: Any, token: str, vin: str, kind: str, now: dt.datetime | None = None
) -> SelectionSession:
    """Step 2: the VIN on the vehicle's certificate (车辆识别代号) and the plate
    kind. A vehicle that holds or has registered a pre-selected number may not
    select another."""

    def body(ctx: Context) -> SelectionSession:
        checked = check_vin(vin or "")
        issues = [FieldIssue.from_issue("vin", issue) for issue in checked.errors]
        if kind not in PlateKind.values:
            issues.append(FieldIssue("kind", "required", gettext_noop("Choose a plate kind.")))
        if issues:
            raise InvalidInput(issues=issues)
        normal = checked.normalized or ""
        taken = Selection.objects.filter(
            vin=normal,
            status__in=[SelectionStatus.LOCKED, SelectionStatus.PRESELECTED, "registered"],
        ).first()
        if taken is not None:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "vin",
                        "vin_has_number",
                        gettext_noop("This vehicle already has the number {plate}."),
                        {"plate": taken.plate},
                    )
                ]
            )
        ctx.session.vin = normal
        ctx.session.kind = kind
        ctx.session.step = Step.CONTACT
        ctx.session.save(update_fields=["vin", "kind", "step"])
        return ctx.session

    # Not at step 4: draws are counted per vehicle, so the VIN is fixed once
    # numbers may be drawn.
    return run(actor, token, (Step.VIN, Step.CONTACT), body, now)


def enter_contact(
    *, actor: Any, token: str, address: str, postal_code: str, now: dt.datetime | None = None
) -> SelectionSession:
    """Step 3: the owner's contact information. The owner is the user (name and
    mobile number come from the account); the address is required."""

    def body(ctx: Context) -> SelectionSession:
        issues = []
        address_text = (address or "").strip()
        code = (postal_code or "").strip()
        if not 5 <= len(address_text) <= 120:
            issues.append(
                FieldIssue(
                    "address", "address", gettext_noop("Give the address (5 to 120 characters).")
                )
            )
        if code and not (len(code) == 6 and code.isascii() and code.isdigit()):
            issues.append(
                FieldIssue(
                    "postal_code", "postal_code", gettext_noop("A postal code has 6 digits.")
                )
            )
        if issues:
            raise InvalidInput(issues=issues)
        ctx.session.owner_address = address_text
        ctx.session.postal_code = code
        ctx.session.step = Step.CHOOSE
        ctx.session.save(update_fields=["owner_address", "postal_code", "step"])
        return ctx.session

    return run(actor, token, (Step.CONTACT, Step.CHOOSE), body, now)
