"""The terminals' ingest endpoint. A terminal authenticates every call with
`Authorization: Bearer <terminal_id>.<secret>`; no anonymous upload."""

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema
from ninja.security import HttpBearer

from etcnet.clock.selectors import center_now
from etcnet.core.errors import Forbidden, NotFound
from etcnet.core.schemas import errors
from etcnet.core.validators import gettext_noop
from etcnet.network import selectors as network_selectors
from etcnet.tolling import services
from etcnet.tolling.models import Terminal


class TerminalAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Terminal | None:
        terminal_id, _, secret = token.partition(".")
        if not terminal_id or not secret or "\x00" in token:
            return None
        return services.authenticate(terminal_id, secret)


router = Router(auth=TerminalAuth())


#: Records in one upload: the terminal sends 100; a backlog may go in larger batches.
MAX_RECORDS = 5_000


class UploadIn(Schema):
    upload_key: str
    # Any JSON value: a record that is not an object is answered `invalid` on its
    # own instead of failing the whole upload.
    records: list[Any] = Field(max_length=MAX_RECORDS)


class UploadOut(Schema):
    upload_key: str
    results: list[dict[str, Any]]
    server_time: str


@router.post("/uploads", response={200: UploadOut, **errors(400, 401, 409)})
def upload(request: HttpRequest, payload: UploadIn) -> Any:
    """Exit transactions from a terminal, each answered `accepted`, `duplicate`,
    `rejected` (with the §6.2 dispute code) or `conflict`. The same upload key
    with the same payload gets the same answer; with another payload, 409
    `idempotency_conflict`. `server_time` lets the terminal measure its clock offset
    (the center's clock corrected by its time source: docs/clock.md)."""
    terminal: Terminal = request.auth  # type: ignore[attr-defined]
    return services.ingest(terminal, upload_key=payload.upload_key[:64], records=payload.records)


class LoginIn(Schema):
    username: str
    password: str


@router.post("/logins", response={200: dict[str, Any], **errors(400, 401, 403, 429)})
def login(request: HttpRequest, payload: LoginIn) -> Any:
    """A collector or station master signing in at this terminal: 200 with their
    roles and password verifier (for the terminal's offline sign-in), or 403
    `login_refused` for wrong credentials or a user who works neither role."""
    terminal: Terminal = request.auth  # type: ignore[attr-defined]
    found = services.login(
        terminal, username=payload.username[:150], password=payload.password[:200], request=request
    )
    if found is None:
        raise Forbidden(
            gettext_noop(
                "Wrong username or password, or the user is neither a collector nor a "
                "station master."
            ),
            code="login_refused",
        )
    return {**found, "server_time": center_now().isoformat()}


@router.get("/downloads/station", response={200: dict[str, Any], **errors(401)})
def station_data(request: HttpRequest) -> Any:
    """The terminal's station and the lanes it may work (enabled or not, so the
    terminal can say why a lane is unavailable)."""
    terminal: Terminal = request.auth  # type: ignore[attr-defined]
    allowed = set(terminal.lanes.values_list("pk", flat=True))
    return {
        "terminal_id": terminal.terminal_id,
        "psam_terminal_no": terminal.psam_terminal_no,
        "station": {
            "node_id": terminal.station.node_id,
            "name": terminal.station.name,
            "hex": terminal.station.hex,
            "network": terminal.station.network,
        },
        "lanes": [
            {
                "number": lane.number,
                "hex": lane.hex,
                "direction": lane.direction,
                "lane_type": lane.lane_type,
                "enabled": lane.enabled,
                "allowed": lane.pk in allowed,
            }
            for lane in terminal.station.lanes.all()
        ],
        "server_time": center_now().isoformat(),
    }


@router.get("/downloads/tariff", response={200: dict[str, Any], **errors(401)})
def tariff(request: HttpRequest) -> Any:
    """The tariff version in force and the minimum fees from every station to
    this terminal's station (what its exits charge when the path is unknown)."""
    terminal: Terminal = request.auth  # type: ignore[attr-defined]
    version = network_selectors.version_in_force(timezone.now())
    if version is None:
        return {"version": None, "minimum_fees": [], "server_time": center_now().isoformat()}
    engine = network_selectors.engine_for(version)
    exit_id = terminal.station.node_id
    rows = []
    for vehicle_class in engine.network.classes:
        table = engine.minimum_arrays(vehicle_class)
        if exit_id not in table.stations:
            continue  # an open-road station: its fixed fee needs no table
        mask = table.exit == table.stations.index(exit_id)
        for entry, fee, length in zip(
            table.entry[mask].tolist(),
            table.fee_fen[mask].tolist(),
            table.length_m[mask].tolist(),
            strict=True,
        ):
            rows.append(
                {
                    "entry": table.stations[entry],
                    "vehicle_class": vehicle_class,
                    "fee_fen": fee,
                    "length_m": length,
                }
            )
    network = engine.network
    return {
        "version": version.number,
        "effective_at": version.effective_at.isoformat(),
        "discount_bp": version.discount_bp,
        "minimum_fees": rows,
        # The whole network, so the terminal's own fee engine charges offline
        # exactly as the center does (farthest entry, open road, exempt kinds).
        "network": {
            "owners": [[o.owner_id, o.name] for o in network.owners.values()],
            "nodes": [
                [n.node_id, n.name, n.kind, n.hex, n.network] for n in network.nodes.values()
            ],
            "intervals": [
                [i.interval_id, i.from_node, i.to_node, i.length_m, i.owner_id, i.gantry_id]
                for i in network.intervals.values()
            ],
            "fees": [[k, c, fee] for (k, c), fee in network.fees.items()],
            "open_fees": [[k, c, fee] for (k, c), fee in network.open_fees.items()],
        },
        "server_time": center_now().isoformat(),
    }


@router.get("/downloads/status-list/plan", response={200: dict[str, Any], **errors(400, 401)})
def status_list_plan(request: HttpRequest, held: str = "") -> Any:
    """What to download to be current (docs/lists.md): with `held` the version
    the terminal holds, the increments after it; `full_needed` when it must
    start again from the latest full version (it holds none, or one too old).
    `public_key` is the center's Ed25519 key the files are signed with."""
    from django.conf import settings

    from etcnet.lists import selectors as list_selectors
    from etcnet.lists.signing import signing_key
    from etcnet.lists.versionfile import key_id, public_key_text

    public = signing_key().public_key()
    now = timezone.now()
    return {
        **list_selectors.plan_for(held or None, now=now, keep_days=settings.ETCNET_LIST_KEEP_DAYS),
        "public_key": public_key_text(public),
        "key_id": key_id(public),
        "server_time": center_now().isoformat(),
    }


@router.get(
    "/downloads/status-list/{kind}/{number}",
    response=errors(401, 404),
    openapi_extra={
        "responses": {
            200: {
                "description": "The signed version file",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def status_list_file(request: HttpRequest, kind: str, number: str) -> Any:
    """A version file: `increment/<number>` or `full/<number>` (`full/latest`)."""
    from django.http import FileResponse

    from etcnet.lists.models import ListVersion
    from etcnet.lists.services import version_path

    versions = ListVersion.objects.all()
    if kind == "full":
        versions = versions.exclude(full_file="")
    elif kind != "increment":
        raise NotFound(gettext_noop("Version file not found."))
    version = (
        versions.order_by("-number").first()
        if number == "latest"
        else versions.filter(number=number).first()
    )
    path = version_path(version, full=kind == "full") if version else None
    if path is None or not path.exists():
        raise NotFound(gettext_noop("Version file not found."))
    return FileResponse(path.open("rb"), content_type="application/zip", filename=path.name)


@router.get("/downloads/verifiers", response={200: dict[str, Any], **errors(401)})
def verifiers(request: HttpRequest) -> Any:
    """Password verifiers of this station's collectors and station masters (their
    station membership), for the terminal's offline login: Django's own salted
    hashes, never a password. Another station's staff are not sent."""
    terminal: Terminal = request.auth  # type: ignore[attr-defined]
    users = services.station_staff(terminal.station)
    return {
        "users": [
            {
                "username": u.username,
                "roles": sorted(u.groups.values_list("name", flat=True)),
                "verifier": u.password,
            }
            for u in users
        ],
        "server_time": center_now().isoformat(),
    }
