"""Sending SMS through a pluggable sender.

`ETCNET_SMS_SENDER` names the class. The default writes the message to the log
(the center's console), which is what a demo or an outlet without an SMS
gateway uses; an operator plugs in its gateway's client with the same method.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from etcnet.core import ratelimit
from etcnet.core.masking import mask_phone

log = logging.getLogger("etcnet.sms")


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class LogSmsSender:
    """Writes the message to the log. The phone number is masked; the text is not,
    because on a demo the clerk reads the code there."""

    def send(self, phone: str, text: str) -> None:
        log.warning("SMS to %s: %s", mask_phone(phone), text)


@dataclass
class SentSms:
    phone: str
    text: str


class MemorySmsSender:
    """Keeps messages in memory, for tests (`outbox`)."""

    outbox: list[SentSms] = []

    def send(self, phone: str, text: str) -> None:
        MemorySmsSender.outbox.append(SentSms(phone, text))


def count_code(phone: str, *, now: dt.datetime | None = None) -> None:
    """Counts one verification code texted to ``phone`` against the limit per
    mobile number (``ETCNET_RATE_SMS_PER_MOBILE``), which the codes of every
    application share: plate registration and selection, issuance's phone step.
    Raises ``RateLimited`` (429); call it in the transaction that stores the code,
    so a code refused or never stored does not count."""
    ratelimit.hit(
        "sms.mobile",
        phone,
        settings.ETCNET_RATE_SMS_PER_MOBILE,
        now=now,
        shown_key=mask_phone(phone),
    )


def send_sms(phone: str, text: str) -> None:
    sender_class = import_string(settings.ETCNET_SMS_SENDER)
    sender_class().send(phone, text)
