"""Step 1: open an application and verify the customer's mobile phone by an
SMS code (limited per mobile number across applications)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, Forbidden, InvalidInput
from etcnet.core.sms import count_code, send_sms
from etcnet.core.validators import check_mobile, gettext_noop
from etcnet.issuance import domain
from etcnet.issuance.models import (
    Application,
    OutletMembership,
    PhoneVerification,
)
from etcnet.issuance.services._common import _lock_editable, _require_clerk


def _code_digest(application_id: int, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{application_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _send_code(application: Application, now: dt.datetime) -> None:
    # One limit per mobile number for every application's codes (plates too).
    count_code(application.phone, now=now)
    code = f"{secrets.randbelow(1_000_000):06d}"
    ttl = settings.ETCNET_SMS_CODE_TTL_SECONDS
    PhoneVerification.objects.create(
        application=application,
        phone=application.phone,
        code_digest=_code_digest(application.pk, code),
        sent_at=now,
        expires_at=now + dt.timedelta(seconds=ttl),
    )
    text = gettext(
        "ETC application {number}: your verification code is {code}, valid {minutes} minutes."
    ).format(number=application.number, code=code, minutes=ttl // 60)
    phone = application.phone
    # The message leaves only once the code is safely stored.
    transaction.on_commit(lambda: send_sms(phone, text))


def start_application(*, phone: str, actor: Any) -> Application:
    """Step 1a: open an application for the customer's phone and text it a code.

    Precondition: the actor is an issuance clerk assigned to an outlet.
    Audits `issuance.application_started`.
    """
    _require_clerk(actor)
    checked = check_mobile(phone or "")
    if not checked.valid:
        raise InvalidInput(
            issues=[FieldIssue.from_issue("phone", issue) for issue in checked.errors]
        )
    membership = OutletMembership.objects.filter(user=actor).select_related("outlet").first()
    if membership is None or not membership.outlet.is_active:
        raise Forbidden(
            gettext_noop("You are not assigned to an active service outlet."), code="no_outlet"
        )
    with transaction.atomic(durable=True):
        now = timezone.now()
        application = Application.objects.create(
            outlet=membership.outlet, created_by=actor, phone=checked.normalized or phone
        )
        _send_code(application, now)
        audit.record(
            actor=actor,
            action="issuance.application_started",
            subject=application,
            after={"phone": application.phone, "outlet": membership.outlet.code},
        )
    return application


def resend_phone_code(application_id: int, *, actor: Any) -> None:
    """Step 1a again: a new code, once the resend interval has passed.

    Audits `issuance.phone_code_sent`.
    """
    _require_clerk(actor)
    with transaction.atomic(durable=True):
        application = _lock_editable(application_id, actor)
        if application.phone_verified_at:
            raise Conflict(gettext_noop("The phone is already verified."), code="phone_verified")
        now = timezone.now()
        last = application.phone_verifications.first()
        wait = settings.ETCNET_SMS_RESEND_SECONDS
        if last and (now - last.sent_at).total_seconds() < wait:
            raise Conflict(
                gettext_noop("Wait {seconds} seconds before sending another code."),
                code="resend_too_soon",
                params={"seconds": wait - int((now - last.sent_at).total_seconds())},
            )
        _send_code(application, now)
        audit.record(
            actor=actor,
            action="issuance.phone_code_sent",
            subject=application,
            after={"phone": application.phone},
        )


def verify_phone(application_id: int, *, code: str, actor: Any) -> Application:
    """Step 1b: check the SMS code (valid for the configured minutes, a limited
    number of tries).

    A wrong code only counts the try: nothing else changes and nothing is
    audited. Audits `issuance.phone_verified` on success.
    """
    _require_clerk(actor)
    code = (code or "").strip()
    failure: InvalidInput | None = None
    with transaction.atomic(durable=True):
        application = _lock_editable(application_id, actor)
        if application.phone_verified_at:
            return application
        verification = application.phone_verifications.select_for_update().first()
        now = timezone.now()
        if not code:
            raise InvalidInput(issues=[FieldIssue("code", "required", domain.REQUIRED)])
        if verification is None or verification.expires_at <= now:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "code",
                        "code_expired",
                        gettext_noop("The code has expired; send a new one."),
                    )
                ]
            )
        if verification.attempts >= settings.ETCNET_SMS_CODE_MAX_TRIES:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "code",
                        "code_tries_exhausted",
                        gettext_noop("Too many wrong codes; send a new one."),
                    )
                ]
            )
        if not hmac.compare_digest(verification.code_digest, _code_digest(application.pk, code)):
            verification.attempts += 1
            verification.save(update_fields=["attempts"])
            left = settings.ETCNET_SMS_CODE_MAX_TRIES - verification.attempts
            failure = InvalidInput(
                issues=[
                    FieldIssue(
                        "code",
                        "code_wrong",
                        gettext_noop("The code is wrong; {left} tries left."),
                        {"left": left},
                    )
                ]
            )
        else:
            verification.verified_at = now
            verification.save(update_fields=["verified_at"])
            application.phone_verified_at = now
            application.save(update_fields=["phone_verified_at", "updated_at"])
            audit.record(
                actor=actor,
                action="issuance.phone_verified",
                subject=application,
                after={"phone": application.phone},
            )
    # Raised after the commit so the counted try survives.
    if failure is not None:
        raise failure
    return application
