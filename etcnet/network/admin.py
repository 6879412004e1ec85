"""Django admin for raw editing of the network. Tariff versions come from
bundle imports and are shown read-only; operators use the network pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from etcnet.network.models import BundleImport, Interval, Lane, Node, Owner, TariffVersion


@admin.register(Owner)
class OwnerAdmin(admin.ModelAdmin[Owner]):
    list_display = ("owner_id", "name")
    search_fields = ("owner_id", "name")


class LaneInline(admin.TabularInline[Lane, Node]):
    model = Lane
    extra = 0


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin[Node]):
    list_display = ("node_id", "name", "kind", "hex", "network")
    list_filter = ("kind", "network")
    search_fields = ("node_id", "name", "hex")
    inlines = [LaneInline]


class ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TariffVersion)
class TariffVersionAdmin(ReadOnly):
    list_display = ("number", "effective_at", "discount_bp", "source_name")


@admin.register(Interval)
class IntervalAdmin(ReadOnly):
    list_display = ("interval_id", "version", "from_node", "to_node", "length_m", "owner")
    list_filter = ("version", "owner")
    search_fields = ("interval_id", "gantry_id")


@admin.register(BundleImport)
class BundleImportAdmin(ReadOnly):
    list_display = ("created_at", "status", "source_name", "version")
