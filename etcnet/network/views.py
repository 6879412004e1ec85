"""Operator pages: the network, a station with its lanes and intervals, bundle
import with its report, and a fee calculator."""

from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from django.contrib import messages
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from etcnet.core.codes import VehicleClass, VehicleKind
from etcnet.core.errors import DomainError, FieldIssue, InvalidInput
from etcnet.core.roles import Role, role_required
from etcnet.core.validators import gettext_noop
from etcnet.network import selectors, services
from etcnet.network.engine import FeeError, Payment
from etcnet.network.models import (
    BundleImport,
    Interval,
    IntervalFee,
    LaneDirection,
    LaneType,
    Node,
    NodeKind,
    TariffVersion,
)

OPERATOR = (Role.CENTER_OPERATOR,)
READERS = (Role.CENTER_OPERATOR, Role.AUDITOR, Role.STATION_MASTER)
BUNDLE_FILES = {
    "owners.csv",
    "nodes.csv",
    "intervals.csv",
    "interval_fees.csv",
    "open_stations.csv",
}


@role_required(*READERS)
def index(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    return TemplateResponse(
        request,
        "network/index.html",
        {
            "q": q,
            "in_force": selectors.version_in_force(timezone.now()),
            "versions": TariffVersion.objects.all()[:10],
            "stations": selectors.stations(q)[:200],
            "imports": BundleImport.objects.all()[:5],
        },
    )


@role_required(*READERS)
def station(request: HttpRequest, node_id: str) -> HttpResponse:
    found = Node.objects.filter(node_id=node_id).first()
    if found is None:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    version = selectors.version_in_force(timezone.now())
    intervals = []
    classes: list[int] = []
    if version is not None:
        qs = (
            Interval.objects.filter(version=version)
            .filter(from_node=found)
            .union(Interval.objects.filter(version=version, to_node=found))
        )
        rows = list(
            Interval.objects.filter(pk__in=[i.pk for i in qs]).select_related(
                "from_node", "to_node", "owner"
            )
        )
        fees: dict[int, dict[int, int]] = {}
        for interval_id, vehicle_class, fee in IntervalFee.objects.filter(
            interval__in=rows
        ).values_list("interval_id", "vehicle_class", "fee_fen"):
            fees.setdefault(interval_id, {})[vehicle_class] = fee
        classes = sorted({c for by_class in fees.values() for c in by_class})
        intervals = [
            {"interval": i, "fees": [fees.get(i.pk, {}).get(c) for c in classes]} for i in rows
        ]
    return TemplateResponse(
        request,
        "network/station.html",
        {
            "station": found,
            "lanes": found.lanes.all(),
            "intervals": intervals,
            "classes": classes,
            "version": version,
            "directions": LaneDirection.choices,
            "lane_types": LaneType.choices,
        },
    )


@role_required(*OPERATOR)
@require_POST
def lane_toggle(request: HttpRequest, lane_id: int) -> HttpResponse:
    try:
        lane = services.set_lane_enabled(
            lane_id, enabled=request.POST.get("enabled") == "1", actor=request.user
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("network:index")
    messages.success(request, _("Lane enabled.") if lane.enabled else _("Lane disabled."))
    return redirect("network:station", lane.station.node_id)


@role_required(*OPERATOR)
@require_POST
def lane_add(request: HttpRequest, node_id: str) -> HttpResponse:
    number = request.POST.get("number", "")
    try:
        services.add_lane(
            node_id,
            number=int(number) if number.isdigit() else 0,
            direction=request.POST.get("direction", ""),
            lane_type=request.POST.get("lane_type", ""),
            actor=request.user,
        )
    except DomainError as error:
        messages.error(request, error.message)
        for issue in error.issues:
            messages.error(request, issue.message)
    else:
        messages.success(request, _("Lane added."))
    return redirect("network:station", node_id)


def extract_bundle(upload: UploadedFile, folder: Path) -> None:
    """Unpacks a zip of the bundle's CSV files (at its root or in one folder);
    refuses anything else, names outside the folder included."""
    try:
        archive = zipfile.ZipFile(upload)
    except zipfile.BadZipFile:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "bundle", "not_zip", gettext_noop("Upload a .zip of the bundle's CSV files.")
                )
            ]
        ) from None
    with archive:
        found = 0
        for member in archive.infolist():
            if member.is_dir():
                continue
            name = PurePosixPath(member.filename).name
            if name not in BUNDLE_FILES or member.file_size > 200 * 1024 * 1024:
                continue
            (folder / name).write_bytes(archive.read(member))
            found += 1
    if not found:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "bundle",
                    "empty_bundle",
                    gettext_noop("The zip holds none of the bundle's CSV files."),
                )
            ]
        )


@role_required(*OPERATOR)
@require_http_methods(["GET", "POST"])
def import_view(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    effective = request.POST.get("effective", "")
    if request.method == "POST":
        upload = request.FILES.get("bundle")
        try:
            if upload is None:
                raise InvalidInput(
                    issues=[
                        FieldIssue(
                            "bundle", "required", gettext_noop("Choose a .zip of the bundle.")
                        )
                    ]
                )
            when = parse_local(effective) if effective else timezone.now()
            with tempfile.TemporaryDirectory() as folder:
                extract_bundle(upload, Path(folder))
                record = services.import_bundle(
                    Path(folder),
                    effective_at=when,
                    actor=request.user,
                    source_name=upload.name or "",
                )
        except DomainError as error:
            for issue in error.issues:
                errors.setdefault(issue.field, []).append(issue.message)
        else:
            return redirect("network:import_report", record.pk)
    return TemplateResponse(
        request,
        "network/import.html",
        {"errors": errors, "effective": effective},
        status=400 if errors else 200,
    )


def parse_local(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            issues=[
                FieldIssue("effective", "not_a_date", gettext_noop("Enter a date as YYYY-MM-DD."))
            ]
        ) from None
    return timezone.make_aware(value) if value.tzinfo is None else value


@role_required(*READERS)
def import_report(request: HttpRequest, import_id: int) -> HttpResponse:
    record = BundleImport.objects.filter(pk=import_id).select_related("version").first()
    if record is None:
        return TemplateResponse(request, "core/not_found.html", {}, status=404)
    return TemplateResponse(request, "network/import_report.html", {"record": record})


# How a fee was computed, and why, in the reader's language (the engine's own
# reasons are English detail, kept in the API answer).
METHOD_LABELS = {
    "path": gettext_noop("By the recorded path"),
    "minimum": gettext_noop("Minimum fee (exit fee type 6)"),
    "farthest-entry": gettext_noop("No entry: from the farthest entry station"),
    "open": gettext_noop("Open-road station: fixed fee"),
    "exempt": gettext_noop("Exempt vehicle"),
}
REASON_LABELS = {
    "path unknown": gettext_noop("the path is unknown"),
    "below minimum": gettext_noop("the path's fee is below the minimum"),
    "path incomplete": gettext_noop("the recorded path is incomplete"),
    "exempt vehicle kind": gettext_noop("exempt vehicle kind"),
}


def _explain(result: Any) -> str:
    text = _(METHOD_LABELS.get(result.method, result.method))
    reason = result.reason or ""
    for prefix, label in REASON_LABELS.items():
        if reason.startswith(prefix):
            return f"{text} · {_(label)}"
    return text


@role_required(*READERS)
def fee(request: HttpRequest) -> HttpResponse:
    """Compute the toll of a trip, from a form, on the version in force."""
    get = request.GET
    result = None
    error = None
    try:
        when = parse_local(get["entry_time"]) if get.get("entry_time") else timezone.now()
    except DomainError as failure:
        error, when = failure.issues[0].message, timezone.now()
    # A trip is charged by the version in force at its entry time.
    version = selectors.version_in_force(when)
    if get.get("exit") and version is not None and error is None:
        try:
            path = [p.strip() for p in get.get("path", "").split(",") if p.strip()] or None
            result = selectors.engine_for(version).trip(
                exit=get["exit"],
                vehicle_class=int(get.get("vehicle_class") or 0),
                entry=get.get("entry") or None,
                path=path,
                payment=Payment(get.get("payment") or "etc"),
                vehicle_kind=int(get.get("vehicle_kind") or 0),
            )
        except (FeeError, ValueError) as failure:
            error = str(failure)
    return TemplateResponse(
        request,
        "network/fee.html",
        {
            "version": version,
            "stations": Node.objects.filter(kind=NodeKind.STATION).order_by("name"),
            "classes": [(c.value, c.label) for c in VehicleClass],
            "kinds": [(k.value, k.label) for k in VehicleKind],
            "values": get,
            "result": result,
            "explanation": _explain(result) if result else "",
            "error": error,
        },
    )
