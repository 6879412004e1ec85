"""Network endpoints: stations and lanes, bundle imports, fees. Thin."""

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from etcnet.core.errors import DomainError, FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.schemas import ErrorOut, FieldIssueOut, date_issue, errors
from etcnet.core.validators import gettext_noop
from etcnet.network import selectors, services
from etcnet.network.engine import FeeError, Payment
from etcnet.network.models import BundleImport, Node, NodeKind, TariffVersion
from etcnet.network.views import extract_bundle, parse_local

router = Router()

FEE_ERRORS = {
    "fee.unknown_node": gettext_noop("An entry or exit station is not in the network ({detail})."),
    "fee.not_station": gettext_noop("Entry and exit must be toll stations ({detail})."),
    "fee.unknown_class": gettext_noop("Unknown vehicle class ({detail})."),
    "fee.unknown_interval": gettext_noop("The path names unknown toll intervals ({detail})."),
    "fee.path_not_connected": gettext_noop("The path is not connected ({detail})."),
    "fee.path_not_joined": gettext_noop("The path does not join the entry to the exit ({detail})."),
    "fee.path_without_entry": gettext_noop("A path needs its entry station."),
    "fee.no_route": gettext_noop("No route leads from the entry to the exit ({detail})."),
    "fee.same_station": gettext_noop("Entry and exit are the same station."),
}
READERS = (Role.CENTER_OPERATOR, Role.AUDITOR, Role.STATION_MASTER, Role.TOLL_COLLECTOR)


def _reader(request: HttpRequest) -> None:
    if not has_role(request.user, *READERS):
        raise Forbidden()


class LaneOut(Schema):
    id: int
    number: int
    hex: str
    direction: str
    lane_type: str
    enabled: bool


class StationOut(Schema):
    node_id: str
    name: str
    hex: str
    network: str
    lanes: list[LaneOut]


class LanePatch(Schema):
    enabled: bool


class FeeIn(Schema):
    exit: str
    vehicle_class: int
    entry: str | None = None
    path: list[str] | None = None
    payment: str = "etc"
    vehicle_kind: int = 0
    axles: int | None = None
    total_mass_kg: int | None = None
    # The trip is charged by the tariff version in force at its entry time.
    entry_time: dt.datetime | None = None


class ImportOut(Schema):
    id: int
    status: str
    source_name: str
    version: str | None
    summary: dict[str, Any]
    problems: list[dict[str, Any]]


class ImportRefusedOut(ImportOut):
    """A refused bundle: the import record (nothing imported) in the shape of
    every other error, one entry of `errors` per problem of `problems`."""

    code: str
    message: str
    errors: list[FieldIssueOut]


class VersionOut(Schema):
    number: str
    effective_at: dt.datetime
    discount_bp: int


def _station(node: Node) -> dict[str, Any]:
    return {
        "node_id": node.node_id,
        "name": node.name,
        "hex": node.hex,
        "network": node.network,
        "lanes": [
            {
                "id": lane.pk,
                "number": lane.number,
                "hex": lane.hex,
                "direction": lane.direction,
                "lane_type": lane.lane_type,
                "enabled": lane.enabled,
            }
            for lane in node.lanes.all()
        ],
    }


def _import(record: BundleImport) -> dict[str, Any]:
    return {
        "id": record.pk,
        "status": record.status,
        "source_name": record.source_name,
        "version": record.version.number if record.version else None,
        "summary": record.summary,
        "problems": record.problems,
    }


def _effective_at(text: str) -> dt.datetime:
    try:
        when = parse_local(text)
    except InvalidInput:
        when = None
    issue = date_issue("effective_at", when) if when else None
    if when is None or issue is not None:
        raise InvalidInput(
            issues=[
                issue
                or FieldIssue(
                    "effective_at", "not_a_date", gettext_noop("Enter a date as YYYY-MM-DD.")
                )
            ]
        )
    return when


def _refused(record: BundleImport) -> dict[str, Any]:
    issues = []
    for problem in record.problems:
        where = ":".join(str(problem[k]) for k in ("file", "line", "column") if problem.get(k))
        text = str(problem.get("message", ""))
        issues.append(
            {
                "field": "bundle",
                "code": str(problem.get("code", "invalid")),
                "message": f"{where}: {text}" if where else text,
            }
        )
    return {
        **_import(record),
        "code": "bundle_refused",
        "message": gettext(
            "The bundle is refused and nothing was imported; correct every problem."
        ),
        "errors": issues,
    }


@router.get("/stations", response={200: list[StationOut], **errors(400, 401, 403)})
def stations(request: HttpRequest, q: str = "") -> Any:
    _reader(request)
    return [_station(node) for node in selectors.stations(q)[:500]]


@router.get("/stations/{node_id}", response={200: StationOut, **errors(401, 403, 404)})
def station(request: HttpRequest, node_id: str) -> Any:
    _reader(request)
    node = (
        Node.objects.filter(node_id=node_id, kind=NodeKind.STATION)
        .prefetch_related("lanes")
        .first()
    )
    if node is None:
        raise NotFound(gettext_noop("Station not found."))
    return _station(node)


@router.patch("/lanes/{lane_id}", response={200: LaneOut, **errors(400, 401, 403, 404, 409)})
def patch_lane(request: HttpRequest, lane_id: int, payload: LanePatch) -> Any:
    lane = services.set_lane_enabled(lane_id, enabled=payload.enabled, actor=request.user)
    return {
        "id": lane.pk,
        "number": lane.number,
        "hex": lane.hex,
        "direction": lane.direction,
        "lane_type": lane.lane_type,
        "enabled": lane.enabled,
    }


@router.post(
    "/imports",
    response={201: ImportOut, 400: ImportRefusedOut | ErrorOut, **errors(401, 403)},
)
def import_bundle(
    request: HttpRequest, bundle: File[UploadedFile], effective_at: Form[str] = ""
) -> Any:
    """Imports a .zip of the bundle's CSV files; all or nothing. A refused
    bundle answers 400 `bundle_refused`: the error body, one `errors` entry per
    problem, with the import record (`problems`: file, line, column, code,
    message). An upload that is not such a zip is a plain 400 error."""
    if not has_role(request.user, Role.CENTER_OPERATOR):
        raise Forbidden()
    when = _effective_at(effective_at) if effective_at else timezone.now()
    with tempfile.TemporaryDirectory() as folder:
        extract_bundle(bundle, Path(folder))
        record = services.import_bundle(
            Path(folder), effective_at=when, actor=request.user, source_name=bundle.name or ""
        )
    if record.version is None:
        return Status(400, _refused(record))
    return Status(201, _import(record))


@router.get("/imports/{import_id}", response={200: ImportOut, **errors(400, 401, 403, 404)})
def get_import(request: HttpRequest, import_id: int) -> Any:
    _reader(request)
    record = BundleImport.objects.filter(pk=import_id).select_related("version").first()
    if record is None:
        raise NotFound(gettext_noop("Import not found."))
    return _import(record)


@router.get("/versions", response={200: list[VersionOut], **errors(401, 403)})
def versions(request: HttpRequest) -> Any:
    _reader(request)
    return [
        {"number": v.number, "effective_at": v.effective_at, "discount_bp": v.discount_bp}
        for v in TariffVersion.objects.all()[:100]
    ]


@router.post("/fees", response={200: dict[str, Any], **errors(400, 401, 403, 404)})
def compute_fee(request: HttpRequest, payload: FeeIn) -> Any:
    """The toll of a trip, by the tariff version in force at its entry time
    (now when not given)."""
    _reader(request)
    version = selectors.version_in_force(payload.entry_time or timezone.now())
    if version is None:
        raise NotFound(gettext_noop("No tariff version is in force."))
    try:
        payment = Payment(payload.payment)
    except ValueError:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "payment", "invalid_choice", gettext_noop("Choose one of the listed values.")
                )
            ]
        ) from None
    try:
        result = selectors.engine_for(version).trip(
            exit=payload.exit,
            vehicle_class=payload.vehicle_class,
            entry=payload.entry,
            path=payload.path,
            payment=payment,
            vehicle_kind=payload.vehicle_kind,
            axles=payload.axles,
            total_mass_kg=payload.total_mass_kg,
        )
    except FeeError as error:
        # The engine's English detail is a parameter, never part of the template.
        template = FEE_ERRORS.get(error.code, gettext_noop("The fee cannot be computed: {detail}"))
        raise DomainError(template, code=error.code, params={"detail": str(error)}) from None
    return {"version": version.number, **result.as_json()}
