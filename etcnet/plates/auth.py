"""Internet users log in with their ID number or their mobile number."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db.models import Q
from django.http import HttpRequest

from etcnet.plates.models import AccountStatus, PlateAccount


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
