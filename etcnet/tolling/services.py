"""Tolling services: registering terminals and ingesting their uploads.

Ingest is idempotent at two levels: the upload `(terminal, upload_key)` and each
record `(terminal, seq)`, both keyed with the payload's hash. Each record is
stored in its own transaction, so one bad record never costs the others; the
upload's answer is stored last, so a retry after a crash re-answers from the
records already stored (as duplicates) and never stores twice.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate as authenticate_user
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from etcnet.cards import devices, ledger
from etcnet.cards import services as cards
from etcnet.cards.errors import MacRejected
from etcnet.cards.models import CardUnit, EntryKind, UnitState
from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.money import MAX_CASH_ROUND_UP_FEN
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.issuance import images
from etcnet.network.models import Lane, LaneDirection, Node, NodeKind
from etcnet.tolling.models import (
    Direction,
    DisputeCode,
    Flag,
    RecordStatus,
    SpecialCase,
    StationMembership,
    Terminal,
    TollTransaction,
    Upload,
)

STORED_VALUE, DEBIT, FREE = 22, 23, 0
CARD_PAYMENTS = (STORED_VALUE, DEBIT)


def _by_card(f: Mapping[str, Any]) -> bool:
    """The record carries a card purchase whose TAC the vault must verify: paid by
    the card, or an exempt exit closed on the card by a zero-amount purchase."""
    return f["payment_type"] in CARD_PAYMENTS or (f["payment_type"] == FREE and bool(f["tac"]))


class UploadConflict(Conflict):
    code = "idempotency_conflict"
    template = gettext_noop("This upload key was already used for a different upload.")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_terminal(
    terminal_id: str, *, station_id: str, lanes: Sequence[int], actor: Any
) -> tuple[Terminal, str, Path]:
    """Registers a handheld or lane PC at a station: its allowed lanes, a PSAM
    (emulated, provisioned here with its terminal number) and its secret, which
    is returned once and stored only as a digest. Audits `tolling.terminal_registered`."""
    if not has_role(actor, Role.CENTER_OPERATOR):
        raise Forbidden()
    if not (1 <= len(terminal_id) <= 20 and terminal_id.replace("-", "").isalnum()):
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "terminal_id",
                    "bad_terminal_id",
                    gettext_noop("A terminal id has 1 to 20 letters, digits or dashes."),
                )
            ]
        )
    with transaction.atomic(durable=True):
        station = Node.objects.filter(node_id=station_id, kind=NodeKind.STATION).first()
        if station is None:
            raise NotFound(gettext_noop("Station not found."))
        allowed = list(Lane.objects.filter(station=station, number__in=list(lanes)))
        if len(allowed) != len(set(lanes)):
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "lanes", "unknown_lane", gettext_noop("Choose lanes of this station.")
                    )
                ]
            )
        count = Terminal.objects.filter(station=station).count()
        secret = secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                terminal = Terminal.objects.create(
                    terminal_id=terminal_id,
                    station=station,
                    psam_terminal_no=f"{station.hex}{count + 1:04d}".upper()[:12].rjust(12, "0"),
                    secret_digest=_digest(secret),
                    created_at=timezone.now(),
                )
        except IntegrityError:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "terminal_id",
                        "terminal_exists",
                        gettext_noop("This terminal is registered."),
                    )
                ]
            ) from None
        terminal.lanes.set(allowed)
        psam = Path(settings.ETCNET_CARD_DIR) / f"psam-{terminal_id}.json"
        psam.parent.mkdir(parents=True, exist_ok=True)
        devices.provision_psam(psam, terminal_no=terminal.psam_terminal_no)
        audit.record(
            actor=actor,
            action="tolling.terminal_registered",
            subject=terminal,
            after={
                "station": station_id,
                "lanes": sorted(lanes),
                "psam_terminal_no": terminal.psam_terminal_no,
            },
        )
    return terminal, secret, psam


def reset_secret(terminal_id: str, *, actor: Any) -> str:
    """A new secret for a terminal (the old one stops working at once); returned
    once, stored as a digest. Audits `tolling.terminal_secret_reset`."""
    if not has_role(actor, Role.CENTER_OPERATOR):
        raise Forbidden()
    secret = secrets.token_urlsafe(32)
    with transaction.atomic(durable=True):
        terminal = Terminal.objects.select_for_update().filter(terminal_id=terminal_id).first()
        if terminal is None:
            raise NotFound(gettext_noop("Terminal not found."))
        terminal.secret_digest = _digest(secret)
        terminal.save(update_fields=["secret_digest"])
        audit.record(
            actor=actor, action="tolling.terminal_secret_reset", subject=terminal, after={}
        )
    return secret


def authenticate(terminal_id: str, secret: str) -> Terminal | None:
    """The terminal these credentials prove, or None (constant-time compare)."""
    terminal = Terminal.objects.filter(terminal_id=terminal_id, active=True).first()
    if terminal is None:
        hmac.compare_digest(_digest(secret), _digest(""))  # the same work either way
        return None
    if not hmac.compare_digest(terminal.secret_digest, _digest(secret)):
        return None
    return terminal


def login(
    terminal: Terminal, *, username: str, password: str, request: Any
) -> dict[str, Any] | None:
    """A collector or station master signing in at a terminal, checked by the
    center: their roles and password verifier (Django's salted hash, never the
    password), which the terminal keeps for an offline sign-in later. None when
    the credentials are wrong or the user works neither role. Audits
    `tolling.terminal_login` either way; repeated failures lock the user out
    like a console sign-in (django-axes sees the request)."""
    user = authenticate_user(request, username=username, password=password)
    roles = sorted(
        r
        for r in (Role.TOLL_COLLECTOR, Role.STATION_MASTER)
        if user is not None
        and has_role(user, r)
        # A station master authorises only at his own station (seed 002).
        and (r != Role.STATION_MASTER or _member_of(user, terminal.station))
    )
    with transaction.atomic(durable=True):
        audit.record(
            actor=f"terminal {terminal.terminal_id}",
            action="tolling.terminal_login" if roles else "tolling.terminal_login_refused",
            subject=terminal,
            after={"username": username[:150], "roles": roles},
        )
    if user is None or not roles:
        return None
    return {
        "username": user.username,
        "name": user.get_full_name() or user.username,
        "roles": roles,
        "verifier": user.password,
    }


def _member_of(user: Any, station: Node) -> bool:
    return StationMembership.objects.filter(user=user, station=station).exists()


def station_staff(station: Node) -> QuerySet[Any]:
    """The active collectors and station masters who belong to the station."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(
            is_active=True,
            groups__name__in=[Role.TOLL_COLLECTOR, Role.STATION_MASTER],
            station_memberships__station=station,
        )
        .distinct()
        .order_by("username")
    )


def _is_station_master_of(username: str, station: Node) -> bool:
    """The named user is an active station master who belongs to the station."""
    return (
        station_staff(station).filter(username=username, groups__name=Role.STATION_MASTER).exists()
    )


def _hash(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


def ingest(
    terminal: Terminal, *, upload_key: str, records: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Stores an upload's records once and answers per record: `accepted`,
    `duplicate` (the first result), `rejected` (with the dispute code and the
    reason), or `conflict` (the seq was used for another payload; nothing stored).
    The same upload key with the same payload gets the stored answer; with
    another payload, `UploadConflict` (409)."""
    payload_hash = _hash(list(records))
    existing = Upload.objects.filter(terminal=terminal, upload_key=upload_key).first()
    if existing is not None:
        if existing.payload_hash != payload_hash:
            raise UploadConflict()
        # The first answer, with the clock read now: the terminal measures its
        # offset from every answer, a replayed one too.
        return {**existing.response, "server_time": timezone.now().isoformat()}
    results = [_ingest_record(terminal, record) for record in records]
    response = {
        "upload_key": upload_key,
        "results": results,
        "server_time": timezone.now().isoformat(),
    }
    try:
        with transaction.atomic(durable=True):
            Upload.objects.create(
                terminal=terminal,
                upload_key=upload_key,
                payload_hash=payload_hash,
                response=response,
                received_at=timezone.now(),
            )
            Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=timezone.now())
    except IntegrityError:
        # The same upload raced in twice: answer as the first one did.
        return ingest(terminal, upload_key=upload_key, records=records)
    return response


def _ingest_record(terminal: Terminal, record: Mapping[str, Any]) -> dict[str, Any]:
    seq = record.get("seq")
    if not isinstance(seq, int) or not 0 <= seq < 2**63:
        return {"seq": seq, "result": "invalid", "code": "bad_seq"}
    record_hash = _hash(record)
    stored = TollTransaction.objects.filter(terminal=terminal, seq=seq).first()
    if stored is not None:
        return _replay(stored, record_hash)
    try:
        fields = _within_bounds(_fields(terminal, record))
    except (KeyError, TypeError, ValueError) as error:
        fields = None
        problem = str(error)
    if fields is None:
        # A record that cannot even be read is kept too, for operators.
        return _store_rejected_shell(terminal, seq, record_hash, record, problem)
    photo = fields.pop("photo")
    status, code, reason = _verdict(terminal, fields)
    if isinstance(photo, FieldIssue):
        status, code, reason = (
            RecordStatus.REJECTED,
            int(DisputeCode.DATA_FIELD),
            f"vehicle photo: {photo.code}",
        )
        photo = None
    fields["flag"] = _flag(terminal, fields)
    if status == RecordStatus.ACCEPTED and _by_card(fields):
        # The purchase is its own transaction, idempotent by the PSAM's terminal
        # number and sequence: a crash before the record below is stored is
        # healed by the terminal's retry, which finds the same entry.
        try:
            _record_purchase(terminal, fields)
        except MacRejected:
            status, code, reason = (
                RecordStatus.REJECTED,
                int(DisputeCode.TAC_FAILED),
                "the card's TAC does not verify",
            )
    try:
        with transaction.atomic(durable=True):
            if status == RecordStatus.ACCEPTED:
                _post_debit_toll(terminal, seq, fields)
            fields["tac_verified"] = status == RecordStatus.ACCEPTED and _by_card(fields)
            txn = TollTransaction(
                terminal=terminal,
                seq=seq,
                payload_hash=record_hash,
                status=status,
                dispute_code=code,
                reason=reason[:200],
                received_at=timezone.now(),
                **fields,
            )
            if photo is not None:
                txn.photo.save(
                    f"{terminal.terminal_id}-{seq}.{photo.extension}", photo.content, save=False
                )
            txn.save()
            audit.record(
                actor=f"terminal {terminal.terminal_id}",
                action=f"tolling.transaction_{status}",
                subject=txn,
                after={
                    "seq": seq,
                    "payable_fen": txn.payable_fen,
                    "code": code,
                    **({"flag": txn.flag} if txn.flag else {}),
                },
            )
    except IntegrityError:
        stored = TollTransaction.objects.get(terminal=terminal, seq=seq)
        return _replay(stored, record_hash)
    answer = {"seq": seq, "result": status, "code": code, "reason": reason, "id": txn.pk}
    return {**answer, "flag": txn.flag} if txn.flag else answer


def _replay(stored: TollTransaction, record_hash: str) -> dict[str, Any]:
    if stored.payload_hash != record_hash:
        return {"seq": stored.seq, "result": "conflict", "code": "idempotency_conflict"}
    return {
        "seq": stored.seq,
        "result": "duplicate",
        "first_result": stored.status,
        "code": stored.dispute_code,
        "id": stored.pk,
    }


def _time(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("times carry their offset")
    if not 1900 <= parsed.year <= 2999:
        raise ValueError(f"time out of range: {value}")
    return parsed


# What each number's column (and, for money, the card's 4-byte purse) holds;
# a record past them is unreadable, not a server error.
_SMALL = (0, 32_767)
_PURSE = (0, 2**32 - 1)
_BOUNDS = {
    "lane_number": _SMALL,
    "clock_offset_ms": (-(2**31), 2**31 - 1),
    "plate_color": _SMALL,
    "vehicle_class": _SMALL,
    "vehicle_kind": _SMALL,
    "fee_fen": _PURSE,
    "discount_fen": _PURSE,
    "payable_fen": _PURSE,
    "payment_type": _SMALL,
    "amount_fen": _PURSE,
    "trans_type": (0, 255),
    "terminal_trans_seq": _PURSE,
    "axles": _SMALL,
    "total_weight_kg": (0, 2**31 - 1),
    "weight_limit_kg": (0, 2**31 - 1),
}


def _within_bounds(fields: dict[str, Any]) -> dict[str, Any]:
    for name, (low, high) in _BOUNDS.items():
        value = fields.get(name)
        if isinstance(value, int) and not low <= value <= high:
            raise ValueError(f"{name} out of range: {value}")
    return fields


def _fields(terminal: Terminal, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's columns; KeyError/ValueError/TypeError when malformed."""
    entry_time = record.get("entry_time")
    direction = str(record.get("direction") or Direction.EXIT)
    special = str(record.get("special_case") or "")
    if direction not in Direction.values:
        raise ValueError(f"direction is entry or exit, not {direction!r}")
    if special and special not in SpecialCase.values:
        raise ValueError(f"unknown special case {special!r}")
    return {
        "direction": direction,
        "station": terminal.station,
        "lane_number": int(record["lane"]),
        "exit_time": _time(record["exit_time"]),
        "clock_offset_ms": int(record.get("clock_offset_ms", 0)),
        "entry_station": str(record.get("entry_station") or "")[:20],
        "entry_time": _time(entry_time) if entry_time else None,
        "card_no": str(record.get("card_no") or "")[:20],
        "obu_no": str(record.get("obu_no") or "")[:16],
        "plate": str(record.get("plate") or "")[:12],
        "plate_color": record.get("plate_color"),
        "vehicle_class": int(record["vehicle_class"]),
        "vehicle_kind": int(record.get("vehicle_kind", 0)),
        "method": str(record["method"])[:16],
        "fee_fen": int(record["fee_fen"]),
        "discount_fen": int(record.get("discount_fen", 0)),
        "payable_fen": int(record["payable_fen"]),
        "intervals": list(record.get("intervals") or []),
        "payment_type": int(record["payment_type"]),
        "amount_fen": int(record.get("amount_fen", 0)),
        "trans_type": record.get("trans_type"),
        "terminal_trans_seq": record.get("terminal_trans_seq"),
        "tac": str(record.get("tac") or "").upper()[:8],
        "collector": str(record.get("collector") or "")[:20],
        "shift": str(record.get("shift") or "")[:20],
        "authorised_by": str(record.get("authorised_by") or "")[:20],
        "axles": _optional_int(record.get("axles")),
        "total_weight_kg": _optional_int(record.get("total_weight_kg")),
        "weight_limit_kg": _optional_int(record.get("weight_limit_kg")),
        "overweight": bool(record.get("overweight", False)),
        "special_case": special,
        "special_reason": str(record.get("special_reason") or "")[:200],
        "photo": _photo(record.get("photo_jpeg")),
    }


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _photo(encoded: Any) -> images.PreparedImage | FieldIssue | None:
    """The vehicle photo the collector took (提交图片数据), base64 in the record:
    checked and re-encoded like every uploaded photo."""
    if not encoded:
        return None
    try:
        raw = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError):
        return FieldIssue(
            "photo_jpeg", "file_not_image", gettext_noop("Upload a JPEG or PNG photo.")
        )
    return images.prepare(SimpleUploadedFile("vehicle.jpg", raw))


def _store_rejected_shell(
    terminal: Terminal, seq: int, record_hash: str, record: Mapping[str, Any], problem: str
) -> dict[str, Any]:
    with transaction.atomic(durable=True):
        txn, created = TollTransaction.objects.get_or_create(
            terminal=terminal,
            seq=seq,
            defaults={
                "payload_hash": record_hash,
                "status": RecordStatus.REJECTED,
                "dispute_code": DisputeCode.DATA_FIELD,
                "reason": f"unreadable record: {problem}"[:200],
                "station": terminal.station,
                "lane_number": 0,
                "exit_time": timezone.now(),
                "received_at": timezone.now(),
                "vehicle_class": 0,
                "method": "",
                "fee_fen": 0,
                "payable_fen": 0,
                "payment_type": 0,
            },
        )
        if created:
            audit.record(
                actor=f"terminal {terminal.terminal_id}",
                action="tolling.transaction_rejected",
                subject=txn,
                after={"seq": seq, "code": int(DisputeCode.DATA_FIELD), "reason": txn.reason},
            )
    if not created:
        return _replay(txn, record_hash)
    return {
        "seq": seq,
        "result": RecordStatus.REJECTED,
        "code": int(DisputeCode.DATA_FIELD),
        "reason": txn.reason,
        "id": txn.pk,
    }


def _flag(terminal: Terminal, f: Mapping[str, Any]) -> str:
    """What an operator must review in a record that is still taken as it is:
    the station master named as authorising it (the minimum fee) does not belong
    to this terminal's station. The card was debited, so the record is never
    dropped for it; it is flagged and shows in the exceptions queue."""
    master = f["authorised_by"]
    if master and not _is_station_master_of(master, terminal.station):
        return str(Flag.FOREIGN_MASTER)
    return ""


def _verdict(terminal: Terminal, f: Mapping[str, Any]) -> tuple[str, int | None, str]:
    """Accept, or reject with the §6.2 dispute code and a reason."""
    direction = LaneDirection.ENTRY if f["direction"] == Direction.ENTRY else LaneDirection.EXIT
    lane = terminal.lanes.filter(number=f["lane_number"], direction=direction).first()
    if lane is None:
        return (
            RecordStatus.REJECTED,
            int(DisputeCode.NOT_ALLOWED),
            f"not an {direction} lane this terminal may work",
        )
    if f["direction"] == Direction.ENTRY:
        return RecordStatus.ACCEPTED, None, ""
    if (
        f["payable_fen"] < 0
        or f["fee_fen"] < 0
        or f["payable_fen"] > f["fee_fen"] + MAX_CASH_ROUND_UP_FEN
    ):
        return RecordStatus.REJECTED, int(DisputeCode.DATA_FIELD), "fee fields do not add up"
    if not _by_card(f):
        return RecordStatus.ACCEPTED, None, ""
    if f["payment_type"] == FREE and f["amount_fen"]:
        return RecordStatus.REJECTED, int(DisputeCode.DATA_FIELD), "a free passage charged the card"
    if TollTransaction.objects.filter(
        terminal=terminal, terminal_trans_seq=f["terminal_trans_seq"], status=RecordStatus.ACCEPTED
    ).exists():
        return (
            RecordStatus.REJECTED,
            int(DisputeCode.DUPLICATE),
            "the PSAM sequence was already used",
        )
    card = CardUnit.objects.filter(card_no=f["card_no"]).first()
    if card is None:
        return RecordStatus.REJECTED, int(DisputeCode.NO_CARD), "card number does not exist"
    if card.state not in (UnitState.ACTIVE, UnitState.ISSUED):
        return RecordStatus.REJECTED, int(DisputeCode.CARD_STATE), f"card is {card.state}"
    if f["payment_type"] in CARD_PAYMENTS and f["payment_type"] != card.card_type:
        return (
            RecordStatus.REJECTED,
            int(DisputeCode.INVALID_TYPE),
            "payment type is not the card's type",
        )
    return RecordStatus.ACCEPTED, None, ""


def _record_purchase(terminal: Terminal, f: Mapping[str, Any]) -> None:
    """The card's TAC verified by the vault, then the purse pays (stored value)."""
    cards.record_purchase(
        f["card_no"],
        amount_fen=f["amount_fen"],
        trans_type=int(f["trans_type"] or 0),
        terminal_no=terminal.psam_terminal_no,
        terminal_seq=int(f["terminal_trans_seq"] or 0),
        # The card signed the terminal's local (Asia/Shanghai) date and time.
        when=f["exit_time"].astimezone(timezone.get_current_timezone()).replace(tzinfo=None),
        tac=f["tac"],
        actor=None,
    )


def _post_debit_toll(terminal: Terminal, seq: int, f: Mapping[str, Any]) -> None:
    """A debit card's account owes the toll until its bank settles."""
    if f["payment_type"] != DEBIT or f["payable_fen"] <= 0:
        return
    card = CardUnit.objects.get(card_no=f["card_no"])
    account = card.account.number if card.account else card.card_no
    ledger.post(
        EntryKind.PURCHASE,
        ledger.lines(
            (ledger.account(ledger.receivable_code(account)), f["payable_fen"]),
            (ledger.account(ledger.TOLLS_PAYABLE), -f["payable_fen"]),
        ),
        memo=f"debit toll {terminal.terminal_id}:{seq}",
        idempotency_key=f"toll:{terminal.terminal_id}:{seq}",
    )
