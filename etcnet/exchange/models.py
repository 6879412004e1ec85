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
    OUT = "out", _("Sent")
    IN = "in", _("Received")


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
            # A message is taken once per sender and id; a forged one kept unverified
            # never stands in the way of the genuine one.
            models.UniqueConstraint(
                fields=["direction", "sender_id", "message_id"],
                condition=~models.Q(state="quarantined"),
                name="exchange_transfer_once",
            )
        ]
        indexes = [models.Index(fields=["direction", "state", "next_attempt_at"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.direction} {self.sender_id}#{self.message_id} {self.state}"
