"""Plate pre-selection services outside the six steps, one module per seam:
``accounts`` (registration, its SMS code, cancellation), ``config`` (settings,
calendar, maintenance), ``pools``, ``office`` (the vehicle office's
registration, refusals, local records), ``window`` (registration at the
office's window, which takes an ID number back from a squatter), ``expiry`` (the
periodic job) and ``sanctions`` (blacklisting and ending a held number, used
inside the others' transactions).

Each top-level service is one durable transaction that locks what it changes
and audits it (actions ``plates.*``). The six steps are in ``flow``. Callers
use the names below: ``from etcnet.plates import services``.
"""

from etcnet.plates.services.accounts import (
    cancel_account,
    register_account,
    send_registration_code,
)
from etcnet.plates.services.common import REQUIRED
from etcnet.plates.services.config import (
    SETTING_FIELDS,
    add_maintenance,
    remove_calendar_day,
    remove_maintenance,
    set_calendar_day,
    update_settings,
)
from etcnet.plates.services.expiry import ExpiryReport, expire
from etcnet.plates.services.office import (
    add_local_record,
    confirm_registration,
    refuse_registration,
)
from etcnet.plates.services.pools import POOL_LIMIT, create_pool, release_pool
from etcnet.plates.services.sanctions import blacklist, end_selection
from etcnet.plates.services.window import WindowRegistration, clerk_office, register_at_window

__all__ = [
    "POOL_LIMIT",
    "REQUIRED",
    "SETTING_FIELDS",
    "ExpiryReport",
    "WindowRegistration",
    "add_local_record",
    "add_maintenance",
    "blacklist",
    "cancel_account",
    "clerk_office",
    "confirm_registration",
    "create_pool",
    "end_selection",
    "expire",
    "refuse_registration",
    "register_account",
    "register_at_window",
    "release_pool",
    "remove_calendar_day",
    "remove_maintenance",
    "send_registration_code",
    "set_calendar_day",
    "update_settings",
]
