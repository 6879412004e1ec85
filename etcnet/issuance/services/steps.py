"""Steps 2-4: the customer, the vehicle and the documents; an explicit,
audited reveal of a document for a role that sees personal data masked."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from functools import partial
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.errors import FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.issuance import domain, images, selectors
from etcnet.issuance.errors import (
    PhoneNotVerified,
)
from etcnet.issuance.models import (
    LIVE_VEHICLE,
    Application,
    ApplicationDocument,
    Customer,
    DocumentKind,
    Vehicle,
)
from etcnet.issuance.services._common import (
    CUSTOMER_FIELDS,
    VEHICLE_FIELDS,
    _lock_editable,
    _reopen,
    _require_clerk,
    _save_step,
)


def _require_phone(application: Application) -> None:
    if not application.phone_verified_at:
        raise PhoneNotVerified()


def save_customer(application_id: int, *, data: Mapping[str, Any], actor: Any) -> Application:
    """Step 2: the customer (personal or organization).

    The system, not the clerk, tells a new customer from an existing one: the
    document number is looked up and the application remembers the match.
    Audits `issuance.customer_step_saved` with the changed fields.
    """
    _require_clerk(actor)
    customer, issues = domain.parse_customer(data)
    if customer is None:
        raise InvalidInput(issues=issues)
    with transaction.atomic(durable=True):
        application = _lock_editable(application_id, actor)
        _require_phone(application)
        application.existing_customer = Customer.objects.filter(
            id_type=customer.id_type, id_number=customer.id_number
        ).first()
        application.customer_saved_at = timezone.now()
        _save_step(
            application,
            CUSTOMER_FIELDS,
            customer.as_fields(),
            action="issuance.customer_step_saved",
            actor=actor,
            extra={"existing_customer": application.existing_customer_id},
        )
    return application


def _plate_bound_elsewhere(plate: str, color: int, application: Application) -> bool:
    live = Vehicle.objects.filter(LIVE_VEHICLE, plate=plate, plate_color=color)
    if application.vehicle_id:
        live = live.exclude(pk=application.vehicle_id)
    return live.exists()


def save_vehicle(application_id: int, *, data: Mapping[str, Any], actor: Any) -> Application:
    """Step 4: the vehicle.

    A plate + colour that already has a live binding is refused here, early.
    An imported vehicle's VIN with a wrong check digit is accepted only when the
    clerk marked it imported, and that waiver is audited
    (`issuance.vin_check_digit_waived`). Audits `issuance.vehicle_step_saved`.
    """
    _require_clerk(actor)
    vehicle, issues = domain.parse_vehicle(data, today=timezone.localdate())
    if vehicle is None:
        raise InvalidInput(issues=issues)
    with transaction.atomic(durable=True):
        application = _lock_editable(application_id, actor)
        _require_phone(application)
        if _plate_bound_elsewhere(vehicle.plate, int(vehicle.plate_color), application):
            raise InvalidInput(issues=[domain.plate_bound_issue()])
        application.vehicle_saved_at = timezone.now()
        _save_step(
            application,
            VEHICLE_FIELDS,
            vehicle.as_fields(),
            action="issuance.vehicle_step_saved",
            actor=actor,
        )
        if vehicle.vin_check_digit_waived:
            audit.record(
                actor=actor,
                action="issuance.vin_check_digit_waived",
                subject=application,
                after={"vin": vehicle.vin, "imported": True},
            )
    return application


def upload_documents(
    application_id: int, *, files: Mapping[str, UploadedFile], actor: Any
) -> list[ApplicationDocument]:
    """Steps 3 and 5: photos. Every file is checked before any is stored, so one
    bad file in a batch stores none. A new photo of a kind replaces the old one;
    the old files are removed only after the commit.

    Audits `issuance.document_uploaded` per photo.
    """
    _require_clerk(actor)
    if not files:
        raise InvalidInput(
            issues=[FieldIssue("file", "required", gettext_noop("Choose a photo to upload."))]
        )
    issues = []
    prepared: dict[str, images.PreparedImage] = {}
    valid_kinds = set(DocumentKind.values)
    for kind, upload in files.items():
        if kind not in valid_kinds:
            issues.append(FieldIssue(kind, "invalid_choice", domain.NOT_A_CHOICE))
            continue
        result = images.prepare(upload)
        if isinstance(result, FieldIssue):
            issues.append(FieldIssue(kind, result.code, result.template, result.params))
        else:
            prepared[kind] = result
    if issues:
        raise InvalidInput(issues=issues)

    stored: list[str] = []
    try:
        with transaction.atomic(durable=True):
            application = _lock_editable(application_id, actor)
            _require_phone(application)
            documents = []
            now = timezone.now()
            for kind, image in prepared.items():
                document = ApplicationDocument.objects.filter(
                    application=application, kind=kind
                ).first()
                old_files = [document.file.name, document.thumbnail.name] if document else []
                if document is None:
                    document = ApplicationDocument(application=application, kind=kind)
                token = secrets.token_hex(8)
                document.file.save(f"{kind}-{token}.{image.extension}", image.content, save=False)
                document.thumbnail.save(
                    f"{kind}-{token}-thumb.{image.extension}", image.thumbnail, save=False
                )
                stored += [document.file.name, document.thumbnail.name]
                document.content_type = image.content_type
                document.size_bytes = image.size
                document.width, document.height = image.width, image.height
                document.sha256 = image.sha256
                document.original_name = image.original_name
                document.uploaded_by = actor
                document.uploaded_at = now
                document.save()
                documents.append(document)
                if old_files:
                    transaction.on_commit(partial(images.delete_files, old_files))
                audit.record(
                    actor=actor,
                    action="issuance.document_uploaded",
                    subject=application,
                    after={
                        "kind": kind,
                        "sha256": image.sha256,
                        "size": image.size,
                        "replaced": bool(old_files),
                    },
                )
            _reopen(application)
            application.save(update_fields=["status", "refusal_reasons", "updated_at"])
    except BaseException:
        # Nothing of a failed upload may stay behind, not even its files.
        images.delete_files(stored)
        raise
    return documents


def reveal_document(
    application_id: int, *, kind: str, reason: str, actor: Any
) -> ApplicationDocument:
    """An auditor's explicit look at one document photo, which his role otherwise
    sees masked (refused). The reason is required. Audits
    `issuance.document_revealed`: who (the actor), what (application, kind, the
    photo's sha256) and why (the reason). Changes nothing else."""
    if not has_role(actor, Role.AUDITOR):
        raise Forbidden()
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "reason",
                    "required",
                    gettext_noop("Give the reason for revealing the photo; it is recorded."),
                )
            ]
        )
    if len(reason) > 200:
        raise InvalidInput(issues=[FieldIssue("reason", "too_long", domain.TOO_LONG, {"max": 200})])
    with transaction.atomic(durable=True):
        application = selectors.get_application(application_id, viewer=actor)
        document = application.documents.filter(kind=kind).first()
        if document is None:
            raise NotFound(gettext_noop("Document not found."))
        audit.record(
            actor=actor,
            action="issuance.document_revealed",
            subject=application,
            after={"kind": kind, "sha256": document.sha256, "reason": reason},
        )
    return document
