"""The road network the center keeps: owners (路段业主), nodes (toll stations,
junctions, provincial border points), the lanes of each station, and tariff
versions — the directed toll intervals (收费单元) with their per-class fees and
the open-road stations' fixed fees, each version in force from its effective
time. A trip is charged by the version in force at its entry time.

Owners and nodes persist across versions (lanes hang off stations); intervals
and fees belong to one version, so an old trip is always charged as it was.
Every version comes from a bundle import, all or nothing; a refused bundle
leaves only its report (`BundleImport`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Owner(models.Model):
    owner_id = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class NodeKind(models.TextChoices):
    STATION = "station", _("Toll station")
    JUNCTION = "junction", _("Junction")
    BORDER = "border", _("Provincial border")


class Node(models.Model):
    node_id = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=60)
    kind = models.CharField(max_length=10, choices=NodeKind.choices)
    hex = models.CharField(max_length=8, blank=True)  # station hex code, e.g. 12010101
    network = models.CharField(max_length=4)  # e.g. 1201

    class Meta:
        ordering = ["node_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hex"], condition=~Q(hex=""), name="node_unique_station_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.node_id})"


class LaneDirection(models.TextChoices):
    ENTRY = "entry", _("Entry")
    EXIT = "exit", _("Exit")


class LaneType(models.TextChoices):
    ETC = "etc", _("ETC only")
    MTC = "mtc", _("MTC (manual)")
    MIXED = "mixed", _("ETC/MTC mixed")


class Lane(models.Model):
    """A lane of a station. Exit transactions need an enabled exit lane (seed 001:
    前提：已在系统配置中启用出口车道)."""

    station = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="lanes")
    number = models.PositiveSmallIntegerField()
    direction = models.CharField(max_length=5, choices=LaneDirection.choices)
    lane_type = models.CharField(max_length=5, choices=LaneType.choices)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["station__node_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["station", "number"], name="lane_unique_number"),
            models.CheckConstraint(
                condition=Q(number__gte=1, number__lte=99), name="lane_number_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.station.name} {self.number:02d}"

    @property
    def hex(self) -> str:
        """Lane hex code: the station's hex and the lane number, e.g. 1201010103."""
        return f"{self.station.hex}{self.number:02d}"


class TariffVersion(models.Model):
    """One imported bundle: intervals and fees in force from `effective_at`.
    Numbered as the reference's fee-parameter versions: province (2) + yyyymmdd
    + sequence (3), e.g. 1220260101001."""

    number = models.CharField(max_length=13, unique=True)
    effective_at = models.DateTimeField(db_index=True)
    discount_bp = models.PositiveIntegerField(default=500)  # ETC discount, basis points
    imported_at = models.DateTimeField()
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source_name = models.CharField(max_length=200, blank=True)
    # The bundle's own nodes and owners (junctions with no interval included), so
    # an export gives back what was imported.
    node_ids = models.JSONField(default=list, blank=True)
    owner_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-effective_at", "-number"]

    def __str__(self) -> str:
        return self.number


class Interval(models.Model):
    version = models.ForeignKey(TariffVersion, on_delete=models.CASCADE, related_name="intervals")
    interval_id = models.CharField(max_length=32)
    from_node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    to_node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    length_m = models.PositiveIntegerField()
    owner = models.ForeignKey(Owner, on_delete=models.PROTECT, related_name="intervals")
    gantry_id = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "interval_id"], name="interval_unique_per_version"
            ),
            models.CheckConstraint(condition=Q(length_m__gt=0), name="interval_length_positive"),
        ]

    def __str__(self) -> str:
        return self.interval_id


class IntervalFee(models.Model):
    interval = models.ForeignKey(Interval, on_delete=models.CASCADE, related_name="fees")
    vehicle_class = models.PositiveSmallIntegerField()
    fee_fen = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["interval", "vehicle_class"], name="fee_unique_class"),
            models.CheckConstraint(condition=Q(fee_fen__gte=0), name="fee_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.interval_id}/{self.vehicle_class}"


class OpenStationFee(models.Model):
    version = models.ForeignKey(TariffVersion, on_delete=models.CASCADE, related_name="open_fees")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    vehicle_class = models.PositiveSmallIntegerField()
    fee_fen = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "node", "vehicle_class"], name="open_fee_unique"
            ),
            models.CheckConstraint(condition=Q(fee_fen__gte=0), name="open_fee_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.node_id}/{self.vehicle_class}"


class ImportStatus(models.TextChoices):
    IMPORTED = "imported", _("Imported")
    REFUSED = "refused", _("Refused")


class BundleImport(models.Model):
    """Each import attempt and its report. A refused bundle imports nothing;
    its problems (file, line, column, code, message) stay here for the operator."""

    status = models.CharField(max_length=10, choices=ImportStatus.choices)
    source_name = models.CharField(max_length=200, blank=True)
    problems = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    version = models.OneToOneField(
        TariffVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bundle_import",
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.pk}:{self.status}"
