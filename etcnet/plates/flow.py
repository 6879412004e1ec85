"""The six steps of internet plate pre-selection (seed 004), enforced here:

choose office and district → 1 notice → 2 VIN → 3 owner contact → 4 choose a
number (self-composed in a 90-second window on the virtual keyboard, or random
draws) → 5 SMS code → 6 the pre-selected number and its deadline.

Every call names the browser by ``token`` (kept in its Django session). One user
may have one active session: a call from another browser while one is active
voids both (and any number they hold) and blacklists the user. A self-composed
number is submitted when the window closes; a submission before that comes only
from a tampered page, and voids the selection and blacklists the user.

Each call is one durable transaction that locks the user's account row first, so
two requests of one user never race past a limit. Refusals that must leave a
trace (a counted try, a voided session, a blacklisting) are committed first and
raised afterwards; every other refusal changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from etcnet.core import audit
from etcnet.core.errors import Conflict, DomainError, FieldIssue, Forbidden, InvalidInput
from etcnet.core.sms import count_code, send_sms
from etcnet.core.validators import check_vin, gettext_noop
from etcnet.plates import domain, selectors, services
from etcnet.plates.models import (
    HOLDING,
    AccountStatus,
    Attempt,
    AttemptKind,
    BlacklistReason,
    District,
    NumberStatus,
    PlateAccount,
    PlateKind,
    PlateSettings,
    PoolNumber,
    Selection,
    SelectionMode,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
    SmsCode,
    Step,
)

T = TypeVar("T")


class _AfterCommit(Exception):
    """Raised by a step to commit what it did and then raise ``error``."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.template)
        self.error = error


@dataclass
class Context:
    account: PlateAccount
    session: SelectionSession
    config: PlateSettings
    now: dt.datetime
    actor: Any


def _account(actor: Any) -> PlateAccount:
    account = (
        PlateAccount.objects.select_for_update()
        .filter(user_id=getattr(actor, "pk", None) or 0, status=AccountStatus.ACTIVE)
        .first()
    )
    if account is None:
        raise Forbidden(
            gettext_noop("Log in with an internet user account to pre-select a plate."),
            code="not_plate_user",
        )
    return account


def _refuse_if_blacklisted(account: PlateAccount, now: dt.datetime) -> None:
    entry = selectors.active_blacklist(account, now)
    if entry is not None:
        raise Forbidden(
            gettext_noop(
                "You are on the blacklist ({reason}) until {until}; plate pre-selection is "
                "refused until then."
            ),
            code="blacklisted",
            params={
                "reason": entry.reason,
                "until": selectors.local_now(entry.ends_at).strftime("%Y-%m-%d %H:%M"),
            },
        )


def _end_session(session: SelectionSession, status: str, reason: str, now: dt.datetime) -> None:
    session.status = status
    session.ended_at = now
    session.end_reason = reason
    session.save(update_fields=["status", "ended_at", "end_reason"])


def _settle_sessions(
    account: PlateAccount, token: str, now: dt.datetime, config: PlateSettings, actor: Any
) -> SelectionSession | None:
    """The account's active session for this browser, after abandoning idle ones.
    An active session of another browser means two computers at once."""
    idle = now - dt.timedelta(minutes=config.session_idle_minutes)
    live = []
    for session in SelectionSession.objects.select_for_update().filter(
        account=account, status=SessionStatus.ACTIVE
    ):
        if session.last_seen_at < idle:
            _release_held(session, SelectionStatus.LAPSED, "session_idle", now, actor)
            _end_session(session, SessionStatus.ABANDONED, "idle", now)
        else:
            live.append(session)
    if any(s.token != token for s in live):
        for session in live:
            _release_held(session, SelectionStatus.VOIDED, "concurrent_sessions", now, actor)
            _end_session(session, SessionStatus.VOIDED, "concurrent_sessions", now)
            audit.record(
                actor=actor,
                action="plates.session_voided",
                subject=session,
                after={"reason": "concurrent_sessions"},
            )
        services.blacklist(
            account, reason=BlacklistReason.CONCURRENT_SESSIONS, now=now, actor=actor
        )
        raise _AfterCommit(
            Forbidden(
                gettext_noop(
                    "Selection was going on from two computers at once for this user: both "
                    "selections are void and the user is blacklisted."
                ),
                code="concurrent_sessions",
            )
        )
    return live[0] if live else None


def _release_held(
    session: SelectionSession, status: SelectionStatus, reason: str, now: dt.datetime, actor: Any
) -> None:
    held = Selection.objects.select_for_update().filter(session=session, status__in=HOLDING).first()
    if held is not None:
        services.end_selection(held, status=status, reason=reason, now=now, actor=actor)


def _run(
    actor: Any,
    token: str,
    steps: tuple[str, ...],
    body: Callable[[Context], T],
    now: dt.datetime | None = None,
) -> T:
    now = now or timezone.now()
    failure: DomainError | None = None
    result: T | None = None
    with transaction.atomic(durable=True):
        account = _account(actor)
        config = selectors.plate_settings()
        try:
            session = _settle_sessions(account, token, now, config, actor)
            if session is None:
                raise Conflict(
                    gettext_noop("No selection is in progress; start from the office choice."),
                    code="no_session",
                )
            _refuse_if_blacklisted(account, now)
            if session.step not in steps:
                raise Conflict(
                    gettext_noop("This step is not the one your selection is at."),
                    code="wrong_step",
                )
            session.last_seen_at = now
            session.save(update_fields=["last_seen_at"])
            result = body(Context(account, session, config, now, actor))
        except _AfterCommit as signal:
            failure = signal.error
    if failure is not None:
        raise failure
    return result  # type: ignore[return-value]


# --- Starting ---------------------------------------------------------------------------


def start(
    *, actor: Any, token: str, office_id: int, district_id: int, now: dt.datetime | None = None
) -> SelectionSession:
    """「开始选号」: checks the system's state and the user, then opens a session.

    Refused when selection is closed (outside opening hours, under maintenance),
    the user is blacklisted or already holds a number. Starting again from the
    same browser replaces that browser's session. Audits ``plates.session_started``.
    """
    now = now or timezone.now()
    failure: DomainError | None = None
    session: SelectionSession | None = None
    with transaction.atomic(durable=True):
        account = _account(actor)
        config = selectors.plate_settings()
        closed = selectors.closed_reason(now, config)
        if closed is not None:
            raise Forbidden(closed.template, code=closed.code, params=dict(closed.params))
        _refuse_if_blacklisted(account, now)
        district = (
            District.objects.select_related("office")
            .filter(pk=district_id, office_id=office_id, office__is_active=True)
            .first()
        )
        if district is None:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "district",
                        "required",
                        gettext_noop("Choose a vehicle office and one of its districts."),
                    )
                ]
            )
        try:
            previous = _settle_sessions(account, token, now, config, actor)
            held = selectors.holding(account)
            if held is not None and (previous is None or held.session_id != previous.pk):
                raise Conflict(
                    gettext_noop("You already hold the number {plate}; one number per user."),
                    code="already_holding",
                    params={"plate": held.plate},
                )
            if previous is not None:
                _release_held(previous, SelectionStatus.LAPSED, "restarted", now, actor)
                _end_session(previous, SessionStatus.ABANDONED, "restarted", now)
            session = SelectionSession.objects.create(
                account=account,
                token=token,
                office=district.office,
                district=district,
                started_at=now,
                last_seen_at=now,
                owner_name=account.name,
                owner_phone=account.phone,
                keyboard_seed=secrets.token_hex(16),
            )
            audit.record(
                actor=actor,
                action="plates.session_started",
                subject=session,
                after={"office": district.office.code, "district": district.code},
            )
        except _AfterCommit as signal:
            failure = signal.error
    if failure is not None:
        raise failure
    assert session is not None
    return session


def resume(*, actor: Any, token: str, now: dt.datetime | None = None) -> SelectionSession:
    """The browser's session, checked like any step (for showing a page)."""
    return _run(actor, token, tuple(Step.values), lambda ctx: ctx.session, now)


def abandon(*, actor: Any, token: str, now: dt.datetime | None = None) -> None:
    """The user leaves (or logs out): this browser's session ends and a number
    locked but not confirmed returns to the pool."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        account = PlateAccount.objects.select_for_update().filter(user_id=actor.pk).first()
        if account is None:
            return
        for session in SelectionSession.objects.select_for_update().filter(
            account=account, status=SessionStatus.ACTIVE, token=token
        ):
            _release_held(session, SelectionStatus.LAPSED, "abandoned", now, actor)
            _end_session(session, SessionStatus.ABANDONED, "abandoned", now)


# --- Steps 1 to 3 -----------------------------------------------------------------------


def accept_notice(*, actor: Any, token: str, now: dt.datetime | None = None) -> SelectionSession:
    def body(ctx: Context) -> SelectionSession:
        ctx.session.step = Step.VIN
        ctx.session.save(update_fields=["step"])
        return ctx.session

    return _run(actor, token, (Step.NOTICE,), body, now)


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
    return _run(actor, token, (Step.VIN, Step.CONTACT), body, now)


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

    return _run(actor, token, (Step.CONTACT, Step.CHOOSE), body, now)


# --- Step 4, self-composed --------------------------------------------------------------


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

    return _run(actor, token, (Step.CHOOSE,), body, now)


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

    return _run(actor, token, (Step.CHOOSE,), body, now)


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

    return _run(actor, token, (Step.CHOOSE,), body, now)


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
            raise _AfterCommit(
                Conflict(
                    gettext_noop("The window closed long ago; open a new one."),
                    code="window_lapsed",
                )
            )
        if not (serial or "").strip():
            raise _AfterCommit(
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
            raise _AfterCommit(exc) from None
        if _remaining(ctx).locks < 1:
            raise _AfterCommit(
                Forbidden(
                    gettext_noop("No verify-and-lock attempts are left today."),
                    code="locks_exhausted",
                )
            )
        selection = _lock(ctx, text, SelectionMode.SELF_COMPOSED)
        _count(ctx, AttemptKind.LOCK, text, "locked" if selection else "unavailable")
        if selection is None:
            raise _AfterCommit(_unavailable(text, _remaining(ctx).locks))
        return selection

    return _run(actor, token, (Step.CHOOSE,), body, now)


def _void_for_tampering(ctx: Context, serial: str) -> None:
    _count(ctx, AttemptKind.LOCK, (serial or "")[:6], "early_submission")
    _release_held(ctx.session, SelectionStatus.VOIDED, "early_submission", ctx.now, ctx.actor)
    _end_session(ctx.session, SessionStatus.VOIDED, "early_submission", ctx.now)
    audit.record(
        actor=ctx.actor,
        action="plates.session_voided",
        subject=ctx.session,
        after={"reason": "early_submission"},
    )
    services.blacklist(
        ctx.account, reason=BlacklistReason.EARLY_SUBMISSION, now=ctx.now, actor=ctx.actor
    )
    raise _AfterCommit(
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

    return _run(actor, token, (Step.CHOOSE,), body, now)


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

    return _run(actor, token, (Step.CHOOSE,), body, now)


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
    _send_code(selection, ctx.now)
    return selection


def _form_number(now: dt.datetime) -> str:
    return f"YX{selectors.local_now(now):%Y%m%d}{secrets.randbelow(10**8):08d}"


# --- Step 5, the SMS code ---------------------------------------------------------------


def _digest(selection_id: int, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"plates:{selection_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _send_code(selection: Selection, now: dt.datetime) -> None:
    # The mobile number's codes of every application share one limit (429).
    count_code(selection.owner_phone, now=now)
    code = f"{secrets.randbelow(1_000_000):06d}"
    SmsCode.objects.create(
        selection=selection,
        phone=selection.owner_phone,
        code_digest=_digest(selection.pk, code),
        sent_at=now,
        expires_at=selection.hold_until,
    )
    text = gettext(
        "Plate pre-selection {plate}: your verification code is {code}, valid until {until}."
    ).format(
        plate=selection.plate,
        code=code,
        until=selectors.local_now(selection.hold_until).strftime("%H:%M"),
    )
    phone = selection.owner_phone
    transaction.on_commit(lambda: send_sms(phone, text))


def resend_code(*, actor: Any, token: str, now: dt.datetime | None = None) -> None:
    """A new code for the locked number, after the resend interval; it expires
    with the lock."""

    def body(ctx: Context) -> None:
        selection = _held(ctx)
        last = selection.codes.first()
        wait = settings.ETCNET_SMS_RESEND_SECONDS
        if last is not None and (ctx.now - last.sent_at).total_seconds() < wait:
            raise Conflict(
                gettext_noop("Wait {seconds} seconds before sending another code."),
                code="resend_too_soon",
                params={"seconds": wait - int((ctx.now - last.sent_at).total_seconds())},
            )
        _send_code(selection, ctx.now)

    _run(actor, token, (Step.SMS,), body, now)


def _held(ctx: Context) -> Selection:
    selection = (
        Selection.objects.select_for_update()
        .filter(session=ctx.session, status=SelectionStatus.LOCKED)
        .first()
    )
    if selection is None:
        raise Conflict(gettext_noop("No number is locked for this selection."), code="not_locked")
    if ctx.now >= selection.hold_until:
        _lapse(ctx, selection, "sms_expired")
        raise _AfterCommit(
            InvalidInput(
                issues=[
                    FieldIssue(
                        "code",
                        "code_expired",
                        gettext_noop(
                            "The code has expired and the number went back to the pool; "
                            "start a new selection."
                        ),
                    )
                ]
            )
        )
    return selection


def _lapse(ctx: Context, selection: Selection, reason: str) -> None:
    services.end_selection(
        selection, status=SelectionStatus.LAPSED, reason=reason, now=ctx.now, actor=ctx.actor
    )
    _end_session(ctx.session, SessionStatus.ABANDONED, reason, ctx.now)


def confirm_code(*, actor: Any, token: str, code: str, now: dt.datetime | None = None) -> Selection:
    """Step 5: the SMS code turns the lock into a pre-selection with its
    registration deadline (working days after today, the calendar's holidays
    skipped). Too many wrong codes or an expired code return the number.
    Audits ``plates.number_preselected``."""

    def body(ctx: Context) -> Selection:
        text = (code or "").strip()
        if not text:
            raise InvalidInput(
                issues=[FieldIssue("code", "required", gettext_noop("Enter the SMS code."))]
            )
        selection = _held(ctx)
        sms = selection.codes.select_for_update().first()
        assert sms is not None
        if not hmac.compare_digest(sms.code_digest, _digest(selection.pk, text)):
            sms.attempts += 1
            sms.save(update_fields=["attempts"])
            left = ctx.config.sms_code_tries - sms.attempts
            if left < 1:
                _lapse(ctx, selection, "sms_tries_exhausted")
                raise _AfterCommit(
                    InvalidInput(
                        issues=[
                            FieldIssue(
                                "code",
                                "code_tries_exhausted",
                                gettext_noop(
                                    "Too many wrong codes: the number went back to the pool."
                                ),
                            )
                        ]
                    )
                )
            raise _AfterCommit(
                InvalidInput(
                    issues=[
                        FieldIssue(
                            "code",
                            "code_wrong",
                            gettext_noop("The code is wrong; {left} tries left."),
                            {"left": left},
                        )
                    ]
                )
            )
        today = selectors.local_now(ctx.now).date()
        selection.status = SelectionStatus.PRESELECTED
        selection.confirmed_at = ctx.now
        selection.deadline = domain.add_working_days(
            today, ctx.config.registration_working_days, selectors.calendar_overrides()
        )
        selection.save(update_fields=["status", "confirmed_at", "deadline"])
        PoolNumber.objects.filter(pk=selection.pool_number_id).update(
            status=NumberStatus.PRESELECTED
        )
        ctx.session.step = Step.DONE
        ctx.session.save(update_fields=["step"])
        _end_session(ctx.session, SessionStatus.FINISHED, "preselected", ctx.now)
        audit.record(
            actor=ctx.actor,
            action="plates.number_preselected",
            subject=selection,
            before={"status": SelectionStatus.LOCKED},
            after={
                "status": SelectionStatus.PRESELECTED,
                "plate": selection.plate,
                "deadline": selection.deadline,
            },
        )
        return selection

    return _run(actor, token, (Step.SMS,), body, now)


__all__ = [
    "Verified",
    "abandon",
    "accept_notice",
    "confirm_code",
    "draw",
    "enter_contact",
    "enter_vehicle",
    "keys",
    "open_window",
    "pick",
    "resend_code",
    "resume",
    "start",
    "submit",
    "verify",
]
