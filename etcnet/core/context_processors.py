from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from etcnet.core.roles import Role, roles_of


def roles(request: HttpRequest) -> dict[str, Any]:
    mine = roles_of(request.user)
    return {
        "user_roles": mine,
        "user_role_labels": [str(Role(r).label) for r in Role if r in mine],
    }
