"""Django admin for the pre-selection's reference data: vehicle offices with
their districts and clerks, and the office's local records (vehicles, licences,
first licence applications) that owner, driver and learner registrations match.

Accounts, selections and blacklists change only through the services (which
audit every change), so the admin shows them read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from etcnet.plates.models import (
    Blacklist,
    District,
    LocalRecord,
    PlateAccount,
    Selection,
    VehicleOffice,
)


class DistrictInline(admin.TabularInline[District, VehicleOffice]):
    model = District
    extra = 0


@admin.register(VehicleOffice)
class VehicleOfficeAdmin(admin.ModelAdmin[VehicleOffice]):
    list_display = ("code", "name", "city", "prefix", "is_active")
    search_fields = ("code", "name", "city")
    list_filter = ("is_active", "prefix")
    filter_horizontal = ("clerks",)
    inlines = [DistrictInline]


@admin.register(LocalRecord)
class LocalRecordAdmin(admin.ModelAdmin[LocalRecord]):
    list_display = ("kind", "id_number", "phone", "reference", "created_at")
    search_fields = ("id_number", "phone", "reference")
    list_filter = ("kind",)


class ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PlateAccount)
class PlateAccountAdmin(ReadOnly):
    list_display = ("pk", "user_type", "name", "status", "registered_at")
    list_filter = ("user_type", "status")


@admin.register(Selection)
class SelectionAdmin(ReadOnly):
    list_display = ("plate", "number", "status", "mode", "locked_at", "deadline")
    list_filter = ("status", "mode", "office")
    search_fields = ("plate", "number", "vin")


@admin.register(Blacklist)
class BlacklistAdmin(ReadOnly):
    list_display = ("account", "reason", "starts_at", "ends_at")
    list_filter = ("reason",)
