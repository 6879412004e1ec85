"""Who may call what: a role × endpoint matrix over every operation of the JSON
API (`/api/v1/`) and every console page that changes state.

Each (operation, persona) is its own test. The expected outcome comes from the
code's intent (etcnet/core/roles.py, docs/issuance.md, docs/cards.md,
docs/network.md, docs/tolling.md; the auditor reads everything, masked, and
writes nothing):

- UNAUTH: anonymous — 401 on the API, a redirect to the login page on a page;
- DENY: the role may not — 403;
- HIDDEN: an outlet-bound object of another outlet — 404, never confirmed;
- ALLOW: anything but 401/403 (and below 500): a 2xx, or a 400/404/409 for the
  dummy input sent here (the matrix checks the gate, not the happy path).

A refused call (UNAUTH, DENY, HIDDEN) must change nothing: the row counts of
every etcnet table, the applications and lanes as stored, and the SMS outbox
are compared before and after.

The terminal endpoints (`/api/v1/tolling/…`) authenticate terminals, not
users: their personas are anonymous, a user session without terminal
credentials, the station's own terminal and another station's terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.client import ClientHandler
from django.utils import timezone

from conftest import make_user, photo, start, verified_application
from etcnet.api import api
from etcnet.cards import services as cards
from etcnet.cards.models import UnitKind
from etcnet.cards.tests.conftest import (
    _vault,  # noqa: F401  (fixture: a key vault per test)
    approved_application,
)
from etcnet.core.models import RateCounter
from etcnet.core.sms import MemorySmsSender
from etcnet.issuance import samples
from etcnet.issuance import services as issuance
from etcnet.issuance.models import Application, Outlet
from etcnet.network.models import Lane, Node, NodeKind
from etcnet.plates.models import PlateAccount, VehicleOffice
from etcnet.tolling import services as tolling
from etcnet.tolling.models import StationMembership

UNAUTH, DENY, HIDDEN, ALLOW = "unauth", "deny", "hidden", "allow"

PERSONAS = (
    "anonymous",
    "clerk",
    "other_outlet_clerk",
    "toll_collector",
    "station_master",
    "center_operator",
    "auditor",
    "vehicle_office_clerk",
    "internet_user",
)
CLERK_OUTLET = "610101001"
OTHER_OUTLET = "610102001"
WAREHOUSE = "610100000"  # the center's stock: where an operator receives and moves units
CARD_NO = "6101" + "9" * 16  # no such card: the gate answers before any lookup
OBU_NO = "6101999999999999"


def expect(*allowed: str, hidden: tuple[str, ...] = (), anonymous: str = UNAUTH) -> dict[str, str]:
    """Every persona's outcome: `allowed` may, `hidden` find nothing (404),
    anonymous is `anonymous`, the rest are refused (403)."""
    outcome = dict.fromkeys(PERSONAS, DENY)
    outcome.update(dict.fromkeys(allowed, ALLOW))
    outcome.update(dict.fromkeys(hidden, HIDDEN))
    outcome["anonymous"] = anonymous
    return outcome


CLERKS = ("clerk", "other_outlet_clerk")
READERS = (*CLERKS, "center_operator", "auditor")  # issuance and cards reads
NETWORK_READERS = ("center_operator", "auditor", "station_master", "toll_collector")
SESSION_USERS = tuple(p for p in PERSONAS if p != "anonymous")


@dataclass
class World:
    """The data one test builds: the outlets, the persona, and what the
    operation names (an application of the clerk's outlet, a lane)."""

    clerk: User
    outlet: Outlet
    other: Outlet
    application: Application | None = None
    lane: Lane | None = None
    binding: int | None = None
    users: dict[str, User] = field(default_factory=dict)


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # as in the schema, /api/v1/…
    url: Callable[[World], str]
    expected: dict[str, str]
    body: Callable[[World], Any] | None = None
    multipart: bool = False
    needs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def _app(w: World) -> int:
    assert w.application is not None
    return w.application.pk


def _lane(w: World) -> int:
    assert w.lane is not None
    return w.lane.pk


A = "/api/v1/issuance/applications"
C = "/api/v1/cards"
N = "/api/v1/network"
APP = ("application",)

API_OPS: list[Op] = [
    # --- sessions -----------------------------------------------------------
    Op(
        "POST",
        "/api/v1/auth/login",
        lambda w: "/api/v1/auth/login",
        expect(*SESSION_USERS, anonymous=ALLOW),
        body=lambda w: {"username": "nobody", "password": "wrong-password"},
    ),
    Op("POST", "/api/v1/auth/logout", lambda w: "/api/v1/auth/logout", expect(*SESSION_USERS)),
    # --- issuance -----------------------------------------------------------
    Op("GET", A, lambda w: A, expect(*READERS)),
    Op("POST", A, lambda w: A, expect(*CLERKS), body=lambda w: {"phone": "13900139000"}),
    Op(
        "GET",
        A + "/{application_id}",
        lambda w: f"{A}/{_app(w)}",
        expect("clerk", "center_operator", "auditor", hidden=("other_outlet_clerk",)),
        needs=APP,
    ),
    Op(
        "POST",
        A + "/{application_id}/phone/resend",
        lambda w: f"{A}/{_app(w)}/phone/resend",
        expect("clerk", hidden=("other_outlet_clerk",)),
        needs=APP,
    ),
    Op(
        "POST",
        A + "/{application_id}/phone/verify",
        lambda w: f"{A}/{_app(w)}/phone/verify",
        expect("clerk", hidden=("other_outlet_clerk",)),
        body=lambda w: {"code": "000000"},
        needs=APP,
    ),
    Op(
        "PUT",
        A + "/{application_id}/customer",
        lambda w: f"{A}/{_app(w)}/customer",
        expect("clerk", hidden=("other_outlet_clerk",)),
        body=lambda w: samples.personal_customer(),
        needs=APP,
    ),
    Op(
        "PUT",
        A + "/{application_id}/vehicle",
        lambda w: f"{A}/{_app(w)}/vehicle",
        expect("clerk", hidden=("other_outlet_clerk",)),
        body=lambda w: samples.passenger_car(),
        needs=APP,
    ),
    Op(
        "POST",
        A + "/{application_id}/documents/{kind}",
        lambda w: f"{A}/{_app(w)}/documents/id_photo",
        expect("clerk", hidden=("other_outlet_clerk",)),
        body=lambda w: {"file": photo("id_photo")},
        multipart=True,
        needs=APP,
    ),
    Op(
        "POST",
        A + "/{application_id}/submit",
        lambda w: f"{A}/{_app(w)}/submit",
        expect("clerk", hidden=("other_outlet_clerk",)),
        needs=APP,
    ),
    Op(
        "POST",
        A + "/{application_id}/customer-change",
        lambda w: f"{A}/{_app(w)}/customer-change",
        # Not waiting for review: 404 for every clerk (the gate is the role).
        expect("clerk", hidden=("other_outlet_clerk",)),
        body=lambda w: {"accept": True},
        needs=APP,
    ),
    # --- cards ----------------------------------------------------------------
    Op(
        "POST",
        C + "/batches",
        lambda w: C + "/batches",
        expect(*CLERKS, "center_operator"),
        body=lambda w: {"kind": "card", "reference": "R-1", "serials": []},
    ),
    Op(
        "POST",
        C + "/moves",
        lambda w: C + "/moves",
        expect(*CLERKS, "center_operator"),
        body=lambda w: {"kind": "card", "serials": [CARD_NO], "to_outlet": OTHER_OUTLET},
    ),
    Op(
        "POST",
        C + "/issuances",
        lambda w: C + "/issuances",
        expect("clerk", hidden=("other_outlet_clerk",)),
        body=lambda w: {
            "application_id": _app(w),
            "card_no": CARD_NO,
            "contract_no": OBU_NO,
            "card_type": 22,
        },
        needs=APP,
    ),
    Op(
        "POST",
        C + "/bindings/{binding_id}/activation",
        lambda w: C + "/bindings/999999/activation",
        expect(*CLERKS),
        body=lambda w: {"photo": photo("obu")},
        multipart=True,
    ),
    Op("GET", C + "/cards/{card_no}", lambda w: f"{C}/cards/{CARD_NO}", expect(*READERS)),
    Op(
        "POST",
        C + "/cards/{card_no}/top-ups",
        lambda w: f"{C}/cards/{CARD_NO}/top-ups",
        expect(*CLERKS),
        body=lambda w: {"amount_fen": 100, "channel": "cash", "idempotency_key": "k-1"},
    ),
    Op(
        "POST",
        C + "/cards/{card_no}/loss",
        lambda w: f"{C}/cards/{CARD_NO}/loss",
        expect(*CLERKS, "center_operator"),
        body=lambda w: {"reason": ""},
    ),
    Op(
        "DELETE",
        C + "/cards/{card_no}/loss",
        lambda w: f"{C}/cards/{CARD_NO}/loss",
        expect(*CLERKS, "center_operator"),
    ),
    Op(
        "POST",
        C + "/cards/{card_no}/replacement",
        lambda w: f"{C}/cards/{CARD_NO}/replacement",
        expect(*CLERKS),
        body=lambda w: {"new_card_no": "6101" + "8" * 16},
    ),
    Op(
        "POST",
        C + "/cards/{card_no}/cancellation",
        lambda w: f"{C}/cards/{CARD_NO}/cancellation",
        expect(*CLERKS),
        body=lambda w: {"obu_returned": True, "card_returned": True},
    ),
    Op(
        "POST",
        C + "/units/{kind}/{serial}/recycling",
        lambda w: f"{C}/units/card/{CARD_NO}/recycling",
        expect(*CLERKS),
    ),
    Op("GET", C + "/list-events", lambda w: C + "/list-events", expect(*READERS)),
    Op(
        "POST",
        C + "/cards/{card_no}/renewal",
        lambda w: f"{C}/cards/{CARD_NO}/renewal",
        expect(*CLERKS),
    ),
    Op(
        "POST",
        C + "/cards/{card_no}/suspension",
        lambda w: f"{C}/cards/{CARD_NO}/suspension",
        expect(*CLERKS, "center_operator"),
        body=lambda w: {"reason": "test"},
    ),
    Op(
        "POST",
        C + "/obus/{contract_no}/loss",
        lambda w: f"{C}/obus/{OBU_NO}/loss",
        expect(*CLERKS, "center_operator"),
        body=lambda w: {"reason": ""},
    ),
    Op(
        "POST",
        C + "/obus/{contract_no}/replacement",
        lambda w: f"{C}/obus/{OBU_NO}/replacement",
        expect(*CLERKS),
        body=lambda w: {"new_contract_no": "6101888888888888"},
    ),
    Op(
        "PUT",
        C + "/accounts/{number}/bank",
        lambda w: C + "/accounts/999999/bank",
        expect(*CLERKS),
        body=lambda w: {"bank_name": "工商银行", "bank_account_no": "6222020200000000000"},
    ),
    Op(
        "POST",
        C + "/top-ups/{top_up_id}/retry",
        lambda w: C + "/top-ups/999999/retry",
        expect(*CLERKS),
    ),
    Op(
        "POST",
        C + "/top-ups/{top_up_id}/refund",
        lambda w: C + "/top-ups/999999/refund",
        expect(*CLERKS),
    ),
    Op(
        "POST",
        C + "/cards/{card_no}/resumption",
        lambda w: f"{C}/cards/{CARD_NO}/resumption",
        expect(*CLERKS, "center_operator"),
    ),
    # --- network --------------------------------------------------------------
    Op("GET", N + "/stations", lambda w: N + "/stations", expect(*NETWORK_READERS)),
    Op(
        "GET",
        N + "/stations/{node_id}",
        lambda w: N + "/stations/S1201005",
        expect(*NETWORK_READERS),
        needs=("lane",),
    ),
    Op(
        "PATCH",
        N + "/lanes/{lane_id}",
        lambda w: f"{N}/lanes/{_lane(w)}",
        expect("center_operator"),
        body=lambda w: {"enabled": False},
        needs=("lane",),
    ),
    Op(
        "POST",
        N + "/imports",
        lambda w: N + "/imports",
        expect("center_operator"),
        body=lambda w: {"bundle": _junk_zip()},
        multipart=True,
    ),
    Op(
        "GET", N + "/imports/{import_id}", lambda w: N + "/imports/999999", expect(*NETWORK_READERS)
    ),
    Op("GET", N + "/versions", lambda w: N + "/versions", expect(*NETWORK_READERS)),
    Op(
        "POST",
        N + "/fees",
        lambda w: N + "/fees",
        expect(*NETWORK_READERS),
        body=lambda w: {"exit": "S1201005", "vehicle_class": 1},
    ),
]


def _junk_zip() -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("bundle.zip", b"not a zip", "application/zip")


# --- the data ------------------------------------------------------------------


def _persona(name: str, w: World) -> User | None:
    """The persona's user (None for anonymous), made for this test."""
    if name == "anonymous":
        return None
    if name == "clerk":
        return w.clerk
    if name == "other_outlet_clerk":
        return make_user("oscar", "issuance_clerk", outlet=w.other)
    if name == "center_operator":
        warehouse = Outlet.objects.create(code=WAREHOUSE, name="中心库房")
        return make_user("olga", "center_operator", outlet=warehouse)
    if name == "vehicle_office_clerk":
        user = make_user("vera", "vehicle_office_clerk")
        office = VehicleOffice.objects.create(
            code="440800", name="湛江市车管所", city="湛江市", prefix="粤G", address="湛江"
        )
        office.clerks.add(user)
        return user
    if name == "internet_user":
        user = User.objects.create_user(username="plate-13900000001", password="pw-12345678")
        PlateAccount.objects.create(
            user=user,
            user_type="new_vehicle_owner",
            id_type=101,
            id_number=samples.resident_id(seq="001"),
            name="张三",
            phone="13900000001",
            city="湛江市",
            registered_at=timezone.now(),
            agreement_version="1",
        )
        return user
    return make_user(name.replace("_", "-"), name)


def _world(needs: tuple[str, ...], clerk: User, outlet: Outlet) -> World:
    other = Outlet.objects.create(code=OTHER_OUTLET, name="西安城北网点")
    w = World(clerk=clerk, outlet=outlet, other=other)
    if "application" in needs:
        w.application = start(clerk)
    if "lane" in needs:
        station = Node.objects.create(
            node_id="S1201005", name="小孙庄", kind=NodeKind.STATION, hex="12010105", network="1201"
        )
        w.lane = Lane.objects.create(station=station, number=3, direction="exit", lane_type="mixed")
    return w


# One request handler for every client of the module: a new Client loads the
# middleware again, and WhiteNoise's scan of the static files is most of a
# test's time. The middleware keeps no per-test state.
_HANDLER = ClientHandler(enforce_csrf_checks=False)


def _new_client(**headers: str) -> Client:
    client = Client(headers=headers)
    client.handler = _HANDLER
    return client


def _client(user: User | None) -> Client:
    """A client signed in as the user: the session `force_login` would store,
    without the login signals (last login, django-axes' log) a test here
    does not need."""
    client = _new_client()
    if user is not None:
        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return client


def _count_sql() -> str:
    tables = sorted(
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.app_label in {"core", "issuance", "cards", "network", "tolling", "lists"}
        and model is not RateCounter
    )
    quote = connection.ops.quote_name
    return "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {quote(t)})" for t in tables)


def _state() -> tuple[Any, ...]:
    """What a refused call must leave as it was: the row count of every etcnet
    table (one query), the applications and lanes as stored, the SMS outbox."""
    with connection.cursor() as cursor:
        cursor.execute(_count_sql())
        counts = cursor.fetchone()
    return (
        counts,
        list(Application.objects.order_by("pk").values()),
        list(Lane.objects.order_by("pk").values()),
        len(MemorySmsSender.outbox),
    )


def _call(client: Client, method: str, url: str, body: Any, multipart: bool) -> Any:
    if method == "GET":
        return client.get(url)
    if multipart:
        return client.post(url, body or {})
    data = json.dumps(body) if body is not None else ""
    return client.generic(method, url, data, content_type="application/json")


def _check(outcome: str, response: Any, *, page: bool = False) -> None:
    status = response.status_code
    shown = f"{status} {response.content[:300]!r}"
    if outcome == UNAUTH:
        if page:
            assert status == 302, shown
            assert "/login/" in response["Location"], shown
        else:
            assert status == 401, shown
    elif outcome == DENY:
        assert status == 403, shown
    elif outcome == HIDDEN:
        assert status == 404, shown
    else:
        assert status not in (401, 403), shown
        assert status < 500, shown
        if page and status == 302:
            assert "/login/" not in response["Location"], shown


# --- the API matrix ------------------------------------------------------------

API_CASES = [
    pytest.param(op, persona, id=f"{op.key}-{persona}") for op in API_OPS for persona in PERSONAS
]


@pytest.mark.parametrize(("op", "persona"), API_CASES)
def test_api(op: Op, persona: str, clerk: User, outlet: Outlet) -> None:
    w = _world(op.needs, clerk, outlet)
    client = _client(_persona(persona, w))
    body = op.body(w) if op.body else None
    outcome = op.expected[persona]
    before = _state()

    response = _call(client, op.method, op.url(w), body, op.multipart)

    _check(outcome, response)
    if outcome != ALLOW:
        assert response.json()["code"] in {"unauthenticated", "forbidden", "not_found"}
        assert _state() == before


def test_the_matrix_covers_every_operation_of_the_schema() -> None:
    schema = api.get_openapi_schema(path_prefix="/api/v1/")
    operations = {
        f"{method.upper()} {path}"
        for path, methods in schema["paths"].items()
        for method in methods
        if not path.startswith("/api/v1/tolling/")
    }
    assert operations == {op.key for op in API_OPS}
    terminal = {
        f"{method.upper()} {path}"
        for path, methods in schema["paths"].items()
        for method in methods
        if path.startswith("/api/v1/tolling/")
    }
    assert terminal == {f"{method} {path}" for method, path, *_ in TERMINAL_OPS}


# --- the terminal endpoints ----------------------------------------------------

T = "/api/v1/tolling"
TERMINAL_PERSONAS = ("anonymous", "user_session", "terminal", "other_station_terminal")
TERMINAL_OPS: list[tuple[str, str, str, Any]] = [
    ("POST", T + "/uploads", T + "/uploads", {"upload_key": "u-1", "records": []}),
    ("POST", T + "/logins", T + "/logins", {"username": "carl", "password": "pw-12345678"}),
    ("GET", T + "/downloads/station", T + "/downloads/station", None),
    ("GET", T + "/downloads/tariff", T + "/downloads/tariff", None),
    ("GET", T + "/downloads/status-list/plan", T + "/downloads/status-list/plan", None),
    (
        "GET",
        T + "/downloads/status-list/{kind}/{number}",
        T + "/downloads/status-list/full/latest",  # none published: 404 for a terminal
        None,
    ),
    ("GET", T + "/downloads/verifiers", T + "/downloads/verifiers", None),
]
TERMINAL_EXPECTED = {
    "anonymous": UNAUTH,
    "user_session": UNAUTH,  # a console session is no terminal credential
    "terminal": ALLOW,
    "other_station_terminal": ALLOW,
}


@dataclass
class Stations:
    own: Any  # (Terminal, secret, psam path) at 小孙庄 S1201005
    other: Any  # at 杨村 S1201048
    operator: User


@pytest.fixture
def stations(db: Any) -> Stations:
    """Two stations, a terminal at each; collector carl and station master sam
    belong to 小孙庄, station master tom to 杨村."""
    operator = make_user("olga", "center_operator")
    nodes = {}
    for node_id, name, hex_ in (
        ("S1201005", "小孙庄", "12010105"),
        ("S1201048", "杨村", "12010148"),
    ):
        nodes[node_id] = Node.objects.create(
            node_id=node_id, name=name, kind=NodeKind.STATION, hex=hex_, network="1201"
        )
    for username, role, node_id in (
        ("carl", "toll_collector", "S1201005"),
        ("sam", "station_master", "S1201005"),
        ("tom", "station_master", "S1201048"),
    ):
        StationMembership.objects.create(user=make_user(username, role), station=nodes[node_id])
    own = tolling.register_terminal("HH-0001", station_id="S1201005", lanes=[], actor=operator)
    other = tolling.register_terminal("HH-0002", station_id="S1201048", lanes=[], actor=operator)
    return Stations(own=own, other=other, operator=operator)


def _terminal_client(persona: str, s: Stations) -> Client:
    if persona == "anonymous":
        return _new_client()
    if persona == "user_session":
        return _client(s.operator)
    term, secret, _ = s.own if persona == "terminal" else s.other
    return _new_client(Authorization=f"Bearer {term.terminal_id}.{secret}")


@pytest.mark.parametrize(
    ("method", "url", "body", "persona"),
    [
        pytest.param(method, url, body, persona, id=f"{method} {path}-{persona}")
        for method, path, url, body in TERMINAL_OPS
        for persona in TERMINAL_PERSONAS
    ],
)
def test_terminal_api(method: str, url: str, body: Any, persona: str, stations: Stations) -> None:
    client = _terminal_client(persona, stations)
    outcome = TERMINAL_EXPECTED[persona]
    before = _state()

    response = _call(client, method, url, body, multipart=False)

    _check(outcome, response)
    if outcome != ALLOW:
        assert response.json()["code"] == "unauthenticated"
        assert _state() == before


def test_a_terminal_downloads_only_its_own_stations_staff_and_data(stations: Stations) -> None:
    own = _terminal_client("terminal", stations)
    other = _terminal_client("other_station_terminal", stations)

    def names(client: Client) -> set[str]:
        answer = client.get(T + "/downloads/verifiers")
        assert answer.status_code == 200
        return {user["username"] for user in answer.json()["users"]}

    assert names(own) == {"carl", "sam"}
    assert names(other) == {"tom"}
    assert own.get(T + "/downloads/station").json()["station"]["node_id"] == "S1201005"
    assert other.get(T + "/downloads/station").json()["station"]["node_id"] == "S1201048"


def test_a_station_master_signs_in_only_at_his_own_stations_terminal(stations: Stations) -> None:
    body = {"username": "sam", "password": "pw-12345678"}

    here = _call(_terminal_client("terminal", stations), "POST", T + "/logins", body, False)
    there = _call(
        _terminal_client("other_station_terminal", stations), "POST", T + "/logins", body, False
    )

    assert here.status_code == 200
    assert here.json()["roles"] == ["station_master"]
    assert there.status_code == 403
    assert there.json()["code"] == "login_refused"


# --- the console pages that change state ---------------------------------------

I = "/issuance/applications"  # noqa: E741
K = "/cards"
CARD_PAGE = f"{K}/cards/{CARD_NO}"
CLERK_OR_OPERATOR = (*CLERKS, "center_operator")


@dataclass(frozen=True)
class Page:
    name: str
    url: Callable[[World], str]
    expected: dict[str, str]
    data: Callable[[World], dict[str, Any]] = lambda w: {}
    needs: tuple[str, ...] = ()


def _step_url(suffix: str) -> Callable[[World], str]:
    return lambda w: f"{I}/{_app(w)}/{suffix}/"


def _binding(w: World) -> int:
    assert w.binding is not None
    return int(w.binding)


PAGES: list[Page] = [
    # --- issuance (seed 000): the clerk's wizard, at his outlet -----------------
    Page(
        "issuance:start", lambda w: f"{I}/new/", expect(*CLERKS), lambda w: {"phone": "13900139000"}
    ),
    *(
        Page(
            f"issuance:{name}",
            _step_url(suffix),
            expect("clerk", hidden=("other_outlet_clerk",)),
            data,
            needs=APP,
        )
        for name, suffix, data in (
            ("phone", "phone", lambda w: {"code": "000000"}),
            ("phone_resend", "phone", lambda w: {"resend": "1"}),
            ("customer", "customer", lambda w: samples.personal_customer()),
            ("id_photo", "id-photo", lambda w: {"id_photo": photo("id_photo")}),
            ("vehicle", "vehicle", lambda w: samples.passenger_car()),
            ("vehicle_photos", "vehicle-photos", lambda w: {}),
            ("submit", "submit", lambda w: {}),
            ("customer_change", "customer-change", lambda w: {"decision": "accept"}),
        )
    ),
    Page(
        "issuance:document_reveal",  # the auditor's audited look at one photo
        lambda w: f"{I}/{_app(w)}/documents/id_photo/reveal/",
        expect("auditor"),
        lambda w: {"reason": "spot check"},
        needs=APP,
    ),
    # --- cards ------------------------------------------------------------------
    Page(
        "cards:issue",
        lambda w: f"{K}/issue/{_app(w)}/",
        expect("clerk", hidden=("other_outlet_clerk",)),
        lambda w: {"card_no": CARD_NO, "contract_no": OBU_NO, "card_type": "22"},
        needs=APP,
    ),
    Page(
        "cards:binding (activation)",
        lambda w: f"{K}/bindings/{_binding(w)}/",
        expect(*CLERKS),  # operators and auditors see the page; activating is refused
        lambda w: {"photo": photo("obu")},
        needs=("binding",),
    ),
    Page(
        "cards:inventory (receive)",
        lambda w: f"{K}/inventory/",
        expect(*CLERK_OR_OPERATOR),
        lambda w: {"kind": "card", "reference": "R-1", "first": "", "count": "1"},
    ),
    Page(
        "cards:move",
        lambda w: f"{K}/inventory/move/",
        expect(*CLERK_OR_OPERATOR),
        lambda w: {"kind": "card", "serials": CARD_NO, "to_outlet": OTHER_OUTLET},
    ),
    Page(
        "cards:top_up",
        lambda w: f"{CARD_PAGE}/top-up/",
        expect(*CLERKS),
        lambda w: {"amount": "1.00", "channel": "cash"},
    ),
    Page("cards:retry_top_up", lambda w: f"{CARD_PAGE}/top-ups/999999/retry/", expect(*CLERKS)),
    Page("cards:refund_top_up", lambda w: f"{CARD_PAGE}/top-ups/999999/refund/", expect(*CLERKS)),
    Page("cards:resume", lambda w: f"{CARD_PAGE}/resume/", expect(*CLERK_OR_OPERATOR)),
    Page("cards:report_loss", lambda w: f"{CARD_PAGE}/loss/", expect(*CLERK_OR_OPERATOR)),
    Page("cards:cancel_loss", lambda w: f"{CARD_PAGE}/loss/cancel/", expect(*CLERK_OR_OPERATOR)),
    Page(
        "cards:replace",
        lambda w: f"{CARD_PAGE}/replace/",
        expect(*CLERKS),
        lambda w: {"new_card_no": "6101" + "8" * 16},
    ),
    Page("cards:cancel", lambda w: f"{CARD_PAGE}/cancel/", expect(*CLERKS)),
    Page("cards:renew", lambda w: f"{CARD_PAGE}/renewal/", expect(*CLERKS)),
    Page(
        "cards:suspend",
        lambda w: f"{CARD_PAGE}/suspension/",
        expect(*CLERK_OR_OPERATOR),
        lambda w: {"reason": "test"},
    ),
    Page("cards:obu_loss", lambda w: f"{K}/obus/{OBU_NO}/loss/", expect(*CLERK_OR_OPERATOR)),
    Page(
        "cards:replace_obu",
        lambda w: f"{K}/obus/{OBU_NO}/replace/",
        expect(*CLERKS),
        lambda w: {"new_contract_no": "6101888888888888"},
    ),
    Page(
        "cards:link_bank",
        lambda w: f"{K}/accounts/999999/bank/",
        expect(*CLERKS),
        lambda w: {"bank_name": "工商银行", "bank_account_no": "6222020200000000000"},
    ),
    # --- network, lists: the center operator ---------------------------------------
    Page(
        "network:lane_toggle",
        lambda w: f"/network/lanes/{_lane(w)}/toggle/",
        expect("center_operator"),
        lambda w: {"enabled": "0"},
        needs=("lane",),
    ),
    Page(
        "network:lane_add",
        lambda w: "/network/stations/S1201005/lanes/",
        expect("center_operator"),
        lambda w: {"number": "4", "direction": "exit", "lane_type": "mixed"},
        needs=("lane",),
    ),
    Page(
        "network:import",
        lambda w: "/network/import/",
        expect("center_operator"),
        lambda w: {"bundle": _junk_zip()},
    ),
    Page("lists:publish", lambda w: "/lists/publish/", expect("center_operator")),
    Page("lists:import", lambda w: "/lists/import/", expect("center_operator")),
    # --- plates: the operator's settings, the vehicle office ------------------------
    Page(
        "plates:manage",
        lambda w: "/plates/manage/",
        expect("center_operator"),
        lambda w: {"action": "day", "day": "2026-12-31", "working": "0", "note": "test"},
    ),
    Page(
        "plates:office",
        lambda w: "/plates/office/",
        expect("vehicle_office_clerk"),
        lambda w: {"q": "粤G00001", "refuse": "1", "reason": "test"},
    ),
    Page(
        "plates:window",
        lambda w: "/plates/office/window/",
        expect("vehicle_office_clerk"),
        lambda w: {"id_number": "", "password": ""},
    ),
]


def _issued_binding(clerk: User) -> int:
    """A binding as issuing leaves it (not yet activated), at the clerk's outlet."""
    cards.receive_batch(
        kind=UnitKind.CARD, reference="C-1", serials=[CARD_NO], emulated=True, actor=clerk
    )
    cards.receive_batch(
        kind=UnitKind.OBU, reference="O-1", serials=[OBU_NO], emulated=True, actor=clerk
    )
    application = approved_application(clerk)
    return cards.issue(
        application.pk, card_no=CARD_NO, contract_no=OBU_NO, card_type=22, actor=clerk
    ).pk


@pytest.mark.parametrize(
    ("page", "persona"),
    [pytest.param(p, persona, id=f"{p.name}-{persona}") for p in PAGES for persona in PERSONAS],
)
def test_page(page: Page, persona: str, clerk: User, outlet: Outlet) -> None:
    w = _world(page.needs, clerk, outlet)
    if "binding" in page.needs:
        w.binding = _issued_binding(clerk)
    client = _client(_persona(persona, w))
    data = page.data(w)
    outcome = page.expected[persona]
    before = _state()

    response = client.post(page.url(w), data)

    if outcome == HIDDEN and response.status_code == 302:
        # The submit page sends every refusal back to the review step, which
        # then finds no such application: never confirmed either way.
        response = client.get(response["Location"])
    _check(outcome, response, page=True)
    if outcome != ALLOW:
        assert _state() == before


# --- what a reader sees of another outlet's application, and how ----------------

READS = [
    # persona, sees the application, in clear
    ("clerk", True, True),
    ("other_outlet_clerk", False, False),
    ("center_operator", True, True),
    ("auditor", True, False),  # read-only, personal data masked, no photo links
]


@pytest.mark.parametrize(("persona", "sees", "clear"), READS, ids=[r[0] for r in READS])
def test_an_application_is_read_by_its_outlet_the_center_and_the_auditor_masked(
    persona: str, sees: bool, clear: bool, clerk: User, outlet: Outlet
) -> None:
    w = _world((), clerk, outlet)
    application = verified_application(clerk, phone="13800138000")
    issuance.upload_documents(application.pk, files={"id_photo": photo("id_photo")}, actor=clerk)
    client = _client(_persona(persona, w))

    listed = client.get(A).json()
    found = client.get(A, {"q": "13800138000"}).json()  # a whole phone number is a search key
    detail = client.get(f"{A}/{application.pk}")
    page = client.get(f"/issuance/applications/{application.pk}/")
    document = client.get(f"/issuance/applications/{application.pk}/documents/id_photo/")

    assert (listed["count"], found["count"]) == ((1, 1) if sees else (0, 0))
    if sees:
        assert listed["items"][0]["phone"] == "138****8000"  # lists mask for everyone
        assert detail.status_code == 200
        assert page.status_code == 200
        body = detail.json()
        assert body["phone"] == ("13800138000" if clear else "138****8000")
        assert bool(body["documents"][0]["url"]) is clear
        # The auditor's photos: refused, revealed one at a time with a reason.
        assert document.status_code == (200 if clear else 403)
    else:
        assert detail.status_code == 404
        assert detail.json()["code"] == "not_found"
        assert page.status_code == 404
        assert document.status_code == 404


# --- stock is bound to its outlet -------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [("clerk", 200), ("other_outlet_clerk", 409), ("center_operator", 409)],
)
def test_only_the_outlet_holding_a_unit_in_stock_moves_it(
    persona: str, status: int, clerk: User, outlet: Outlet
) -> None:
    w = _world((), clerk, outlet)
    cards.receive_batch(
        kind=UnitKind.CARD, reference="C-1", serials=[CARD_NO], emulated=False, actor=clerk
    )
    client = _client(_persona(persona, w))
    before = _state()

    response = _call(
        client,
        "POST",
        C + "/moves",
        {"kind": "card", "serials": [CARD_NO], "to_outlet": OTHER_OUTLET},
        multipart=False,
    )

    assert response.status_code == status, response.content
    if status == 200:
        assert response.json() == {"moved": 1}
    else:
        assert response.json()["code"] == "not_in_stock"
        assert _state() == before
