"""Internet users log in with their ID number or their mobile number.

Every attempt at a plate account, from whichever login page, counts against the
limits per address and per login name (``ETCNET_RATE_LOGIN_PER_IP``,
``ETCNET_RATE_LOGIN_PER_USER``). Past them the backend refuses even the right
password (``PermissionDenied`` stops Django trying other backends) and leaves
the refusal on the request, so the plates login page answers 429 with the time
to retry; another login page just refuses the login.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest

from etcnet.core import ratelimit
from etcnet.core.masking import mask_phone
from etcnet.core.middleware import client_ip as core_client_ip
from etcnet.plates.models import AccountStatus, PlateAccount

REFUSAL = "plates_rate_limited"


def client_ip(request: HttpRequest | None) -> str:
    """The client's address the limits count under: the same one django-axes
    uses (REMOTE_ADDR, or the configured trusted proxy header; docs/plates.md)."""
    if request is None:
        return ""
    return core_client_ip(request) or ""


def count_login(request: HttpRequest | None, name: str) -> None:
    """Counts one login attempt; raises ``RateLimited`` past a limit."""
    shown = mask_phone(name) if name.isdigit() else name[:4] + "…"
    ratelimit.hit("plates.login.ip", client_ip(request), settings.ETCNET_RATE_LOGIN_PER_IP)
    ratelimit.hit("plates.login.user", name, settings.ETCNET_RATE_LOGIN_PER_USER, shown_key=shown)


class PlateAccountBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not username or password is None:
            return None
        key = username.strip()
        if request is not None:
            try:
                count_login(request, key.upper())
            except ratelimit.RateLimited as refused:
                setattr(request, REFUSAL, refused)
                raise PermissionDenied from refused
        account = (
            PlateAccount.objects.filter(status=AccountStatus.ACTIVE)
            .filter(Q(id_number=key.upper()) | Q(phone=key))
            .select_related("user")
            .first()
        )
        if account is None:
            return None
        user = account.user
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
