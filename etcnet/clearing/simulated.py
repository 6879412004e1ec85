"""The simulated national center (部中心) of `make demo` and the tests, on the file
exchange of docs/clearing-packages.md: it answers one of our transaction
packages with the issuer's accounting result (记账处理), as an issuer does —
disputing what `dispute` names, accepting the rest — and sums the results it
sent into a clearing summary (清分统计). Pure: no database, bytes in, bytes out.
Issue 16 puts it behind the network protocol."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from etcnet.clearing import packages

__all__ = ["NATIONAL_CENTER_ID", "answer", "summary"]

NATIONAL_CENTER_ID = "0000000000000001"

Dispute = Callable[[packages.Transaction], int | None]


def _none(_: packages.Transaction) -> int | None:
    return None


def answer(package_file: bytes, *, message_id: int, dispute: Dispute = _none) -> bytes:
    """The accounting result for the transaction package in `package_file`."""
    package = packages.read(package_file)
    if not isinstance(package, packages.TransactionPackage):
        raise packages.PackageError("Header/MessageType", "expected a transaction package")
    disputed = []
    accepted = []
    for t in package.transactions:
        code = dispute(t)
        if code is None:
            accepted.append(t)
        else:
            disputed.append(packages.DisputedRecord(t.trans_id, packages.DisputeResult(code)))
    result = packages.AccountingResult(
        header=packages.Header(
            sender_id=package.header.receiver_id,
            receiver_id=package.header.sender_id,
            message_id=message_id,
        ),
        clear_target_date=package.clear_target_date,
        service_provider_id=package.service_provider_id,
        issuer_id=package.issuer_id,
        message_id=package.message_id,
        count=len(accepted),
        amount_fen=sum(t.fee_fen for t in accepted),
        disputed=tuple(disputed),
    )
    return packages.write(result)


def summary(
    results: Sequence[bytes], *, message_id: int, issuer_id: str, process_time: dt.datetime
) -> bytes:
    """The clearing summary of the accounting results `results` (of one day)."""
    read = [packages.read(r) for r in results]
    answers = [r for r in read if isinstance(r, packages.AccountingResult)]
    if not answers or len(answers) != len(read):
        raise packages.PackageError("Body", "expected accounting results")
    first = answers[0]
    by_provider: dict[str, list[int]] = {}
    for r in answers:
        by_provider.setdefault(r.service_provider_id, []).append(r.message_id)
    made = packages.ClearingSummary(
        header=packages.Header(
            sender_id=first.header.sender_id,
            receiver_id=first.header.receiver_id,
            message_id=message_id,
        ),
        clear_target_date=first.clear_target_date,
        count=sum(r.count for r in answers),
        amount_fen=sum(r.amount_fen for r in answers),
        process_time=process_time,
        issuer_id=issuer_id,
        lists=tuple(
            packages.ClearingList(service_provider_id=provider, message_ids=tuple(ids), file_ids=())
            for provider, ids in sorted(by_provider.items())
        ),
    )
    return packages.write(made)
