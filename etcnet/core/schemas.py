"""The API's error body, declared once for the OpenAPI schema.

Every error the API answers has this shape (the handlers in `etcnet.api`, a
service's typed `DomainError`, the login lockout): a stable `code`, a
`message` in the caller's language and, for bad input, one entry per field.
An endpoint lists the statuses it can answer with `errors(...)`:

    @router.get("/things/{id}", response={200: ThingOut, **errors(400, 401, 403, 404)})
"""

from __future__ import annotations

from ninja import Schema


class FieldIssueOut(Schema):
    """One problem with one input field (`field` is the name the caller sent,
    dotted into nested objects: `vehicle.seats`, `records.0.seq`)."""

    field: str
    code: str
    message: str


class ErrorOut(Schema):
    """401 unauthenticated, 403 forbidden or csrf_failed, 404 not_found,
    409 conflict (wrong state, idempotency_conflict), 429 login_locked, 400
    invalid_input with `errors` naming each field, 502 the card or OBU failed."""

    code: str
    message: str
    errors: list[FieldIssueOut]


# What each status means for every endpoint (the operation's own docstring
# says what is particular to it).
ERROR_STATUSES = (400, 401, 403, 404, 409, 422, 429, 502)


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """`{status: ErrorOut}` for an operation's `response=` declaration."""
    unknown = set(statuses) - set(ERROR_STATUSES)
    if unknown:
        raise ValueError(f"not an API error status: {sorted(unknown)}")
    return dict.fromkeys(statuses, ErrorOut)
