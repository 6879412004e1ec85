"""Debit cards under the three-party agreement (三方协议), and each bank's cards'
out-of-province usage (docs/banks.md).

- `make_debit_files(date)`: for a closed clearing day, one DEBIT file per bank
  with each of its debit accounts' tolls cleared that day (our roads, flow 1,
  and other provinces' roads, flow 3), summed per account by one SQL statement;
  the bank's lines must add up to the bank's position of the day.
- `apply_result`: a bank's RESULT file, applied whole in the intake's
  transaction. A collected line moves the account's receivable to the bank
  (`bank_collections:<bank>`); a refused one puts the account into recovery
  (追缴) and its debit cards on the status list (type 4, 账户透支); a refused
  line collected later, or the holder's repayment (`repay`), closes the
  recovery and lifts the list entry.
- `make_usage_files(date)`: one USAGE file per bank with the day's flow-3
  records of its cards (向各银行分发该行卡在外省消费信息).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from etcnet.cards import ledger, vault
from etcnet.cards.models import BOUND_STATES, Account, CardUnit, EntryKind
from etcnet.cards.services import listed_types
from etcnet.clearing.models import (
    ClearingDay,
    ClearingEntry,
    CounterpartyKind,
    DayStatus,
    IncomingTransaction,
    Position,
)
from etcnet.core import audit
from etcnet.core.codes import CardType
from etcnet.exchange import bankfiles
from etcnet.exchange.banks import transport
from etcnet.exchange.banks.config import load
from etcnet.exchange.models import (
    BankFile,
    BankFileKind,
    DebitLine,
    DebitState,
    Direction,
    Recovery,
)
from etcnet.lists.models import ListStatus, ListType, Medium
from etcnet.lists.services import record_event
from etcnet.tolling.models import TollTransaction

__all__ = ["BankError", "apply_result", "make_debit_files", "make_usage_files", "repay"]

DEBIT = int(CardType.DEBIT)  # 记账卡, 23


class BankError(Exception):
    """A request the banks' front server refuses; ``field`` names what."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def closed_day(date: dt.date) -> ClearingDay:
    day = ClearingDay.objects.filter(date=date).first()
    if day is None or day.status != DayStatus.CLOSED:
        raise BankError("date", f"the clearing day {date} is not closed")
    return day


# -- the debit files -----------------------------------------------------------------


def _table(model: Any) -> str:
    return str(connection.ops.quote_name(model._meta.db_table))


def _day_tolls_sql() -> str:
    """Each debit account of a bank with its tolls cleared on a day: our roads
    (flow 1, cleared that day or carried in and cleared then) and other
    provinces' (flow 3, settled that day). Params: day, day, day, bank name."""
    return f"""
SELECT a.id, a.number, a.bank_account_no, SUM(x.amount) AS amount, COUNT(*) AS trips
FROM (
    SELECT t.card_no AS card_no, e.payable_fen AS amount
    FROM {_table(ClearingEntry)} e
    JOIN {_table(TollTransaction)} t ON t.id = e.transaction_id AND t.exit_time = e.exit_time
    WHERE e.state = 'cleared' AND e.flow = 1 AND t.payment_type = {DEBIT}
      AND e.payable_fen <> 0
      AND ((e.day_id = %s AND e.cleared_on_id IS NULL) OR e.cleared_on_id = %s)
    UNION ALL
    SELECT i.card_no, i.fee_fen FROM {_table(IncomingTransaction)} i
    WHERE i.cleared_on_id = %s AND i.result IS NULL AND i.card_type = {DEBIT}
) x
JOIN {_table(CardUnit)} c ON c.card_no = x.card_no
JOIN {_table(Account)} a ON a.id = c.account_id
WHERE a.bank_name = %s
GROUP BY a.id, a.number, a.bank_account_no
HAVING SUM(x.amount) <> 0
ORDER BY a.number
"""


def make_debit_files(date: dt.date, *, actor: Any = "etcnet exchange bank") -> list[BankFile]:
    """The DEBIT file of each configured bank for the closed day ``date``: made once
    (a second run returns the files made), signed, stored pending before sent.

    Checks, before anything is stored, that a bank's lines add up to its position
    of the day (the debit-card tolls clearing found it owes). Audits
    ``exchange.bank_file_queued``."""
    day = closed_day(date)
    config = load()
    made: list[BankFile] = []
    for bank in sorted(config.banks.values(), key=lambda b: b.id):
        existing = BankFile.objects.filter(
            direction=Direction.OUT, bank=bank.id, kind=BankFileKind.DEBIT, date=date
        ).first()
        if existing is not None:
            made.append(existing)
            continue
        with connection.cursor() as cursor:
            cursor.execute(_day_tolls_sql(), [day.pk, day.pk, day.pk, bank.name])
            rows = cursor.fetchall()
        position = Position.objects.filter(
            day=day, kind=CounterpartyKind.BANK, counterparty_id=bank.name
        ).first()
        owed = position.receivable_fen if position else 0
        total = sum(int(r[3]) for r in rows)
        if total != owed:
            raise BankError(
                "date",
                f"{bank.name}: the accounts' tolls of {date} sum to {total} fen, its position"
                f" says {owed} fen",
            )
        if not rows:
            continue
        name = bankfiles.file_id(
            "DEBIT", transport.ours(), bank.id, date, transport.next_seq(bank.id, "debit")
        )
        data = bankfiles.write(
            "DEBIT", file_id=name, sender=transport.ours(), receiver=bank.id, date=date,
            records=[("D", number, bank_no, amount, trips)
                     for _, number, bank_no, amount, trips in rows],
        )  # fmt: skip
        prepared = transport.prepare(bank.id, name, data, purpose=f"debit {name}")
        with transaction.atomic(durable=True):
            row = transport.record_out(
                prepared, bank=bank.id, kind=BankFileKind.DEBIT, name=name, date=date,
                lines=len(rows), amount_fen=total, actor=actor,
            )  # fmt: skip
            DebitLine.objects.bulk_create(
                [
                    DebitLine(file=row, number=n, account_id=account_id, bank_account_no=bank_no,
                              amount_fen=amount, trips=trips)
                    for n, (account_id, _, bank_no, amount, trips) in enumerate(rows, start=1)
                ],
                batch_size=2000,
            )  # fmt: skip
        made.append(row)
    return made


# -- the results -----------------------------------------------------------------------


def _issuer_id() -> str:
    try:
        return vault.master().issuer_id.hex().upper()
    except Exception:  # the list records the issuer when the vault knows it
        return ""


def _list(account_id: int, status: ListStatus, *, reason: str, actor: Any) -> int:
    """The account's debit cards onto (or off) list type 4; returns how many moved."""
    moved = 0
    for card in CardUnit.objects.filter(
        account_id=account_id, card_type=DEBIT, state__in=BOUND_STATES
    ).order_by("pk"):
        on = ListType.OVERDRAWN in listed_types(Medium.CARD, card.card_no)
        if on == (status == ListStatus.IN):
            continue
        record_event(
            medium=Medium.CARD, medium_id=card.card_no, list_type=ListType.OVERDRAWN,
            status=status, reason=reason, actor=actor, issuer_id=_issuer_id(),
        )  # fmt: skip
        moved += 1
    return moved


def _close(recovery: Recovery, *, by: str, actor: Any) -> None:
    recovery.state = Recovery.State.PAID
    recovery.closed_at = timezone.now()
    recovery.closed_by = by
    recovery.save(update_fields=["state", "owed_fen", "closed_at", "closed_by"])
    lifted = _list(recovery.account_id, ListStatus.OUT, reason="arrears paid", actor=actor)
    audit.record(
        actor=actor, action="exchange.recovery_closed", subject=recovery,
        before={"state": "open"},
        after={"state": "paid", "by": by, "total_fen": recovery.total_fen, "lifted": lifted},
    )  # fmt: skip


def _lines_of(parsed: bankfiles.BankFile, bank: str) -> dict[tuple[str, int], DebitLine]:
    """The debit lines the result file answers, locked, by (file id, number)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for record in parsed.records:
        wanted[record["debit_file"]].add(record["debit_line"])
    files = dict(
        BankFile.objects.filter(
            direction=Direction.OUT, bank=bank, kind=BankFileKind.DEBIT, name__in=list(wanted)
        ).values_list("name", "pk")
    )
    found: dict[tuple[str, int], DebitLine] = {}
    names = {pk: name for name, pk in files.items()}
    for name, numbers in wanted.items():
        if name not in files:
            continue
        ordered = sorted(numbers)
        for at in range(0, len(ordered), 1000):
            for line in (
                DebitLine.objects.select_for_update()
                .select_related("account")
                .filter(file_id=files[name], number__in=ordered[at : at + 1000])
                .order_by("pk")
            ):
                found[(names[line.file_id], line.number)] = line
    return found


def apply_result(row: BankFile, parsed: bankfiles.BankFile, actor: Any) -> None:
    """Apply a bank's RESULT file, whole, inside the intake's transaction.

    Each line must answer one of our debit lines to this bank with its account
    and amount; a line already answered the same way changes nothing; refused
    then collected is a later payment; collected then refused, or collected
    after the holder repaid, is refused (`BankFileError`: nothing of the file is
    applied). Posts one entry for the collected lines; opens or adds to each
    refused account's recovery and lists its cards (type 4); closes a recovery
    whose refused lines are all collected and lifts the list. Audits
    ``exchange.bank_result_applied`` and each recovery opened or closed."""
    bank = row.bank
    lines = _lines_of(parsed, bank)
    now = timezone.now()
    collected: list[DebitLine] = []  # pending → collected
    refused: list[DebitLine] = []  # pending → refused
    later: list[DebitLine] = []  # refused → collected
    for record in parsed.records:
        n = record.number
        line = lines.get((record["debit_file"], record["debit_line"]))
        if line is None:
            raise bankfiles.BankFileError(
                n + 1, "debit_line",
                f"{record['debit_file']} line {record['debit_line']} is none of ours to {bank}",
            )  # fmt: skip
        if record["account"] != line.account.number:
            raise bankfiles.BankFileError(n + 1, "account", f"the line is {line.account.number}'s")
        if record["amount_fen"] != line.amount_fen:
            raise bankfiles.BankFileError(n + 1, "amount_fen", f"the line is {line.amount_fen}")
        status = record["status"]
        if status == "R" and not record["reason_code"].strip():
            raise bankfiles.BankFileError(n + 1, "reason_code", "a refusal gives its reason")
        target = DebitState.COLLECTED if status == "C" else DebitState.REFUSED
        if line.state == target or (line.state == DebitState.REPAID and status == "R"):
            continue  # answered so before: nothing changes
        if line.state == DebitState.PENDING:
            (collected if status == "C" else refused).append(line)
        elif line.state == DebitState.REFUSED and status == "C":
            later.append(line)
        else:
            raise bankfiles.BankFileError(
                n + 1, "status",
                f"{record['debit_file']} line {record['debit_line']} was {line.state} before",
            )  # fmt: skip
        line.state = target
        line.reason_code = record["reason_code"][:8] if status == "R" else ""
        line.reason = record["reason"][:200] if status == "R" else ""
        line.result_file = row
        line.resulted_at = now
    _post_collected(row, [*collected, *later])
    opened = _refused(bank, refused, actor)
    closed = _collected_later(later, actor)
    DebitLine.objects.bulk_update(
        [*collected, *refused, *later],
        ["state", "reason_code", "reason", "result_file", "resulted_at", "recovery"],
        batch_size=2000,
    )
    audit.record(
        actor=actor, action="exchange.bank_result_applied", subject=row,
        after={"collected": len(collected), "refused": len(refused), "collected_later": len(later),
               "recoveries_opened": opened, "recoveries_closed": closed},
    )  # fmt: skip


def _post_collected(row: BankFile, lines: list[DebitLine]) -> None:
    if not lines:
        return
    owed: dict[str, int] = defaultdict(int)
    for line in lines:
        owed[ledger.receivable_code(line.account.number)] -= line.amount_fen
    total = -sum(owed.values())
    entry_lines = [(ledger.bank_collections_code(row.bank), total), *sorted(owed.items())]
    ledger.post_many(
        [
            ledger.Entry(
                EntryKind.CLEARING,
                tuple((code, amount) for code, amount in entry_lines if amount),
                memo=f"debit collected: {row.name}",
                # The file id names the bank (its sender) and is unique: the key
                # fits whole (a cut key made a day's second result file clash).
                idempotency_key=f"bank-result:{row.name}",
            )
        ]
    )


def _refused(bank: str, lines: list[DebitLine], actor: Any) -> int:
    """Each refused line into its account's open recovery (made if none)."""
    by_account: dict[int, list[DebitLine]] = defaultdict(list)
    for line in lines:
        by_account[line.account_id].append(line)
    opened = 0
    for account_id in sorted(by_account):
        amount = sum(line.amount_fen for line in by_account[account_id])
        recovery = (
            Recovery.objects.select_for_update()
            .filter(account_id=account_id, state=Recovery.State.OPEN)
            .first()
        )
        if recovery is None:
            recovery = Recovery.objects.create(
                account_id=account_id, bank=bank, owed_fen=amount, total_fen=amount,
                state=Recovery.State.OPEN, opened_at=timezone.now(),
            )  # fmt: skip
            listed = _list(account_id, ListStatus.IN, reason="account overdrawn", actor=actor)
            audit.record(
                actor=actor, action="exchange.recovery_opened", subject=recovery,
                after={"account": account_id, "owed_fen": amount, "listed": listed,
                       "reason": by_account[account_id][0].reason},
            )  # fmt: skip
            opened += 1
        else:
            before = recovery.owed_fen
            recovery.owed_fen += amount
            recovery.total_fen += amount
            recovery.save(update_fields=["owed_fen", "total_fen"])
            audit.record(
                actor=actor, action="exchange.recovery_grew", subject=recovery,
                before={"owed_fen": before}, after={"owed_fen": recovery.owed_fen},
            )  # fmt: skip
        for line in by_account[account_id]:
            line.recovery = recovery
    return opened


def _collected_later(lines: list[DebitLine], actor: Any) -> int:
    by_recovery: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.recovery_id is not None:
            by_recovery[line.recovery_id] += line.amount_fen
    closed = 0
    for recovery in (
        Recovery.objects.select_for_update().filter(pk__in=list(by_recovery)).order_by("pk")
    ):
        recovery.owed_fen -= by_recovery[recovery.pk]
        if recovery.owed_fen == 0:
            _close(recovery, by="bank", actor=actor)
            closed += 1
        else:
            recovery.save(update_fields=["owed_fen"])
    return closed


def repay(recovery_id: int, *, amount_fen: int, outlet_code: str = "", actor: Any) -> Recovery:
    """The holder pays what the account owes at the center (补缴): the whole
    amount owed, in cash at an outlet (``cash:<outlet>``) or by transfer to the
    center's bank account (``bank``). The receivable is cleared, the refused
    lines are marked repaid (a later "collected" for them is refused), the
    recovery closes and the account's cards leave list type 4. Audits
    ``exchange.recovery_closed``."""
    with transaction.atomic(durable=True):
        recovery = Recovery.objects.select_for_update().filter(pk=recovery_id).first()
        if recovery is None:
            raise BankError("recovery", f"no recovery {recovery_id}")
        if recovery.state != Recovery.State.OPEN:
            raise BankError("recovery", f"recovery {recovery_id} is {recovery.state}")
        if amount_fen != recovery.owed_fen:
            raise BankError(
                "amount_fen",
                f"the account owes {recovery.owed_fen} fen; pay that, not {amount_fen}",
            )
        account = Account.objects.get(pk=recovery.account_id)
        source = ledger.cash_code(outlet_code) if outlet_code else ledger.BANK
        ledger.post(
            EntryKind.CLEARING,
            [
                ledger.Line(ledger.account(source), amount_fen),
                ledger.Line(ledger.account(ledger.receivable_code(account.number)), -amount_fen),
            ],
            actor=actor,
            memo=f"arrears repaid: recovery {recovery.pk}",
            idempotency_key=f"recovery-repaid:{recovery.pk}",
        )
        DebitLine.objects.filter(recovery=recovery, state=DebitState.REFUSED).update(
            state=DebitState.REPAID
        )
        recovery.owed_fen = 0
        _close(recovery, by="repayment", actor=actor)
    return recovery


# -- each bank's cards' out-of-province usage ------------------------------------------


def make_usage_files(date: dt.date, *, actor: Any = "etcnet exchange bank") -> list[BankFile]:
    """The USAGE file of each configured bank with the flow-3 records settled on
    the closed day ``date`` of its debit accounts' cards; made once."""
    day = closed_day(date)
    config = load()
    made: list[BankFile] = []
    for bank in sorted(config.banks.values(), key=lambda b: b.id):
        existing = BankFile.objects.filter(
            direction=Direction.OUT, bank=bank.id, kind=BankFileKind.USAGE, date=date
        ).first()
        if existing is not None:
            made.append(existing)
            continue
        cards = CardUnit.objects.filter(account__bank_name=bank.name, card_type=DEBIT)
        rows = list(
            IncomingTransaction.objects.filter(
                cleared_on=day, result__isnull=True, card_type=DEBIT,
                card_no__in=cards.values("card_no"),
            )
            .order_by("time", "pk")
            .values_list("card_no", "time", "service_provider_id", "exit_station", "plate",
                         "fee_fen", "package__name")
        )  # fmt: skip
        if not rows:
            continue
        accounts = dict(
            cards.filter(card_no__in={r[0] for r in rows}).values_list("card_no", "account__number")
        )
        name = bankfiles.file_id(
            "USAGE", transport.ours(), bank.id, date, transport.next_seq(bank.id, "usage")
        )
        data = bankfiles.write(
            "USAGE", file_id=name, sender=transport.ours(), receiver=bank.id, date=date,
            records=[("D", card_no, accounts[card_no], time, provider, station, plate, fee,
                      package.rsplit("/", 1)[-1])
                     for card_no, time, provider, station, plate, fee, package in rows],
        )  # fmt: skip
        prepared = transport.prepare(bank.id, name, data, purpose=f"usage {name}")
        with transaction.atomic(durable=True):
            made.append(
                transport.record_out(
                    prepared, bank=bank.id, kind=BankFileKind.USAGE, name=name, date=date,
                    lines=len(rows), amount_fen=sum(r[5] for r in rows), actor=actor,
                )
            )  # fmt: skip
    return made
