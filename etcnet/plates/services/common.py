"""What the plate services share: the required-field message, names as
compared, the operator check."""

from __future__ import annotations

import unicodedata
from typing import Any

from etcnet.core.errors import Forbidden
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop

REQUIRED = gettext_noop("This field is required.")


def normal_name(value: str) -> str:
    """A name as compared: NFKC, without spaces."""
    return "".join(unicodedata.normalize("NFKC", value or "").split())


def require_operator(actor: Any) -> None:
    if not has_role(actor, Role.CENTER_OPERATOR):
        raise Forbidden()
