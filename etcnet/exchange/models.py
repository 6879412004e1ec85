"""What the front servers keep: the counterparts' registered certificates.

A `PartyCertificate` is a counterpart's SM2 certificate (the national center, a
bank, or our own signer's, so that our statements verify too), registered by an
operator from a file the counterpart handed over out of band. A message is
verified against the certificate its signature names (party and serial); an old
certificate stays registered so that what it signed still verifies.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class PartyKind(models.TextChoices):
    SELF = "self", _("This center")
    NATIONAL = "national", _("National center")
    BANK = "bank", _("Bank")


class PartyCertificate(models.Model):
    party = models.CharField(max_length=16)  # the certificate's subject (party id)
    party_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=PartyKind.choices)
    serial = models.CharField(max_length=16)
    public_key = models.CharField(max_length=128)  # hex, 64 bytes
    fingerprint = models.CharField(max_length=64)  # SM3 of the certificate's body
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    body = models.TextField()  # the certificate as handed over (canonical JSON)
    registered_at = models.DateTimeField()
    registered_by = models.CharField(max_length=150)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["party", "serial"], name="exchange_cert_party_serial")
        ]
        ordering = ["party", "serial"]

    def __str__(self) -> str:
        return f"{self.party} {self.serial}"


class Direction(models.TextChoices):
    OUT = "out", pgettext_lazy("exchange direction", "Sent")
    IN = "in", pgettext_lazy("exchange direction", "Received")


class TransferState(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")  # out: stored and signed, not yet answered
    ACKED = "acked", _("Acknowledged")  # out: answered 1 (or 5: it had it already)
    REFUSED = "refused", _("Refused")  # out: answered 2–4, 6–8; in: we answered so
    APPLIED = "applied", _("Applied")  # in: taken whole
    QUARANTINED = "quarantined", _("Kept unverified")  # in: its signature did not verify


class Transfer(models.Model):
    """One message between our front server and a counterpart, in either direction.

    Out: stored (its file signed, this row) before it is sent; resent until a
    signed Response comes back, which is stored before anything acts on it.
    In: verified, stored and applied in one transaction, then answered; the
    same message again is answered 5 (消息重复) and changes nothing."""

    direction = models.CharField(max_length=3, choices=Direction.choices)
    counterpart = models.CharField(max_length=16)
    sender_id = models.CharField(max_length=16)
    message_id = models.BigIntegerField()
    kind = models.CharField(max_length=24)
    name = models.CharField(max_length=200)  # the file, under DATA_DIR/exchange/
    sha256 = models.CharField(max_length=64)
    signature = models.TextField()  # the header value: ours out, the counterpart's in
    state = models.CharField(max_length=12, choices=TransferState.choices)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_name = models.CharField(max_length=200, blank=True)  # the Response, kept
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)  # out: the last attempt
    answered_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=0)  # in: how often it came

    class Meta:
        constraints = [
            # A message is taken once per sender and id (files — status lists —
            # are numbered apart); a forged one kept unverified never stands in
            # the way of the genuine one.
            models.UniqueConstraint(
                fields=["direction", "sender_id", "kind", "message_id"],
                condition=~models.Q(state="quarantined"),
                name="exchange_transfer_once_per_kind",
            )
        ]
        indexes = [models.Index(fields=["direction", "state", "next_attempt_at"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.direction} {self.sender_id}#{self.message_id} {self.state}"


# -- the banks' front server (docs/banks.md) ---------------------------------------


class BankFileKind(models.TextChoices):
    DEBIT = "debit", _("Debit file (代扣)")
    RESULT = "result", _("Debit results")
    USAGE = "usage", _("Cards' out-of-province usage")
    TRANSFER = "transfer", _("Transfer instructions")
    CHASE = "chase", _("Transfer instructions chased")
    CONFIRM = "confirm", _("Transfer confirmations")
    KEYS = "keys", _("Shared keys")
    OTHER = "other", _("Not readable")


class BankFile(models.Model):
    """One file between our front server and a bank, in either direction.

    Out: written, signed (``NAME.sig``) and stored as this row before it is sent;
    resent until the bank's signed receipt comes back, which is stored before
    the row is marked. In: verified against the bank's registered certificate,
    stored and applied whole in one transaction, then answered with our signed
    receipt; the same file again changes nothing, one that does not verify is
    kept unapplied (`quarantined`)."""

    direction = models.CharField(max_length=3, choices=Direction.choices)
    bank = models.CharField(max_length=16)  # the bank's party id
    kind = models.CharField(max_length=8, choices=BankFileKind.choices)
    name = models.CharField(max_length=120)  # the file id: its name without .txt
    path = models.CharField(max_length=250)  # under DATA_DIR
    date = models.DateField(null=True, blank=True)  # the business day it is about
    sha256 = models.CharField(max_length=64)
    signature = models.TextField()  # the header value: ours out, the bank's in
    state = models.CharField(max_length=12, choices=TransferState.choices)
    lines = models.PositiveIntegerField(default=0)
    amount_fen = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    receipt = models.TextField(blank=True)  # out: the bank's signed receipt, as received
    report = models.JSONField(default=list, blank=True)  # what was found: [{line, field, reason}]
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=0)  # in: how often it came

    class Meta:
        constraints = [
            # A file is taken once; one kept unverified or refused never stands in the
            # way of the genuine or corrected file under the same id.
            models.UniqueConstraint(
                fields=["direction", "bank", "name"],
                condition=~models.Q(state__in=["quarantined", "refused"]),
                name="exchange_bankfile_once",
            ),
            # A day's debit, usage and transfer file per bank is made once.
            models.UniqueConstraint(
                fields=["bank", "kind", "date"],
                condition=models.Q(direction="out", kind__in=["debit", "usage", "transfer"]),
                name="exchange_bankfile_one_a_day",
            ),
        ]
        indexes = [models.Index(fields=["direction", "state", "next_attempt_at"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.direction} {self.name} {self.state}"


class DebitState(models.TextChoices):
    PENDING = "pending", _("Sent, no result yet")
    COLLECTED = "collected", _("Collected")
    REFUSED = "refused", _("Refused: in recovery")
    REPAID = "repaid", _("Refused, repaid at the center")


class Recovery(models.Model):
    """追缴: what a debit account owes after its bank refused to collect it. While
    open, the account's cards are on the status list (type 4, 账户透支); it closes
    when the bank collects the refused lines later or the holder repays."""

    class State(models.TextChoices):
        OPEN = "open", _("Still owed")
        PAID = "paid", _("Paid off")

    account = models.ForeignKey("cards.Account", on_delete=models.PROTECT, related_name="+")
    bank = models.CharField(max_length=16)
    owed_fen = models.BigIntegerField()  # what is still owed
    total_fen = models.BigIntegerField()  # every refused amount that entered it
    state = models.CharField(max_length=4, choices=State.choices)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=20, blank=True)  # "bank" or "repayment"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=models.Q(state="open"), name="exchange_recovery_open"
            ),
            models.CheckConstraint(condition=models.Q(owed_fen__gte=0), name="exchange_owed_fen"),
        ]
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"{self.account_id} owes {self.owed_fen} ({self.state})"


class DebitLine(models.Model):
    """One account's line of a debit file: its tolls of the day to collect."""

    file = models.ForeignKey(BankFile, on_delete=models.PROTECT, related_name="debit_lines")
    number = models.PositiveIntegerField()
    account = models.ForeignKey("cards.Account", on_delete=models.PROTECT, related_name="+")
    bank_account_no = models.CharField(max_length=32)
    amount_fen = models.BigIntegerField()
    trips = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=DebitState.choices, default="pending")
    reason_code = models.CharField(max_length=8, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    result_file = models.ForeignKey(
        BankFile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resulted_at = models.DateTimeField(null=True, blank=True)
    recovery = models.ForeignKey(
        Recovery, null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["file", "number"], name="exchange_debitline_once"),
        ]
        indexes = [models.Index(fields=["account", "state"], name="exchange_debitline_account")]
        ordering = ["file", "number"]

    def __str__(self) -> str:
        return f"{self.file_id}#{self.number} {self.amount_fen} {self.state}"


class InstructionState(models.TextChoices):
    SENT = "sent", _("Sent, not confirmed")
    CONFIRMED = "confirmed", _("Confirmed and posted")
    REJECTED = "rejected", _("Rejected by the bank")
    FINDING = "finding", _("Confirmed with another amount: a finding")


class SettlementInstruction(models.Model):
    """A transfer the settlement bank (全国ETC结算行) is told to make for a closed
    day's net position: a counterparty pays the center (`in`) or is paid (`out`).
    Posted to the ledger when the bank confirms it with the same amount."""

    day = models.ForeignKey("clearing.ClearingDay", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16)  # the position's kind
    counterparty_id = models.CharField(max_length=60, blank=True)
    reference = models.CharField(max_length=100, unique=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    payer_account = models.CharField(max_length=32)
    payee_account = models.CharField(max_length=32)
    amount_fen = models.BigIntegerField()
    file = models.ForeignKey(BankFile, on_delete=models.PROTECT, related_name="instructions")
    line = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=InstructionState.choices, default="sent")
    confirmed_fen = models.BigIntegerField(null=True, blank=True)
    bank_reference = models.CharField(max_length=60, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finding = models.CharField(max_length=300, blank=True)
    entry_id = models.BigIntegerField(null=True, blank=True)  # the ledger's entry
    chased = models.PositiveIntegerField(default=0)
    last_chased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "kind", "counterparty_id"], name="exchange_instruction_once"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_fen__gt=0), name="exchange_instruction_positive"
            ),
        ]
        ordering = ["day", "file", "line"]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount_fen} {self.state}"


class NoticeKind(models.TextChoices):
    REFUND = "refund", _("Refund (退费)")
    SUPPLEMENT = "supplement", _("Supplementary payment (补缴)")


class NoticeState(models.TextChoices):
    OPEN = "open", _("To handle")
    HANDLED = "handled", _("Handled")


class Notice(models.Model):
    """A refund or supplementary-payment notice from the national center about one
    of our cards used on another province's road (etcnet.exchange.notices): the
    holder is owed a refund, or owes a supplementary payment. Kept open until the
    refund and recovery work of issue 17 handles it."""

    sender_id = models.CharField(max_length=16)
    notice_id = models.CharField(max_length=40)
    kind = models.CharField(max_length=10, choices=NoticeKind.choices)
    card_no = models.CharField(max_length=20)
    account = models.ForeignKey(
        "cards.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amount_fen = models.BigIntegerField()
    service_provider_id = models.CharField(max_length=32)
    occurred_at = models.DateTimeField()  # the trip's, as the notice gives it
    reason = models.CharField(max_length=200)
    file = models.CharField(max_length=200)  # the notice file it came in, under DATA_DIR
    state = models.CharField(max_length=8, choices=NoticeState.choices, default=NoticeState.OPEN)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sender_id", "notice_id"], name="exchange_notice_once"),
            models.CheckConstraint(
                condition=models.Q(amount_fen__gt=0), name="exchange_notice_positive"
            ),
        ]
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.notice_id} {self.card_no} {self.amount_fen}"


class AuditAnchor(models.Model):
    """The audit chain's head at a checkpoint, signed by the signature server
    (etcnet.exchange.anchors). Append-only."""

    last_seq = models.BigIntegerField(unique=True)
    head_hash = models.CharField(max_length=64)
    signature = models.TextField()  # the header value: SM2-SM3 signer=…, serial=…, value=…
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["last_seq"]

    def __str__(self) -> str:
        return f"anchor {self.last_seq} {self.head_hash[:12]}"
