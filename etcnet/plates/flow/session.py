"""A selection session: the browser's token, one session per user (two computers
at once void both and blacklist), the transaction every step runs in; starting,
resuming and abandoning."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.errors import Conflict, DomainError, FieldIssue, Forbidden, InvalidInput
from etcnet.core.validators import gettext_noop
from etcnet.plates import selectors, services
from etcnet.plates.models import (
    HOLDING,
    AccountStatus,
    BlacklistReason,
    District,
    PlateAccount,
    PlateSettings,
    Selection,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
    Step,
)

T = TypeVar("T")


class AfterCommit(Exception):
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


def end_session(session: SelectionSession, status: str, reason: str, now: dt.datetime) -> None:
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
            release_held(session, SelectionStatus.LAPSED, "session_idle", now, actor)
            end_session(session, SessionStatus.ABANDONED, "idle", now)
        else:
            live.append(session)
    if any(s.token != token for s in live):
        for session in live:
            release_held(session, SelectionStatus.VOIDED, "concurrent_sessions", now, actor)
            end_session(session, SessionStatus.VOIDED, "concurrent_sessions", now)
            audit.record(
                actor=actor,
                action="plates.session_voided",
                subject=session,
                after={"reason": "concurrent_sessions"},
            )
        services.blacklist(
            account, reason=BlacklistReason.CONCURRENT_SESSIONS, now=now, actor=actor
        )
        raise AfterCommit(
            Forbidden(
                gettext_noop(
                    "Selection was going on from two computers at once for this user: both "
                    "selections are void and the user is blacklisted."
                ),
                code="concurrent_sessions",
            )
        )
    return live[0] if live else None


def release_held(
    session: SelectionSession, status: SelectionStatus, reason: str, now: dt.datetime, actor: Any
) -> None:
    held = Selection.objects.select_for_update().filter(session=session, status__in=HOLDING).first()
    if held is not None:
        services.end_selection(held, status=status, reason=reason, now=now, actor=actor)


def run(
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
        except AfterCommit as signal:
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
                release_held(previous, SelectionStatus.LAPSED, "restarted", now, actor)
                end_session(previous, SessionStatus.ABANDONED, "restarted", now)
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
        except AfterCommit as signal:
            failure = signal.error
    if failure is not None:
        raise failure
    assert session is not None
    return session


def resume(*, actor: Any, token: str, now: dt.datetime | None = None) -> SelectionSession:
    """The browser's session, checked like any step (for showing a page)."""
    return run(actor, token, tuple(Step.values), lambda ctx: ctx.session, now)


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
            release_held(session, SelectionStatus.LAPSED, "abandoned", now, actor)
            end_session(session, SessionStatus.ABANDONED, "abandoned", now)
