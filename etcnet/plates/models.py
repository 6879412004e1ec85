"""Internet pre-selection of licence plates (互联网预选号牌, seed 004).

A vehicle office (车管所) has districts and a plate prefix. Its number pools are
generated from patterns and released with an announcement (号池公告); each
serial is one ``PoolNumber`` row whose status moves available → locked →
preselected → registered, and back to available when a lock lapses, a
selection expires or is voided. Two users never hold one number: the move out of
"available" is a compare-and-set UPDATE, and a partial unique index on the
active selections guards it again.

A ``PlateAccount`` is an internet user (one of the seed's four types) on a
Django user without roles. A ``SelectionSession`` is one run of the six steps in
one browser; ``Attempt`` rows count verifications, lock attempts and random
draws for the daily and per-vehicle limits. A ``Selection`` is the number a
user holds. ``Blacklist`` and ``RegistrationBan`` keep the sanctions; the
single ``PlateSettings`` row holds every period and limit.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from etcnet.core.codes import IdDocType


class PlateKind(models.TextChoices):
    ORDINARY = "ordinary", _("Small car (blue)")
    NEW_ENERGY = "new_energy", _("Small new-energy car (green)")


class UserType(models.TextChoices):
    VEHICLE_OWNER = "vehicle_owner", _("Vehicle owner")
    DRIVER = "driver", _("Driver")
    LEARNER = "learner", _("First-time licence applicant")
    NEW_VEHICLE_OWNER = "new_vehicle_owner", _("New-vehicle owner")


class PlateSettings(models.Model):
    """The one row of periods and limits (pk 1). Changed only through
    ``services.update_settings``, which audits every change."""

    opens = models.TimeField(default=dt.time(8, 0))
    closes = models.TimeField(default=dt.time(20, 0))
    verifications_per_day = models.PositiveSmallIntegerField(default=10)
    locks_per_day = models.PositiveSmallIntegerField(default=2)
    draws_per_vehicle = models.PositiveSmallIntegerField(default=3)
    numbers_per_draw = models.PositiveSmallIntegerField(default=10)
    window_seconds = models.PositiveSmallIntegerField(default=90)
    window_grace_seconds = models.PositiveSmallIntegerField(default=30)
    sms_code_minutes = models.PositiveSmallIntegerField(default=5)
    sms_code_tries = models.PositiveSmallIntegerField(default=5)
    session_idle_minutes = models.PositiveSmallIntegerField(default=15)
    registration_working_days = models.PositiveSmallIntegerField(default=10)
    new_owner_select_hours = models.PositiveSmallIntegerField(default=24)
    blacklist_days = models.PositiveIntegerField(default=365)
    cancel_ban_days = models.PositiveIntegerField(default=730)
    agreement_version = models.CharField(max_length=20, default="2017-1")
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "plate settings"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="plate_settings_single_row"),
            models.CheckConstraint(condition=Q(opens__lt=models.F("closes")), name="plate_hours"),
            models.CheckConstraint(
                condition=Q(window_seconds__gt=0)
                & Q(sms_code_minutes__gt=0)
                & Q(registration_working_days__gt=0)
                & Q(numbers_per_draw__gt=0),
                name="plate_settings_positive",
            ),
        ]

    def __str__(self) -> str:
        return "plate settings"


class CalendarDay(models.Model):
    """A day that differs from Monday-to-Friday: a holiday on a weekday
    (``working`` false) or a weekend day worked in its place (true)."""

    day = models.DateField(unique=True)
    working = models.BooleanField()
    note = models.CharField(max_length=60, blank=True)

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day} {'work' if self.working else 'holiday'}"


class MaintenanceWindow(models.Model):
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(starts_at__lt=models.F("ends_at")), name="maintenance_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%Y-%m-%d %H:%M}"


class VehicleOffice(models.Model):
    """A vehicle office (车管所); ``prefix`` is province abbreviation + the
    issuing-authority letter, e.g. 粤G. Offices of one city share their prefix."""

    code = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=60)
    city = models.CharField(max_length=30)
    prefix = models.CharField(max_length=2)
    address = models.CharField(max_length=120)
    phone = models.CharField(max_length=20, blank=True)
    is_active = models.BooleanField(default=True)
    clerks = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class District(models.Model):
    """An administrative district (行政区划) the office serves."""

    office = models.ForeignKey(VehicleOffice, on_delete=models.CASCADE, related_name="districts")
    code = models.CharField(max_length=6)
    name = models.CharField(max_length=30)

    class Meta:
        ordering = ["office", "code"]
        constraints = [
            models.UniqueConstraint(fields=["office", "code"], name="district_once_per_office")
        ]

    def __str__(self) -> str:
        return self.name


class PoolStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    RELEASED = "released", _("Released")


class NumberPool(models.Model):
    """One release of numbers for an office and plate kind (号池)."""

    office = models.ForeignKey(VehicleOffice, on_delete=models.PROTECT, related_name="pools")
    kind = models.CharField(max_length=12, choices=PlateKind.choices)
    title = models.CharField(max_length=80)
    patterns = models.JSONField(default=list)
    reserved = models.JSONField(default=list, blank=True)
    forbidden = models.JSONField(default=list, blank=True)
    announcement = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=PoolStatus.choices, default=PoolStatus.DRAFT)
    created_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    available_count = models.PositiveIntegerField(default=0)
    reserved_count = models.PositiveIntegerField(default=0)
    forbidden_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-released_at", "-id"]

    def __str__(self) -> str:
        return self.title


class NumberStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    RESERVED = "reserved", _("Held back")
    LOCKED = "locked", _("Locked")
    PRESELECTED = "preselected", _("Pre-selected")
    REGISTERED = "registered", _("Registered")


class PoolNumber(models.Model):
    """One serial of a released pool. ``office`` and ``kind`` are copied from
    the pool so the keyboard's prefix queries are one index range."""

    pool = models.ForeignKey(NumberPool, on_delete=models.PROTECT, related_name="numbers")
    office = models.ForeignKey(VehicleOffice, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=PlateKind.choices)
    prefix = models.CharField(max_length=2)
    serial = models.CharField(max_length=6)
    status = models.CharField(max_length=12, choices=NumberStatus.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "serial"], name="plate_number_once"),
        ]
        indexes = [
            models.Index(fields=["office", "kind", "status", "serial"], name="pool_keyboard"),
        ]

    def __str__(self) -> str:
        return self.plate

    @property
    def plate(self) -> str:
        return self.prefix + self.serial


class AccountStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    CANCELLED = "cancelled", _("Cancelled")


class PlateAccount(models.Model):
    """An internet user (非实名注册用户) of the pre-selection service."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="plate_account"
    )
    user_type = models.CharField(max_length=20, choices=UserType.choices)
    id_type = models.PositiveSmallIntegerField(choices=IdDocType.choices())
    id_number = models.CharField(max_length=30)
    name = models.CharField(max_length=40)
    phone = models.CharField(max_length=11)
    city = models.CharField(max_length=30)
    status = models.CharField(
        max_length=10, choices=AccountStatus.choices, default=AccountStatus.ACTIVE
    )
    registered_at = models.DateTimeField()
    agreement_version = models.CharField(max_length=20)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["id_type", "id_number"],
                condition=Q(status="active"),
                name="plate_account_one_active_per_id",
            ),
            models.UniqueConstraint(
                fields=["phone"],
                condition=Q(status="active"),
                name="plate_account_one_active_per_phone",
            ),
        ]
        indexes = [models.Index(fields=["user_type", "status", "registered_at"])]

    def __str__(self) -> str:
        return f"{self.user_type}:{self.pk}"


class RecordKind(models.TextChoices):
    VEHICLE = "vehicle", _("Vehicle registered here")
    LICENCE = "licence", _("Driving licence held here")
    LEARNER = "learner", _("First licence application here")


class LocalRecord(models.Model):
    """What the vehicle office already knows of a person: a vehicle, a licence
    or a first licence application, with the mobile number given then. Owner,
    driver and learner registrations must match one."""

    kind = models.CharField(max_length=10, choices=RecordKind.choices)
    id_type = models.PositiveSmallIntegerField(choices=IdDocType.choices())
    id_number = models.CharField(max_length=30)
    phone = models.CharField(max_length=11)
    reference = models.CharField(max_length=30, blank=True)  # plate, licence or file number
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["id_number", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind}:{self.reference}"


class RegistrationBan(models.Model):
    """A cancelled new-vehicle owner: this ID number may not register a
    new-vehicle owner account with this mobile number again until ``until``."""

    id_type = models.PositiveSmallIntegerField(choices=IdDocType.choices())
    id_number = models.CharField(max_length=30, db_index=True)
    phone = models.CharField(max_length=11)
    until = models.DateTimeField()
    reason = models.CharField(max_length=40)
    account = models.ForeignKey(PlateAccount, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"ban until {self.until:%Y-%m-%d}"


class BlacklistReason(models.TextChoices):
    EARLY_SUBMISSION = "early_submission", _("Selection submitted before the 90-second window")
    CONCURRENT_SESSIONS = "concurrent_sessions", _("Selecting from two computers at once")
    REGISTRATION_OVERDUE = "registration_overdue", _("Vehicle not registered in time")
    INVOICE_MISMATCH = "invoice_mismatch", _("Invoice name does not match the user")


class Blacklist(models.Model):
    """A user refused pre-selection until ``ends_at`` (黑名单), by ID number so a
    new account does not escape it."""

    account = models.ForeignKey(PlateAccount, on_delete=models.PROTECT, related_name="blacklist")
    id_type = models.PositiveSmallIntegerField(choices=IdDocType.choices())
    id_number = models.CharField(max_length=30, db_index=True)
    reason = models.CharField(max_length=24, choices=BlacklistReason.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    selection = models.ForeignKey(
        "Selection", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-ends_at"]

    def __str__(self) -> str:
        return f"{self.reason} until {self.ends_at:%Y-%m-%d}"


class SessionStatus(models.TextChoices):
    ACTIVE = "active", _("In progress")
    FINISHED = "finished", _("Finished")
    ABANDONED = "abandoned", _("Abandoned")
    VOIDED = "voided", _("Voided")


class Step(models.TextChoices):
    NOTICE = "notice", _("Notice")
    VIN = "vin", _("Vehicle identification number")
    CONTACT = "contact", _("Owner contact information")
    CHOOSE = "choose", _("Choose a number")
    SMS = "sms", _("SMS code")
    DONE = "done", _("Pre-selected number")


class SelectionMode(models.TextChoices):
    SELF_COMPOSED = "self", _("Self-composed")
    RANDOM = "random", _("Random")


class SelectionSession(models.Model):
    """One run of the six steps, tied to one browser by ``token``."""

    account = models.ForeignKey(PlateAccount, on_delete=models.PROTECT, related_name="sessions")
    token = models.CharField(max_length=32, db_index=True)
    office = models.ForeignKey(VehicleOffice, on_delete=models.PROTECT, related_name="+")
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=10, choices=SessionStatus.choices, default=SessionStatus.ACTIVE
    )
    step = models.CharField(max_length=8, choices=Step.choices, default=Step.NOTICE)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=12, choices=PlateKind.choices, default=PlateKind.ORDINARY)
    vin = models.CharField(max_length=17, blank=True)
    owner_name = models.CharField(max_length=40, blank=True)
    owner_phone = models.CharField(max_length=11, blank=True)
    owner_address = models.CharField(max_length=120, blank=True)
    postal_code = models.CharField(max_length=6, blank=True)
    keyboard_seed = models.CharField(max_length=32)
    window_opened_at = models.DateTimeField(null=True, blank=True)
    window_closes_at = models.DateTimeField(null=True, blank=True)
    offered = models.JSONField(default=list, blank=True)  # the last random draw

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status="active"),
                name="plate_one_active_session",
            )
        ]

    def __str__(self) -> str:
        return f"session {self.pk} ({self.status})"


class AttemptKind(models.TextChoices):
    VERIFY = "verify", _("Verification of a self-composed number")
    LOCK = "lock", _("Verify and lock")
    DRAW = "draw", _("Random draw")


class Attempt(models.Model):
    """One counted try; ``day`` is the Asia/Shanghai date the daily limits use."""

    account = models.ForeignKey(PlateAccount, on_delete=models.PROTECT, related_name="attempts")
    session = models.ForeignKey(SelectionSession, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=AttemptKind.choices)
    day = models.DateField()
    vin = models.CharField(max_length=17)
    serial = models.CharField(max_length=6, blank=True)
    outcome = models.CharField(max_length=20)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["account", "kind", "day"]),
            models.Index(fields=["vin", "kind"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.serial} {self.outcome}"


class SelectionStatus(models.TextChoices):
    LOCKED = "locked", _("Locked, awaiting the SMS code")
    PRESELECTED = "preselected", _("Pre-selected")
    REGISTERED = "registered", _("Registered")
    LAPSED = "lapsed", _("Lapsed (SMS code not confirmed)")
    EXPIRED = "expired", _("Expired (not registered in time)")
    VOIDED = "voided", _("Voided")


HOLDING = (SelectionStatus.LOCKED, SelectionStatus.PRESELECTED)


class Selection(models.Model):
    """A number held by a user: locked at step 4, pre-selected after the SMS
    code, registered at the vehicle office."""

    number = models.CharField(max_length=20, unique=True)  # form number on the PDF
    account = models.ForeignKey(PlateAccount, on_delete=models.PROTECT, related_name="selections")
    session = models.OneToOneField(
        SelectionSession, on_delete=models.PROTECT, related_name="selection"
    )
    office = models.ForeignKey(VehicleOffice, on_delete=models.PROTECT, related_name="+")
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="+")
    pool_number = models.ForeignKey(PoolNumber, on_delete=models.PROTECT, related_name="+")
    plate = models.CharField(max_length=8)
    kind = models.CharField(max_length=12, choices=PlateKind.choices)
    mode = models.CharField(max_length=8, choices=SelectionMode.choices)
    vin = models.CharField(max_length=17)
    owner_name = models.CharField(max_length=40)
    owner_phone = models.CharField(max_length=11)
    owner_address = models.CharField(max_length=120)
    postal_code = models.CharField(max_length=6, blank=True)
    status = models.CharField(max_length=12, choices=SelectionStatus.choices)
    locked_at = models.DateTimeField()
    hold_until = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateField(null=True, blank=True)  # last working day to register
    registered_at = models.DateTimeField(null=True, blank=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    invoice_name = models.CharField(max_length=60, blank=True)
    invoice_number = models.CharField(max_length=30, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-locked_at"]
        constraints = [
            # Guards the compare-and-set on PoolNumber a second time.
            models.UniqueConstraint(
                fields=["pool_number"],
                condition=Q(status__in=["locked", "preselected"]),
                name="plate_number_one_holder",
            ),
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=["locked", "preselected"]),
                name="plate_one_number_per_user",
            ),
        ]
        indexes = [models.Index(fields=["status", "deadline"]), models.Index(fields=["plate"])]

    def __str__(self) -> str:
        return f"{self.plate} ({self.status})"


class SmsCode(models.Model):
    """The code texted for step 5; only the newest counts."""

    selection = models.ForeignKey(Selection, on_delete=models.CASCADE, related_name="codes")
    phone = models.CharField(max_length=11)
    code_digest = models.CharField(max_length=64)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.selection_id}:{self.sent_at:%H:%M:%S}"


class RegistrationCode(models.Model):
    """The code texted to confirm a registration's mobile number; only the
    newest unused code of a number counts, and a registration uses it up."""

    phone = models.CharField(max_length=11)
    code_digest = models.CharField(max_length=64)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["phone", "sent_at"])]

    def __str__(self) -> str:
        return f"{self.phone[:3]}…:{self.sent_at:%H:%M:%S}"
