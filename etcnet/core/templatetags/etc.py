"""Template filters for codes, masking and display of money and times."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone
from django.utils.translation import get_language

from etcnet.core import codes, masking
from etcnet.core.money import format_yuan

register = template.Library()

_ENUMS = {
    "plate_color": codes.PlateColor,
    "vehicle_class": codes.VehicleClass,
    "id_type": codes.IdDocType,
    "customer_type": codes.CustomerType,
    "use_nature": codes.UseNature,
    "category": codes.VehicleCategory,
    "user_type": codes.VehicleUserType,
    "card_type": codes.CardType,
}


@register.filter
def code_label(value: Any, table: str) -> str:
    """`{{ app.plate_color|code_label:"plate_color" }}` → 蓝 (English label in English)."""
    if value is None or value == "":
        return ""
    enum: Any = _ENUMS[table]
    try:
        member = enum(type(next(iter(enum)).value)(value))
    except (ValueError, TypeError):
        return str(value)
    return str(member.label_en if (get_language() or "").startswith("en") else member.label)


@register.filter
def mask_id(value: str | None) -> str:
    return masking.mask_id_number(value)


@register.filter
def mask_phone(value: str | None) -> str:
    return masking.mask_phone(value)


@register.filter
def mask_name(value: str | None) -> str:
    return masking.mask_name(value)


@register.filter
def yuan(fen: int | None) -> str:
    return "" if fen is None else format_yuan(fen)


@register.filter
def local(value: Any) -> str:
    """A stored UTC time shown in Asia/Shanghai."""
    if not value:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def get(mapping: dict[str, Any] | None, key: str) -> Any:
    return (mapping or {}).get(key)


@register.filter
def neg(value: int | None) -> int:
    return -(value or 0)


@register.filter
def km(metres: int | None) -> str:
    """Metres shown as kilometres with one decimal."""
    return "" if metres is None else f"{metres / 1000:.1f}"
