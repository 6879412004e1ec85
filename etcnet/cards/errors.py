"""Typed card errors with stable codes."""

from __future__ import annotations

from etcnet.core.errors import Conflict, DomainError, InvalidInput
from etcnet.core.validators import gettext_noop


class WrongState(Conflict):
    code = "wrong_state"
    template = gettext_noop("{unit} is {state}; this cannot be done in that state.")


class NotInStock(Conflict):
    code = "not_in_stock"
    template = gettext_noop("{unit} is not in the stock of outlet {outlet}.")


class AlreadyBound(Conflict):
    code = "already_bound"
    template = gettext_noop(
        "The vehicle already has a live card and OBU: one vehicle, one OBU, one card."
    )


class NotApproved(Conflict):
    code = "not_approved"
    template = gettext_noop("Only an approved application that waits for issuance can be issued.")


class VehicleMismatch(Conflict):
    code = "vehicle_mismatch"
    template = gettext_noop(
        "The OBU's vehicle file says {found}, but the vehicle is {expected}; activation refused."
    )


class CardFault(DomainError):
    """The card or OBU answered with an error status, or could not be reached."""

    status = 502
    code = "card_fault"
    template = gettext_noop(
        "The card did not complete the operation ({meaning}); nothing was changed."
    )


class MacRejected(DomainError):
    status = 422
    code = "mac_rejected"
    template = gettext_noop("The card's {what} did not verify; nothing was credited.")


class DisputePeriod(Conflict):
    code = "dispute_period"
    template = gettext_noop(
        "The fund-dispute period of card {card} ends on {date}; "
        "its balance can move only after that."
    )


class BadAmount(InvalidInput):
    code = "invalid_input"


class LoadInterrupted(DomainError):
    """The money was recorded; the card did not complete the credit."""

    status = 502
    code = "load_interrupted"
    template = gettext_noop(
        "The money is recorded but the card was not credited ({meaning}). "
        "Put the card back and retry the top-up, or refund it."
    )


class TopUpPending(Conflict):
    code = "top_up_pending"
    template = gettext_noop(
        "Card {card} has an unfinished top-up ({top_up}); retry or refund it first."
    )


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    template = gettext_noop("This idempotency key was already used for a different request.")


class PayoutDue(Conflict):
    code = "payout_due"
    template = gettext_noop("Payout {reference} is already due for this account.")


class NothingToPay(Conflict):
    code = "nothing_to_pay"
    template = gettext_noop("Account {account} has no refund payable.")


class PayoutWrongState(Conflict):
    code = "payout_state"
    template = gettext_noop("Payout {reference} is {state}; this cannot be done in that state.")
