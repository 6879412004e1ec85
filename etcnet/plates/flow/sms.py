"""Step 5: the SMS code that turns the lock into a pre-selection."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext

from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, InvalidInput
from etcnet.core.sms import count_code, send_sms
from etcnet.core.validators import gettext_noop
from etcnet.plates import domain, selectors, services
from etcnet.plates.flow.session import AfterCommit, Context, end_session, run
from etcnet.plates.models import (
    NumberStatus,
    PoolNumber,
    Selection,
    SelectionStatus,
    SessionStatus,
    SmsCode,
    Step,
)


def _digest(selection_id: int, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"plates:{selection_id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_code(selection: Selection, now: dt.datetime) -> None:
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
        send_code(selection, ctx.now)

    run(actor, token, (Step.SMS,), body, now)


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
        raise AfterCommit(
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
    end_session(ctx.session, SessionStatus.ABANDONED, reason, ctx.now)


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
                raise AfterCommit(
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
            raise AfterCommit(
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
        end_session(ctx.session, SessionStatus.FINISHED, "preselected", ctx.now)
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

    return run(actor, token, (Step.SMS,), body, now)
