"""Refund and supplementary-payment notices (退费/补缴通知) from the national
center about our cards used on other provinces' roads: the holder is owed a
refund, or owes a supplementary payment. They come as a file on the link's file
channel, named ``NOTICE_…`` (etcnet's format, docs/exchange.md: the reference
names the notices, not their fields), UTF-8, one notice a line::

    H|notice/1|SENDER|RECEIVER|COUNT
    D|N|R or S|NOTICE_ID|CARD_NO|AMOUNT_FEN|SERVICE_PROVIDER|TIME|REASON

``R`` a refund owed to the holder, ``S`` a supplementary payment the holder
owes; ``TIME`` ISO 8601 with its offset. The file is taken whole or not at all:
a line that does not read, or names a card we did not issue, refuses it with
its line and field. Each notice is kept open (`Notice`) for the refund and
recovery work of issue 17; the same notice again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from etcnet.cards.models import CardUnit
from etcnet.core import audit
from etcnet.exchange.models import Notice, NoticeKind

__all__ = ["PREFIX", "NoticeFileError", "Taken", "apply", "write"]

PREFIX = "NOTICE"
FORMAT = "notice/1"


class NoticeFileError(ValueError):
    def __init__(self, line: int, field: str, message: str) -> None:
        super().__init__(f"line {line}, {field}: {message}")
        self.line, self.field, self.message = line, field, message


@dataclass(frozen=True)
class Taken:
    new: int
    again: int


def write(
    sender: str, receiver: str, lines: list[tuple[str, str, str, int, str, str, str]]
) -> bytes:
    """A notice file of (R/S, notice id, card, amount, provider, ISO time, reason)."""
    out = [f"H|{FORMAT}|{sender}|{receiver}|{len(lines)}"]
    out += [f"D|{n}|{'|'.join(str(f) for f in line)}" for n, line in enumerate(lines, 1)]
    return ("\n".join(out) + "\n").encode()


def _rows(data: bytes) -> tuple[str, list[tuple[int, list[str]]]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NoticeFileError(0, "file", f"not UTF-8 at byte {error.start}") from None
    rows = [row.split("|") for row in text.splitlines()]
    if not rows or len(rows[0]) != 5 or rows[0][:2] != ["H", FORMAT]:
        raise NoticeFileError(1, "header", f"expected H|{FORMAT}|SENDER|RECEIVER|COUNT")
    if rows[0][3] != settings.ETCNET_CLEARING_SENDER_ID:
        raise NoticeFileError(1, "receiver", f"{rows[0][3]!r} is not this center")
    if rows[0][4] != str(len(rows) - 1):
        raise NoticeFileError(1, "count", f"says {rows[0][4]}, the file has {len(rows) - 1} lines")
    return rows[0][2], list(enumerate(rows[1:], 2))


def apply(data: bytes, *, file: str, actor: Any) -> Taken:
    sender, rows = _rows(data)
    parsed = []
    for number, row in rows:
        if len(row) != 9 or row[0] != "D":
            raise NoticeFileError(
                number, "record", "expected D|N|R/S|ID|CARD|FEN|PROVIDER|TIME|WHY"
            )
        kind = {"R": NoticeKind.REFUND, "S": NoticeKind.SUPPLEMENT}.get(row[2])
        if kind is None:
            raise NoticeFileError(number, "kind", f"expected R or S, got {row[2]!r}")
        try:
            amount = int(row[5])
        except ValueError:
            raise NoticeFileError(number, "amount_fen", f"not whole fen: {row[5]!r}") from None
        if amount <= 0:
            raise NoticeFileError(number, "amount_fen", "must be positive")
        try:
            when = dt.datetime.fromisoformat(row[7])
        except ValueError:
            raise NoticeFileError(number, "time", f"not an ISO time: {row[7]!r}") from None
        if when.tzinfo is None:
            raise NoticeFileError(number, "time", "needs its offset (+08:00)")
        if not row[3].strip():
            raise NoticeFileError(number, "notice_id", "required")
        parsed.append((number, kind, row[3].strip()[:40], row[4], amount, row[6][:32], when,
                       row[8].strip()[:200]))  # fmt: skip
    cards = {
        c.card_no: c
        for c in CardUnit.objects.filter(card_no__in=[p[3] for p in parsed]).select_related(
            "account"
        )
    }
    new = again = 0
    with transaction.atomic():
        for number, kind, notice_id, card_no, amount, provider, when, reason in parsed:
            card = cards.get(card_no)
            if card is None:
                raise NoticeFileError(number, "card_no", f"{card_no!r} is not a card we issued")
            notice, created = Notice.objects.get_or_create(
                sender_id=sender,
                notice_id=notice_id,
                defaults={
                    "kind": kind, "card_no": card_no, "account": card.account,
                    "amount_fen": amount, "service_provider_id": provider, "occurred_at": when,
                    "reason": reason, "file": file, "received_at": timezone.now(),
                },
            )  # fmt: skip
            if not created:
                again += 1
                continue
            new += 1
            audit.record(
                actor=actor, action="exchange.notice_received", subject=notice,
                after={"kind": kind, "card": card_no, "amount_fen": amount, "notice": notice_id},
            )  # fmt: skip
    return Taken(new, again)
