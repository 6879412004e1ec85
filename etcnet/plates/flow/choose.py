"""Step 4: the self-composed window on the virtual keyboard (「验证」, the
submission when the window closes) or random draws, and the lock."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, Forbidden, InvalidInput
from etcnet.core.validators import gettext_noop
from etcnet.plates import domain, selectors, services
from etcnet.plates.flow.session import AfterCommit, Context, end_session, release_held, run
from etcnet.plates.flow.sms import send_code
from etcnet.plates.models import (
    Attempt,
    AttemptKind,
    BlacklistReason,
    NumberStatus,
    PoolNumber,
    Selection,
    SelectionMode,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
    Step,
)


def _remaining(ctx: Context) -> selectors.Remaining:
    return selectors.remaining(ctx.account, vin=ctx.session.vin, now=ctx.now, config=ctx.config)


def _count(ctx: Context, kind: AttemptKind, serial: str, outcome: str) -> None:
    Attempt.objects.create(
        account=ctx.account,
        session=ctx.session,
        kind=kind,
        day=selectors.local_now(ctx.now).date(),
        vin=ctx.session.vin,
        serial=serial,
        outcome=outcome,
        at=ctx.now,
    )


def open_window(*, actor: Any, token: str, now: dt.datetime | None = None) -> SelectionSession:
    """Opens the self-composed window (90 seconds by default). Reloading the page
    keeps the window that is open; a new one opens only after it closed."""

    def body(ctx: Context) -> SelectionSession:
        session = ctx.session
        # A window still open is kept (a reload); one that closed without a
        # submission (the user left the page) is replaced by a new one.
        if session.window_closes_at and ctx.now < session.window_closes_at:
            return session
        if _remaining(ctx).locks < 1:
            raise Forbidden(
                gettext_noop(
                    "No verify-and-lock attempts are left today; try a random number instead."
                ),
                code="locks_exhausted",
            )
        session.window_opened_at = ctx.now
        session.window_closes_at = ctx.now + dt.timedelta(seconds=ctx.config.window_seconds)
        session.save(update_fields=["window_opened_at", "window_closes_at"])
        return session

    return run(actor, token, (Step.CHOOSE,), body, now)


def _window_open(ctx: Context) -> None:
    closes = ctx.session.window_closes_at
    if closes is None or ctx.now >= closes:
        raise Conflict(gettext_noop("The self-composed window is not open."), code="window_closed")


def _serial(ctx: Context, serial: str) -> str:
    text = (serial or "").strip().upper()
    issues = domain.check_serial(domain.PlateKind(ctx.session.kind), text)
    if issues:
        raise InvalidInput(issues=[FieldIssue.from_issue("serial", issue) for issue in issues])
    return text


def keys(
    *, actor: Any, token: str, prefix: str, now: dt.datetime | None = None
) -> list[dict[str, object]]:
    """The keyboard of the next position after ``prefix``: this session's key
    order, each key enabled only if it still leads to an available number."""

    def body(ctx: Context) -> list[dict[str, object]]:
        _window_open(ctx)
        text = (prefix or "").strip().upper()
        alphabets = domain.POSITION_ALPHABETS[domain.PlateKind(ctx.session.kind)]
        if len(text) > len(alphabets) or any(
            c not in allowed for c, allowed in zip(text, alphabets, strict=False)
        ):
            raise InvalidInput(
                issues=[FieldIssue("prefix", "prefix", gettext_noop("Not a start of a number."))]
            )
        return selectors.keyboard(ctx.session, text)

    return run(actor, token, (Step.CHOOSE,), body, now)


@dataclass(frozen=True)
class Verified:
    serial: str
    available: bool
    remaining: selectors.Remaining


def verify(*, actor: Any, token: str, serial: str, now: dt.datetime | None = None) -> Verified:
    """「验证」: is the composed number available? Counts one verification of the
    day (a malformed number is refused without counting)."""

    def body(ctx: Context) -> Verified:
        _window_open(ctx)
        text = _serial(ctx, serial)
        if _remaining(ctx).verifications < 1:
            raise Forbidden(
                gettext_noop("No verifications are left today."), code="verifications_exhausted"
            )
        available = selectors.available_numbers(ctx.session).filter(serial=text).exists()
        _count(ctx, AttemptKind.VERIFY, text, "available" if available else "unavailable")
        return Verified(text, available, _remaining(ctx))

    return run(actor, token, (Step.CHOOSE,), body, now)


def submit(*, actor: Any, token: str, serial: str, now: dt.datetime | None = None) -> Selection:
    """The window's submission (「验证并锁定」), made by the page when the window
    closes. Before the close: the selection is void and the user blacklisted.
    Within the grace after it: one lock attempt of the day is counted and the
    number locked if it is still available. Later: the window lapsed."""

    def body(ctx: Context) -> Selection:
        session = ctx.session
        if session.window_closes_at is None:
            raise Conflict(
                gettext_noop("The self-composed window is not open."), code="window_closed"
            )
        state = domain.window_state(
            ctx.now,
            session.window_closes_at,
            grace=dt.timedelta(seconds=ctx.config.window_grace_seconds),
        )
        if state is domain.WindowState.EARLY:
            _void_for_tampering(ctx, serial)
        session.window_opened_at = session.window_closes_at = None
        session.save(update_fields=["window_opened_at", "window_closes_at"])
        if state is domain.WindowState.LATE:
            raise AfterCommit(
                Conflict(
                    gettext_noop("The window closed long ago; open a new one."),
                    code="window_lapsed",
                )
            )
        if not (serial or "").strip():
            raise AfterCommit(
                InvalidInput(
                    issues=[
                        FieldIssue(
                            "serial",
                            "empty",
                            gettext_noop("No number was composed in the window."),
                        )
                    ]
                )
            )
        try:
            text = _serial(ctx, serial)
        except InvalidInput as exc:
            raise AfterCommit(exc) from None
        if _remaining(ctx).locks < 1:
            raise AfterCommit(
                Forbidden(
                    gettext_noop("No verify-and-lock attempts are left today."),
                    code="locks_exhausted",
                )
            )
        selection = _lock(ctx, text, SelectionMode.SELF_COMPOSED)
        _count(ctx, AttemptKind.LOCK, text, "locked" if selection else "unavailable")
        if selection is None:
            raise AfterCommit(_unavailable(text, _remaining(ctx).locks))
        return selection

    return run(actor, token, (Step.CHOOSE,), body, now)


def _void_for_tampering(ctx: Context, serial: str) -> None:
    _count(ctx, AttemptKind.LOCK, (serial or "")[:6], "early_submission")
    release_held(ctx.session, SelectionStatus.VOIDED, "early_submission", ctx.now, ctx.actor)
    end_session(ctx.session, SessionStatus.VOIDED, "early_submission", ctx.now)
    audit.record(
        actor=ctx.actor,
        action="plates.session_voided",
        subject=ctx.session,
        after={"reason": "early_submission"},
    )
    services.blacklist(
        ctx.account, reason=BlacklistReason.EARLY_SUBMISSION, now=ctx.now, actor=ctx.actor
    )
    raise AfterCommit(
        Forbidden(
            gettext_noop(
                "The number was submitted before the window closed: the selection is void "
                "and the user is blacklisted."
            ),
            code="early_submission",
        )
    )


def _unavailable(serial: str, locks_left: int) -> InvalidInput:
    return InvalidInput(
        issues=[
            FieldIssue(
                "serial",
                "unavailable",
                gettext_noop(
                    "{serial} is not available in this office's pool; "
                    "{left} verify-and-lock attempts left today."
                ),
                {"serial": serial, "left": locks_left},
            )
        ]
    )


# --- Step 4, random ---------------------------------------------------------------------


def draw(*, actor: Any, token: str, now: dt.datetime | None = None) -> list[str]:
    """One random draw: the configured number of available numbers to pick
    from. Counts one of the vehicle's draws; the numbers are not held."""

    def body(ctx: Context) -> list[str]:
        if (_remaining(ctx).draws or 0) < 1:
            raise Forbidden(
                gettext_noop("This vehicle has no random draws left."), code="draws_exhausted"
            )
        offered = sorted(
            selectors.available_numbers(ctx.session)
            .order_by("?")
            .values_list("serial", flat=True)[: ctx.config.numbers_per_draw]
        )
        if not offered:
            raise Conflict(
                gettext_noop("The pool has no numbers left for this plate kind."),
                code="pool_empty",
            )
        _count(ctx, AttemptKind.DRAW, "", f"offered:{len(offered)}")
        ctx.session.offered = offered
        ctx.session.save(update_fields=["offered"])
        return offered

    return run(actor, token, (Step.CHOOSE,), body, now)


def pick(*, actor: Any, token: str, serial: str, now: dt.datetime | None = None) -> Selection:
    """Locks one number of the last draw, if nobody took it meanwhile."""

    def body(ctx: Context) -> Selection:
        text = (serial or "").strip().upper()
        if text not in ctx.session.offered:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "serial",
                        "not_offered",
                        gettext_noop("Pick one of the numbers of your last draw."),
                    )
                ]
            )
        selection = _lock(ctx, text, SelectionMode.RANDOM)
        if selection is None:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "serial",
                        "taken",
                        gettext_noop("{serial} was just taken; pick another."),
                        {"serial": text},
                    )
                ]
            )
        return selection

    return run(actor, token, (Step.CHOOSE,), body, now)


# --- The lock ---------------------------------------------------------------------------


def _lock(ctx: Context, serial: str, mode: SelectionMode) -> Selection | None:
    """Moves the number out of the pool for this user, or None if it is not
    available. The conditional UPDATE is the lock: of any number of concurrent
    attempts exactly one sees the row still available (PostgreSQL re-checks the
    condition after waiting for the winner's commit; SQLite runs writers one at
    a time); the partial unique index on held selections backs it."""
    session = ctx.session
    # By (prefix, serial): the unique index finds the row whatever its status.
    number = PoolNumber.objects.filter(
        prefix=session.office.prefix, serial=serial, office=session.office_id, kind=session.kind
    ).first()
    if number is None:
        return None
    won = PoolNumber.objects.filter(pk=number.pk, status=NumberStatus.AVAILABLE).update(
        status=NumberStatus.LOCKED
    )
    if not won:
        return None
    hold_until = ctx.now + dt.timedelta(minutes=ctx.config.sms_code_minutes)
    selection = Selection.objects.create(
        number=_form_number(ctx.now),
        account=ctx.account,
        session=session,
        office_id=session.office_id,
        district_id=session.district_id,
        pool_number=number,
        plate=number.plate,
        kind=session.kind,
        mode=mode,
        vin=session.vin,
        owner_name=session.owner_name,
        owner_phone=session.owner_phone,
        owner_address=session.owner_address,
        postal_code=session.postal_code,
        status=SelectionStatus.LOCKED,
        locked_at=ctx.now,
        hold_until=hold_until,
    )
    session.step = Step.SMS
    session.save(update_fields=["step"])
    audit.record(
        actor=ctx.actor,
        action="plates.number_locked",
        subject=selection,
        after={
            "plate": selection.plate,
            "mode": mode,
            "vin": selection.vin,
            "hold_until": hold_until,
        },
    )
    send_code(selection, ctx.now)
    return selection


def _form_number(now: dt.datetime) -> str:
    return f"YX{selectors.local_now(now):%Y%m%d}{secrets.randbelow(10**8):08d}"
