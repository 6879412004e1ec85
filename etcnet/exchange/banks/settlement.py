"""Settlement through the settlement bank (邮储银行, 全国ETC结算行), docs/banks.md.

- `make_instructions(date)`: a closed day's net positions as one TRANSFER file
  to the settlement bank: one instruction per counterparty whose net is not
  zero, the payer and payee accounts from ``ETCNET_BANKS_FILE`` (a
  counterparty that owes the center pays it; one the center owes is paid).
- `apply_confirmations`: the bank's CONFIRM file, applied whole in the intake's
  transaction. An instruction confirmed with its amount is posted (the money
  moves through ``settlement_bank``); one confirmed with another amount is a
  finding, not a posting; a rejected one is marked so.
- `overdue` / `chase`: the instructions not confirmed within
  ``ETCNET_BANK_CONFIRM_HOURS`` of being sent (or chased), with their age; a
  chase sends them again in a CHASE file (same references: the bank executes
  an instruction once).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from etcnet.cards import ledger
from etcnet.cards.models import EntryKind
from etcnet.clearing.models import CounterpartyKind, Position
from etcnet.core import audit
from etcnet.exchange import bankfiles, sm2
from etcnet.exchange.banks import transport
from etcnet.exchange.banks.config import BanksConfig, load
from etcnet.exchange.banks.debits import BankError, closed_day
from etcnet.exchange.models import (
    BankFile,
    BankFileKind,
    Direction,
    InstructionState,
    SettlementInstruction,
)

__all__ = ["apply_confirmations", "chase", "make_instructions", "overdue"]


def _settlement_bank(config: BanksConfig) -> str:
    if not config.settlement_bank:
        raise BankError("settlement_bank", "ETCNET_BANKS_FILE names no settlement bank")
    return config.settlement_bank


def make_instructions(date: dt.date, *, actor: Any = "etcnet exchange bank") -> BankFile | None:
    """The TRANSFER file of the closed day ``date`` (None: every net is zero). Made
    once; refused whole, naming the counterparties, when an account is missing."""
    day = closed_day(date)
    config = load()
    bank = _settlement_bank(config)
    existing = BankFile.objects.filter(
        direction=Direction.OUT, bank=bank, kind=BankFileKind.TRANSFER, date=date
    ).first()
    if existing is not None:
        return existing
    center = config.accounts.get("center")
    positions = list(Position.objects.filter(day=day).exclude(net_fen=0).order_by("pk"))
    missing = [
        f"{p.kind}:{p.counterparty_id}" if p.counterparty_id else p.kind
        for p in positions
        if config.account(p.kind, p.counterparty_id) is None
    ]
    if center is None:
        missing.insert(0, "center")
    if missing:
        raise BankError("accounts", f"no settlement account for {', '.join(missing)}")
    assert center is not None
    instructions: list[SettlementInstruction] = []
    for n, p in enumerate(positions, start=1):
        theirs = config.account(p.kind, p.counterparty_id) or ""
        incoming = p.net_fen > 0  # it owes the center
        instructions.append(
            SettlementInstruction(
                day=day, kind=p.kind, counterparty_id=p.counterparty_id,
                reference=f"{date:%Y%m%d}-{p.kind}-{p.counterparty_id}".rstrip("-")[:100],
                direction=Direction.IN if incoming else Direction.OUT,
                payer_account=theirs if incoming else center,
                payee_account=center if incoming else theirs,
                amount_fen=abs(p.net_fen), line=n,
            )
        )  # fmt: skip
    if not instructions:
        return None
    name = bankfiles.file_id(
        "TRANSFER", transport.ours(), bank, date, transport.next_seq(bank, "transfer")
    )
    row = _send(bank, name, BankFileKind.TRANSFER, date, instructions, actor)
    return row


def _send(
    bank: str,
    name: str,
    kind: str,
    date: dt.date,
    instructions: list[SettlementInstruction],
    actor: Any,
) -> BankFile:
    data = bankfiles.write(
        "TRANSFER", file_id=name, sender=transport.ours(), receiver=bank, date=date,
        records=[("D", i.reference, i.payer_account, i.payee_account, i.amount_fen,
                  f"{i.kind} {i.counterparty_id} {i.day.date}".strip())
                 for i in instructions],
    )  # fmt: skip
    prepared = transport.prepare(bank, name, data, purpose=f"{kind} {name}")
    total = sum(i.amount_fen for i in instructions)
    with transaction.atomic(durable=True):
        row = transport.record_out(
            prepared, bank=bank, kind=kind, name=name, date=date, lines=len(instructions),
            amount_fen=total, actor=actor,
        )  # fmt: skip
        if kind == BankFileKind.TRANSFER:
            for i in instructions:
                i.file = row
            SettlementInstruction.objects.bulk_create(instructions)
        else:
            now = timezone.now()
            SettlementInstruction.objects.filter(pk__in=[i.pk for i in instructions]).update(
                chased=F("chased") + 1, last_chased_at=now
            )
            audit.record(
                actor=actor, action="exchange.instructions_chased", subject=row,
                after={"references": [i.reference for i in instructions]},
            )  # fmt: skip
    return row


# -- confirmations ---------------------------------------------------------------------


def _accounts(
    kind: str, counterparty_id: str, config: BanksConfig
) -> tuple[str | None, str | None]:
    """(what the counterparty owes is held in, what the center owes it is held in)."""
    if kind == CounterpartyKind.OWNER:
        return None, f"{ledger.OWNER_PAYABLE_PREFIX}{counterparty_id}"
    if kind == CounterpartyKind.NATIONAL_CENTER:
        return ledger.NATIONAL_RECEIVABLE, ledger.NATIONAL_PAYABLE
    if kind == CounterpartyKind.BANK:
        found = config.by_name(counterparty_id)
        return ledger.bank_collections_code(found.id if found else counterparty_id), None
    if kind == CounterpartyKind.PURSES:
        return ledger.BANK, None  # the prepaid money, in the center's own bank account
    if kind == CounterpartyKind.STATION_CASH:
        return f"{ledger.LANE_CASH_PREFIX}{counterparty_id}", None
    return ledger.MOBILE, None


def _post(instruction: SettlementInstruction, config: BanksConfig, actor: Any) -> int:
    """The confirmed transfer in the ledger: the net through ``settlement_bank``,
    the position's receivable out of (and payable into) the counterparty's accounts."""
    position = Position.objects.get(
        day=instruction.day, kind=instruction.kind, counterparty_id=instruction.counterparty_id
    )
    owes, owed = _accounts(instruction.kind, instruction.counterparty_id, config)
    lines = [(ledger.SETTLEMENT_BANK, position.net_fen)]
    if position.receivable_fen:
        if owes is None:
            raise ValueError(f"{instruction.kind} never owes the center")
        lines.append((owes, -position.receivable_fen))
    if position.payable_fen:
        if owed is None:
            raise ValueError(f"the center never owes {instruction.kind}")
        lines.append((owed, position.payable_fen))
    entry = ledger.post(
        EntryKind.CLEARING,
        [ledger.Line(ledger.account(code), amount) for code, amount in lines if amount],
        actor=actor,
        memo=f"settled: {instruction.reference}",
        idempotency_key=_key(instruction.reference),
    )
    return int(entry.pk)


def apply_confirmations(row: BankFile, parsed: bankfiles.BankFile, actor: Any) -> None:
    """Apply the settlement bank's CONFIRM file, whole, in the intake's transaction.

    Each line names one of our instructions (by reference) sent in one of our
    files to this bank; an instruction answered before stays as it is. Audits
    ``exchange.bank_confirmations_applied`` with what was confirmed, rejected and
    found."""
    config = load()
    ours = set(
        BankFile.objects.filter(
            direction=Direction.OUT, bank=row.bank,
            kind__in=[BankFileKind.TRANSFER, BankFileKind.CHASE],
        ).values_list("name", flat=True)
    )  # fmt: skip
    references = [r["reference"] for r in parsed.records]
    found = {
        i.reference: i
        for i in SettlementInstruction.objects.select_for_update()
        .select_related("day")
        .filter(reference__in=references)
        .order_by("pk")
    }
    now = timezone.now()
    counts = {"confirmed": 0, "rejected": 0, "findings": 0, "again": 0}
    for record in parsed.records:
        line = record.number + 1
        if record["transfer_file"] not in ours:
            raise bankfiles.BankFileError(line, "transfer_file", "none of ours to this bank")
        instruction = found.get(record["reference"])
        if instruction is None:
            raise bankfiles.BankFileError(line, "reference", "no such instruction of ours")
        if instruction.state != InstructionState.SENT:
            counts["again"] += 1
            continue
        instruction.bank_reference = record["bank_reference"][:60]
        instruction.executed_at = record["executed_at"]
        instruction.confirmed_at = now
        instruction.confirmed_fen = record["amount_fen"]
        if record["status"] == "REJ":
            instruction.state = InstructionState.REJECTED
            counts["rejected"] += 1
        elif record["amount_fen"] != instruction.amount_fen:
            instruction.state = InstructionState.FINDING
            instruction.finding = (
                f"confirmed {record['amount_fen']} fen, instructed {instruction.amount_fen} fen"
            )
            counts["findings"] += 1
        else:
            instruction.state = InstructionState.CONFIRMED
            instruction.entry_id = _post(instruction, config, actor)
            counts["confirmed"] += 1
        instruction.save()
    audit.record(
        actor=actor, action="exchange.bank_confirmations_applied", subject=row, after=counts
    )


# -- the unconfirmed -------------------------------------------------------------------


def overdue(now: dt.datetime | None = None) -> QuerySet[SettlementInstruction]:
    """Instructions sent (or last chased) longer ago than the deadline and not
    confirmed, oldest first, each with ``since`` (when it was last sent)."""
    moment = now or timezone.now()
    deadline = moment - dt.timedelta(hours=settings.ETCNET_BANK_CONFIRM_HOURS)
    return (
        SettlementInstruction.objects.filter(state=InstructionState.SENT)
        .annotate(since=Coalesce("last_chased_at", "file__created_at"))
        .filter(since__lte=deadline)
        .select_related("day", "file")
        .order_by("since", "pk")
    )


def unconfirmed() -> QuerySet[SettlementInstruction]:
    """Every instruction not confirmed yet, with ``sent_at`` (the first file's time)."""
    return (
        SettlementInstruction.objects.filter(state=InstructionState.SENT)
        .annotate(sent_at=F("file__created_at"))
        .select_related("day", "file")
        .order_by("file__created_at", "pk")
    )


def chase(
    *, actor: Any = "etcnet exchange bank", now: dt.datetime | None = None
) -> BankFile | None:
    """Send the overdue instructions again (one CHASE file to the settlement bank)."""
    config = load()
    bank = _settlement_bank(config)
    due = list(overdue(now))
    if not due:
        return None
    today = timezone.localdate(now or timezone.now())
    name = bankfiles.file_id(
        "CHASE", transport.ours(), bank, today, transport.next_seq(bank, "chase")
    )
    return _send(bank, name, BankFileKind.CHASE, today, due, actor)


def _key(reference: str) -> str:
    """The posting's idempotency key: the reference, or its SM3 when too long to
    fit whole (a cut key could make two instructions one)."""
    key = f"settlement:{reference}"
    if len(key) <= 80:
        return key
    return "settlement:" + sm2.fingerprint(reference.encode())[:64]
