"""Payouts (退费): a cancelled card's balance, moved to `refunds_payable` by the
settlement once the fund-dispute period ended (late debits netted first), paid
to the customer's bank account.

`refunds_payable` is one ledger account for every customer; what an account may
be paid is what its cards' refund settlements moved there (the posting of the
entry keyed `settlement:<id>`), less what a due or paid payout already covers.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from etcnet.cards import ledger
from etcnet.cards.errors import DisputePeriod, NothingToPay, PayoutDue, PayoutWrongState
from etcnet.cards.models import (
    Account,
    BalanceSettlement,
    EntryKind,
    Payout,
    PayoutState,
    Posting,
    SettlementKind,
    SettlementStatus,
)
from etcnet.cards.services._common import _require
from etcnet.core import audit
from etcnet.core.errors import FieldIssue, InvalidInput, NotFound
from etcnet.core.roles import Role
from etcnet.core.validators import gettext_noop


@dataclass(frozen=True)
class DuePayout:
    """An account with money in `refunds_payable` that may be paid now."""

    account_number: str
    amount_fen: int
    card_nos: tuple[str, ...]


def _payable(account_ids: list[int] | None, now: dt.datetime) -> dict[int, dict[str, int]]:
    """Per account, per card: what its refund settlement moved to refunds payable
    and no due or paid payout covers yet. Two queries."""
    settlements = BalanceSettlement.objects.filter(
        kind=SettlementKind.REFUND,
        status=SettlementStatus.DONE,
        due_at__lte=now,
        from_card__account__isnull=False,
    ).exclude(from_card__payouts__state__in=[PayoutState.DUE, PayoutState.PAID])
    if account_ids is not None:
        settlements = settlements.filter(from_card__account_id__in=account_ids)
    rows = list(settlements.values_list("pk", "from_card__account_id", "from_card__card_no"))
    keys = {f"settlement:{pk}": (account_id, card_no) for pk, account_id, card_no in rows}
    moved = Posting.objects.filter(
        entry__idempotency_key__in=list(keys), account__code=ledger.REFUNDS_PAYABLE
    ).values_list("entry__idempotency_key", "amount_fen")
    found: dict[int, dict[str, int]] = {}
    for key, amount in moved:
        account_id, card_no = keys[str(key)]
        # refunds_payable is a liability: the settlement credits it (negative).
        if -amount > 0:
            found.setdefault(account_id, {})[card_no] = -amount
    return found


def payouts_due(now: dt.datetime | None = None) -> list[DuePayout]:
    """Accounts whose cards' refunds are payable at `now` (the fund-dispute period
    ended and the settlement done) and not covered by a due or paid payout,
    by account number."""
    now = now or timezone.now()
    payable = _payable(None, now)
    numbers = dict(Account.objects.filter(pk__in=list(payable)).values_list("pk", "number"))
    return sorted(
        (
            DuePayout(numbers[pk], sum(cards.values()), tuple(sorted(cards)))
            for pk, cards in payable.items()
        ),
        key=lambda due: due.account_number,
    )


def _bank_details(
    account: Account, bank_name: str, bank_account_no: str, holder_name: str
) -> tuple[str, str, str]:
    """The clerk's details, else the account's linked bank account and the
    customer's name; refused naming each field that does not hold."""
    bank_name = bank_name.strip() or account.bank_name
    number = bank_account_no.replace(" ", "") or account.bank_account_no
    holder_name = holder_name.strip() or account.customer.name
    issues = []
    if not bank_name:
        issues.append(FieldIssue("bank_name", "required", gettext_noop("This field is required.")))
    if not (number.isdigit() and 8 <= len(number) <= 32):
        issues.append(
            FieldIssue(
                "bank_account_no",
                "bad_bank_account",
                gettext_noop("A bank account number has 8 to 32 digits."),
            )
        )
    if not holder_name:
        issues.append(
            FieldIssue("holder_name", "required", gettext_noop("This field is required."))
        )
    elif len(holder_name) > 100:
        issues.append(
            FieldIssue("holder_name", "too_long", gettext_noop("At most 100 characters."))
        )
    if len(bank_name) > 60:
        issues.append(FieldIssue("bank_name", "too_long", gettext_noop("At most 60 characters.")))
    if issues:
        raise InvalidInput(issues=issues)
    return bank_name, number, holder_name


def make_payout(
    account_number: str,
    *,
    bank_name: str = "",
    bank_account_no: str = "",
    holder_name: str = "",
    actor: Any,
) -> Payout:
    """Makes the due payout of an account for exactly what its settled refunds
    left in `refunds_payable` now. Bank details default to the account's linked
    bank account and the customer's name. Refused when a payout is already due
    (`PayoutDue`), when nothing is payable (`NothingToPay`) or while a refund of
    the account still waits for its fund-dispute period (`DisputePeriod`).
    Audits `cards.payout_made`."""
    _require(actor, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR)
    with transaction.atomic(durable=True):
        account = (
            Account.objects.select_for_update()
            .select_related("customer")
            .filter(number=account_number)
            .first()
        )
        if account is None:
            raise NotFound(gettext_noop("Account not found."))
        details = _bank_details(account, bank_name, bank_account_no, holder_name)
        due = Payout.objects.filter(account=account, state=PayoutState.DUE).first()
        if due is not None:
            raise PayoutDue(params={"reference": due.reference})
        now = timezone.now()
        cards = _payable([account.pk], now).get(account.pk, {})
        if not cards:
            waiting = (
                BalanceSettlement.objects.filter(
                    kind=SettlementKind.REFUND,
                    from_card__account=account,
                    status=SettlementStatus.WAITING,
                )
                .select_related("from_card")
                .order_by("due_at")
                .first()
            )
            if waiting is not None:
                raise DisputePeriod(
                    params={
                        "card": waiting.from_card.card_no,
                        "date": timezone.localtime(waiting.due_at).date().isoformat(),
                    }
                )
            raise NothingToPay(params={"account": account.number})
        payout = Payout.objects.create(
            reference=f"PO{timezone.localtime(now):%Y%m%d}{secrets.token_hex(4).upper()}",
            account=account,
            amount_fen=sum(cards.values()),
            bank_name=details[0],
            bank_account_no=details[1],
            holder_name=details[2],
            state=PayoutState.DUE,
            created_by=actor,
            created_at=now,
        )
        payout.cards.set(account.cards.filter(card_no__in=list(cards)))
        audit.record(
            actor=actor,
            action="cards.payout_made",
            subject=payout,
            after=_snapshot(payout, cards=sorted(cards)),
        )
    return payout


def mark_paid(reference: str, *, bank_reference: str, actor: Any) -> Payout:
    """The bank paid a due payout: Dr refunds_payable / Cr bank, and the payout
    is paid. Idempotent: marking a paid payout again with the same bank
    reference changes nothing; with another one it is refused
    (`PayoutWrongState`), as is a cancelled payout. Audits `cards.payout_paid`."""
    _require(actor, Role.CENTER_OPERATOR)
    bank_reference = bank_reference.strip()
    if not bank_reference or len(bank_reference) > 60:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "bank_reference",
                    "required",
                    gettext_noop("The bank's reference of the transfer, at most 60 characters."),
                )
            ]
        )
    with transaction.atomic(durable=True):
        payout = _locked(reference)
        if payout.state == PayoutState.PAID and payout.bank_reference == bank_reference:
            return payout
        if payout.state != PayoutState.DUE:
            raise PayoutWrongState(params={"reference": payout.reference, "state": payout.state})
        before = _snapshot(payout)
        entry = ledger.post(
            EntryKind.REFUND_PAID,
            ledger.lines(
                (ledger.account(ledger.REFUNDS_PAYABLE), payout.amount_fen),
                (ledger.account(ledger.BANK), -payout.amount_fen),
            ),
            actor=actor,
            memo=f"payout {payout.reference} to {payout.account.number}",
            idempotency_key=f"payout:{payout.reference}",
        )
        payout.state = PayoutState.PAID
        payout.bank_reference = bank_reference
        payout.paid_entry = entry
        payout.paid_by = actor
        payout.paid_at = timezone.now()
        payout.save(update_fields=["state", "bank_reference", "paid_entry", "paid_by", "paid_at"])
        audit.record(
            actor=actor,
            action="cards.payout_paid",
            subject=payout,
            before=before,
            after=_snapshot(payout),
        )
    return payout


def cancel_payout(reference: str, *, actor: Any) -> Payout:
    """A due payout withdrawn (wrong bank details, say): its cards become payable
    again. A paid one cannot be cancelled. Audits `cards.payout_cancelled`."""
    _require(actor, Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR)
    with transaction.atomic(durable=True):
        payout = _locked(reference)
        if payout.state == PayoutState.CANCELLED:
            return payout
        if payout.state != PayoutState.DUE:
            raise PayoutWrongState(params={"reference": payout.reference, "state": payout.state})
        before = _snapshot(payout)
        payout.state = PayoutState.CANCELLED
        payout.save(update_fields=["state"])
        audit.record(
            actor=actor,
            action="cards.payout_cancelled",
            subject=payout,
            before=before,
            after=_snapshot(payout),
        )
    return payout


def _locked(reference: str) -> Payout:
    payout = Payout.objects.select_for_update().filter(reference=reference).first()
    if payout is None:
        raise NotFound(gettext_noop("Payout not found."))
    return payout


def _snapshot(payout: Payout, **extra: Any) -> dict[str, Any]:
    return {
        "reference": payout.reference,
        "state": payout.state,
        "amount_fen": payout.amount_fen,
        "bank_name": payout.bank_name,
        # The account number masked in the trail; the payout row keeps it whole.
        "bank_account_no": f"****{payout.bank_account_no[-4:]}",
        "bank_reference": payout.bank_reference,
        **extra,
    }
