"""The front server towards the national center (部中心): a durable outbox and the
inbox, over the protocol of etcnet.exchange.protocol (docs/exchange.md).

- `queue`: every file clearing made for the national center (a closed day's
  原始交易包, our 记账 for a package of theirs) is signed by the signature
  server and stored as a pending `Transfer` before anything is sent.
- `send`: each pending transfer due is posted; the counterpart's signed Response
  is verified and stored before the transfer is marked (1 and 5 acknowledge, the
  others refuse); no answer, or an answer that does not verify, leaves it pending
  with its error and the next attempt later (backing off to
  ``ETCNET_EXCHANGE_RETRY_MAX_S``). Several processes may send at once: each
  claims its rows (``SKIP LOCKED`` on PostgreSQL).
- `receive`: messages waiting for us are fetched one by one, verified,
  stored and applied whole in one transaction (clearing's `import_file`), and
  answered with our signed Response; one already taken is answered 5 and changes
  nothing, one whose signature does not verify is kept unapplied and answered 2.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from etcnet.clearing import exchange, packages
from etcnet.clearing.models import (
    ClearingDay,
    ClearingEntry,
    DayStatus,
    EntryState,
    ExchangeDirection,
    ExchangeFile,
    ExchangeKind,
)
from etcnet.clearing.packages import ResponseResult
from etcnet.core import audit
from etcnet.core.errors import DomainError as ClearingProblem
from etcnet.exchange import disputes, notices, outbox, protocol, signing, sm2
from etcnet.exchange.models import Direction, Transfer, TransferState
from etcnet.lists import services as lists
from etcnet.lists.models import ListVersion

__all__ = ["LinkUnavailable", "Received", "Sent", "client", "queue", "receive", "send"]

_ACKNOWLEDGED = (ResponseResult.RECEIVED, ResponseResult.DUPLICATE)
#: A status-list version: a file, not a §6.2 message (protocol.FILE_HEADER).
STATUS_LIST = "statuslist"
#: 争议处理结果: a file too (etcnet.exchange.disputes).
DISPUTE_RESULT = "disputes"
#: 退费/补缴通知: a file too (etcnet.exchange.notices).
NOTICES = "notices"
#: A file from the national center is numbered apart from its §6.2 messages.
FILES = (STATUS_LIST, DISPUTE_RESULT, NOTICES)


@dataclass
class Sent:
    queued: int = 0
    acked: int = 0
    refused: int = 0
    failed: list[str] = field(default_factory=list)


@dataclass
class Received:
    applied: int = 0
    duplicates: int = 0
    refused: int = 0
    quarantined: int = 0
    failed: list[str] = field(default_factory=list)


def _root() -> Path:
    return Path(settings.DATA_DIR)


_write = outbox.write


class LinkUnavailable(Exception):
    """The link cannot be opened (no TLS certificate to trust); nothing was sent."""


def client() -> httpx.Client:
    """HTTPS to the national center's front server, trusting its TLS certificate."""
    ca = settings.ETCNET_NATIONAL_TLS_CA
    try:
        context = ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as error:
        raise LinkUnavailable(
            f"ETCNET_NATIONAL_TLS_CA {ca}: {getattr(error, 'strerror', None) or error}"
        ) from None
    return httpx.Client(
        base_url=settings.ETCNET_NATIONAL_URL,
        verify=context,
        timeout=settings.ETCNET_EXCHANGE_TIMEOUT_S,
    )


# -- the outbox ------------------------------------------------------------------


def queue(*, actor: Any = "etcnet exchange") -> int:
    """Store and sign every file for the national center not queued yet."""
    waiting = ClearingEntry.objects.filter(day=OuterRef("pk"), state=EntryState.SENT)
    for day in ClearingDay.objects.filter(status=DayStatus.CLOSED, exchange__isnull=True).filter(
        Exists(waiting)
    ):
        exchange.day_packages(day.date, actor=actor)
    national = settings.ETCNET_NATIONAL_CENTER_ID
    # Only what is not queued yet is read: each pass costs what is new, not the
    # whole history (a minute's status-list versions add up to 500,000 a year).
    sent = Transfer.objects.filter(
        direction=Direction.OUT,
        sender_id=OuterRef("sender_id"),
        kind=OuterRef("kind"),
        message_id=OuterRef("message_id"),
    )
    # A package whose 记账 came in already (a file exchanged by hand, `etcnet
    # clearing import`) was delivered: it is not sent again.
    answered = ExchangeFile.objects.filter(
        direction=ExchangeDirection.IN,
        kind=ExchangeKind.ACCOUNTING,
        body_message_id=OuterRef("body_message_id"),
    )
    new = (
        ExchangeFile.objects.filter(direction=ExchangeDirection.OUT, receiver_id=national)
        .exclude(Exists(sent))
        .exclude(Q(kind=ExchangeKind.TRANSACTIONS) & Exists(answered))
        .order_by("message_id")
    )
    made = 0
    for file in new:
        path = exchange.folder() / file.name
        signature = signing.sign(path.read_bytes(), purpose=f"{file.kind} {file.message_id}")
        signing.signature_file(path).write_text(signature.to_json(), encoding="utf-8")
        with transaction.atomic():
            transfer = Transfer.objects.create(
                direction=Direction.OUT,
                counterpart=national,
                sender_id=file.sender_id,
                message_id=file.message_id,
                kind=file.kind,
                name=str(path.relative_to(_root())),
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                signature=signature.header(),
                state=TransferState.PENDING,
                created_at=timezone.now(),
            )
            audit.record(
                actor=actor,
                action="exchange.queued",
                subject=transfer,
                after={"kind": file.kind, "message_id": file.message_id, "file": transfer.name},
            )
        made += 1
    return made + _queue_lists(actor)


def _queue_lists(actor: Any) -> int:
    """Our status-list versions (each increment, numbered by its version row) for
    the national center, which keeps the national list."""
    ours = settings.ETCNET_CLEARING_SENDER_ID
    made = 0
    sent = Transfer.objects.filter(
        direction=Direction.OUT, sender_id=ours, kind=STATUS_LIST, message_id=OuterRef("pk")
    )
    for version in ListVersion.objects.exclude(Exists(sent)).order_by("number"):
        path = lists.version_path(version)
        data = path.read_bytes()
        signature = signing.sign(data, purpose=f"status list {version.number}")
        with transaction.atomic():
            transfer = Transfer.objects.create(
                direction=Direction.OUT,
                counterpart=settings.ETCNET_NATIONAL_CENTER_ID,
                sender_id=ours,
                message_id=version.pk,
                kind=STATUS_LIST,
                name=str(path.relative_to(_root()) if path.is_relative_to(_root()) else path),
                sha256=hashlib.sha256(data).hexdigest(),
                signature=signature.header(),
                state=TransferState.PENDING,
                created_at=timezone.now(),
            )
            audit.record(actor=actor, action="exchange.queued", subject=transfer,
                         after={"kind": STATUS_LIST, "version": version.number})  # fmt: skip
        made += 1
    return made


def _claim(limit: int) -> list[Transfer]:
    pending = Transfer.objects.filter(direction=Direction.OUT, state=TransferState.PENDING)
    return outbox.claim(pending, limit, "message_id")


def _fail(transfer: Transfer, error: str) -> None:
    transfer.last_error = error[:2000]
    transfer.save(update_fields=["last_error"])


def _read_response(answer: httpx.Response, transfer: Transfer) -> tuple[ResponseResult | None, str]:
    """The counterpart's result, its Response (or file answer) verified, or why
    it cannot be taken."""
    if answer.status_code != 200:
        return None, f"HTTP {answer.status_code}: {answer.text[:200]}"
    try:
        signature = sm2.Signature.from_header(answer.headers.get(protocol.SIGNATURE_HEADER))
        signing.verify(answer.content, signature, party=transfer.counterpart)
        if transfer.kind == STATUS_LIST:
            taken = protocol.FileAnswer.from_bytes(answer.content)
            answered, result = taken.file_id, taken.result
        else:
            response = packages.read(answer.content)
            if not isinstance(response, packages.Response):
                return None, "response: not a Response"
            answered, result = response.header.message_id, response.result
    except (sm2.SignatureError, packages.PackageError, ValueError) as error:
        return None, f"response: {error}"
    if answered != transfer.message_id:
        return None, f"response: answers message {answered}"
    return result, ""


def send(
    *, http: httpx.Client | None = None, limit: int = 100, actor: Any = "etcnet exchange"
) -> Sent:
    report = Sent()
    own = http is None
    http = http or client()
    try:
        for transfer in _claim(limit):
            path = _root() / transfer.name
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != transfer.sha256:
                _fail(transfer, f"{transfer.name}: changed on disk since it was signed")
                report.failed.append(transfer.name)
                continue
            try:
                if transfer.kind == STATUS_LIST:
                    answer = http.post(
                        "/v1/files",
                        params={"name": path.name},
                        content=data,
                        headers={
                            "Content-Type": "application/octet-stream",
                            protocol.SIGNATURE_HEADER: transfer.signature,
                            protocol.FILE_ID_HEADER: str(transfer.message_id),
                            protocol.SENDER_HEADER: transfer.sender_id,
                        },
                    )
                else:
                    answer = http.post(
                        "/v1/messages",
                        content=data,
                        headers={
                            "Content-Type": protocol.CONTENT_TYPE,
                            protocol.SIGNATURE_HEADER: transfer.signature,
                        },
                    )
            except httpx.HTTPError as lost:
                _fail(transfer, f"not answered: {type(lost).__name__}: {lost}")
                report.failed.append(transfer.name)
                continue
            result, why = _read_response(answer, transfer)
            if result is None:
                kept = _root() / "exchange" / "answers" / f"{path.name}.answer-{transfer.attempts}"
                _write(kept, answer.content)
                _fail(transfer, why)
                report.failed.append(transfer.name)
                continue
            _acknowledged(transfer, path, answer, result, actor)
            if transfer.state == TransferState.ACKED:
                report.acked += 1
            else:
                report.refused += 1
    finally:
        if own:
            http.close()
    return report


def _acknowledged(
    transfer: Transfer,
    path: Path,
    answer: httpx.Response,
    result: ResponseResult,
    actor: Any,
) -> None:
    """Store the Response (file, then row) before anything acts on it."""
    suffix = ".answer.json" if transfer.kind == STATUS_LIST else ".response.xml"
    response_path = _root() / "exchange" / "answers" / (path.name + suffix)
    _write(response_path, answer.content)
    signing.signature_file(response_path).write_text(
        sm2.Signature.from_header(answer.headers[protocol.SIGNATURE_HEADER]).to_json(),
        encoding="utf-8",
    )
    with transaction.atomic():
        transfer.response_code = int(result)
        transfer.response_name = str(response_path.relative_to(_root()))
        transfer.answered_at = timezone.now()
        transfer.state = TransferState.ACKED if result in _ACKNOWLEDGED else TransferState.REFUSED
        transfer.next_attempt_at = None
        reason = answer.headers.get("X-Etcnet-Reason", "")
        transfer.last_error = "" if transfer.state == TransferState.ACKED else reason[:2000]
        transfer.save()
        audit.record(
            actor=actor,
            action="exchange.answered",
            subject=transfer,
            after={"result": int(result), "state": transfer.state, "attempts": transfer.attempts},
        )


# -- the inbox -------------------------------------------------------------------


def receive(
    *, http: httpx.Client | None = None, limit: int = 1000, actor: Any = "etcnet exchange"
) -> Received:
    """Fetch, take and answer the messages waiting for us (at most ``limit``)."""
    report = Received()
    own = http is None
    http = http or client()
    ours = settings.ETCNET_CLEARING_SENDER_ID
    try:
        for _ in range(limit):
            try:
                answer = http.get("/v1/messages", params={"for": ours})
            except httpx.HTTPError as error:
                report.failed.append(f"not answered: {type(error).__name__}: {error}")
                break
            if answer.status_code == 204:
                break
            if answer.status_code != 200:
                report.failed.append(f"HTTP {answer.status_code}")
                break
            delivery = answer.headers.get(protocol.DELIVERY_HEADER, "")
            data, signature = answer.content, answer.headers.get(protocol.SIGNATURE_HEADER)
            if protocol.FILE_HEADER in answer.headers:
                taken = take_file(data, answer.headers, report=report, actor=actor)
                body = taken.to_bytes()
                sig = signing.sign(body, purpose=f"file answer {taken.file_id}")
                if not _answer(http, delivery, body, sig, report):
                    break
                continue
            result, envelope = take(data, signature, report=report, actor=actor)
            if envelope is None:
                report.failed.append(f"delivery {delivery}: no header to answer")
                break
            response = protocol.response(envelope, responder=ours, result=result)
            body = packages.write(response)
            sig = signing.sign(body, purpose=f"response {envelope.header.message_id}")
            if not _answer(http, delivery, body, sig, report):
                break
    finally:
        if own:
            http.close()
    return report


def _answer(
    http: httpx.Client, delivery: str, body: bytes, sig: sm2.Signature, report: Received
) -> bool:
    try:
        http.post(
            f"/v1/deliveries/{delivery}/response",
            content=body,
            headers={
                "Content-Type": protocol.CONTENT_TYPE,
                protocol.SIGNATURE_HEADER: sig.header(),
            },
        )
    except httpx.HTTPError as error:
        # It comes again and is answered 5 then: taken once all the same.
        report.failed.append(f"delivery {delivery}: answer not delivered: {error}")
        return False
    return True


def take_file(
    data: bytes, headers: httpx.Headers, *, report: Received, actor: Any
) -> protocol.FileAnswer:
    """A file from the national center — a status-list version (imported all or
    nothing by lists' `import_file`) or a 争议处理结果 (etcnet.exchange.disputes) —
    verified, kept and applied once."""
    national = settings.ETCNET_NATIONAL_CENTER_ID
    name = Path(headers.get(protocol.FILE_HEADER, "file")).name or "file"
    try:
        file_id = int(headers.get(protocol.FILE_ID_HEADER, ""))
    except ValueError:
        file_id = 0
    kept = f"exchange/in/files/{national}-{file_id:010d}-{name}"
    kind = (
        DISPUTE_RESULT
        if name.startswith(disputes.PREFIX)
        else NOTICES
        if name.startswith(notices.PREFIX)
        else STATUS_LIST
    )
    envelope = packages.Envelope(packages.Header(national, settings.ETCNET_CLEARING_SENDER_ID,
                                                 max(file_id, 1)), 5, 0, 0)  # fmt: skip
    try:
        sig = sm2.Signature.from_header(headers.get(protocol.SIGNATURE_HEADER))
        signing.verify(data, sig, party=national)
    except sm2.SignatureError as error:
        _write(_root() / "exchange" / "in" / "quarantine" / f"{file_id:010d}-{name}", data)
        _record_in(envelope, kept, data, headers.get(protocol.SIGNATURE_HEADER, ""),
                   TransferState.QUARANTINED, ResponseResult.HEADER_ERROR, str(error), actor,
                   kind=kind)  # fmt: skip
        report.quarantined += 1
        return protocol.FileAnswer(file_id, ResponseResult.HEADER_ERROR, str(error))
    seen = (
        Transfer.objects.filter(
            direction=Direction.IN, sender_id=national, kind__in=FILES, message_id=file_id
        )
        .exclude(state=TransferState.QUARANTINED)
        .first()
    )
    if seen is not None:
        Transfer.objects.filter(pk=seen.pk).update(deliveries=seen.deliveries + 1)
        report.duplicates += 1
        return protocol.FileAnswer(file_id, ResponseResult.DUPLICATE, "taken before")
    _write(_root() / kept, data)
    if kind == DISPUTE_RESULT:
        try:
            disputes.apply(data, actor=actor)
            refusal = ""
        except (disputes.DisputeFileError, ClearingProblem) as error:
            refusal = str(error)
    elif kind == NOTICES:
        try:
            notices.apply(data, file=kept, actor=actor)
            refusal = ""
        except notices.NoticeFileError as error:
            refusal = str(error)
    else:
        imported = lists.import_file(data, filename=name, actor=actor)
        refusal = ""
        if imported.result == imported.Result.REFUSED:
            refusal = f"{imported.field}: {imported.report}"
    if refusal:
        result, reason, state = ResponseResult.CONTENT_ERROR, refusal, TransferState.REFUSED
        report.refused += 1
    else:
        result, reason, state = ResponseResult.RECEIVED, "", TransferState.APPLIED
        report.applied += 1
    _record_in(envelope, kept, data, sig.header(), state, result, reason, actor, kind=kind)
    return protocol.FileAnswer(file_id, result, reason)


def take(
    data: bytes, signature: str | None, *, report: Received, actor: Any
) -> tuple[ResponseResult, packages.Envelope | None]:
    """Verify, store and apply one message from the national center → our result."""
    judged = protocol.judge(data)
    envelope = judged.envelope
    if envelope is None:
        _write(_root() / "exchange" / "in" / "unreadable" / hashlib.sha256(data).hexdigest(), data)
        return ResponseResult.HEADER_ERROR, None
    header = envelope.header
    national = settings.ETCNET_NATIONAL_CENTER_ID
    name = f"exchange/in/{header.sender_id}-{header.message_id:010d}.xml"
    try:
        sig = sm2.Signature.from_header(signature)
        signing.verify(data, sig, party=national)
    except sm2.SignatureError as error:
        digest = hashlib.sha256(data).hexdigest()
        kept = (
            f"exchange/in/quarantine/{header.sender_id}-{header.message_id:010d}-{digest[:12]}.xml"
        )
        _write(_root() / kept, data)
        _record_in(envelope, kept, data, signature or "", TransferState.QUARANTINED,
                   ResponseResult.HEADER_ERROR, str(error), actor)  # fmt: skip
        report.quarantined += 1
        return ResponseResult.HEADER_ERROR, envelope
    seen = (
        Transfer.objects.filter(
            direction=Direction.IN, sender_id=header.sender_id, message_id=header.message_id
        )
        .exclude(state=TransferState.QUARANTINED)
        .exclude(kind__in=FILES)
        .first()
    )
    if seen is not None:
        Transfer.objects.filter(pk=seen.pk).update(deliveries=seen.deliveries + 1)
        report.duplicates += 1
        return ResponseResult.DUPLICATE, envelope
    _write(_root() / name, data)
    signing.signature_file(_root() / name).write_text(sig.to_json(), encoding="utf-8")
    result, reason = judged.result, judged.reason
    if judged.message is not None:
        try:
            with transaction.atomic():
                imported = exchange.import_file(_root() / name, actor=actor)
                if imported.file.finding:
                    result, reason = ResponseResult.RECONCILIATION_FAILED, imported.file.finding
                _record_in(envelope, name, data, signature or "", TransferState.APPLIED,
                           result, reason, actor)  # fmt: skip
            report.applied += 1
            return result, envelope
        except exchange.ExchangeError as error:
            result, reason = ResponseResult.CONTENT_ERROR, str(error)
    _record_in(envelope, name, data, signature or "", TransferState.REFUSED, result, reason, actor)
    report.refused += 1
    return result, envelope


def _record_in(
    envelope: packages.Envelope,
    name: str,
    data: bytes,
    signature: str,
    state: str,
    result: ResponseResult,
    reason: str,
    actor: Any,
    *,
    kind: str = "",
) -> Transfer:
    header = envelope.header
    kind = kind or {(7, 1): "transactions", (5, 1): "accounting", (5, 2): "summary"}.get(
        (envelope.message_type, envelope.content_type), "other"
    )
    with transaction.atomic():
        transfer = Transfer.objects.create(
            direction=Direction.IN,
            counterpart=header.sender_id,
            sender_id=header.sender_id,
            message_id=header.message_id,
            kind=kind,
            name=name,
            sha256=hashlib.sha256(data).hexdigest(),
            signature=signature[:2000],
            state=state,
            last_error=reason[:2000],
            response_code=int(result),
            created_at=timezone.now(),
            answered_at=timezone.now(),
            deliveries=1,
        )
        audit.record(
            actor=actor,
            action="exchange.received",
            subject=transfer,
            after={"kind": kind, "message_id": header.message_id, "state": state,
                   "result": int(result), "reason": reason[:300]},
        )  # fmt: skip
    return transfer
