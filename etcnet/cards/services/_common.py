"""What the card services share: role and outlet checks, row locks, the unit's
audit event, and the refusals both top-up and the lifecycle make.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from etcnet.cards.errors import (
    DisputePeriod,
    TopUpPending,
    WrongState,
)
from etcnet.cards.models import (
    BalanceSettlement,
    CardUnit,
    ObuUnit,
    SettlementStatus,
    TopUp,
    TopUpStatus,
    UnitState,
)
from etcnet.core import audit
from etcnet.core.errors import Forbidden, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.issuance.models import (
    Outlet,
    OutletMembership,
)


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


def _years_later(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


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
