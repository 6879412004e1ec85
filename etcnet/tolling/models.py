"""Terminals and the transactions they upload.

A `Terminal` (handheld or lane PC) belongs to a station, may work the lanes it
is allowed, holds an emulated PSAM provisioned by the center, and
authenticates every call with its own secret (only a digest is stored).

Every upload carries an idempotency key: the whole upload `(terminal,
upload_key)` and each record `(terminal, seq)`. The first result is stored
with the payload's hash; the same key with the same payload returns it, the
same key with another payload is a conflict. A record is stored once, accepted
or rejected with a reason code (the dispute codes of reference §6.2 where they
fit) — a rejected record stays for operators, never dropped.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from etcnet.network.models import Lane, Node, NodeKind


class Terminal(models.Model):
    terminal_id = models.CharField(max_length=20, unique=True)
    station = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="terminals")
    lanes = models.ManyToManyField(Lane, related_name="terminals", blank=True)
    psam_terminal_no = models.CharField(max_length=12, unique=True)  # 6 bytes, hex
    secret_digest = models.CharField(max_length=64)  # sha256 of the terminal's secret
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.terminal_id


class StationMembership(models.Model):
    """The station a collector or station master works at (收费人员根据自己所在站).

    A terminal downloads the verifiers of its own station's staff only, and a
    station master authorises the minimum fee only at a station he belongs to.
    A person may belong to more than one station (a relief collector)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="station_memberships"
    )
    station = models.ForeignKey(
        Node,
        on_delete=models.PROTECT,
        related_name="staff_memberships",
        limit_choices_to={"kind": NodeKind.STATION},
    )

    class Meta:
        verbose_name = _("station membership")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "station"], name="station_membership_unique_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.station_id}"


class Upload(models.Model):
    """One upload request, answered once and again the same way."""

    terminal = models.ForeignKey(Terminal, on_delete=models.PROTECT, related_name="uploads")
    upload_key = models.CharField(max_length=64)
    payload_hash = models.CharField(max_length=64)
    response = models.JSONField()
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["terminal", "upload_key"], name="upload_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id}:{self.upload_key}"


class RecordStatus(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")


class DisputeCode(models.IntegerChoices):
    """Reference §6.2: why a transaction is not accepted for payment."""

    TAC_FAILED = 1, _("Verification failed (TAC)")
    DUPLICATE = 2, _("Duplicate transaction")
    USER_STATUS = 3, _("User status changed")
    INVALID_TYPE = 4, _("Invalid transaction type")
    TOO_LATE = 5, _("Overdue beyond the limit")
    DATA_FIELD = 6, _("Data field error")
    OVER_LIMIT = 7, _("Over the maximum amount")
    NO_CARD = 8, _("Card number does not exist")
    CARD_STATE = 9, _("Card state does not match")
    EXPIRED = 10, _("Card expired")
    NOT_ALLOWED = 11, _("Transaction not allowed")
    CSN_MISMATCH = 12, _("Card CSN does not match")
    TEST = 13, _("Test transaction")
    BALANCE_MISMATCH = 14, _("Card and account do not agree (stored value)")
    INVALID_CARD_TYPE = 15, _("Invalid card type")
    CLOCK = 16, _("Lane clock error")
    NO_OBU = 17, _("OBU number does not exist")
    OTHER = 100, _("Other")


class Direction(models.TextChoices):
    ENTRY = "entry", _("Entry")
    EXIT = "exit", _("Exit")


class SpecialCase(models.TextChoices):
    """特情: what the collector resolved at the lane, recorded with a reason."""

    STATUS_LIST = "status_list", _("Card or OBU on the status list")
    EXPIRED = "expired", _("Card or OBU expired")
    MISMATCH = "mismatch", _("Card, OBU and vehicle do not match")
    NO_ENTRY = "no_entry", _("No entry information")
    INSUFFICIENT_BALANCE = "insufficient_balance", _("Insufficient balance")
    EXEMPT = "exempt", _("Exempt vehicle")
    MINIMUM_FEE = "minimum_fee", _("Minimum fee charged")
    GREY_COMPLETED = "grey_completed", _("Interrupted purchase completed")


class Flag(models.TextChoices):
    """What the center found wrong with a record it still accepted: the card was
    debited, so the record is kept and paid, and an operator reviews it."""

    FOREIGN_MASTER = "foreign_master", _("Authorised by a station master of another station")


class TollTransaction(models.Model):
    """A lane transaction as a terminal recorded it (an exit, or an entry on a
    closed-road entry lane, whose `exit_time` is then the entry's lane time),
    with the center's verdict."""

    # No foreign-key constraints on this table (partitioned by day, the intake's
    # hot path): the intake writes the terminal and station it has just locked
    # and read; Django's PROTECT still guards deletes. Their own indexes would
    # repeat the leading columns of `transaction_unique_seq` and
    # `transaction_station_time`.
    terminal = models.ForeignKey(
        Terminal,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_constraint=False,
        db_index=False,
    )
    seq = models.PositiveBigIntegerField()
    direction = models.CharField(max_length=5, choices=Direction.choices, default=Direction.EXIT)
    # The payload's fingerprint is kept once, in the record key (`RecordKey`).
    status = models.CharField(max_length=10, choices=RecordStatus.choices)
    dispute_code = models.PositiveSmallIntegerField(
        choices=DisputeCode.choices, null=True, blank=True
    )
    reason = models.CharField(max_length=200, blank=True)

    station = models.ForeignKey(
        Node, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    lane_number = models.PositiveSmallIntegerField()
    exit_time = models.DateTimeField(db_index=True)  # the terminal's own time (UTC)
    clock_offset_ms = models.IntegerField(default=0)  # terminal minus center at the last sync
    received_at = models.DateTimeField()
    entry_station = models.CharField(max_length=20, blank=True)
    entry_time = models.DateTimeField(null=True, blank=True)

    card_no = models.CharField(max_length=20, blank=True)
    # The card's network number (card_no[:4]): our own cards are verified and
    # posted here, other issuers' cards wait for clearing with their issuer.
    card_network = models.CharField(max_length=4, blank=True)
    obu_no = models.CharField(max_length=16, blank=True)
    plate = models.CharField(max_length=12, blank=True)
    plate_color = models.PositiveSmallIntegerField(null=True, blank=True)
    vehicle_class = models.PositiveSmallIntegerField()
    vehicle_kind = models.PositiveSmallIntegerField(default=0)

    method = models.CharField(max_length=16)
    fee_fen = models.BigIntegerField()
    discount_fen = models.BigIntegerField(default=0)
    payable_fen = models.BigIntegerField()
    intervals = models.JSONField(default=list, blank=True)
    payment_type = (
        models.PositiveSmallIntegerField()
    )  # §6.3: 22 储值卡, 23 记账卡, 1 cash, 10/11 mobile

    amount_fen = models.BigIntegerField(default=0)  # debited from the card
    trans_type = models.PositiveSmallIntegerField(null=True, blank=True)
    terminal_trans_seq = models.PositiveBigIntegerField(null=True, blank=True)
    # The card's offline transaction counter: (card_no, card_trans_no) is one
    # debit, whichever terminal and upload carried it (clearing's code 2 check).
    card_trans_no = models.PositiveIntegerField(null=True, blank=True)
    tac = models.CharField(max_length=8, blank=True)
    tac_verified = models.BooleanField(default=False)
    balance_before_fen = models.BigIntegerField(
        null=True, blank=True
    )  # the purse, read at the lane
    list_version = models.CharField(max_length=12, blank=True)  # the status list the lane held
    tariff_version = models.CharField(max_length=13, blank=True)  # the tariff the lane charged by
    # What the center found wrong with the record, as reference §6.2 codes with
    # their evidence ([{"code", "kind", "reason", "evidence"}]); `dispute_code`
    # is the first of them. The disputes queue reads these.
    findings = models.JSONField(default=list, blank=True)
    # The payload as sent, kept when a field could not be stored as it came.
    raw = models.JSONField(null=True, blank=True)

    axles = models.PositiveSmallIntegerField(null=True, blank=True)
    total_weight_kg = models.PositiveIntegerField(null=True, blank=True)
    weight_limit_kg = models.PositiveIntegerField(null=True, blank=True)
    overweight = models.BooleanField(default=False)
    special_case = models.CharField(max_length=24, choices=SpecialCase.choices, blank=True)
    special_reason = models.CharField(max_length=200, blank=True)
    flag = models.CharField(max_length=24, choices=Flag.choices, blank=True)
    photo = models.FileField(upload_to="tolling/%Y/%m/", max_length=200, blank=True)

    collector = models.CharField(max_length=20, blank=True)
    shift = models.CharField(max_length=20, blank=True)
    authorised_by = models.CharField(
        max_length=20, blank=True
    )  # station master, for the minimum fee

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["terminal", "seq"], name="transaction_unique_seq"),
        ]
        # Each index costs every insert: only what the look-ups use. Plain
        # B-trees for the card and the plate (equality; no `_like` twins), and
        # partial ones for the rare rows the queues read.
        indexes = [
            # The PSAM-sequence check of every card purchase (code 2).
            models.Index(
                fields=["terminal", "terminal_trans_seq"],
                condition=Q(tac_verified=True),
                name="transaction_psam_seq",
            ),
            models.Index(fields=["station", "exit_time"], name="transaction_station_time"),
            models.Index(fields=["card_no"], name="transaction_card_no"),
            models.Index(fields=["plate"], name="transaction_plate"),
            # The exceptions queue (special cases, flags) and the disputes queue.
            models.Index(
                fields=["special_case"], condition=~Q(special_case=""), name="transaction_special"
            ),
            models.Index(fields=["flag"], condition=~Q(flag=""), name="transaction_flagged"),
            models.Index(
                fields=["exit_time"],
                condition=Q(status="rejected") | Q(dispute_code__isnull=False),
                name="transaction_disputed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id}#{self.seq}"


class RecordKey(models.Model):
    """A terminal's record key (terminal, seq) once across every day of the store,
    with the first answer it got.

    The transaction table is partitioned by day and PostgreSQL makes a unique
    index of a partitioned table only with the partition key (`exit_time`) in
    it, so the store alone could take the same seq twice on two days, and a
    look-up by seq would search every day. This plain table keeps (terminal,
    seq) unique for the database itself, and answers a re-sent record —
    duplicate or conflict, with its first result — from one index, without
    touching the store. Written by the intake beside each transaction."""

    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    seq = models.PositiveBigIntegerField()
    transaction_id = models.BigIntegerField()  # the transaction, in the day of `exit_time`
    exit_time = models.DateTimeField()
    payload_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=RecordStatus.choices)  # the first answer
    dispute_code = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["terminal", "seq"], name="record_key_once"),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id}#{self.seq}"
