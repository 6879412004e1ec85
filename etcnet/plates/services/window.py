"""Registration at the vehicle office's window (窗口注册, seed 004).

Anyone may register at the window instead of online. It is also where a person
whose ID number someone else registered online (a squatter: the site checks
the ID number's form, not who typed it) gets it back: the clerk sees the
original ID card, registers its owner and the squatting account is cancelled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, Forbidden
from etcnet.core.masking import mask_phone
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.plates.models import (
    HOLDING,
    AccountStatus,
    Blacklist,
    PlateAccount,
    Selection,
    VehicleOffice,
)
from etcnet.plates.services.accounts import (
    cancel_account,
    check_new_account,
    check_phone_free,
    check_type_allowed,
    create_account,
)

CLAIMED = "claimed_at_window"


@dataclass(frozen=True)
class WindowRegistration:
    account: PlateAccount
    cancelled: PlateAccount | None  # the squatting account, if there was one
    voided: list[str]  # plates it held, back in the pool
    lifted: int  # its blacklistings lifted from the ID number


def clerk_office(actor: Any) -> VehicleOffice:
    """The active office the clerk is assigned to (Forbidden otherwise)."""
    office = (
        VehicleOffice.objects.filter(clerks=getattr(actor, "pk", None), is_active=True)
        .order_by("code")
        .first()
    )
    if not has_role(actor, Role.VEHICLE_OFFICE_CLERK) or office is None:
        raise Forbidden()
    return office


def register_at_window(
    *,
    user_type: str,
    id_type: int | str,
    id_number: str,
    name: str,
    phone: str,
    city: str,
    password: str,
    password_again: str,
    id_card_seen: bool,
    actor: Any,
    now: dt.datetime | None = None,
) -> WindowRegistration:
    """The clerk registers the person in front of the window, whose original ID
    card the clerk has seen (``id_card_seen``) and who signs the agreement there.

    If an active account already holds the ID number with another mobile number,
    it was registered by someone else: it is cancelled (reason
    ``claimed_at_window``, no registration ban: the ID is its owner's), its
    session ends, a number it holds (locked or pre-selected) is voided and
    returns to the pool, and the blacklistings it earned are lifted from the ID
    number (they punish its owner otherwise). A vehicle already registered
    through it stays registered. Refused, changing nothing, when a field is
    invalid, the card was not seen, the account holding the ID has this very
    mobile number (it is the person's own: log in), another account has the
    mobile number, or the local records do not fit the type.

    Audits ``plates.account_claimed`` on the squatting account,
    ``plates.blacklist_lifted`` per lifted entry and ``plates.account_registered``
    (by the clerk, with the office) for the new one.
    """
    office = clerk_office(actor)
    extra = []
    if not id_card_seen:
        extra.append(
            FieldIssue(
                "id_card_seen",
                "required",
                gettext_noop("Check the original ID card before registering at the window."),
            )
        )
    new = check_new_account(
        user_type=user_type,
        id_type=id_type,
        id_number=id_number,
        name=name,
        phone=phone,
        city=city,
        password=password,
        password_again=password_again,
        extra=extra,
    )
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        squatter = (
            PlateAccount.objects.select_for_update()
            .select_related("user")
            .filter(status=AccountStatus.ACTIVE, id_type=new.id_type, id_number=new.id_number)
            .first()
        )
        if squatter is not None and squatter.phone == new.phone:
            raise Conflict(
                gettext_noop(
                    "This ID number already has an account with this mobile number: "
                    "it is the person's own; they log in with it."
                ),
                code="own_account",
            )
        check_phone_free(new.phone)
        check_type_allowed(new.user_type, new.id_type, new.id_number, new.phone, now)
        voided: list[str] = []
        lifted = 0
        if squatter is not None:
            voided = list(
                Selection.objects.filter(account=squatter, status__in=HOLDING)
                .order_by("pk")
                .values_list("plate", flat=True)
            )
            lifted = _lift_blacklist(squatter, now=now, actor=actor)
            cancel_account(
                squatter,
                reason=CLAIMED,
                now=now,
                actor=actor,
                ban=False,
                action="plates.account_claimed",
                audit_extra={
                    "office": office.code,
                    "squatter_phone": mask_phone(squatter.phone),
                    "voided": voided,
                    "blacklist_lifted": lifted,
                },
            )
        account = create_account(
            new,
            now=now,
            actor=actor,
            audit_extra={
                "at_window": office.code,
                "claimed_from": squatter.pk if squatter else None,
            },
        )
    return WindowRegistration(account, squatter, voided, lifted)


def _lift_blacklist(squatter: PlateAccount, *, now: dt.datetime, actor: Any) -> int:
    lifted = 0
    for entry in Blacklist.objects.select_for_update().filter(account=squatter, ends_at__gt=now):
        before = entry.ends_at
        entry.ends_at = max(now, entry.starts_at)
        entry.save(update_fields=["ends_at"])
        audit.record(
            actor=actor,
            action="plates.blacklist_lifted",
            subject=entry,
            before={"ends_at": before},
            after={"ends_at": entry.ends_at, "reason": CLAIMED},
        )
        lifted += 1
    return lifted
