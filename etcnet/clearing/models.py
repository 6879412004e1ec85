"""The clearing day (清分结算日) and what its run leaves.

A `ClearingDay` is an Asia/Shanghai date. Its run (`etcnet.clearing.run`) takes
the day's records, checks, splits and settles them in one database transaction
and closes the day; a closed day is never rewritten. Every record the center
stores gets one `ClearingEntry` the first time a run takes it: cleared (split
that day), held (遗留, with its §6.2 code, until resolved) or sent (another
issuer's card, waiting for its 记账). What the run computed is kept as
aggregates: `DayFigure` (the reports' rows), `OwnerShare` (each road owner's
splits), `Position` (each counterparty's net). `JobRun` logs every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class DayStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class ClearingDay(models.Model):
    date = models.DateField(unique=True)  # Asia/Shanghai
    status = models.CharField(max_length=6, choices=DayStatus.choices, default=DayStatus.OPEN)
    # When the run that closed the day read the store: a record received after
    # this (less a margin) may be late for this day (docs/clearing.md).
    cutoff_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    journal_entry_id = models.BigIntegerField(null=True, blank=True)  # the day's posting
    # The run's counts and totals: records, cleared, held, sent, late, payable.
    totals = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return self.date.isoformat()


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    UNCHANGED = "unchanged", _("Nothing to do: the day is closed")
    FAILED = "failed", _("Failed")
    CRASHED = "crashed", _("Crashed (found running, its process gone)")


class JobRun(models.Model):
    """One run of a clearing job, written before it starts and when it ends, so a
    run that died shows as `running` until the next run marks it `crashed`."""

    job = models.CharField(max_length=20)  # "run", "export", "import"
    day = models.ForeignKey(ClearingDay, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    host = models.CharField(max_length=100, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    step = models.CharField(max_length=40, blank=True)  # the step running, or the last
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    actor = models.CharField(max_length=60, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.job} {self.day_id} {self.status}"


class Flow(models.IntegerChoices):
    """按发行方归类: who issued the card against whose roads."""

    LOCAL = 1, _("Our cards and lane payments on our roads")
    OUTGOING = 2, _("Other issuers' cards on our roads")
    INCOMING = 3, _("Our cards on other provinces' roads")


class EntryState(models.TextChoices):
    CLEARED = "cleared", _("Cleared")
    HELD = "held", _("Held (遗留)")
    SENT = "sent", _("Sent to the national center")
    ACCEPTED = "accepted", _("Accepted by the issuer, to be cleared")
    RESOLVED = "resolved", _("Dispute resolved, to be cleared")
    WRITTEN_OFF = "written_off", _("Written off")


class ClearingEntry(models.Model):
    """A stored record as clearing took it: once, on the day `day` took it."""

    transaction_id = models.BigIntegerField(unique=True)
    exit_time = models.DateTimeField()  # the transaction's, to find it in its day
    # No foreign-key constraints or their own indexes (2-3 million rows a day, the
    # run's COPY): the run writes the day it has locked; PROTECT still guards
    # deletes, and (day, state) leads with the day.
    day = models.ForeignKey(
        ClearingDay,
        on_delete=models.PROTECT,
        related_name="entries",
        db_constraint=False,
        db_index=False,
    )
    flow = models.PositiveSmallIntegerField(choices=Flow.choices)
    state = models.CharField(max_length=12, choices=EntryState.choices)
    hold_code = models.PositiveSmallIntegerField(null=True, blank=True)  # §6.2
    # The verdict as `day` gave it, kept when the entry moves on (a dispute
    # resolved, an issuer's answer): what that day held and sent stays so.
    taken_state = models.CharField(max_length=12, choices=EntryState.choices, default="")
    taken_code = models.PositiveSmallIntegerField(null=True, blank=True)
    late = models.BooleanField(default=False)  # arrived after its own day closed
    payable_fen = models.BigIntegerField()
    # The day it was finally cleared when not `day` (held or sent before).
    cleared_on = models.ForeignKey(
        ClearingDay,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["cleared_on"],
                condition=Q(cleared_on__isnull=False),
                name="clearing_entry_cleared_on",
            ),
            # The held and waiting entries: few, read by every run and the pages.
            models.Index(
                fields=["state"],
                condition=Q(state__in=["held", "sent", "accepted", "resolved"]),
                name="clearing_entry_waiting",
            ),
            models.Index(fields=["day", "state"], name="clearing_entry_day_state"),
        ]

    def __str__(self) -> str:
        return f"{self.transaction_id} {self.state}"


def update_entries(
    entries: models.QuerySet[ClearingEntry], transaction_ids: Sequence[int], **fields: Any
) -> None:
    """`entries.update(**fields)` for those of `transaction_ids`, a thousand ids a
    statement (a day's held or accepted records may be many)."""
    for at in range(0, len(transaction_ids), 1000):
        entries.filter(transaction_id__in=transaction_ids[at : at + 1000]).update(**fields)


class DayFigure(models.Model):
    """One cell of the day's report cube (数据统计)."""

    day = models.ForeignKey(ClearingDay, on_delete=models.CASCADE, related_name="figures")
    station_id = models.CharField(max_length=20)
    card_network = models.CharField(max_length=4)
    payment_type = models.PositiveSmallIntegerField()
    vehicle_class = models.PositiveSmallIntegerField()
    bank = models.CharField(max_length=60, blank=True)  # a debit card's account's bank
    flow = models.PositiveSmallIntegerField(choices=Flow.choices)
    state = models.CharField(max_length=12, choices=EntryState.choices)
    hold_code = models.PositiveSmallIntegerField(default=0)  # 0: not held
    late = models.BooleanField(default=False)
    carried = models.BooleanField(default=False)  # held or sent before, cleared today
    trips = models.BigIntegerField()
    fee_fen = models.BigIntegerField()
    discount_fen = models.BigIntegerField()
    payable_fen = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day", "station_id"], name="clearing_figure_day")]

    def __str__(self) -> str:
        return f"{self.day_id} {self.station_id} {self.state}: {self.trips}"


class OwnerShare(models.Model):
    """A road owner's splits of the day by exit station, payment type and class."""

    day = models.ForeignKey(ClearingDay, on_delete=models.CASCADE, related_name="shares")
    owner_id = models.CharField(max_length=20)
    station_id = models.CharField(max_length=20)
    payment_type = models.PositiveSmallIntegerField()
    vehicle_class = models.PositiveSmallIntegerField()
    flow = models.PositiveSmallIntegerField(choices=Flow.choices)
    trips = models.BigIntegerField()
    fee_fen = models.BigIntegerField()  # the fee of its intervals
    amount_fen = models.BigIntegerField()  # its split: what it is due

    class Meta:
        indexes = [models.Index(fields=["day", "owner_id"], name="clearing_share_day_owner")]

    def __str__(self) -> str:
        return f"{self.day_id} {self.owner_id}: {self.amount_fen}"


class CounterpartyKind(models.TextChoices):
    OWNER = "owner", _("Road owner")
    NATIONAL_CENTER = "national_center", _("National center")
    BANK = "bank", _("Bank (debit cards)")
    PURSES = "purses", _("Stored-value purses")
    STATION_CASH = "station_cash", _("Station cash")
    MOBILE = "mobile", _("Mobile payment")


class Position(models.Model):
    """A counterparty's settlement position for the day, netted: positive, it owes
    the center; negative, the center owes it. A day's nets add up to zero."""

    day = models.ForeignKey(ClearingDay, on_delete=models.CASCADE, related_name="positions")
    kind = models.CharField(max_length=16, choices=CounterpartyKind.choices)
    counterparty_id = models.CharField(max_length=60, blank=True)
    receivable_fen = models.BigIntegerField()
    payable_fen = models.BigIntegerField()
    net_fen = models.BigIntegerField()

    class Meta:
        ordering = ["kind", "counterparty_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "kind", "counterparty_id"], name="clearing_position_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day_id} {self.kind} {self.counterparty_id}: {self.net_fen}"


class ExchangeDirection(models.TextChoices):
    OUT = "out", _("Sent")
    IN = "in", _("Received")


class ExchangeKind(models.TextChoices):
    TRANSACTIONS = "transactions", _("Transaction package (原始交易包)")
    ACCOUNTING = "accounting", _("Accounting result (记账处理)")
    SUMMARY = "summary", _("Clearing summary (清分统计)")


class ExchangeFile(models.Model):
    """A §6.2 message exchanged with the national center as a file
    (docs/clearing-packages.md), kept under ETCNET_DATA_DIR/clearing/exchange/."""

    direction = models.CharField(max_length=3, choices=ExchangeDirection.choices)
    kind = models.CharField(max_length=12, choices=ExchangeKind.choices)
    day = models.ForeignKey(
        ClearingDay, null=True, blank=True, on_delete=models.PROTECT, related_name="exchange"
    )
    clear_target_date = models.DateField()
    sender_id = models.CharField(max_length=16)
    receiver_id = models.CharField(max_length=16)
    message_id = models.BigIntegerField()  # the header's
    body_message_id = models.BigIntegerField()  # the package it is or answers
    issuer_id = models.CharField(max_length=32, blank=True)
    service_provider_id = models.CharField(max_length=32, blank=True)
    name = models.CharField(max_length=200)  # the file, relative to the exchange folder
    sha256 = models.CharField(max_length=64)
    count = models.PositiveIntegerField()
    amount_fen = models.BigIntegerField()
    disputed_count = models.PositiveIntegerField(default=0)
    # What the center found: "" (agreed) or why not, e.g. a summary that disagrees.
    finding = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["direction", "kind", "sender_id", "message_id"],
                name="exchange_file_once",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class IncomingTransaction(models.Model):
    """Flow 3: one of our cards charged on another province's road, received in a
    transaction package, verified here (TAC, card, duplicates) and charged to its
    purse or debit account when accepted (`result` empty); the national center
    is owed it, settled on the clearing day that takes it (`cleared_on`)."""

    package = models.ForeignKey(ExchangeFile, on_delete=models.PROTECT, related_name="incoming")
    trans_id = models.PositiveIntegerField()
    card_no = models.CharField(max_length=20)
    card_type = models.PositiveSmallIntegerField()  # 22 / 23
    card_trans_no = models.PositiveIntegerField()
    time = models.DateTimeField()
    fee_fen = models.BigIntegerField()
    service_provider_id = models.CharField(max_length=32)
    exit_station = models.CharField(max_length=64, blank=True)
    plate = models.CharField(max_length=32, blank=True)
    result = models.PositiveSmallIntegerField(null=True, blank=True)  # §6.2 code, None: accepted
    reason = models.CharField(max_length=200, blank=True)
    payer = models.CharField(max_length=60, blank=True)  # the ledger account charged
    bank = models.CharField(max_length=60, blank=True)  # a debit card's account's bank
    cleared_on = models.ForeignKey(
        ClearingDay, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["package", "trans_id"], name="incoming_once"),
        ]
        indexes = [
            models.Index(fields=["card_no", "card_trans_no"], name="incoming_card_debit"),
            models.Index(
                fields=["result"],
                condition=Q(result__isnull=True, cleared_on__isnull=True),
                name="incoming_to_clear",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.package_id}#{self.trans_id}"
