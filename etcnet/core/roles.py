"""Roles are Django groups with stable names; pages and endpoints check them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.db import models
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ISSUANCE_CLERK = "issuance_clerk", _("Issuance clerk")
    TOLL_COLLECTOR = "toll_collector", _("Toll collector")
    STATION_MASTER = "station_master", _("Station master")
    CENTER_OPERATOR = "center_operator", _("Center operator")
    AUDITOR = "auditor", _("Auditor")
    VEHICLE_OFFICE_CLERK = "vehicle_office_clerk", _("Vehicle office clerk")


# Who may see unmasked personal data (ID numbers, phones, names) on detail pages.
# Lists, logs and exports mask it for everyone.
# A vehicle office clerk compares the internet user's name with the invoice.
PERSONAL_DATA_ROLES = frozenset(
    {Role.ISSUANCE_CLERK, Role.CENTER_OPERATOR, Role.VEHICLE_OFFICE_CLERK}
)

UserLike = AbstractBaseUser | AnonymousUser


def roles_of(user: Any) -> frozenset[str]:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return frozenset()
    cached = getattr(user, "_etcnet_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._etcnet_roles = cached
    return cached


def has_role(user: Any, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def may_see_personal_data(user: Any) -> bool:
    return has_role(user, *PERSONAL_DATA_ROLES)


F = TypeVar("F", bound=Callable[..., HttpResponseBase])


def role_required(*roles: Role) -> Callable[[F], F]:
    """A page decorator: anonymous users go to the login page, other roles get 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, *roles):
                return TemplateResponse(
                    request, "core/forbidden.html", {"roles": _labels(roles)}, status=403
                )
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def _labels(roles: Iterable[Role]) -> list[str]:
    return [str(Role(role).label) for role in roles]
