"""Core tables.

`AuditEvent` is the one append-only audit trail (Zulip's RealmAuditLog): services
write a row in the same transaction as every state change of a customer,
vehicle, application, card, OBU, account or list — who, when, what, before and
after. Rows are never updated or deleted by the application; the model refuses,
and so does the database (triggers of migration 0004_audit_append_only, which also
catch `QuerySet.update()` / `.delete()` and raw SQL).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


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

    class Meta:
        indexes = [models.Index(fields=["subject_type", "subject_id", "occurred_at"])]
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} {self.subject_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise RuntimeError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuntimeError("audit events are append-only")


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
