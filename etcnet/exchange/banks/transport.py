"""The front server towards the banks: the durable outbox and the intake
(docs/banks.md), over HTTPS with SM2-signed files and receipts.

- `prepare` writes a file (fsync) and has the signature server sign it
  (``NAME.sig`` beside it); `record_out` stores its pending `BankFile` inside the
  caller's transaction (with whatever the file is about: debit lines,
  instructions). So a file is stored and signed before it is sent.
- `send` posts each pending file that is due; the bank's signed receipt is
  verified against its registered certificate and stored before the file is
  marked (received and duplicate acknowledge; refused refuses, with the bank's
  reason). No answer, or one that does not verify, leaves it pending with its
  error, resent later (``ETCNET_EXCHANGE_RETRY_S`` doubling to ``…_MAX_S``).
- `receive` fetches what a bank has for us, one file at a time: a signature
  that does not verify → kept in quarantine, answered refused; the same file
  again → answered duplicate, nothing changes; a malformed file → refused whole,
  naming its line and field, kept; otherwise stored and applied whole in one
  transaction (`debits.apply_result`, `settlement.apply_confirmations`,
  `keys.apply_keys`) and answered received.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.exchange import bankfiles, outbox, signing, sm2
from etcnet.exchange.banks.config import Bank, load
from etcnet.exchange.models import BankFile, Direction, TransferState

__all__ = [
    "BankUnavailable",
    "Prepared",
    "Received",
    "Sent",
    "prepare",
    "receive",
    "record_out",
    "send",
]


class BankUnavailable(Exception):
    """The link to a bank cannot be opened (no TLS certificate to trust)."""


@dataclass
class Sent:
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


@dataclass(frozen=True)
class Prepared:
    path: Path
    sha256: str
    signature: sm2.Signature


def _root() -> Path:
    return Path(settings.DATA_DIR)


def folder(direction: str, bank: str) -> Path:
    return _root() / "exchange" / "banks" / direction / bank


write = outbox.write


def ours() -> str:
    return str(settings.ETCNET_CLEARING_SENDER_ID)


# -- out -------------------------------------------------------------------------


def prepare(bank: str, name: str, data: bytes, *, purpose: str) -> Prepared:
    """The file written and signed (raises `signing.SignerUnavailable`)."""
    path = folder("out", bank) / f"{name}.txt"
    write(path, data)
    signature = signing.sign_file(path, purpose=purpose)
    return Prepared(path, hashlib.sha256(data).hexdigest(), signature)


def record_out(
    prepared: Prepared,
    *,
    bank: str,
    kind: str,
    name: str,
    date: dt.date | None,
    lines: int,
    amount_fen: int,
    actor: Any,
) -> BankFile:
    """The pending row of a prepared file, in the caller's transaction."""
    row = BankFile.objects.create(
        direction=Direction.OUT,
        bank=bank,
        kind=kind,
        name=name,
        path=str(prepared.path.relative_to(_root())),
        date=date,
        sha256=prepared.sha256,
        signature=prepared.signature.header(),
        state=TransferState.PENDING,
        lines=lines,
        amount_fen=amount_fen,
        created_at=timezone.now(),
    )
    audit.record(
        actor=actor,
        action="exchange.bank_file_queued",
        subject=row,
        after={"bank": bank, "kind": kind, "file": name, "lines": lines, "amount_fen": amount_fen},
    )
    return row


def next_seq(bank: str, kind: str) -> int:
    return BankFile.objects.filter(direction=Direction.OUT, bank=bank, kind=kind).count() + 1


def client(bank: Bank) -> httpx.Client:
    """HTTPS to a bank's front server, trusting exactly its TLS certificate."""
    try:
        context = ssl.create_default_context(cafile=str(bank.tls_ca))
    except (OSError, ssl.SSLError) as error:
        raise BankUnavailable(
            f"bank {bank.id} tls_ca {bank.tls_ca}: {getattr(error, 'strerror', None) or error}"
        ) from None
    return httpx.Client(
        base_url=bank.url, verify=context, timeout=settings.ETCNET_EXCHANGE_TIMEOUT_S
    )


def _claim(bank: str, limit: int) -> list[BankFile]:
    pending = BankFile.objects.filter(
        direction=Direction.OUT, bank=bank, state=TransferState.PENDING
    )
    return outbox.claim(pending, limit, "created_at", "id")


def _verified_receipt(answer: httpx.Response, row: BankFile) -> tuple[dict[str, str] | None, str]:
    if answer.status_code != 200:
        return None, f"HTTP {answer.status_code}: {answer.text[:200]}"
    try:
        signature = sm2.Signature.from_header(answer.headers.get(bankfiles.SIGNATURE_HEADER))
        signing.verify(answer.content, signature, party=row.bank)
        receipt = bankfiles.read_receipt(answer.content)
    except (sm2.SignatureError, ValueError) as error:
        return None, f"receipt: {error}"
    if receipt["file"] != row.name or receipt["sha256"] != row.sha256:
        return None, f"receipt: for {receipt['file']} {receipt['sha256'][:12]}, not this file"
    return receipt, ""


def send(
    *, bank: str | None = None, http: httpx.Client | None = None, limit: int = 100,
    actor: Any = "etcnet exchange bank",
) -> Sent:  # fmt: skip
    """Send what is due, to ``bank`` or to every bank with something pending."""
    report = Sent()
    config = load()
    banks = (
        [bank]
        if bank
        else sorted(
            set(
                BankFile.objects.filter(direction=Direction.OUT, state=TransferState.PENDING)
                .values_list("bank", flat=True)
                .distinct()
            )
        )
    )
    for bank_id in banks:
        own = http is None
        conn = http or client(config.bank(bank_id))
        try:
            _send_to(bank_id, conn, limit, report, actor)
        finally:
            if own:
                conn.close()
    return report


def _send_to(bank: str, http: httpx.Client, limit: int, report: Sent, actor: Any) -> None:
    for row in _claim(bank, limit):
        path = _root() / row.path
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != row.sha256:
            _fail(row, f"{row.path}: changed on disk since it was signed")
            report.failed.append(row.name)
            continue
        try:
            answer = http.post(
                "/v1/files",
                content=data,
                headers={
                    "Content-Type": bankfiles.CONTENT_TYPE,
                    bankfiles.SIGNATURE_HEADER: row.signature,
                    bankfiles.FILE_HEADER: row.name,
                },
            )
        except httpx.HTTPError as lost:
            _fail(row, f"not answered: {type(lost).__name__}: {lost}")
            report.failed.append(row.name)
            continue
        receipt, why = _verified_receipt(answer, row)
        if receipt is None:
            write(path.with_name(f"{path.name}.answer-{row.attempts}"), answer.content)
            _fail(row, why)
            report.failed.append(row.name)
            continue
        # The receipt is stored (file, then row) before anything acts on it.
        kept = path.with_name(f"{path.name}.receipt.json")
        write(kept, answer.content)
        signing.signature_file(kept).write_text(
            sm2.Signature.from_header(answer.headers[bankfiles.SIGNATURE_HEADER]).to_json(),
            encoding="utf-8",
        )
        with transaction.atomic():
            refused = receipt["result"] == bankfiles.REFUSED
            row.state = TransferState.REFUSED if refused else TransferState.ACKED
            row.receipt = answer.text
            row.answered_at = timezone.now()
            row.next_attempt_at = None
            row.last_error = receipt["reason"][:2000] if refused else ""
            row.save()
            audit.record(
                actor=actor,
                action="exchange.bank_file_answered",
                subject=row,
                after={"result": receipt["result"], "attempts": row.attempts},
            )
        if refused:
            report.refused += 1
        else:
            report.acked += 1


def _fail(row: BankFile, error: str) -> None:
    row.last_error = error[:2000]
    row.save(update_fields=["last_error"])


# -- in --------------------------------------------------------------------------


def receive(
    *, bank: str | None = None, http: httpx.Client | None = None, limit: int = 1000,
    actor: Any = "etcnet exchange bank",
) -> Received:  # fmt: skip
    """Fetch, take and answer what ``bank`` (or every configured bank) has for us."""
    report = Received()
    config = load()
    for bank_id in [bank] if bank else sorted(config.banks):
        own = http is None
        conn = http or client(config.bank(bank_id))
        try:
            _receive_from(bank_id, conn, limit, report, actor)
        finally:
            if own:
                conn.close()
    return report


def _receive_from(bank: str, http: httpx.Client, limit: int, report: Received, actor: Any) -> None:
    for _ in range(limit):
        try:
            answer = http.get("/v1/files", params={"for": ours()})
        except httpx.HTTPError as error:
            report.failed.append(f"{bank}: not answered: {type(error).__name__}: {error}")
            return
        if answer.status_code == 204:
            return
        if answer.status_code != 200:
            report.failed.append(f"{bank}: HTTP {answer.status_code}")
            return
        delivery = answer.headers.get(bankfiles.DELIVERY_HEADER, "")
        data = answer.content
        result, reason, name = take(
            bank, data, answer.headers.get(bankfiles.SIGNATURE_HEADER), report=report, actor=actor
        )
        body = bankfiles.receipt(
            file=name, sha256=hashlib.sha256(data).hexdigest(), result=result, reason=reason,
            by=ours(),
        )  # fmt: skip
        signature = signing.sign(body, purpose=f"receipt {name}")
        try:
            http.post(
                f"/v1/deliveries/{delivery}/receipt",
                content=body,
                headers={"Content-Type": "application/json",
                         bankfiles.SIGNATURE_HEADER: signature.header()},
            )  # fmt: skip
        except httpx.HTTPError as error:
            # It comes again and is answered duplicate then: taken once all the same.
            report.failed.append(f"{bank}: receipt of {name} not delivered: {error}")
            return


Apply = Callable[[BankFile, bankfiles.BankFile, Any], None]


def _handler(kind: str) -> Apply | None:
    from etcnet.exchange.banks import debits, keys, settlement

    handlers: dict[str, Apply] = {
        "RESULT": debits.apply_result,
        "CONFIRM": settlement.apply_confirmations,
        "KEYS": keys.apply_keys,
    }
    return handlers.get(kind)


_KIND = {"RESULT": "result", "CONFIRM": "confirm", "KEYS": "keys"}


def _first_line(data: bytes) -> str:
    return data.split(b"\n", 1)[0].decode("utf-8", "replace")


def take(
    bank: str, data: bytes, signature: str | None, *, report: Received, actor: Any
) -> tuple[str, str, str]:
    """Verify, store and apply one file from ``bank`` → (result, reason, file id)."""
    digest = hashlib.sha256(data).hexdigest()
    head = _first_line(data).split("|")
    name = head[3] if len(head) > 3 and head[3].replace("_", "").isalnum() else digest[:32]
    kind = _KIND.get(head[2] if len(head) > 2 else "", "other")
    try:
        sig = sm2.Signature.from_header(signature)
        signing.verify(data, sig, party=bank)
    except sm2.SignatureError as error:
        kept = folder("in", bank) / "quarantine" / f"{name}-{digest[:12]}.txt"
        write(kept, data)
        _record_in(bank, kind, name, kept, data, signature or "", TransferState.QUARANTINED,
                   str(error), [], None, actor)  # fmt: skip
        report.quarantined += 1
        return bankfiles.REFUSED, str(error), name
    taken = BankFile.objects.filter(direction=Direction.IN, bank=bank, name=name)
    seen = taken.exclude(state__in=[TransferState.QUARANTINED, TransferState.REFUSED]).first()
    if seen is not None:
        if seen.sha256 != digest:
            reason = f"file_id: {name} was taken before with other content"
            kept = folder("in", bank) / "quarantine" / f"{name}-{digest[:12]}.txt"
            write(kept, data)
            _record_in(bank, kind, name, kept, data, signature or "",
                       TransferState.QUARANTINED, reason, [], None, actor)  # fmt: skip
            report.refused += 1
            return bankfiles.REFUSED, reason, name
        BankFile.objects.filter(pk=seen.pk).update(deliveries=seen.deliveries + 1)
        report.duplicates += 1
        return bankfiles.DUPLICATE, "", name
    # The same refused file again is refused again, and changes nothing; a
    # corrected file under its id is taken as new.
    again = taken.filter(state=TransferState.REFUSED, sha256=digest).first()
    if again is not None:
        BankFile.objects.filter(pk=again.pk).update(deliveries=again.deliveries + 1)
        report.refused += 1
        return bankfiles.REFUSED, again.last_error, name
    path = folder("in", bank) / f"{name}-{digest[:12]}.txt"
    write(path, data)
    signing.signature_file(path).write_text(sig.to_json(), encoding="utf-8")
    try:
        parsed = bankfiles.read(data)
        problem = _addressed(parsed, bank)
        if problem is not None:
            raise problem
        handler = _handler(parsed.header.kind)
        if handler is None:
            raise bankfiles.BankFileError(1, "kind", f"{parsed.header.kind} is not sent to us")
        with transaction.atomic():
            row = _record_in(bank, _KIND[parsed.header.kind], name, path, data, sig.header(),
                             TransferState.APPLIED, "", [], parsed, actor)  # fmt: skip
            handler(row, parsed, actor)
        report.applied += 1
        return bankfiles.RECEIVED, "", name
    except bankfiles.BankFileError as error:
        found = [{"line": error.line, "field": error.field, "reason": error.message}]
        _record_in(bank, kind, name, path, data, sig.header(), TransferState.REFUSED,
                   str(error), found, None, actor)  # fmt: skip
        report.refused += 1
        return bankfiles.REFUSED, str(error), name


def _addressed(parsed: bankfiles.BankFile, bank: str) -> bankfiles.BankFileError | None:
    if parsed.header.sender.upper() != bank.upper():
        return bankfiles.BankFileError(1, "sender", f"expected {bank}")
    if parsed.header.receiver.upper() != ours().upper():
        return bankfiles.BankFileError(1, "receiver", f"expected {ours()}")
    return None


def _record_in(
    bank: str,
    kind: str,
    name: str,
    path: Path,
    data: bytes,
    signature: str,
    state: str,
    reason: str,
    found: list[dict[str, Any]],
    parsed: bankfiles.BankFile | None,
    actor: Any,
) -> BankFile:
    with transaction.atomic():
        row = BankFile.objects.create(
            direction=Direction.IN,
            bank=bank,
            kind=kind if kind in _KIND.values() else "other",
            name=name,
            path=str(path.relative_to(_root())),
            date=parsed.header.date if parsed else None,
            sha256=hashlib.sha256(data).hexdigest(),
            signature=signature[:2000],
            state=state,
            lines=parsed.header.count if parsed else 0,
            amount_fen=parsed.header.total_fen if parsed else 0,
            last_error=reason[:2000],
            report=found,
            created_at=timezone.now(),
            answered_at=timezone.now(),
            deliveries=1,
        )
        audit.record(
            actor=actor,
            action="exchange.bank_file_received",
            subject=row,
            after={"bank": bank, "file": name, "state": state, "reason": reason[:300]},
        )
    return row
