"""Reads for the card pages and API."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from etcnet.cards.models import (
    Account,
    Binding,
    BindingStatus,
    CardUnit,
    ObuUnit,
    Posting,
    TopUp,
    UnitState,
)
from etcnet.core.errors import NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.issuance.models import Outlet, OutletMembership


def outlet_of(user: Any) -> Outlet | None:
    membership = OutletMembership.objects.filter(user=user).select_related("outlet").first()
    return membership.outlet if membership else None


def stock_summary(outlet: Outlet) -> dict[str, int]:
    cards = CardUnit.objects.filter(location=outlet, state=UnitState.IN_STOCK).count()
    obus = ObuUnit.objects.filter(location=outlet, state=UnitState.IN_STOCK).count()
    return {"cards": cards, "obus": obus}


def state_counts(outlet: Outlet) -> dict[str, dict[str, int]]:
    def counts(model: Any) -> dict[str, int]:
        rows = model.objects.filter(location=outlet).values("state").annotate(n=Count("pk"))
        return {row["state"]: row["n"] for row in rows}

    return {"cards": counts(CardUnit), "obus": counts(ObuUnit)}


def stock_cards(outlet: Outlet, limit: int = 200) -> QuerySet[CardUnit]:
    return CardUnit.objects.filter(location=outlet, state=UnitState.IN_STOCK).order_by("card_no")[
        :limit
    ]


def stock_obus(outlet: Outlet, limit: int = 200) -> QuerySet[ObuUnit]:
    return ObuUnit.objects.filter(location=outlet, state=UnitState.IN_STOCK).order_by(
        "contract_no"
    )[:limit]


def find_card(card_no: str, *, viewer: Any) -> CardUnit:
    """A card the viewer may see. Any outlet serves a customer's card (top-up,
    loss, replacement, cancellation, as a customer may walk into any outlet of
    the issuer), so a clerk sees every card once assigned to an outlet; stock
    operations stay bound to the clerk's own outlet."""
    qs = CardUnit.objects.select_related("account__customer", "location")
    if not has_role(viewer, Role.CENTER_OPERATOR, Role.AUDITOR):
        outlet = outlet_of(viewer)
        if outlet is None:
            qs = qs.none()
    card = qs.filter(card_no=card_no).first()
    if card is None:
        raise NotFound(gettext_noop("Card {card} not found."), params={"card": card_no})
    return card


def live_binding(card: CardUnit) -> Binding | None:
    return (
        Binding.objects.select_related("vehicle", "obu")
        .filter(card=card)
        .exclude(status=BindingStatus.ENDED)
        .first()
    )


def account_cards(account: Account) -> QuerySet[CardUnit]:
    return account.cards.order_by("-is_master", "issued_at")


def purse_movements(card: CardUnit, limit: int = 20) -> QuerySet[Posting]:
    return (
        Posting.objects.filter(account__card=card)
        .select_related("entry")
        .order_by("-entry__created_at", "-pk")[:limit]
    )


def account_movements(account: Account, limit: int = 30) -> QuerySet[Posting]:
    """The latest postings on the account's purses and its debit receivable."""
    return (
        Posting.objects.filter(
            Q(account__card__account=account) | Q(account__code=f"receivable:{account.number}")
        )
        .select_related("entry", "account__card")
        .order_by("-entry__created_at", "-pk")[:limit]
    )


def recent_top_ups(card: CardUnit, limit: int = 10) -> QuerySet[TopUp]:
    return card.top_ups.order_by("-created_at")[:limit]


def search_cards(q: str, *, viewer: Any) -> QuerySet[CardUnit]:
    """Cards by whole card number, plate, or account number."""
    q = q.strip().upper()
    if not q:
        return CardUnit.objects.none()
    match = Q(card_no=q) | Q(account__number=q) | Q(bindings__vehicle__plate=q)
    return CardUnit.objects.filter(match).exclude(state=UnitState.IN_STOCK).distinct()[:50]


def numbers_for_plate(plate: str) -> list[tuple[str, str]]:
    """Every card and OBU ever bound to a plate: (medium, number), newest first."""
    rows = (
        Binding.objects.filter(vehicle__plate=plate.strip().upper())
        .select_related("card", "obu")
        .order_by("-created_at")
    )
    found: list[tuple[str, str]] = []
    for binding in rows:
        for pair in (("card", binding.card.card_no), ("obu", binding.obu.contract_no)):
            if pair not in found:
                found.append(pair)
    return found
