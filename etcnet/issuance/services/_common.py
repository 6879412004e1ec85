"""The pieces every step shares: the tracked fields, the application's lock
for a clerk of its outlet, and writing a step with its audit event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from etcnet.core import audit
from etcnet.core.errors import Forbidden, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.issuance.errors import (
    NotEditable,
)
from etcnet.issuance.models import (
    Application,
    ApplicationStatus,
)

CUSTOMER_FIELDS = (
    "customer_type",
    "name",
    "id_type",
    "id_number",
    "address",
    "department",
    "agent_name",
    "agent_id_type",
    "agent_id_number",
)
VEHICLE_FIELDS = (
    "plate",
    "plate_color",
    "category",
    "toll_class",
    "user_type",
    "use_nature",
    "brand_model",
    "vin",
    "vin_imported",
    "engine_no",
    "register_date",
    "issue_date",
    "owner_name",
    "seats",
    "length_mm",
    "width_mm",
    "height_mm",
    "total_mass_kg",
    "curb_mass_kg",
    "approved_load_kg",
    "axles",
    "wheels",
    "contact_name",
    "contact_phone",
)


def _require_clerk(actor: Any) -> None:
    if not has_role(actor, Role.ISSUANCE_CLERK):
        raise Forbidden()


def _lock(application_id: int, actor: Any) -> Application:
    """The application row, locked — only for a clerk of the outlet that holds it."""
    try:
        # Lock the application row only, not the joined outlet rows.
        return Application.objects.select_for_update(of=("self",)).get(
            pk=application_id, outlet__members__user=actor
        )
    except Application.DoesNotExist:
        raise NotFound(gettext_noop("Application not found.")) from None


def _lock_editable(application_id: int, actor: Any) -> Application:
    application = _lock(application_id, actor)
    if not application.is_editable:
        raise NotEditable()
    return application


def _snapshot(application: Application, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(application, name) for name in fields}


def _reopen(application: Application) -> None:
    """Editing a refused application puts it back in progress; its reasons stay
    visible in the audit trail but no longer stand."""
    if application.status == ApplicationStatus.REFUSED:
        application.status = ApplicationStatus.DRAFT
        application.refusal_reasons = []


def _save_step(
    application: Application,
    fields: tuple[str, ...],
    values: Mapping[str, Any],
    *,
    action: str,
    actor: Any,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Writes a step's values into the (locked) application and audits what changed."""
    tracked = (*fields, "status")
    before = _snapshot(application, tracked)
    for name, value in values.items():
        setattr(application, name, value)
    _reopen(application)
    application.save()
    old, new = audit.changes(before, _snapshot(application, tracked))
    audit.record(
        actor=actor, action=action, subject=application, before=old, after={**new, **(extra or {})}
    )
