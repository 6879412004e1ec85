"""Tolling services: registering terminals, their sign-ins and their staff.

The intake of their uploads is `etcnet.tolling.intake` (`ingest` is re-exported
here for callers of the service layer).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate as authenticate_user
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from etcnet.cards import devices
from etcnet.core import audit
from etcnet.core.errors import FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.network.models import Lane, Node, NodeKind
from etcnet.tolling.intake import UploadConflict, ingest
from etcnet.tolling.models import (
    StationMembership,
    Terminal,
)

__all__ = ["UploadConflict", "ingest"]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_terminal(
    terminal_id: str, *, station_id: str, lanes: Sequence[int], actor: Any
) -> tuple[Terminal, str, Path]:
    """Registers a handheld or lane PC at a station: its allowed lanes, a PSAM
    (emulated, provisioned here with its terminal number) and its secret, which
    is returned once and stored only as a digest. Audits `tolling.terminal_registered`."""
    if not has_role(actor, Role.CENTER_OPERATOR):
        raise Forbidden()
    if not (1 <= len(terminal_id) <= 20 and terminal_id.replace("-", "").isalnum()):
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "terminal_id",
                    "bad_terminal_id",
                    gettext_noop("A terminal id has 1 to 20 letters, digits or dashes."),
                )
            ]
        )
    with transaction.atomic(durable=True):
        station = Node.objects.filter(node_id=station_id, kind=NodeKind.STATION).first()
        if station is None:
            raise NotFound(gettext_noop("Station not found."))
        allowed = list(Lane.objects.filter(station=station, number__in=list(lanes)))
        if len(allowed) != len(set(lanes)):
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "lanes", "unknown_lane", gettext_noop("Choose lanes of this station.")
                    )
                ]
            )
        count = Terminal.objects.filter(station=station).count()
        secret = secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                terminal = Terminal.objects.create(
                    terminal_id=terminal_id,
                    station=station,
                    psam_terminal_no=f"{station.hex}{count + 1:04d}".upper()[:12].rjust(12, "0"),
                    secret_digest=_digest(secret),
                    created_at=timezone.now(),
                )
        except IntegrityError:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "terminal_id",
                        "terminal_exists",
                        gettext_noop("This terminal is registered."),
                    )
                ]
            ) from None
        terminal.lanes.set(allowed)
        psam = Path(settings.ETCNET_CARD_DIR) / f"psam-{terminal_id}.json"
        psam.parent.mkdir(parents=True, exist_ok=True)
        devices.provision_psam(psam, terminal_no=terminal.psam_terminal_no)
        audit.record(
            actor=actor,
            action="tolling.terminal_registered",
            subject=terminal,
            after={
                "station": station_id,
                "lanes": sorted(lanes),
                "psam_terminal_no": terminal.psam_terminal_no,
            },
        )
    return terminal, secret, psam


def reset_secret(terminal_id: str, *, actor: Any) -> str:
    """A new secret for a terminal (the old one stops working at once); returned
    once, stored as a digest. Audits `tolling.terminal_secret_reset`."""
    if not has_role(actor, Role.CENTER_OPERATOR):
        raise Forbidden()
    secret = secrets.token_urlsafe(32)
    with transaction.atomic(durable=True):
        terminal = Terminal.objects.select_for_update().filter(terminal_id=terminal_id).first()
        if terminal is None:
            raise NotFound(gettext_noop("Terminal not found."))
        terminal.secret_digest = _digest(secret)
        terminal.save(update_fields=["secret_digest"])
        audit.record(
            actor=actor, action="tolling.terminal_secret_reset", subject=terminal, after={}
        )
    return secret


def authenticate(terminal_id: str, secret: str) -> Terminal | None:
    """The terminal these credentials prove, or None (constant-time compare)."""
    terminal = Terminal.objects.filter(terminal_id=terminal_id, active=True).first()
    if terminal is None:
        hmac.compare_digest(_digest(secret), _digest(""))  # the same work either way
        return None
    if not hmac.compare_digest(terminal.secret_digest, _digest(secret)):
        return None
    return terminal


def login(
    terminal: Terminal, *, username: str, password: str, request: Any
) -> dict[str, Any] | None:
    """A collector or station master signing in at a terminal, checked by the
    center: their roles and password verifier (Django's salted hash, never the
    password), which the terminal keeps for an offline sign-in later. None when
    the credentials are wrong or the user works neither role. Audits
    `tolling.terminal_login` either way; repeated failures lock the user out
    like a console sign-in (django-axes sees the request)."""
    user = authenticate_user(request, username=username, password=password)
    roles = sorted(
        r
        for r in (Role.TOLL_COLLECTOR, Role.STATION_MASTER)
        if user is not None
        and has_role(user, r)
        # A station master authorises only at his own station (seed 002).
        and (r != Role.STATION_MASTER or _member_of(user, terminal.station))
    )
    with transaction.atomic(durable=True):
        audit.record(
            actor=f"terminal {terminal.terminal_id}",
            action="tolling.terminal_login" if roles else "tolling.terminal_login_refused",
            subject=terminal,
            after={"username": username[:150], "roles": roles},
        )
    if user is None or not roles:
        return None
    return {
        "username": user.username,
        "name": user.get_full_name() or user.username,
        "roles": roles,
        "verifier": user.password,
    }


def _member_of(user: Any, station: Node) -> bool:
    return StationMembership.objects.filter(user=user, station=station).exists()


def station_staff(station: Node) -> QuerySet[Any]:
    """The active collectors and station masters who belong to the station."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(
            is_active=True,
            groups__name__in=[Role.TOLL_COLLECTOR, Role.STATION_MASTER],
            station_memberships__station=station,
        )
        .distinct()
        .order_by("username")
    )


def _is_station_master_of(username: str, station: Node) -> bool:
    """The named user is an active station master who belongs to the station."""
    return (
        station_staff(station).filter(username=username, groups__name=Role.STATION_MASTER).exists()
    )
