"""The API's error answers, one by one: each status the schema documents comes
in the one error shape, and each input that once answered 500 (found by the
schemathesis run, tests/test_api_schema.py) has its exact regression here."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from etcnet.api import api
from etcnet.cards.models import Batch
from etcnet.cards.tests.conftest import _vault, approved, stock  # noqa: F401  (fixtures)
from etcnet.core.models import AuditEvent
from etcnet.issuance.models import Application
from etcnet.network.models import BundleImport, TariffVersion
from etcnet.tolling.tests.conftest import card, terminal, tianjin  # noqa: F401  (fixtures)
from etcnet.tolling.tests.test_ingest import client_for, purchase, record

DEMO = Path(__file__).resolve().parents[1] / "etcnet" / "network" / "demo_bundle"
ERROR_KEYS = {"code", "message", "errors"}


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client: Client, path: str, body: object, **extra: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


# --- NUL characters: PostgreSQL stores none, so each answered 500 there -------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/cards/cards/6101%0000000000000001", "card_no"),
        ("/api/v1/network/stations/S12%0001005", "node_id"),
        ("/api/v1/network/stations?q=%00", "q"),
        ("/api/v1/issuance/applications?plate=%E9%99%95A%00", "plate"),
    ],
)
def test_a_nul_character_in_a_path_or_query_is_refused_by_name(
    path: str, field: str, clerk: Any, operator: Any
) -> None:
    client = logged_in(operator if "/network/" in path else clerk)

    response = client.get(path)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        (field, "invalid_character")
    ]


def test_a_nul_character_in_a_body_field_is_refused_and_nothing_is_stored(clerk: Any) -> None:
    client = logged_in(clerk)
    events = AuditEvent.objects.count()

    response = post_json(client, "/api/v1/issuance/applications", {"phone": "13800138000\x00"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "phone"
    assert response.json()["errors"][0]["code"] == "invalid_character"
    assert (Application.objects.count(), AuditEvent.objects.count()) == (0, events)
    # The next good input still goes through.
    good = post_json(client, "/api/v1/issuance/applications", {"phone": "13800138000"})
    assert good.status_code == 201


def test_a_nul_character_inside_a_list_names_its_item(clerk: Any) -> None:
    body = {"kind": "card", "reference": "C-1", "serials": ["6101000000000001", "61\x0001"]}

    response = post_json(logged_in(clerk), "/api/v1/cards/batches", body)

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["serials.1"]
    assert not Batch.objects.exists()


def test_a_nul_character_in_a_login_is_refused_by_name_not_a_server_error(clerk: Any) -> None:
    response = post_json(Client(), "/api/v1/auth/login", {"username": "alice\x00", "password": "x"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "username"


def test_a_nul_character_in_a_terminal_token_is_unauthenticated(terminal: Any) -> None:  # noqa: F811
    client = Client(headers={"Authorization": f"Bearer {terminal[0].terminal_id}\x00.x"})

    response = client.get("/api/v1/tolling/downloads/station")

    assert response.status_code == 401
    assert set(response.json()) == ERROR_KEYS


# --- Each documented status, in the one shape ----------------------------------


def test_an_anonymous_call_is_401_in_the_error_shape(db: Any) -> None:
    response = Client().get("/api/v1/network/versions")

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert set(response.json()) == ERROR_KEYS


def test_a_role_without_the_right_is_403_and_a_missing_csrf_token_too(collector: Any) -> None:
    client = logged_in(collector)
    forbidden = client.get("/api/v1/cards/list-events")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(collector)
    no_token = post_json(strict, "/api/v1/auth/logout", {})

    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
    assert (no_token.status_code, no_token.json()["code"]) == (403, "csrf_failed")
    assert set(forbidden.json()) == set(no_token.json()) == ERROR_KEYS


def test_a_terminal_login_refused_is_403_in_the_error_shape(terminal: Any) -> None:  # noqa: F811
    client = Client(headers={"Authorization": f"Bearer {terminal[0].terminal_id}.{terminal[1]}"})

    response = post_json(client, "/api/v1/tolling/logins", {"username": "carl", "password": "no"})

    assert response.status_code == 403
    assert response.json()["code"] == "login_refused"
    assert set(response.json()) == ERROR_KEYS


def test_a_missing_status_list_file_is_404_in_the_error_shape(terminal: Any) -> None:  # noqa: F811
    client = Client(headers={"Authorization": f"Bearer {terminal[0].terminal_id}.{terminal[1]}"})

    response = client.get("/api/v1/tolling/downloads/status-list/full/209901010000")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert set(response.json()) == ERROR_KEYS


def test_repeated_failed_logins_end_in_429_in_the_error_shape(clerk: Any, settings: Any) -> None:
    client = Client()
    answers = [
        post_json(client, "/api/v1/auth/login", {"username": "alice", "password": "wrong"})
        for _ in range(settings.AXES_FAILURE_LIMIT + 1)
    ]

    assert [a.status_code for a in answers][-1] == 429
    assert answers[-1].json()["code"] == "login_locked"
    assert set(answers[-1].json()) == ERROR_KEYS


def test_codes_past_the_sms_limit_are_429_in_the_error_shape_as_documented(
    clerk: Any, settings: Any
) -> None:
    settings.ETCNET_RATE_SMS_PER_MOBILE = (1, 3600)
    client = logged_in(clerk)
    first = post_json(client, "/api/v1/issuance/applications", {"phone": "13800138000"})
    assert first.status_code == 201
    before = Application.objects.count()

    again = post_json(client, "/api/v1/issuance/applications", {"phone": "13800138000"})

    assert again.status_code == 429
    assert set(again.json()) == ERROR_KEYS
    assert Application.objects.count() == before
    operation = api.get_openapi_schema()["paths"]["/api/v1/issuance/applications"]["post"]
    assert 429 in operation["responses"]


def test_a_path_that_names_no_operation_is_404_in_the_error_shape(clerk: Any) -> None:
    # A card number with a slash no longer matches the operation's path.
    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk)
    answers = [
        client.get("/api/v1/cards/cards/6101%2F0001"),
        post_json(client, "/api/v1/cards/nowhere", {}),
    ]

    for response in answers:
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "not_found"
        assert set(response.json()) == ERROR_KEYS


# --- A refused bundle: 400 with the error shape and its import record ------------


def _zip(files: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return SimpleUploadedFile("bundle.zip", buffer.getvalue(), "application/zip")


def test_a_refused_bundle_answers_400_with_every_problem_and_its_import(operator: Any) -> None:
    files = {path.name: path.read_bytes() for path in DEMO.glob("*.csv")}
    files["owners.csv"] = b"owner_id,name\nO1201001,\n"  # a name is required

    response = logged_in(operator).post("/api/v1/network/imports", {"bundle": _zip(files)})

    body = response.json()
    assert response.status_code == 400
    assert body["code"] == "bundle_refused"
    assert body["status"] == "refused"
    assert body["version"] is None
    assert len(body["errors"]) == len(body["problems"]) >= 1
    assert {e["field"] for e in body["errors"]} == {"bundle"}
    assert BundleImport.objects.get().pk == body["id"]
    assert not TariffVersion.objects.exists()


def test_an_upload_that_is_not_a_zip_answers_400_in_the_error_shape(operator: Any) -> None:
    upload = SimpleUploadedFile("bundle.zip", b"not a zip", "application/zip")

    response = logged_in(operator).post("/api/v1/network/imports", {"bundle": upload})

    assert response.status_code == 400
    assert set(response.json()) == ERROR_KEYS
    assert response.json()["errors"][0]["code"] == "not_zip"
    assert not BundleImport.objects.exists()


# --- The schema says so ------------------------------------------------------------


def test_the_schema_documents_every_error_status_with_the_error_body() -> None:
    schema = api.get_openapi_schema(path_prefix="/api/v1/")
    error_ref = "#/components/schemas/ErrorOut"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = {int(status) for status in operation["responses"]}
            label = f"{method.upper()} {path}"
            if path != "/api/v1/auth/login":
                assert 401 in statuses, label
            for status in statuses - {200, 201, 204}:
                content = operation["responses"][status]["content"]["application/json"]
                refs = [content["schema"].get("$ref")] + [
                    option.get("$ref") for option in content["schema"].get("anyOf", [])
                ]
                assert error_ref in refs, (label, status)
    login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {400, 429} <= set(login)


# --- Dates out of range: converting them to UTC or local time overflowed -------


@pytest.mark.parametrize(
    "query",
    ["date_to=9999-12-31", "date_from=0001-01-01&date_to=9999-12-31"],
)
def test_an_application_list_date_out_of_range_is_refused_by_name(query: str, clerk: Any) -> None:
    response = logged_in(clerk).get(f"/api/v1/issuance/applications?{query}")

    assert response.status_code == 400
    fields = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert set(fields.values()) == {"out_of_range"}
    assert "date_to" in fields


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_fee_entry_time_out_of_range_is_refused_by_name(
    when: str,
    operator: Any,
    tianjin: Any,  # noqa: F811
) -> None:
    body = {"exit": "S1201005", "entry": "S1201001", "vehicle_class": 1, "entry_time": when}

    response = post_json(logged_in(operator), "/api/v1/network/fees", body)

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("entry_time", "out_of_range")
    ]


@pytest.mark.parametrize("when", ["0001-01-01T00:00", "9999-12-31T23:59-05:00"])
def test_an_import_effective_time_out_of_range_is_refused_and_nothing_imported(
    when: str, operator: Any
) -> None:
    files = {path.name: path.read_bytes() for path in DEMO.glob("*.csv")}

    response = logged_in(operator).post(
        "/api/v1/network/imports", {"bundle": _zip(files), "effective_at": when}
    )

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("effective_at", "out_of_range")
    ]
    assert not BundleImport.objects.exists()
    assert not TariffVersion.objects.exists()


# --- Terminal records with numbers or times no column holds -------------------

BIG = 2**70


@pytest.mark.parametrize(
    ("overrides", "answer"),
    [
        ({"seq": BIG}, ("invalid", "bad_seq")),
        ({"fee_fen": BIG}, ("rejected", 6)),
        ({"fee_fen": -BIG}, ("rejected", 6)),
        ({"lane": BIG}, ("rejected", 6)),
        ({"trans_type": BIG}, ("rejected", 6)),
        ({"terminal_trans_seq": BIG}, ("rejected", 6)),
        ({"exit_time": "0001-01-01T00:00:00+14:00"}, ("rejected", 6)),
        ({"entry_time": "9999-12-31T23:59:59-14:00"}, ("rejected", 6)),
    ],
)
def test_an_unstorable_record_is_answered_alone_and_the_next_one_accepted(
    overrides: dict[str, Any],
    answer: tuple[str, Any],
    terminal: Any,  # noqa: F811
    card: Any,  # noqa: F811
) -> None:
    bad = record(purchase(terminal, card, 100), **{"seq": 1, **overrides})
    good = record(purchase(terminal, card, 7149), seq=2)

    response = client_for(terminal).post(
        "/api/v1/tolling/uploads",
        {"upload_key": "u1", "records": [bad, good]},
        content_type="application/json",
    )

    results = response.json()["results"]
    assert response.status_code == 200
    assert (results[0]["result"], results[0]["code"]) == answer
    assert results[1]["result"] == "accepted"
