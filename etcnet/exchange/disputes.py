"""争议处理结果: the national center's results of disputes over our packages'
records (reference §6.2: after the 记账, before the 清分统计), as a file on the
link's file channel. For each record an issuer disputed (held with its code),
the result says whether the issuer pays after all (resolved: cleared by the
next run, and counted in the 清分统计) or not (written off).

The reference names the message but not its fields; this is etcnet's file
(docs/exchange.md), UTF-8, one record a line, fields separated by ``|``::

    H|dispute-result/1|SENDER|RECEIVER|COUNT
    D|N|PACKAGE|TRANS_ID|P or N|NOTE

``PACKAGE`` is the MessageId of our 原始交易包 and ``TRANS_ID`` the record's
TransId in it; ``P`` the issuer pays, ``N`` it does not. The file is applied
whole or not at all: a line that does not read, names a record we did not
send, or one not held is refused with its line and field. A record resolved
the same way before is left as it is (the same file twice changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from etcnet.clearing import exchange, packages, services
from etcnet.clearing.models import (
    ClearingEntry,
    EntryState,
    ExchangeDirection,
    ExchangeFile,
    ExchangeKind,
)

__all__ = ["PREFIX", "DisputeFileError", "Resolved", "apply", "write"]

PREFIX = "DISPUTE_RESULT"
FORMAT = "dispute-result/1"


class DisputeFileError(ValueError):
    def __init__(self, line: int, field: str, message: str) -> None:
        super().__init__(f"line {line}, {field}: {message}")
        self.line, self.field, self.message = line, field, message


@dataclass(frozen=True)
class Line:
    number: int
    package: int
    trans_id: int
    pay: bool
    note: str


@dataclass(frozen=True)
class Resolved:
    paid: int
    written_off: int
    unchanged: int


def write(sender: str, receiver: str, lines: list[tuple[int, int, bool, str]]) -> bytes:
    """A dispute-result file of (package, trans id, pay, note) lines."""
    out = [f"H|{FORMAT}|{sender}|{receiver}|{len(lines)}"]
    for n, (package, trans_id, pay, note) in enumerate(lines, 1):
        out.append(f"D|{n}|{package}|{trans_id}|{'P' if pay else 'N'}|{note}")
    return ("\n".join(out) + "\n").encode()


def _read(data: bytes) -> list[Line]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DisputeFileError(0, "file", f"not UTF-8 at byte {error.start}") from None
    rows = [row.split("|") for row in text.splitlines()]
    if not rows or len(rows[0]) != 5 or rows[0][:2] != ["H", FORMAT]:
        raise DisputeFileError(1, "header", f"expected H|{FORMAT}|SENDER|RECEIVER|COUNT")
    head = rows[0]
    if head[3] != settings.ETCNET_CLEARING_SENDER_ID:
        raise DisputeFileError(1, "receiver", f"{head[3]!r} is not this center")
    lines = []
    for number, row in enumerate(rows[1:], 2):
        if len(row) != 6 or row[0] != "D":
            raise DisputeFileError(number, "record", "expected D|N|PACKAGE|TRANS_ID|P/N|NOTE")
        if row[4] not in ("P", "N"):
            raise DisputeFileError(number, "result", f"expected P or N, got {row[4]!r}")
        try:
            package, trans_id = int(row[2]), int(row[3])
        except ValueError:
            raise DisputeFileError(number, "package/trans_id", "not whole numbers") from None
        lines.append(Line(number, package, trans_id, row[4] == "P", row[5].strip()[:200]))
    if str(len(lines)) != head[4]:
        raise DisputeFileError(1, "count", f"says {head[4]}, the file has {len(lines)} lines")
    return lines


def apply(data: bytes, *, actor: Any) -> Resolved:
    """Resolve the held records the file names, all or nothing."""
    lines = _read(data)
    sources: dict[int, dict[int, int]] = {}
    for package in {line.package for line in lines}:
        sent = ExchangeFile.objects.filter(
            direction=ExchangeDirection.OUT, kind=ExchangeKind.TRANSACTIONS,
            sender_id=settings.ETCNET_CLEARING_SENDER_ID, body_message_id=package,
        ).first()  # fmt: skip
        if sent is not None:
            read = packages.read((exchange.folder() / sent.name).read_bytes())
            assert isinstance(read, packages.TransactionPackage)
            sources[package] = {t.trans_id: t.customized.source_id for t in read.transactions}
    paid = written_off = unchanged = 0
    with transaction.atomic():
        for line in lines:
            source = sources.get(line.package, {}).get(line.trans_id)
            if source is None:
                raise DisputeFileError(
                    line.number, "package/trans_id",
                    f"record {line.trans_id} of package {line.package} was not sent by us",
                )  # fmt: skip
            entry = ClearingEntry.objects.filter(transaction_id=source).first()
            done = EntryState.RESOLVED if line.pay else EntryState.WRITTEN_OFF
            if entry is not None and entry.state in (done, EntryState.CLEARED) and line.pay:
                unchanged += 1
                continue
            if entry is not None and entry.state == done:
                unchanged += 1
                continue
            if entry is None or entry.state != EntryState.HELD:
                state = entry.state if entry else "not taken"
                raise DisputeFileError(
                    line.number, "trans_id", f"record {line.trans_id} is {state}, not held"
                )
            note = line.note or ("the issuer pays (争议处理结果)" if line.pay else "not paid")
            services.resolve_held(source, pay=line.pay, note=note, actor=actor)
            if line.pay:
                paid += 1
            else:
                written_off += 1
    return Resolved(paid, written_off, unchanged)
