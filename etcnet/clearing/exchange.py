"""The exchange with the national center (部中心) as §6.2 files
(`etcnet clearing export|import`, docs/clearing-packages.md for the format).

Flow 2 — other issuers' cards on our roads:
- `export_day`: a closed day's records sent for clearing (entries `sent`) as
  transaction packages (原始交易包) per issuer, at most 10,000 records each,
  numbered on from the last package sent; made once and kept — exporting the
  day again gives the same files;
- importing the issuer's accounting result (记账处理) for a package: the records
  it disputes are held with its code, the rest accepted — cleared (split among
  our road owners, receivable from the national center) by the next run.

Flow 3 — our cards on other provinces' roads:
- importing a transaction package: every record verified here (the card exists
  (8), its TAC (1), the same card debit not already charged (2), the card's
  state (9) and expiry (10)); the accepted ones charged to their purse or debit
  account in one journal entry against what we owe the national center; our
  accounting result written for the national center, disputing the others.

A clearing summary (清分统计) is kept and compared with what we sent and what
the issuers accepted; a disagreement is recorded on the file, for operators.

Every file is taken once: the same file again changes nothing, another file
under a message id already taken is refused (§6.2 result 5, 消息重复). A file
that cannot be read is refused naming its field, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import shutil
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from etcnet.cards import ledger, vault
from etcnet.cards.models import CardUnit, EntryKind, UnitState
from etcnet.cards.services import purchases
from etcnet.clearing import packages
from etcnet.clearing.models import (
    ClearingDay,
    ClearingEntry,
    DayStatus,
    EntryState,
    ExchangeDirection,
    ExchangeFile,
    ExchangeKind,
    IncomingTransaction,
    update_entries,
)
from etcnet.core import audit
from etcnet.smartcard.crypto import Alg
from etcnet.tolling.models import TollTransaction

__all__ = ["ExchangeError", "Imported", "day_packages", "export_day", "folder", "import_file"]

_LOCAL = dt.timezone(dt.timedelta(hours=8))
_IN_USE = (UnitState.ACTIVE, UnitState.ISSUED)
_CHUNK = 2_000


class ExchangeError(Exception):
    """A file or an export that cannot be taken; the message says why."""


@dataclass(frozen=True)
class Imported:
    file: ExchangeFile
    created: bool  # False: the same file was taken before, nothing changed
    answer: Path | None = None  # our accounting result, for a transaction package


def folder() -> Path:
    return Path(settings.DATA_DIR) / "clearing" / "exchange"


def _header(message_id: int) -> packages.Header:
    return packages.Header(
        sender_id=settings.ETCNET_CLEARING_SENDER_ID,
        receiver_id=settings.ETCNET_NATIONAL_CENTER_ID,
        message_id=message_id,
    )


def _next_message_id() -> int:
    last = ExchangeFile.objects.filter(
        direction=ExchangeDirection.OUT, sender_id=settings.ETCNET_CLEARING_SENDER_ID
    ).aggregate(last=Max("message_id"))["last"]
    return int(last or 0) + 1


def _save(
    message: packages.Message, *, direction: str, kind: str, day: ClearingDay | None, **fields: Any
) -> ExchangeFile:
    data = packages.write(message)
    header = message.header
    name = f"{direction}/{kind}-{header.sender_id}-{header.message_id:010d}.xml"
    path = folder() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ExchangeFile.objects.create(
        direction=direction,
        kind=kind,
        day=day,
        sender_id=header.sender_id,
        receiver_id=header.receiver_id,
        message_id=header.message_id,
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        created_at=timezone.now(),
        **fields,
    )


# -- flow 2 out ------------------------------------------------------------------


def day_packages(date: dt.date, *, actor: Any = "etcnet clearing export") -> QuerySet[ExchangeFile]:
    """The transaction packages of closed day `date`, made the first time they are
    asked for (by an export or the front server's outbox), the same files after."""
    day = ClearingDay.objects.filter(date=date).first()
    if day is None or day.status != DayStatus.CLOSED:
        raise ExchangeError(f"{date} is not closed: run `etcnet clearing run --date {date}` first")
    made = ExchangeFile.objects.filter(
        day=day, direction=ExchangeDirection.OUT, kind=ExchangeKind.TRANSACTIONS
    )
    if not made.exists():
        with transaction.atomic():
            ClearingDay.objects.select_for_update().get(pk=day.pk)
            if not made.exists():
                _make_packages(day, actor)
    return made


def export_day(date: dt.date, out: Path, *, actor: Any = "etcnet clearing export") -> list[Path]:
    """The transaction packages of closed day `date` copied into `out`."""
    made = day_packages(date, actor=actor)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file in made.order_by("message_id"):
        target = out / Path(file.name).name
        shutil.copyfile(folder() / file.name, target)
        written.append(target)
    return written


def _sent(day: ClearingDay) -> Iterator[TollTransaction]:
    """The day's records sent for clearing, in id order, a chunk at a time: each
    chunk's ids with its exit-time range, so that PostgreSQL looks only into the
    partitions of those days, by their primary key (two IN subqueries over the
    whole day made it scan them all for every record)."""
    pairs = (
        ClearingEntry.objects.filter(day=day, state=EntryState.SENT)
        .order_by("transaction_id")
        .values_list("transaction_id", "exit_time")
        .iterator(chunk_size=_CHUNK)
    )
    while chunk := list(itertools.islice(pairs, _CHUNK)):
        times = [t for _, t in chunk]
        yield from (
            TollTransaction.objects.filter(
                id__in=[i for i, _ in chunk], exit_time__gte=min(times), exit_time__lte=max(times)
            )
            .select_related("terminal", "station")
            .order_by("id")
        )


def _transaction(t: TollTransaction) -> packages.Transaction:
    before = t.balance_before_fen or 0  # 0: the lane did not read the purse
    return packages.Transaction(
        time=t.exit_time.astimezone(_LOCAL).replace(microsecond=0),
        fee_fen=t.payable_fen,
        service=packages.Service(service_type=1, description="高速公路通行费", detail=t.method),
        card=packages.ICCard(
            card_type=packages.CardType(t.payment_type),
            net_no=t.card_no[:4],
            card_id=t.card_no[4:],
            license=t.plate,
            pre_balance_fen=before,
            post_balance_fen=before - t.amount_fen,
        ),
        validation=packages.Validation(
            tac=t.tac.upper(),
            trans_type=packages.TransType(f"{t.trans_type or 9:02d}"),
            terminal_no=t.terminal.psam_terminal_no.upper(),
            terminal_trans_no=f"{t.terminal_trans_seq or 0:08X}",
        ),
        obu=None,
        customized=packages.CustomizedData(
            source_id=t.pk,
            card_trans_no=t.card_trans_no or 0,
            exit_station=t.station.node_id,
            entry_station=t.entry_station,
            intervals=tuple(
                str(i.get("interval_id", "")) if isinstance(i, dict) else str(i)
                for i in t.intervals or ()
            ),
        ),
        vehicle_type=t.vehicle_class,
        algorithm=packages.Algorithm.TDES,
    )


def _make_packages(day: ClearingDay, actor: Any) -> None:
    by_issuer: dict[str, list[packages.Transaction]] = defaultdict(list)
    unsendable: list[tuple[int, str]] = []
    for t in _sent(day):
        try:
            made = _transaction(t)
            packages.check_transaction(made)
        except (packages.PackageError, ValueError) as error:
            unsendable.append((t.pk, str(error)))
            continue
        by_issuer[t.card_network].append(made)
    # A record the package format cannot carry (a reversal's negative fee, a field
    # out of its rule) is held (code 6) for operators, never left waiting.
    update_entries(
        ClearingEntry.objects.all(), [pk for pk, _ in unsendable], state=EntryState.HELD,
        hold_code=6,
    )  # fmt: skip
    next_id = _next_message_id()
    files = []
    for issuer, records in sorted(by_issuer.items()):
        for package in packages.build_packages(
            records,
            clear_target_date=day.date,
            service_provider_id=settings.ETCNET_SERVICE_PROVIDER_ID,
            issuer_id=issuer,
            sender_id=settings.ETCNET_CLEARING_SENDER_ID,
            receiver_id=settings.ETCNET_NATIONAL_CENTER_ID,
            first_message_id=next_id,
        ):
            files.append(
                _save(
                    package,
                    direction=ExchangeDirection.OUT,
                    kind=ExchangeKind.TRANSACTIONS,
                    day=day,
                    clear_target_date=day.date,
                    body_message_id=package.message_id,
                    issuer_id=issuer,
                    service_provider_id=package.service_provider_id,
                    count=package.count,
                    amount_fen=package.amount_fen,
                )
            )
            next_id += 1
    audit.record(
        actor=actor,
        action="clearing.packages_made",
        subject=day,
        after={
            "packages": [f.message_id for f in files],
            "records": sum(f.count for f in files),
            "unsendable": unsendable[:20],
        },
    )


# -- files in ---------------------------------------------------------------------


def import_file(path: Path, *, actor: Any = "etcnet clearing import") -> Imported:
    """Takes one file from the national center (see the module's docstring)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ExchangeError(f"{path}: {error.strerror}") from None
    try:
        message = packages.read(data)
    except packages.PackageError as error:
        raise ExchangeError(f"{path.name}: {error}") from None
    digest = hashlib.sha256(data).hexdigest()
    kind = {
        packages.TransactionPackage: ExchangeKind.TRANSACTIONS,
        packages.AccountingResult: ExchangeKind.ACCOUNTING,
        packages.ClearingSummary: ExchangeKind.SUMMARY,
    }.get(type(message))
    if kind is None:
        raise ExchangeError(f"{path.name}: a {type(message).__name__} is not taken as a file")
    with transaction.atomic():
        seen = ExchangeFile.objects.filter(
            direction=ExchangeDirection.IN,
            kind=kind,
            sender_id=message.header.sender_id,
            message_id=message.header.message_id,
        ).first()
        if seen is not None:
            if seen.sha256 == digest:
                return Imported(seen, created=False)
            raise ExchangeError(
                f"{path.name}: Header/MessageId: message {message.header.message_id} of"
                f" {message.header.sender_id} was taken before with other content"
                " (§6.2 result 5, 消息重复)"
            )
        if isinstance(message, packages.AccountingResult):
            return Imported(_accounting(message, data, digest, actor), created=True)
        if isinstance(message, packages.TransactionPackage):
            file, answer = _incoming(message, data, digest, actor)
            return Imported(file, created=True, answer=answer)
        assert isinstance(message, packages.ClearingSummary)
        return Imported(_summary(message, data, digest, actor), created=True)


def _keep(
    data: bytes, message: packages.Message, kind: str, digest: str, **fields: Any
) -> ExchangeFile:
    header = message.header
    name = f"in/{kind}-{header.sender_id}-{header.message_id:010d}.xml"
    path = folder() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ExchangeFile.objects.create(
        direction=ExchangeDirection.IN,
        kind=kind,
        sender_id=header.sender_id,
        receiver_id=header.receiver_id,
        message_id=header.message_id,
        name=name,
        sha256=digest,
        created_at=timezone.now(),
        **fields,
    )


def _accounting(
    result: packages.AccountingResult, data: bytes, digest: str, actor: Any
) -> ExchangeFile:
    """An issuer's 记账 for one of our packages: disputed records held with its code,
    the others accepted."""
    ours = ExchangeFile.objects.filter(
        direction=ExchangeDirection.OUT,
        kind=ExchangeKind.TRANSACTIONS,
        sender_id=result.header.receiver_id,
        body_message_id=result.message_id,
    ).first()
    if ours is None:
        raise ExchangeError(
            f"Body/MessageId: no package {result.message_id} was sent by"
            f" {result.header.receiver_id}"
        )
    sent = packages.read((folder() / ours.name).read_bytes())
    assert isinstance(sent, packages.TransactionPackage)
    source = {t.trans_id: t.customized.source_id for t in sent.transactions}
    fee = {t.trans_id: t.fee_fen for t in sent.transactions}
    disputed = {r.trans_id: int(r.result) for r in result.disputed}
    unknown = sorted(set(disputed) - set(source))
    if unknown:
        raise ExchangeError(
            f"Body/DisputedRecord/TransId: {unknown[:5]} not in package {ours.body_message_id}"
        )
    accepted = [trans for trans in source if trans not in disputed]
    amount = sum(fee[trans] for trans in accepted)
    if (result.count, result.amount_fen) != (len(accepted), amount):
        raise ExchangeError(
            f"Body/Count, Body/Amount: {result.count} records of {result.amount_fen} fen confirmed,"
            f" but the package less the disputed ones holds {len(accepted)} of {amount} fen"
        )
    file = _keep(
        data, result, ExchangeKind.ACCOUNTING, digest,
        day=ours.day, clear_target_date=result.clear_target_date,
        body_message_id=result.message_id, issuer_id=result.issuer_id,
        service_provider_id=result.service_provider_id, count=result.count,
        amount_fen=result.amount_fen, disputed_count=len(disputed),
    )  # fmt: skip
    waiting = ClearingEntry.objects.filter(state=EntryState.SENT)
    update_entries(waiting, [source[trans] for trans in accepted], state=EntryState.ACCEPTED)
    by_code: dict[int, list[int]] = defaultdict(list)
    for trans, code in disputed.items():
        by_code[code].append(source[trans])
    for code, held in by_code.items():
        update_entries(waiting, held, state=EntryState.HELD, hold_code=code)
    audit.record(
        actor=actor,
        action="clearing.accounting_imported",
        subject=file,
        after={"package": ours.body_message_id, "accepted": len(accepted), "disputed": disputed},
    )
    return file


def _incoming(
    package: packages.TransactionPackage, data: bytes, digest: str, actor: Any
) -> tuple[ExchangeFile, Path]:
    """Flow 3: our cards charged elsewhere, verified and charged here."""
    file = _keep(
        data, package, ExchangeKind.TRANSACTIONS, digest,
        clear_target_date=package.clear_target_date, body_message_id=package.message_id,
        issuer_id=package.issuer_id, service_provider_id=package.service_provider_id,
        count=package.count, amount_fen=package.amount_fen,
    )  # fmt: skip
    numbers = sorted({t.card.net_no + t.card.card_id for t in package.transactions})
    cards = {
        card.card_no: card
        for card in CardUnit.objects.select_for_update(of=("self",))
        .filter(card_no__in=numbers)
        .select_related("account")
        .order_by("pk")
    }
    charged = set(
        IncomingTransaction.objects.filter(card_no__in=numbers, result__isnull=True).values_list(
            "card_no", "card_trans_no"
        )
    )
    rows: list[IncomingTransaction] = []
    lines: dict[str, int] = defaultdict(int)
    purse_cards: dict[str, CardUnit] = {}
    for t in package.transactions:
        card_no = t.card.net_no + t.card.card_id
        card = cards.get(card_no)
        code, reason = _verify(t, card, charged)
        row = IncomingTransaction(
            package=file, trans_id=t.trans_id, card_no=card_no, card_type=int(t.card.card_type),
            card_trans_no=t.customized.card_trans_no, time=t.time, fee_fen=t.fee_fen,
            service_provider_id=package.service_provider_id,
            exit_station=t.customized.exit_station, plate=t.card.license, result=code,
            reason=reason,
        )  # fmt: skip
        if code is None and card is not None:
            charged.add((card_no, t.customized.card_trans_no))
            row.payer = purchases.payer_code(card)
            row.bank = card.account.bank_name if card.account_id and card.account else ""
            if t.fee_fen:
                lines[row.payer] += t.fee_fen
                if card.is_stored_value:
                    purse_cards[card.card_no] = card
        rows.append(row)
    IncomingTransaction.objects.bulk_create(rows, batch_size=_CHUNK)
    total = sum(lines.values())
    if total:
        ledger.post_many(
            [
                ledger.Entry(
                    EntryKind.CLEARING,
                    (*sorted(lines.items()), (ledger.NATIONAL_PAYABLE, -total)),
                    memo=f"our cards elsewhere: package {package.message_id}"
                    f" of {package.service_provider_id}",
                    idempotency_key=f"incoming:{file.pk}",
                )
            ],
            cards=purse_cards,
        )
    disputed = tuple(
        packages.DisputedRecord(trans_id=r.trans_id, result=packages.DisputeResult(r.result))
        for r in rows
        if r.result is not None
    )
    answer = packages.AccountingResult(
        header=_header(_next_message_id()),
        clear_target_date=package.clear_target_date,
        service_provider_id=package.service_provider_id,
        issuer_id=package.issuer_id,
        message_id=package.message_id,
        count=len(rows) - len(disputed),
        amount_fen=sum(r.fee_fen for r in rows if r.result is None),
        disputed=disputed,
    )
    mine = _save(
        answer, direction=ExchangeDirection.OUT, kind=ExchangeKind.ACCOUNTING, day=None,
        clear_target_date=answer.clear_target_date, body_message_id=package.message_id,
        issuer_id=answer.issuer_id, service_provider_id=answer.service_provider_id,
        count=answer.count, amount_fen=answer.amount_fen, disputed_count=len(disputed),
    )  # fmt: skip
    audit.record(
        actor=actor,
        action="clearing.incoming_imported",
        subject=file,
        after={"records": len(rows), "accepted": answer.count, "charged_fen": total,
               "disputed": [(d.trans_id, int(d.result)) for d in disputed], "answer": mine.name},
    )  # fmt: skip
    return file, folder() / mine.name


def _verify(
    t: packages.Transaction, card: CardUnit | None, charged: set[tuple[str, int]]
) -> tuple[int | None, str]:
    """The §6.2 code a record of our card is disputed with, or None."""
    card_no = t.card.net_no + t.card.card_id
    if card is None or card.card_type is None:
        return 8, "card number does not exist"
    verified = vault.verify_purchase_tac(
        Alg(card.alg),
        card.internal_no,
        amount=t.fee_fen,
        trans_type=int(t.validation.trans_type, 16),
        terminal_no=bytes.fromhex(t.validation.terminal_no),
        terminal_seq=bytes.fromhex(t.validation.terminal_trans_no),
        when=t.time.astimezone(_LOCAL).replace(tzinfo=None),
        tac=bytes.fromhex(t.validation.tac),
    )
    if not verified:
        return 1, "the card's TAC does not verify"
    if (card_no, t.customized.card_trans_no) in charged:
        return 2, "this card debit (card number and counter) was charged before"
    if int(t.card.card_type) != card.card_type:
        return 15, "card type is not the card's"
    if card.state not in _IN_USE:
        return 9, f"card is {card.state}"
    if card.expiry_date and card.expiry_date < t.time.astimezone(_LOCAL).date():
        return 10, f"card expired on {card.expiry_date}"
    return None, ""


def _summary(
    summary: packages.ClearingSummary, data: bytes, digest: str, actor: Any
) -> ExchangeFile:
    """A 清分统计: kept, and compared with what the issuers accepted of our packages."""
    covered = [m for item in summary.lists for m in item.message_ids]
    ours = ExchangeFile.objects.filter(
        direction=ExchangeDirection.OUT,
        kind=ExchangeKind.TRANSACTIONS,
        sender_id=summary.header.receiver_id,
        body_message_id__in=covered,
    )
    answered = {
        f.body_message_id: f
        for f in ExchangeFile.objects.filter(
            direction=ExchangeDirection.IN,
            kind=ExchangeKind.ACCOUNTING,
            body_message_id__in=covered,
        )
    }
    count = sum(answered[f.body_message_id].count for f in ours if f.body_message_id in answered)
    amount = sum(
        answered[f.body_message_id].amount_fen for f in ours if f.body_message_id in answered
    )
    missing = sorted(set(covered) - {f.body_message_id for f in ours})
    finding = ""
    if missing:
        finding = f"packages {missing[:10]} were not sent by us"
    elif (count, amount) != (summary.count, summary.amount_fen):
        finding = (
            f"清分统计对帐失败: the summary says {summary.count} records of {summary.amount_fen}"
            f" fen, the accounting results we took say {count} of {amount} fen"
        )
    file = _keep(
        data, summary, ExchangeKind.SUMMARY, digest,
        day=ClearingDay.objects.filter(date=summary.clear_target_date).first(),
        clear_target_date=summary.clear_target_date, body_message_id=0,
        issuer_id=summary.issuer_id, count=summary.count, amount_fen=summary.amount_fen,
        finding=finding,
    )  # fmt: skip
    audit.record(actor=actor, action="clearing.summary_imported", subject=file,
                 after={"covered": covered, "finding": finding})  # fmt: skip
    return file


def incoming_positions(day: ClearingDay) -> Sequence[tuple[str, str, int, int]]:
    """Flow 3 for the run of `day`: (kind, counterparty, receivable, payable) of the
    accepted records not cleared yet — the purses and banks charged owe them, the
    national center is owed them — marked cleared on `day`. Inside the run's
    transaction; the money was posted when the package was taken."""
    # Marked first, then summed: a package taken meanwhile waits for the next day.
    IncomingTransaction.objects.filter(result__isnull=True, cleared_on__isnull=True).update(
        cleared_on=day
    )
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for card_type, bank, fee in (
        IncomingTransaction.objects.filter(cleared_on=day, result__isnull=True)
        .order_by()
        .values_list("card_type", "bank")
        .annotate(fee=Sum("fee_fen"))
    ):
        sums[("purses", "") if card_type == 22 else ("bank", bank)] += fee
    total = sum(sums.values())
    moves = [(kind, party, fee, 0) for (kind, party), fee in sorted(sums.items())]
    if total:
        moves.append(("national_center", "", 0, total))
    return moves
