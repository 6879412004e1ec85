"""Django admin for reference data: outlets and which outlet a clerk works at.

Customers, vehicles and applications change only through the services (which
audit every change), so the admin shows them read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.http import HttpRequest

from etcnet.issuance.models import Application, Customer, Outlet, OutletMembership, Vehicle


@admin.register(Outlet)
class OutletAdmin(admin.ModelAdmin[Outlet]):
    list_display = ("code", "name", "address", "is_active")
    search_fields = ("code", "name")
    list_filter = ("is_active",)


class OutletMembershipInline(admin.StackedInline[OutletMembership, User]):
    model = OutletMembership
    can_delete = True
    extra = 0
    max_num = 1


admin.site.unregister(User)


@admin.register(User)
class StaffAdmin(UserAdmin[User]):
    inlines = [OutletMembershipInline]


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ("pk", "customer_type", "name", "id_type", "created_at")
    search_fields = ("=id_number", "name")


@admin.register(Vehicle)
class VehicleAdmin(ReadOnlyAdmin):
    list_display = ("plate", "plate_color", "toll_class", "status", "customer")
    search_fields = ("plate", "=vin")
    list_filter = ("status", "plate_color")


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ("pk", "status", "plate", "outlet", "created_at")
    list_filter = ("status", "outlet")
