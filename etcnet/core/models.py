"""Core tables.

`AuditEvent` is the one append-only audit trail (Zulip's RealmAuditLog): services
write a row in the same transaction as every state change of a customer,
vehicle, application, card, OBU, account or list — who, when, what, before and
after. Rows are never updated or deleted by the application; the model refuses,
and so does the database (triggers of migration 0004_audit_append_only, which also
catch `QuerySet.update()` / `.delete()` and raw SQL).

The trail is hash-chained (`etcnet.core.chain`, docs/audit.md): writers append
events without `seq` or `chain_hash`, so appending never waits on the chain; the
sealer later numbers them and gives each the SM3 hash of the one before with its
own contents — the one UPDATE the database lets through (migration
0006_audit_chain), once per event. Each seal writes an `AuditCheckpoint`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class ActorType(models.TextChoices):
    USER = "user", "user"
    SYSTEM = "system", "system"
    TERMINAL = "terminal", "terminal"


class AuditEvent(models.Model):
    occurred_at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Kept beside the foreign key so the trail stays readable if a user is renamed.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    subject_type = models.CharField(max_length=64)
    subject_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # Set once by the sealer (etcnet.core.chain), never by the writer: the event's
    # place in the chain (1, 2, 3, … without gaps) and the SM3 hash (hex) of the
    # previous event's hash with this event's canonical bytes.
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    chain_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["subject_type", "subject_id", "occurred_at"]),
            # The sealer's work queue: only the unsealed events are in it.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="audit_unsealed"),
        ]
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} {self.subject_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise RuntimeError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuntimeError("audit events are append-only")


class AuditCheckpoint(models.Model):
    """What one seal sealed: events `first_seq`…`last_seq`, the chain's hash at
    `last_seq`. Written in the same transaction as the seal, so the checkpoints
    tile the chain from seq 1 to its head; a dropped tail or a chain rewritten
    after an edit no longer matches them. Append-only like the events."""

    sealed_at = models.DateTimeField()
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField(unique=True)
    head_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["last_seq"]
        constraints = [
            models.CheckConstraint(
                condition=Q(first_seq__gte=1, last_seq__gte=models.F("first_seq")),
                name="audit_checkpoint_seq_range",
            )
        ]

    def __str__(self) -> str:
        return f"seq {self.first_seq}-{self.last_seq} {self.head_hash[:12]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise RuntimeError("audit checkpoints are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuntimeError("audit checkpoints are append-only")

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1


class RateCounter(models.Model):
    """One window of one rate limit for one key (``etcnet.core.ratelimit``).

    Several stateless center processes share the limits, so they live in the
    database: a hit is a compare-and-set UPDATE (``hits < limit``) on the
    window's row. ``key`` is an HMAC of the address or number, never the
    personal data itself."""

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "key", "window_start"], name="rate_counter_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.hits} until {self.expires_at:%H:%M:%S}"
