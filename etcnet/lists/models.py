"""Status-list events (状态名单): every change that puts a card or OBU on the
list or takes it off, with its type, time and reason (reference Part 2 §3.4).
Issuance and card services record them; the list publisher (later) turns the
unpublished ones into versions for terminals."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Medium(models.TextChoices):
    CARD = "card", _("User card")
    OBU = "obu", _("OBU")


class ListType(models.IntegerChoices):
    LOST = 1, _("Card reported lost")  # 卡挂失
    SUSPENDED = 2, _("Suspended without card")  # 无卡挂起
    CANCELLED_WITHOUT_CARD = 3, _("Cancelled without card")  # 无卡注销
    OVERDRAWN = 4, _("Account overdrawn")  # 账户透支
    PARTNER_LIST = 5, _("Partner blacklist")  # 合作机构黑名单
    CLASS_MISMATCH = 6, _("Vehicle class mismatch")  # 车型不符
    LOW_BALANCE = 7, _("Stored-value balance too low")  # 储值卡余额不足


class ListStatus(models.IntegerChoices):
    IN = 1, _("Enters the list")  # 进入
    OUT = 2, _("Leaves the list")  # 解除


class ListEvent(models.Model):
    medium = models.CharField(max_length=4, choices=Medium.choices)
    medium_id = models.CharField(max_length=20, db_index=True)  # card number or OBU contract serial
    list_type = models.PositiveSmallIntegerField(choices=ListType.choices)
    status = models.PositiveSmallIntegerField(choices=ListStatus.choices)
    reason = models.CharField(max_length=200, blank=True)
    issuer_id = models.CharField(max_length=16, blank=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Set by the publisher when a list version first carries the event.
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["published_at", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.medium}:{self.medium_id} type {self.list_type} status {self.status}"


LOCAL_SOURCE = "local"


class ListVersion(models.Model):
    """One published increment (changes since ``previous``) and, when one was
    made, the full version of the same state. Numbered yyyyMMddHHmm
    (Asia/Shanghai) by the minute it was published."""

    number = models.CharField(max_length=12, unique=True)
    previous = models.CharField(max_length=12, blank=True)  # "" for the first version
    published_at = models.DateTimeField()
    adds = models.PositiveIntegerField(default=0)
    removes = models.PositiveIntegerField(default=0)
    list_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    signature = models.JSONField(default=dict)
    file = models.CharField(max_length=200)
    full_file = models.CharField(max_length=200, blank=True)
    full_sha256 = models.CharField(max_length=64, blank=True)
    full_signature = models.JSONField(default=dict, blank=True)
    full_published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return self.number


class ListImport(models.Model):
    """A list file from outside (the national center, another issuer): applied
    all or nothing, kept with its report either way."""

    class Result(models.TextChoices):
        APPLIED = "applied", _("Applied")
        REFUSED = "refused", _("Refused")
        ALREADY = "already", _("Already imported")

    filename = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64, db_index=True)
    publisher = models.CharField(max_length=32, blank=True)
    kind = models.CharField(max_length=10, blank=True)
    version = models.CharField(max_length=12, blank=True)
    result = models.CharField(max_length=8, choices=Result.choices)
    field = models.CharField(max_length=60, blank=True)
    report = models.TextField(blank=True)
    lines = models.PositiveIntegerField(default=0)
    adds = models.PositiveIntegerField(default=0)
    removes = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.result})"


class ListIssuer(models.Model):
    """A card network's stable index in the lane's 64-bit keys (docs/lists.md)."""

    network = models.CharField(max_length=4, unique=True)
    index = models.PositiveSmallIntegerField(unique=True)

    class Meta:
        ordering = ["index"]

    def __str__(self) -> str:
        return f"{self.network} → {self.index}"


class ListEntry(models.Model):
    """A card or OBU on the list for one type from one source (``local`` — this
    center's events — or ``import:<publisher>``), from ``since`` until
    ``left_at``, with the versions that first carried its arrival and departure."""

    medium = models.CharField(max_length=4, choices=Medium.choices)
    medium_id = models.CharField(max_length=20)
    list_type = models.PositiveSmallIntegerField(choices=ListType.choices)
    source = models.CharField(max_length=40, default=LOCAL_SOURCE)
    issuer_id = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    since = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    added_in = models.ForeignKey(
        ListVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="added"
    )
    removed_in = models.ForeignKey(
        ListVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="removed"
    )
    event = models.ForeignKey(
        ListEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    imported_in = models.ForeignKey(
        ListImport, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )

    class Meta:
        ordering = ["since", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["medium", "medium_id", "list_type", "source"],
                condition=models.Q(left_at__isnull=True),
                name="lists_one_open_entry",
            )
        ]
        indexes = [
            models.Index(fields=["medium", "medium_id"]),
            models.Index(fields=["left_at", "removed_in"]),
            models.Index(fields=["added_in"]),
        ]

    def __str__(self) -> str:
        return f"{self.medium}:{self.medium_id} type {self.list_type} ({self.source})"


class PublisherLock(models.Model):
    """One row, locked while a version is published or a file imported, so two
    runs never interleave."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)

    def __str__(self) -> str:
        return "status-list publisher lock"
