"""The API's error body, declared once for the OpenAPI schema.

Every error the API answers has this shape (the handlers in `etcnet.api`, a
service's typed `DomainError`, the login lockout): a stable `code`, a
`message` in the caller's language and, for bad input, one entry per field.
An endpoint lists the statuses it can answer with `errors(...)`:

    @router.get("/things/{id}", response={200: ThingOut, **errors(400, 401, 403, 404)})
"""

from __future__ import annotations

import datetime as dt

from ninja import Schema

from etcnet.core.errors import FieldIssue
from etcnet.core.validators import gettext_noop


class FieldIssueOut(Schema):
    """One problem with one input field (`field` is the name the caller sent,
    dotted into nested objects: `vehicle.seats`, `records.0.seq`)."""

    field: str
    code: str
    message: str


class ErrorOut(Schema):
    """Every error: a stable `code`, a `message` in the caller's language and,
    for bad input, one entry of `errors` per field. 400 invalid_input (and a
    rule's own code), 401 unauthenticated, 403 forbidden, csrf_failed or
    login_refused, 404 not_found, 409 a state that forbids it (wrong_state,
    idempotency_conflict…), 422 mac_rejected, 429 login_locked, 502 card_fault
    or load_interrupted (the card or OBU did not complete it)."""

    code: str
    message: str
    errors: list[FieldIssueOut]


# The error statuses an operation may declare (docs/api.md says what each
# means; the operation's docstring what is particular to it).
ERROR_STATUSES = (400, 401, 403, 404, 409, 422, 429, 502)


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """`{status: ErrorOut}` for an operation's `response=` declaration."""
    unknown = set(statuses) - set(ERROR_STATUSES)
    if unknown:
        raise ValueError(f"not an API error status: {sorted(unknown)}")
    return dict.fromkeys(statuses, ErrorOut)


# Dates and times the API accepts: any real one, and none so far out that
# converting it to UTC or local time, or a day past it, leaves Python's range
# (which answered 500).
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2999, 12, 31)


def date_issue(field: str, value: dt.date) -> FieldIssue | None:
    """The problem with a date or datetime outside EARLIEST..LATEST, if any."""
    day = value.date() if isinstance(value, dt.datetime) else value
    if EARLIEST <= day <= LATEST:
        return None
    return FieldIssue(
        field,
        "out_of_range",
        gettext_noop("Enter a value from {min} to {max}."),
        {"min": EARLIEST.isoformat(), "max": LATEST.isoformat()},
    )
