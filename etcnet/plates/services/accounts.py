"""Internet users: registration with its SMS code, cancellation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext

from etcnet.core import audit
from etcnet.core.codes import IdDocType
from etcnet.core.errors import Conflict, FieldIssue, InvalidInput
from etcnet.core.masking import mask_phone
from etcnet.core.sms import count_code, send_sms
from etcnet.core.validators import check_document, check_mobile, gettext_noop
from etcnet.plates import domain, selectors
from etcnet.plates.models import (
    HOLDING,
    AccountStatus,
    LocalRecord,
    PlateAccount,
    RecordKind,
    RegistrationBan,
    RegistrationCode,
    Selection,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
    UserType,
)
from etcnet.plates.services.common import REQUIRED, normal_name
from etcnet.plates.services.sanctions import end_selection


@dataclass(frozen=True)
class NewAccount:
    """A registration's checked values."""

    user_type: str
    id_type: int
    id_number: str
    name: str
    phone: str
    city: str
    password: str


def check_new_account(
    *,
    user_type: str,
    id_type: int | str,
    id_number: str,
    name: str,
    phone: str,
    city: str,
    password: str,
    password_again: str,
    extra: list[FieldIssue] | None = None,
) -> NewAccount:
    """Checks every field of a registration (on the site or at the window) and
    raises one ``InvalidInput`` naming each bad field, ``extra`` included."""
    issues: list[FieldIssue] = []
    if user_type not in UserType.values:
        issues.append(FieldIssue("user_type", "required", gettext_noop("Choose a user type.")))
    try:
        doc_type = int(id_type)
        IdDocType.from_code(doc_type)
    except (TypeError, ValueError):
        doc_type = 0
        issues.append(FieldIssue("id_type", "required", gettext_noop("Choose an ID type.")))
    id_value = ""
    if doc_type:
        checked = check_document(doc_type, id_number or "")
        if checked.valid:
            id_value = checked.normalized or ""
        else:
            issues += [FieldIssue.from_issue("id_number", i) for i in checked.errors]
    person = normal_name(name)
    if not 2 <= len(person) <= 40:
        issues.append(
            FieldIssue(
                "name", "name", gettext_noop("Give the name on the ID (2 to 40 characters).")
            )
        )
    mobile = check_mobile(phone or "")
    if not mobile.valid:
        issues += [FieldIssue.from_issue("phone", i) for i in mobile.errors]
    city = (city or "").strip()
    if not city:
        issues.append(FieldIssue("city", "required", REQUIRED))
    issues += [FieldIssue.from_issue("password", i) for i in domain.password_issues(password or "")]
    if password != password_again:
        issues.append(
            FieldIssue("password_again", "mismatch", gettext_noop("The two passwords differ."))
        )
    issues += extra or []
    if not issues:
        try:
            validate_password(password)
        except ValidationError as exc:
            issues += [FieldIssue("password", "weak", str(m)) for m in exc.messages]
    if issues:
        raise InvalidInput(issues=issues)
    return NewAccount(
        user_type, doc_type, id_value, person, mobile.normalized or "", city, password
    )


def register_account(
    *,
    user_type: str,
    id_type: int | str,
    id_number: str,
    name: str,
    phone: str,
    city: str,
    password: str,
    password_again: str,
    agreed: bool,
    sms_code: str,
    now: dt.datetime | None = None,
) -> PlateAccount:
    """Registers an internet user (seed 004: ID type and number, name, mobile
    number, city, password, the service agreement, one of the four user types);
    ``sms_code`` is the code ``send_registration_code`` texted to the mobile
    number, which proves the number is the registrant's.

    Refused, changing nothing, when a field is invalid, an active account already
    has the ID or the mobile number, a cancelled new-vehicle owner's ban still
    holds for this ID and number, or the local records do not fit the type. A
    wrong code is refused too, but counts one of the code's tries
    (``ETCNET_SMS_CODE_MAX_TRIES``); a right one is used up. Audits
    ``plates.account_registered``.
    """
    extra = []
    if not agreed:
        extra.append(
            FieldIssue(
                "agreed", "required", gettext_noop("Accept the service agreement to register.")
            )
        )
    if not (sms_code or "").strip():
        extra.append(
            FieldIssue(
                "sms_code",
                "required",
                gettext_noop("Enter the SMS code sent to your mobile number."),
            )
        )
    new = check_new_account(
        user_type=user_type,
        id_type=id_type,
        id_number=id_number,
        name=name,
        phone=phone,
        city=city,
        password=password,
        password_again=password_again,
        extra=extra,
    )
    now = now or timezone.now()
    failure: InvalidInput | None = None
    account: PlateAccount | None = None
    with transaction.atomic(durable=True):
        active = PlateAccount.objects.filter(status=AccountStatus.ACTIVE)
        if active.filter(id_type=new.id_type, id_number=new.id_number).exists():
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "id_number",
                        "registered",
                        gettext_noop(
                            "An account with this ID number already exists. If it is not "
                            "yours, bring your ID card to the vehicle office: the window "
                            "registers you and cancels that account."
                        ),
                    )
                ]
            )
        check_phone_free(new.phone)
        check_type_allowed(new.user_type, new.id_type, new.id_number, new.phone, now)
        code_issue = _use_code(new.phone, sms_code.strip(), now)
        if code_issue is not None:
            # The wrong try is kept (committed); the refusal is raised below.
            failure = InvalidInput(issues=[code_issue])
        else:
            account = create_account(new, now=now, actor=None, audit_extra={})
    if failure is not None:
        raise failure
    assert account is not None
    return account


def check_phone_free(phone: str) -> None:
    if PlateAccount.objects.filter(status=AccountStatus.ACTIVE, phone=phone).exists():
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "phone",
                    "registered",
                    gettext_noop("An account with this mobile number already exists."),
                )
            ]
        )


def create_account(
    new: NewAccount, *, now: dt.datetime, actor: Any, audit_extra: dict[str, Any]
) -> PlateAccount:
    """Inside a transaction, after the checks: the user and the account, audited
    as ``plates.account_registered`` (by ``actor``, or the new user)."""
    user = get_user_model().objects.create_user(
        username=f"plates-{get_random_string(12).lower()}",
        password=new.password,
        first_name=new.name[:150],
    )
    config = selectors.plate_settings()
    account = PlateAccount.objects.create(
        user=user,
        user_type=new.user_type,
        id_type=new.id_type,
        id_number=new.id_number,
        name=new.name,
        phone=new.phone,
        city=new.city,
        registered_at=now,
        agreement_version=config.agreement_version,
    )
    audit.record(
        actor=actor or user,
        action="plates.account_registered",
        subject=account,
        after={
            "user_type": new.user_type,
            "id_type": new.id_type,
            "id_number": new.id_number,
            "name": new.name,
            "phone": new.phone,
            "city": new.city,
            "agreement_version": config.agreement_version,
            **audit_extra,
        },
    )
    return account


# --- The registration's SMS code --------------------------------------------------------


def _code_digest(phone: str, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"plates-register:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def send_registration_code(*, phone: str, now: dt.datetime | None = None) -> RegistrationCode:
    """Texts a code that confirms the mobile number of a registration; valid
    ``ETCNET_SMS_CODE_TTL_SECONDS``, it replaces any earlier code of the number.

    Refused, sending nothing, when the number is not a mobile number or an
    active account has it, when the last code went less than
    ``ETCNET_SMS_RESEND_SECONDS`` ago (409), or when the number's codes of every
    application are spent (``ETCNET_RATE_SMS_PER_MOBILE``, 429). The caller
    limits requests per address. Audits ``plates.registration_code_sent``.
    """
    mobile = check_mobile(phone or "")
    if not mobile.valid:
        raise InvalidInput(issues=[FieldIssue.from_issue("phone", i) for i in mobile.errors])
    number = mobile.normalized or ""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        check_phone_free(number)
        last = RegistrationCode.objects.filter(phone=number).first()
        wait = settings.ETCNET_SMS_RESEND_SECONDS
        if last is not None and (now - last.sent_at).total_seconds() < wait:
            raise Conflict(
                gettext_noop("Wait {seconds} seconds before sending another code."),
                code="resend_too_soon",
                params={"seconds": wait - int((now - last.sent_at).total_seconds())},
            )
        count_code(number, now=now)
        code = f"{secrets.randbelow(1_000_000):06d}"
        ttl = settings.ETCNET_SMS_CODE_TTL_SECONDS
        sent = RegistrationCode.objects.create(
            phone=number,
            code_digest=_code_digest(number, code),
            sent_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
        )
        audit.record(
            actor="plates-registration",
            action="plates.registration_code_sent",
            subject=sent,
            after={"phone": mask_phone(number), "expires_at": sent.expires_at},
        )
        text = gettext(
            "Plate pre-selection registration: your verification code is {code}, "
            "valid {minutes} minutes."
        ).format(code=code, minutes=max(1, ttl // 60))
        # The message leaves only once the code is safely stored.
        transaction.on_commit(lambda: send_sms(number, text))
    return sent


def _use_code(phone: str, code: str, now: dt.datetime) -> FieldIssue | None:
    """Inside the registration's transaction: uses up the number's newest code
    if ``code`` is it; otherwise counts a try and says what is wrong."""
    sent = (
        RegistrationCode.objects.select_for_update()
        .filter(phone=phone, used_at__isnull=True)
        .first()
    )
    if sent is None or now >= sent.expires_at:
        return FieldIssue(
            "sms_code",
            "code_expired",
            gettext_noop("No valid SMS code for this mobile number: send a new code."),
        )
    tries = settings.ETCNET_SMS_CODE_MAX_TRIES
    if sent.attempts >= tries:
        return FieldIssue(
            "sms_code",
            "code_tries_exhausted",
            gettext_noop("Too many wrong codes: send a new code."),
        )
    if not hmac.compare_digest(sent.code_digest, _code_digest(phone, code)):
        sent.attempts += 1
        sent.save(update_fields=["attempts"])
        return FieldIssue(
            "sms_code",
            "code_wrong",
            gettext_noop("The SMS code is wrong; {left} tries left."),
            {"left": tries - sent.attempts},
        )
    sent.used_at = now
    sent.save(update_fields=["used_at"])
    return None


def check_type_allowed(
    user_type: str, doc_type: int, id_value: str, phone: str, now: dt.datetime
) -> None:
    records = LocalRecord.objects.filter(id_type=doc_type, id_number=id_value)
    if user_type == UserType.NEW_VEHICLE_OWNER:
        ban = (
            RegistrationBan.objects.filter(
                id_type=doc_type, id_number=id_value, phone=phone, until__gt=now
            )
            .order_by("-until")
            .first()
        )
        if ban is not None:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "id_number",
                        "registration_banned",
                        gettext_noop(
                            "A new-vehicle owner account of this ID number and mobile number "
                            "was cancelled; it may register again after {until}."
                        ),
                        {"until": selectors.local_now(ban.until).strftime("%Y-%m-%d")},
                    )
                ]
            )
        if records.filter(kind__in=[RecordKind.VEHICLE, RecordKind.LICENCE]).exists():
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "user_type",
                        "has_records",
                        gettext_noop(
                            "You already hold a vehicle or a driving licence here: "
                            "register as a vehicle owner or a driver."
                        ),
                    )
                ]
            )
        return
    needed = domain.REQUIRED_RECORD[domain.UserType(user_type)]
    if not records.filter(kind=needed, phone=phone).exists():
        templates = {
            "vehicle": gettext_noop(
                "No vehicle is registered here to this ID with this mobile number."
            ),
            "licence": gettext_noop(
                "No driving licence is held here by this ID with this mobile number."
            ),
            "learner": gettext_noop(
                "No first licence application was made here by this ID with this mobile number."
            ),
        }
        raise InvalidInput(
            issues=[FieldIssue("user_type", "no_local_record", templates[str(needed)])]
        )


def cancel_account(
    account: PlateAccount,
    *,
    reason: str,
    now: dt.datetime,
    actor: Any,
    ban: bool = True,
    action: str = "plates.account_cancelled",
    audit_extra: dict[str, Any] | None = None,
) -> None:
    """Inside a transaction, with ``account`` locked: cancels the account, ends its
    session and returns a held number. A new-vehicle owner's ID and mobile number
    may not register that type again for the configured period (unless ``ban``
    is false: the ID's owner claimed it at the window)."""
    config = selectors.plate_settings()
    for selection in Selection.objects.select_for_update().filter(
        account=account, status__in=HOLDING
    ):
        end_selection(selection, status=SelectionStatus.VOIDED, reason=reason, now=now, actor=actor)
    SelectionSession.objects.filter(account=account, status=SessionStatus.ACTIVE).update(
        status=SessionStatus.ABANDONED, ended_at=now, end_reason=reason
    )
    account.status = AccountStatus.CANCELLED
    account.cancelled_at = now
    account.cancel_reason = reason
    account.save(update_fields=["status", "cancelled_at", "cancel_reason"])
    user = account.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    ban_until = None
    if ban and account.user_type == UserType.NEW_VEHICLE_OWNER:
        ban_until = now + dt.timedelta(days=config.cancel_ban_days)
        RegistrationBan.objects.create(
            id_type=account.id_type,
            id_number=account.id_number,
            phone=account.phone,
            until=ban_until,
            reason=reason,
            account=account,
            created_at=now,
        )
    audit.record(
        actor=actor,
        action=action,
        subject=account,
        before={"status": AccountStatus.ACTIVE},
        after={
            "status": AccountStatus.CANCELLED,
            "reason": reason,
            "ban_until": ban_until,
            **(audit_extra or {}),
        },
    )
