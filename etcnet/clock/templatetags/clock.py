"""`{% clock_panel %}`: the center's clock against its time source, for any
operator page (docs/clock.md)."""

from __future__ import annotations

from typing import Any

from django import template

from etcnet.clock import selectors

register = template.Library()


@register.inclusion_tag("clock/_panel.html")
def clock_panel(link: bool = True) -> dict[str, Any]:
    """The panel; ``link`` adds a link to the readings page."""
    return {"clock": selectors.status(), "link": link}
