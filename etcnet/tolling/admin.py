"""Django admin for the stations' staff: who works at which station."""

from __future__ import annotations

from django.contrib import admin

from etcnet.tolling.models import StationMembership


@admin.register(StationMembership)
class StationMembershipAdmin(admin.ModelAdmin[StationMembership]):
    list_display = ("user", "station")
    list_filter = ("station",)
    search_fields = ("user__username", "station__node_id", "station__name")
    autocomplete_fields = ("user",)
    raw_id_fields = ("station",)
