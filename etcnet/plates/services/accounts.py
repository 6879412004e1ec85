"""Internet users: registration and cancellation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from etcnet.core import audit
from etcnet.core.codes import IdDocType
from etcnet.core.errors import FieldIssue, InvalidInput
from etcnet.core.validators import check_document, check_mobile, gettext_noop
from etcnet.plates import domain, selectors
from etcnet.plates.models import (
    HOLDING,
    AccountStatus,
    LocalRecord,
    PlateAccount,
    RecordKind,
    RegistrationBan,
    Selection,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
    UserType,
)
from etcnet.plates.services.common import REQUIRED, normal_name
from etcnet.plates.services.sanctions import end_selection


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
    now: dt.datetime | None = None,
) -> PlateAccount:
    """Registers an internet user (seed 004: ID type and number, name, mobile
    number, city, password, the service agreement, one of the four user types).

    Refused, changing nothing, when a field is invalid, an active account already
    has the ID or the mobile number, a cancelled new-vehicle owner's ban still
    holds for this ID and number, or the local records do not fit the type.
    Audits ``plates.account_registered``.
    """
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
    if not agreed:
        issues.append(
            FieldIssue(
                "agreed", "required", gettext_noop("Accept the service agreement to register.")
            )
        )
    if not issues:
        try:
            validate_password(password)
        except ValidationError as exc:
            issues += [FieldIssue("password", "weak", str(m)) for m in exc.messages]
    if issues:
        raise InvalidInput(issues=issues)

    now = now or timezone.now()
    phone_value = mobile.normalized or ""
    with transaction.atomic(durable=True):
        active = PlateAccount.objects.filter(status=AccountStatus.ACTIVE)
        if active.filter(id_type=doc_type, id_number=id_value).exists():
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "id_number",
                        "registered",
                        gettext_noop("An account with this ID number already exists."),
                    )
                ]
            )
        if active.filter(phone=phone_value).exists():
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "phone",
                        "registered",
                        gettext_noop("An account with this mobile number already exists."),
                    )
                ]
            )
        _check_type_allowed(user_type, doc_type, id_value, phone_value, now)
        user = get_user_model().objects.create_user(
            username=f"plates-{get_random_string(12).lower()}",
            password=password,
            first_name=person[:150],
        )
        config = selectors.plate_settings()
        account = PlateAccount.objects.create(
            user=user,
            user_type=user_type,
            id_type=doc_type,
            id_number=id_value,
            name=person,
            phone=phone_value,
            city=city,
            registered_at=now,
            agreement_version=config.agreement_version,
        )
        audit.record(
            actor=user,
            action="plates.account_registered",
            subject=account,
            after={
                "user_type": user_type,
                "id_type": doc_type,
                "id_number": id_value,
                "name": person,
                "phone": phone_value,
                "city": city,
                "agreement_version": config.agreement_version,
            },
        )
    return account


def _check_type_allowed(
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


def cancel_account(account: PlateAccount, *, reason: str, now: dt.datetime, actor: Any) -> None:
    """Inside a transaction, with ``account`` locked: cancels the account, ends its
    session and returns a held number. A new-vehicle owner's ID and mobile number
    may not register that type again for the configured period."""
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
    if account.user_type == UserType.NEW_VEHICLE_OWNER:
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
        action="plates.account_cancelled",
        subject=account,
        before={"status": AccountStatus.ACTIVE},
        after={"status": AccountStatus.CANCELLED, "reason": reason, "ban_until": ban_until},
    )
