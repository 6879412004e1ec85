from django import template

register = template.Library()


@register.filter
def yuan(fen: object) -> str:
    """Integer fen shown as yuan with two decimals (money stays fen everywhere else)."""
    if not isinstance(fen, int):
        return "—"
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


@register.filter
def get_item(mapping: object, key: object) -> object:
    return mapping.get(key, key) if isinstance(mapping, dict) else key
