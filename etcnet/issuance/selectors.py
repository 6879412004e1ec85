"""Reads for the issuance pages and API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from etcnet.core.errors import FieldIssue, NotFound
from etcnet.core.models import AuditEvent
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.issuance.models import (
    Application,
    ApplicationStatus,
    Customer,
    Outlet,
    OutletMembership,
)

# The steps of the wizard in seed 000's order, with what "done" means.
STEPS = ("phone", "customer", "id_photo", "vehicle", "vehicle_photos", "review")


@dataclass(frozen=True)
class ApplicationFilter:
    status: str = ""
    plate: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str = ""


def visible_applications(viewer: Any) -> QuerySet[Application]:
    """What a user may see: center operators and auditors every outlet's
    applications, a clerk only those of the outlet it works at."""
    qs = Application.objects.all()
    if has_role(viewer, Role.CENTER_OPERATOR, Role.AUDITOR):
        return qs
    if has_role(viewer, Role.ISSUANCE_CLERK):
        # And, from any outlet, the applications that wait for this outlet's
        # review of its customer's name or phone.
        # Subqueries, not joins: a join through the outlet's members would
        # repeat a row once per member when either branch matches.
        own = OutletMembership.objects.filter(user=viewer).values("outlet_id")
        return qs.filter(
            Q(outlet_id__in=own)
            | Q(status=ApplicationStatus.REVIEW, existing_customer__outlet_id__in=own)
        )
    return qs.none()


def review_outlet(customer: Customer, application: Application) -> Outlet:
    """Where a change of the customer is reviewed: the customer's own outlet (a
    customer from before outlets were recorded: the application's)."""
    return customer.outlet or application.outlet


def may_review(application: Application, viewer: Any) -> bool:
    """The viewer may accept or refuse the customer changes the application asks
    for: a clerk of the customer's outlet who did not take the application."""
    customer = application.existing_customer
    return (
        application.status == ApplicationStatus.REVIEW
        and customer is not None
        and has_role(viewer, Role.ISSUANCE_CLERK)
        and application.created_by_id != viewer.pk
        and review_outlet(customer, application).members.filter(user=viewer).exists()
    )


def application_list(filters: ApplicationFilter, *, viewer: Any) -> QuerySet[Application]:
    qs = visible_applications(viewer).select_related("outlet", "created_by")
    if filters.status in ApplicationStatus.values:
        qs = qs.filter(status=filters.status)
    if filters.plate:
        qs = qs.filter(plate__icontains=filters.plate.strip().upper())
    tz = timezone.get_current_timezone()
    if filters.date_from:
        start = dt.datetime.combine(filters.date_from, dt.time.min, tzinfo=tz)
        qs = qs.filter(created_at__gte=start)
    if filters.date_to:
        end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        qs = qs.filter(created_at__lt=end)
    q = filters.q.strip()
    if q:
        match = Q(plate__icontains=q.upper()) | Q(name__icontains=q) | Q(vin__iexact=q)
        # Whole document or phone numbers only: a fragment of an ID number is
        # not a search key, so lists cannot be used to guess masked digits.
        match |= Q(id_number__iexact=q.upper()) | Q(phone=q)
        # SQ + creation date (8 digits) + id (at least 6 digits).
        if q.upper().startswith("SQ") and len(q) >= 16 and q[2:].isdigit():
            match |= Q(pk=int(q[10:]))
        qs = qs.filter(match)
    return qs


def get_application(application_id: int, *, viewer: Any) -> Application:
    """The application, if the viewer may see it; `NotFound` otherwise (another
    outlet's application is not even confirmed to exist)."""
    try:
        return (
            visible_applications(viewer)
            .select_related(
                "outlet",
                "created_by",
                "existing_customer__outlet",
                "customer",
                "vehicle",
                "reviewed_by",
            )
            .get(pk=application_id)
        )
    except Application.DoesNotExist:
        raise NotFound(gettext_noop("Application not found.")) from None


def documents_by_kind(application: Application) -> dict[str, Any]:
    return {doc.kind: doc for doc in application.documents.all()}


def step_state(application: Application) -> dict[str, bool]:
    kinds = set(application.documents.values_list("kind", flat=True))
    id_kinds = {"id_photo"} | ({"entrust_letter"} if application.is_organization else set())
    return {
        "phone": application.phone_verified_at is not None,
        "customer": application.customer_saved_at is not None,
        "id_photo": id_kinds <= kinds,
        "vehicle": application.vehicle_saved_at is not None,
        "vehicle_photos": {"licence_main", "licence_supplement", "vehicle_head"} <= kinds,
        "review": application.status != ApplicationStatus.DRAFT,
    }


def audit_history(application: Application) -> QuerySet[AuditEvent]:
    subjects = Q(subject_type="issuance.application", subject_id=str(application.pk))
    if application.customer_id:
        subjects |= Q(subject_type="issuance.customer", subject_id=str(application.customer_id))
    if application.vehicle_id:
        subjects |= Q(subject_type="issuance.vehicle", subject_id=str(application.vehicle_id))
    return AuditEvent.objects.filter(subjects).select_related("actor").order_by("occurred_at", "id")


def refusal_issues(application: Application) -> list[FieldIssue]:
    return [FieldIssue.from_record(r) for r in application.refusal_reasons]
