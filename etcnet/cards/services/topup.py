"""Top-up (圈存), in two transactions because the center must record the money
before it lets the card credit itself: (1) record the money and hand the card
MAC2, (2) on the card's TAC move the money onto the purse. A card pulled out in
between leaves a pending top-up that a retry finishes.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from etcnet.cards import devices, ledger, vault
from etcnet.cards.errors import (
    CardFault,
    IdempotencyConflict,
    LoadInterrupted,
    MacRejected,
    WrongState,
)
from etcnet.cards.models import (
    CardUnit,
    EntryKind,
    TopUp,
    TopUpChannel,
    TopUpStatus,
    UnitState,
)
from etcnet.cards.services._common import (
    _lock_card,
    _outlet_of,
    _refuse_if_pending,
    _require,
    _wrong_state,
)
from etcnet.core import audit
from etcnet.core.codes import CardType
from etcnet.core.errors import FieldIssue, InvalidInput, NotFound
from etcnet.core.roles import Role
from etcnet.core.validators import gettext_noop
from etcnet.smartcard.crypto import Alg

MAX_TOP_UP_FEN = 5_000_000  # 50,000 yuan per load; a purse holds at most 4 bytes of fen anyway


_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,60}$")
LOAD_TYPE = 0x02


def _request_hash(card_no: str, amount_fen: int, channel: str) -> str:
    return hashlib.sha256(f"{card_no}|{amount_fen}|{channel}".encode()).hexdigest()


def _replay(existing: TopUp, request_hash: str) -> TopUp:
    """A repeated request: the first result, or 409 when the key was used for
    another request (STYLE: same key + other payload is a conflict)."""
    if existing.request_hash != request_hash:
        raise IdempotencyConflict()
    return existing


def top_up(
    card_no: str,
    *,
    amount_fen: int,
    channel: str,
    idempotency_key: str,
    actor: Any,
) -> TopUp:
    """Loads money onto a stored-value card at the counter.

    1. The card proves itself (MAC1 verified by the vault); the money is
       recorded (`top_up_received`: channel → loads pending) and committed.
    2. Only then the vault computes MAC2 and the card credits its purse.
    3. The card's TAC is verified; the money moves onto the purse
       (`top_up_loaded`) and the shadow balance rises.

    A wrong MAC1 records nothing. A card that fails after step 1 leaves a
    pending top-up (`load_interrupted`): the money is safe in loads pending
    and `retry_top_up` finishes it or `refund_pending_top_up` gives it back.
    While a card has a pending top-up no other top-up starts on it, so the
    card's online counter tells exactly which load it executed. A TAC that
    does not verify credits nothing. The idempotency key (1–60 characters)
    returns the first result for the same request and 409 for another.
    Audits `cards.top_up_received` and `cards.top_up_loaded`."""
    _require(actor, Role.ISSUANCE_CLERK)
    outlet = _outlet_of(actor)
    key = idempotency_key or ""
    request_hash = _request_hash(card_no, amount_fen, channel)
    issues = []
    if not _KEY.match(key):
        issues.append(
            FieldIssue(
                "idempotency_key",
                "bad_idempotency_key",
                gettext_noop("Send an idempotency key of 1 to 60 letters, digits or . _ : -."),
            )
        )
    else:
        existing = TopUp.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return _replay(existing, request_hash)
    if not isinstance(amount_fen, int) or not 0 < amount_fen <= MAX_TOP_UP_FEN:
        issues.append(
            FieldIssue(
                "amount",
                "out_of_range",
                gettext_noop("Enter an amount from 0.01 to {max} yuan."),
                {"max": MAX_TOP_UP_FEN // 100},
            )
        )
    if channel not in (TopUpChannel.CASH, TopUpChannel.BANK_TRANSFER, TopUpChannel.MOBILE_PAYMENT):
        issues.append(
            FieldIssue(
                "channel", "invalid_choice", gettext_noop("Choose one of the listed values.")
            )
        )
    if issues:
        raise InvalidInput(issues=issues)
    channel_code = {
        TopUpChannel.CASH: ledger.cash_code(outlet.code),
        TopUpChannel.BANK_TRANSFER: ledger.BANK,
        TopUpChannel.MOBILE_PAYMENT: ledger.MOBILE,
    }[TopUpChannel(channel)]
    terminal = settings.ETCNET_COUNTER_TERMINAL_NO

    # Step 1: the card's MAC1, then the money, in one transaction. The same
    # transport carries the whole load: the card keeps its load session only
    # while nothing else is sent to it.
    top: TopUp | None = None
    with transaction.atomic(durable=True):
        card = _lock_card(card_no)
        _require_loadable(card)
        _refuse_if_pending(card)
        transport = devices.open_unit(card)
        init = devices.init_load(transport, card, amount_fen, terminal)
        _check_mac1(card, init, amount_fen, terminal)
        try:
            with transaction.atomic():
                entry = ledger.post(
                    EntryKind.TOP_UP_RECEIVED,
                    ledger.lines(
                        (ledger.account(channel_code), amount_fen),
                        (ledger.account(ledger.LOADS_PENDING), -amount_fen),
                    ),
                    actor=actor,
                    memo=f"{card.card_no} {channel}",
                    idempotency_key=f"topup:{key}:received",
                )
                top = TopUp.objects.create(
                    card=card,
                    amount_fen=amount_fen,
                    channel=channel,
                    status=TopUpStatus.PENDING,
                    terminal_no=terminal,
                    balance_before_fen=init.balance,
                    online_atc=init.online_atc,
                    received_entry=entry,
                    outlet=outlet,
                    created_by=actor,
                    created_at=timezone.now(),
                    idempotency_key=key,
                    request_hash=request_hash,
                )
        except IntegrityError:
            top = None  # the same key won a race a moment ago: answer with its result
        else:
            audit.record(
                actor=actor,
                action="cards.top_up_received",
                subject=card,
                after={"top_up": top.pk, "amount_fen": amount_fen, "channel": channel},
            )
    if top is None:
        return _replay(TopUp.objects.get(idempotency_key=key), request_hash)
    # Steps 2 and 3.
    return _load_onto_card(top.pk, transport, init, actor)


def retry_top_up(top_up_id: int, *, actor: Any) -> TopUp:
    """Finishes a pending top-up — one interrupted at the counter, or a balance
    moved from a replaced card — through the normal MAC1/MAC2/TAC path.

    If the card's online counter has moved since the top-up began, the card
    executed a load meanwhile; since no other top-up can start while one is
    pending, its transaction log must show exactly this one (type 02, this
    amount, this terminal, this counter) — then the top-up is confirmed on
    that evidence; otherwise it stays pending for an operator."""
    _require(actor, Role.ISSUANCE_CLERK)
    with transaction.atomic(durable=True):
        top = _lock_top_up(top_up_id)
        if top.status != TopUpStatus.PENDING:
            return top
        card = CardUnit.objects.select_for_update().get(pk=top.card_id)
        if card.state not in (UnitState.ISSUED, UnitState.ACTIVE):
            raise _wrong_state(card)
        transport = devices.open_unit(card)
        init = devices.init_load(transport, card, top.amount_fen, top.terminal_no)
        _check_mac1(card, init, top.amount_fen, top.terminal_no)
        if top.online_atc is not None and init.online_atc != top.online_atc:
            evidence = _load_in_log(card, top)
            if evidence is None:
                raise CardFault(
                    params={
                        "meaning": "the card's online counter moved without this top-up; "
                        "reconcile it from the card's log"
                    }
                )
            return _confirm(top.pk, "", actor, evidence=evidence)
        if top.online_atc is None:  # a balance transfer's first load
            top.online_atc = init.online_atc
            top.balance_before_fen = init.balance
            top.save(update_fields=["online_atc", "balance_before_fen"])
        return _credit(top, transport, init, actor)


def _lock_top_up(top_up_id: int) -> TopUp:
    try:
        return TopUp.objects.select_for_update().get(pk=top_up_id)
    except TopUp.DoesNotExist:
        raise NotFound(gettext_noop("Top-up not found.")) from None


def _load_in_log(card: CardUnit, top: TopUp) -> dict[str, Any] | None:
    for record in devices.read_log(card):
        if (
            record.trans_type == LOAD_TYPE
            and record.atc == top.online_atc
            and record.amount == top.amount_fen
            and record.terminal.hex().upper() == top.terminal_no.upper()
        ):
            return {"atc": record.atc, "amount": record.amount, "when": record.when.isoformat()}
    return None


def _require_loadable(card: CardUnit) -> None:
    if card.card_type != CardType.STORED_VALUE:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "card",
                    "not_stored_value",
                    gettext_noop(
                        "Only a stored-value card (储值卡) is topped up; "
                        "a debit card is settled by its bank."
                    ),
                )
            ]
        )
    if card.state not in (UnitState.ISSUED, UnitState.ACTIVE):
        raise _wrong_state(card)


def _check_mac1(card: CardUnit, init: Any, amount_fen: int, terminal: str) -> None:
    ok = vault.verify_load_mac1(
        Alg(card.alg),
        card.internal_no,
        random=init.random,
        online_atc=init.online_atc,
        balance_before=init.balance,
        amount=amount_fen,
        terminal_no=bytes.fromhex(terminal),
        mac1=init.mac1,
    )
    if not ok:
        raise MacRejected(params={"what": "MAC1"})


def _load_onto_card(top_up_id: int, transport: Any, init: Any, actor: Any) -> TopUp:
    """MAC2, the card's credit and its TAC, under the top-up's row lock: a retry
    running at the same time waits, then finds the top-up done and leaves the
    card alone — the card is credited once."""
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        top = _lock_top_up(top_up_id)
        if top.status != TopUpStatus.PENDING:
            return top
        return _credit(top, transport, init, actor)


def _credit(top: TopUp, transport: Any, init: Any, actor: Any) -> TopUp:
    card = top.card
    when = timezone.localtime().replace(microsecond=0)
    mac2 = vault.load_mac2(
        Alg(card.alg),
        card.internal_no,
        random=init.random,
        online_atc=init.online_atc,
        amount=top.amount_fen,
        terminal_no=bytes.fromhex(top.terminal_no),
        when=when,
    )
    try:
        tac = devices.finish_load(transport, mac2, when)
    except CardFault as error:
        # The money is recorded and safe in loads_pending; the card was not
        # credited (or its answer was lost): the top-up stays pending.
        raise LoadInterrupted(params={"meaning": error.params.get("meaning", "")}) from error
    verified = vault.verify_load_tac(
        Alg(card.alg),
        card.internal_no,
        balance_after=init.balance + top.amount_fen,
        online_atc=init.online_atc,
        amount=top.amount_fen,
        terminal_no=bytes.fromhex(top.terminal_no),
        when=when,
        tac=tac,
    )
    if not verified:
        raise MacRejected(params={"what": "TAC"})
    return _confirm(top.pk, tac.hex().upper(), actor)


def _confirm(top_up_id: int, tac: str, actor: Any, evidence: dict[str, Any] | None = None) -> TopUp:
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        top = TopUp.objects.select_for_update().get(pk=top_up_id)
        if top.status != TopUpStatus.PENDING:
            return top
        card = CardUnit.objects.select_for_update().get(pk=top.card_id)
        entry = ledger.post(
            EntryKind.TOP_UP_LOADED,
            ledger.lines(
                (ledger.account(ledger.LOADS_PENDING), top.amount_fen),
                (ledger.purse_account(card), -top.amount_fen),
            ),
            actor=actor,
            memo=card.card_no,
            idempotency_key=f"topup:{top.pk}:loaded",
        )
        top.status = TopUpStatus.LOADED
        top.tac = tac
        top.loaded_at = timezone.now()
        top.loaded_entry = entry
        top.save()
        card.refresh_from_db(fields=["shadow_balance_fen"])
        audit.record(
            actor=actor,
            action="cards.top_up_loaded",
            subject=card,
            before={"balance_fen": card.shadow_balance_fen - top.amount_fen},
            after={
                "balance_fen": card.shadow_balance_fen,
                "top_up": top.pk,
                "tac": tac,
                **({"confirmed_from_card_log": evidence} if evidence else {}),
            },
        )
    return top


def refund_pending_top_up(top_up_id: int, *, actor: Any) -> TopUp:
    """Gives back the money of a pending top-up the card never took: under the
    top-up's lock, the card's online counter must not have moved since the
    top-up began. Balance transfers are not refunded here (they are the
    customer's money waiting for the new card). Audits `cards.top_up_refunded`."""
    _require(actor, Role.ISSUANCE_CLERK)
    with transaction.atomic(durable=True):
        top = _lock_top_up(top_up_id)
        if top.status != TopUpStatus.PENDING or top.channel == TopUpChannel.BALANCE_TRANSFER:
            raise WrongState(
                params={"unit": f"top-up {top.pk}", "state": str(top.get_status_display())}
            )
        card = CardUnit.objects.select_for_update().get(pk=top.card_id)
        transport = devices.open_unit(card)
        init = devices.init_load(transport, card, top.amount_fen, top.terminal_no)
        _check_mac1(card, init, top.amount_fen, top.terminal_no)
        if init.online_atc != top.online_atc:
            raise CardFault(
                params={"meaning": "the card's online counter moved: it took a load; retry instead"}
            )
        ledger.reverse(top.received_entry, actor=actor, memo=f"top-up {top.pk} refunded")
        top.status = TopUpStatus.REFUNDED
        top.save(update_fields=["status"])
        audit.record(
            actor=actor,
            action="cards.top_up_refunded",
            subject=card,
            after={"top_up": top.pk, "amount_fen": top.amount_fen},
        )
    return top
