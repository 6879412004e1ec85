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
