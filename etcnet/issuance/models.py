"""Issuance: customers, vehicles and the applications that bring them in (seed 000).

An `Application` is the clerk's working copy: the wizard saves each step into
it (phone verification, customer, documents, vehicle) and nothing outside it
changes until submission. Submitting runs automatic approval; an approved
application creates or updates the `Customer` (recognised by document type and
number) and registers the `Vehicle`, which then waits for card and OBU issuance.
A refused application keeps its reasons; the clerk corrects a step and submits
again. An application that would change an existing customer's name or phone
is not approved silently: it waits in REVIEW for a clerk of the customer's
outlet, who accepts the change (then it is approved) or refuses it.

One vehicle, one OBU, one card: a plate + colour may belong to only one live
vehicle. The database guards it with a partial unique constraint, so two
clerks approving the same plate at the same moment cannot both succeed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from etcnet.core.codes import (
    CustomerType,
    IdDocType,
    PlateColor,
    UseNature,
    VehicleCategory,
    VehicleClass,
    VehicleUserType,
)


class Outlet(models.Model):
    """A service outlet (服务网点) where clerks take applications."""

    code = models.CharField(_("outlet code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    address = models.CharField(_("address"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("service outlet")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class OutletMembership(models.Model):
    """The outlet a clerk works at; applications record it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="outlet_membership"
    )
    outlet = models.ForeignKey(Outlet, on_delete=models.PROTECT, related_name="members")

    def __str__(self) -> str:
        return f"{self.user} @ {self.outlet}"


class Customer(models.Model):
    """An account holder: a person or an organization (开户人)."""

    customer_type = models.PositiveSmallIntegerField(choices=CustomerType.choices())
    name = models.CharField(max_length=100)
    id_type = models.PositiveSmallIntegerField(choices=IdDocType.choices())
    id_number = models.CharField(max_length=32)
    # The verified phone: the holder's for a person, the agent's for an organization.
    phone = models.CharField(max_length=11)
    address = models.CharField(max_length=200)
    department = models.CharField(max_length=100, blank=True)
    agent_name = models.CharField(max_length=50, blank=True)
    agent_id_type = models.PositiveSmallIntegerField(
        choices=IdDocType.choices(), null=True, blank=True
    )
    agent_id_number = models.CharField(max_length=32, blank=True)
    # The outlet that opened the customer: its clerks review a change of the
    # customer's name or phone that an application elsewhere asks for.
    outlet = models.ForeignKey(
        Outlet, null=True, blank=True, on_delete=models.PROTECT, related_name="customers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["id_type", "id_number"], name="customer_unique_document"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class VehicleStatus(models.TextChoices):
    AWAITING_ISSUANCE = "awaiting_issuance", _("Awaiting card and OBU issuance")
    ACTIVE = "active", _("Active")
    CANCELLED = "cancelled", _("Cancelled")


LIVE_VEHICLE = ~Q(status=VehicleStatus.CANCELLED)


class Vehicle(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="vehicles")
    status = models.CharField(max_length=24, choices=VehicleStatus.choices)
    plate = models.CharField(max_length=12)
    plate_color = models.PositiveSmallIntegerField(choices=PlateColor.choices())
    category = models.CharField(max_length=12, choices=VehicleCategory.choices())
    toll_class = models.PositiveSmallIntegerField(choices=VehicleClass.choices())
    user_type = models.PositiveSmallIntegerField(
        choices=VehicleUserType.choices(), default=int(VehicleUserType.ORDINARY)
    )
    use_nature = models.CharField(max_length=2, choices=UseNature.choices())
    brand_model = models.CharField(max_length=64)
    vin = models.CharField(max_length=17)
    vin_imported = models.BooleanField(default=False)
    engine_no = models.CharField(max_length=32)
    register_date = models.DateField()
    issue_date = models.DateField()
    owner_name = models.CharField(max_length=100)
    seats = models.PositiveSmallIntegerField()
    length_mm = models.PositiveIntegerField()
    width_mm = models.PositiveIntegerField()
    height_mm = models.PositiveIntegerField()
    total_mass_kg = models.PositiveIntegerField()
    curb_mass_kg = models.PositiveIntegerField()
    approved_load_kg = models.PositiveIntegerField(default=0)
    axles = models.PositiveSmallIntegerField()
    wheels = models.PositiveSmallIntegerField()
    contact_name = models.CharField(max_length=50)
    contact_phone = models.CharField(max_length=11)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["plate", "plate_color"],
                condition=LIVE_VEHICLE,
                name="vehicle_unique_live_plate",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plate}_{self.plate_color}"


class ApplicationStatus(models.TextChoices):
    DRAFT = "draft", _("In progress")
    REFUSED = "refused", _("Refused")
    REVIEW = "review", _("Awaiting review of the customer's changes")
    APPROVED = "approved", _("Approved, awaiting issuance")


class Application(models.Model):
    """The wizard's working copy of one ETC application (办理申请)."""

    outlet = models.ForeignKey(Outlet, on_delete=models.PROTECT, related_name="applications")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=ApplicationStatus.choices, default=ApplicationStatus.DRAFT
    )

    # Step 1: phone verification.
    phone = models.CharField(max_length=11)
    phone_verified_at = models.DateTimeField(null=True, blank=True)

    # Step 2: customer.
    customer_saved_at = models.DateTimeField(null=True, blank=True)
    customer_type = models.PositiveSmallIntegerField(choices=CustomerType.choices(), null=True)
    name = models.CharField(max_length=100, blank=True)
    id_type = models.PositiveSmallIntegerField(choices=IdDocType.choices(), null=True)
    id_number = models.CharField(max_length=32, blank=True)
    address = models.CharField(max_length=200, blank=True)
    department = models.CharField(max_length=100, blank=True)
    agent_name = models.CharField(max_length=50, blank=True)
    agent_id_type = models.PositiveSmallIntegerField(choices=IdDocType.choices(), null=True)
    agent_id_number = models.CharField(max_length=32, blank=True)
    # The customer the document number matched when the step was saved, if any.
    existing_customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    # Step 4: vehicle.
    vehicle_saved_at = models.DateTimeField(null=True, blank=True)
    plate = models.CharField(max_length=12, blank=True, db_index=True)
    plate_color = models.PositiveSmallIntegerField(choices=PlateColor.choices(), null=True)
    category = models.CharField(max_length=12, choices=VehicleCategory.choices(), blank=True)
    toll_class = models.PositiveSmallIntegerField(choices=VehicleClass.choices(), null=True)
    user_type = models.PositiveSmallIntegerField(
        choices=VehicleUserType.choices(), default=int(VehicleUserType.ORDINARY)
    )
    use_nature = models.CharField(max_length=2, choices=UseNature.choices(), blank=True)
    brand_model = models.CharField(max_length=64, blank=True)
    vin = models.CharField(max_length=17, blank=True)
    vin_imported = models.BooleanField(default=False)
    engine_no = models.CharField(max_length=32, blank=True)
    register_date = models.DateField(null=True)
    issue_date = models.DateField(null=True)
    owner_name = models.CharField(max_length=100, blank=True)
    seats = models.PositiveSmallIntegerField(null=True)
    length_mm = models.PositiveIntegerField(null=True)
    width_mm = models.PositiveIntegerField(null=True)
    height_mm = models.PositiveIntegerField(null=True)
    total_mass_kg = models.PositiveIntegerField(null=True)
    curb_mass_kg = models.PositiveIntegerField(null=True)
    approved_load_kg = models.PositiveIntegerField(null=True)
    axles = models.PositiveSmallIntegerField(null=True)
    wheels = models.PositiveSmallIntegerField(null=True)
    contact_name = models.CharField(max_length=50, blank=True)
    contact_phone = models.CharField(max_length=11, blank=True)

    # Decision.
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    refusal_reasons = models.JSONField(default=list, blank=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="applications"
    )
    vehicle = models.OneToOneField(
        Vehicle, null=True, blank=True, on_delete=models.PROTECT, related_name="application"
    )
    # An existing customer's name or phone that this application would change:
    # {"name": [old, new], "phone": [old, new]}. Never applied silently — the
    # application waits (REVIEW) for a clerk of the customer's outlet.
    customer_changes = models.JSONField(default=dict, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=ApplicationStatus.APPROVED)
                | (Q(customer__isnull=False) & Q(vehicle__isnull=False)),
                name="application_approved_has_customer_and_vehicle",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        """The application number clerks quote: SQ + creation date + id."""
        created = timezone.localtime(self.created_at) if self.created_at else timezone.localtime()
        return f"SQ{created:%Y%m%d}{self.pk or 0:06d}"

    @property
    def is_editable(self) -> bool:
        return self.status in (ApplicationStatus.DRAFT, ApplicationStatus.REFUSED)

    @property
    def is_organization(self) -> bool:
        return self.customer_type == CustomerType.ORGANIZATION


class DocumentKind(models.TextChoices):
    ID_PHOTO = "id_photo", _("ID document photo")
    ENTRUST_LETTER = "entrust_letter", _("Entrust letter")
    LICENCE_MAIN = "licence_main", _("Driving licence, main page")
    LICENCE_SUPPLEMENT = "licence_supplement", _("Driving licence, supplementary page")
    VEHICLE_HEAD = "vehicle_head", _("Vehicle head photo")


class ApplicationDocument(models.Model):
    """One photo of an application, re-encoded without EXIF, with a thumbnail."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=24, choices=DocumentKind.choices)
    file = models.FileField(upload_to="issuance/%Y/%m/", max_length=200)
    thumbnail = models.FileField(upload_to="issuance/%Y/%m/", max_length=200)
    content_type = models.CharField(max_length=32)
    size_bytes = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    original_name = models.CharField(max_length=200, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "kind"], name="document_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.application_id}:{self.kind}"


class PhoneVerification(models.Model):
    """An SMS code sent for an application's phone step. Only the newest counts."""

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="phone_verifications"
    )
    phone = models.CharField(max_length=11)
    code_digest = models.CharField(max_length=64)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.application_id}:{self.sent_at:%Y-%m-%d %H:%M:%S}"
