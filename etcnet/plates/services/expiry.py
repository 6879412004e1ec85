"""The periodic expiry job (``etcnet plates expire``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from etcnet.core import ratelimit
from etcnet.plates import selectors
from etcnet.plates.models import (
    AccountStatus,
    BlacklistReason,
    PlateAccount,
    Selection,
    SelectionSession,
    SelectionStatus,
    SessionStatus,
    UserType,
)
from etcnet.plates.services.accounts import cancel_account
from etcnet.plates.services.sanctions import blacklist, end_selection


@dataclass
class ExpiryReport:
    lapsed_locks: int = 0
    expired: int = 0
    cancelled_accounts: int = 0
    abandoned_sessions: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def expire(*, now: dt.datetime | None = None) -> ExpiryReport:
    """The periodic job (``etcnet plates expire``), safe to run any number of times:

    - a number locked at step 4 whose SMS code was not confirmed in time returns;
    - a pre-selected number not registered by its deadline (working days) returns
      to the pool and its user is blacklisted; a new-vehicle owner's account is
      cancelled too;
    - a new-vehicle owner who has not pre-selected within the configured hours of
      registering is cancelled (and may not register again for the ban period);
    - sessions idle past the configured minutes are abandoned;
    - the counters of rate-limit windows that are over are deleted.

    Each item is its own transaction, so one failure does not hold up the rest.
    """
    now = now or timezone.now()
    config = selectors.plate_settings()
    report = ExpiryReport()
    today = selectors.local_now(now).date()
    for pk in Selection.objects.filter(
        status=SelectionStatus.LOCKED, hold_until__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            selection = (
                Selection.objects.select_for_update()
                .filter(pk=pk, status=SelectionStatus.LOCKED, hold_until__lte=now)
                .first()
            )
            if selection is not None:
                end_selection(
                    selection,
                    status=SelectionStatus.LAPSED,
                    reason="sms_not_confirmed",
                    now=now,
                    actor="plates-expiry",
                )
                SelectionSession.objects.filter(pk=selection.session_id, status="active").update(
                    status=SessionStatus.ABANDONED, ended_at=now, end_reason="sms_not_confirmed"
                )
                report.lapsed_locks += 1
    for pk in Selection.objects.filter(
        status=SelectionStatus.PRESELECTED, deadline__lt=today
    ).values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            selection = (
                Selection.objects.select_for_update()
                .select_related("account")
                .filter(pk=pk, status=SelectionStatus.PRESELECTED, deadline__lt=today)
                .first()
            )
            if selection is None:
                continue
            account = PlateAccount.objects.select_for_update().get(pk=selection.account_id)
            end_selection(
                selection,
                status=SelectionStatus.EXPIRED,
                reason="registration_overdue",
                now=now,
                actor="plates-expiry",
            )
            blacklist(
                account,
                reason=BlacklistReason.REGISTRATION_OVERDUE,
                now=now,
                actor="plates-expiry",
                selection=selection,
            )
            report.expired += 1
            if account.user_type == UserType.NEW_VEHICLE_OWNER and account.status == "active":
                cancel_account(
                    account, reason="registration_overdue", now=now, actor="plates-expiry"
                )
                report.cancelled_accounts += 1
    cutoff = now - dt.timedelta(hours=config.new_owner_select_hours)
    late = PlateAccount.objects.filter(
        status=AccountStatus.ACTIVE,
        user_type=UserType.NEW_VEHICLE_OWNER,
        registered_at__lte=cutoff,
    ).exclude(selections__status__in=[SelectionStatus.PRESELECTED, SelectionStatus.REGISTERED])
    for pk in late.values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            account = PlateAccount.objects.select_for_update().get(pk=pk)
            if (
                account.status != AccountStatus.ACTIVE
                or account.selections.filter(
                    status__in=[SelectionStatus.PRESELECTED, SelectionStatus.REGISTERED]
                ).exists()
            ):
                continue
            cancel_account(account, reason="no_preselection", now=now, actor="plates-expiry")
            report.cancelled_accounts += 1
    idle = now - dt.timedelta(minutes=config.session_idle_minutes)
    with transaction.atomic(durable=True):
        report.abandoned_sessions = SelectionSession.objects.filter(
            status=SessionStatus.ACTIVE, last_seen_at__lt=idle, selection__isnull=True
        ).update(status=SessionStatus.ABANDONED, ended_at=now, end_reason="idle")
    # Rate-limit windows that are over count for nothing (core.ratelimit).
    ratelimit.purge(now=now)
    return report
