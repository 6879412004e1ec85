"""The OpenAPI schema against the API itself (schemathesis): every operation of
/api/v1/openapi.json is called with generated input — valid, boundary and
invalid — as a user of the role it is meant for, and every answer must be a
documented status with a documented body and content type; no 500, ever.

In-process (WSGI) inside the test's database transaction, seeded and bounded,
so a run is the same every time and takes about a minute. Run it alone with

    ETCNET_DATA_DIR=/tmp/etcnet .venv/bin/pytest -p no:cacheprovider tests/test_api_schema.py
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.utils.crypto import get_random_string
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from etcnet.cards.tests.conftest import _vault, approved, stock  # noqa: F401  (fixtures)
from etcnet.tolling.tests.conftest import card, terminal, tianjin  # noqa: F401  (fixtures)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# A fixed seed and the examples and fuzzing phases (valid and invalid input
# for each operation); the coverage phase would triple the run's time.
CONFIG = SchemathesisConfig.from_dict(
    {"seed": 20260101, "phases": {"coverage": {"enabled": False}}}
)
CSRF = get_random_string(32)


class Callers:
    """Who calls which operation: the clerk the issuance and card work (her
    outlet holds the stock and the issued card), the operator the network,
    the terminal HH-0001 its own endpoints; logout gets a fresh session of
    the auditor's each time, so it ends no one else's."""

    def __init__(self, *, clerk: Any, operator: Any, auditor: Any, token: str) -> None:
        self.sessions = {"clerk": _session(clerk), "operator": _session(operator)}
        self.auditor = auditor
        self.token = token
        self.statuses: dict[str, set[int]] = defaultdict(set)
        self.calls: dict[str, int] = defaultdict(int)

    def credentials(self, path: str) -> tuple[dict[str, str], dict[str, str]]:
        if path.startswith("/api/v1/tolling/"):
            return {"Authorization": f"Bearer {self.token}"}, {}
        if path == "/api/v1/auth/logout":
            session = _session(self.auditor)
        elif path.startswith("/api/v1/network/"):
            session = self.sessions["operator"]
        else:
            session = self.sessions["clerk"]
        return {"X-CSRFToken": CSRF}, {"sessionid": session, "csrftoken": CSRF}


def _session(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
def callers(
    clerk: Any,
    operator: Any,
    auditor: Any,
    terminal: Any,  # noqa: F811
    card: Any,  # noqa: F811
) -> Iterator[Callers]:
    found = Callers(
        clerk=clerk,
        operator=operator,
        auditor=auditor,
        token=f"{terminal[0].terminal_id}.{terminal[1]}",
    )
    # As Django's test client does: a request must not close the test's
    # connection (its transaction holds the data).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield found
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    calls = sum(found.calls.values())
    print(f"schemathesis: {len(found.calls)} operations, {calls} calls")
    # Every operation was reached past authentication at least once.
    blind = sorted(op for op, seen in found.statuses.items() if not seen - {401, 405})
    assert not blind, f"never past authentication: {blind}"


@pytest.fixture
def api_schema(callers: Callers) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler(), config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api_answers_as_its_schema_says(case: Any, callers: Callers) -> None:
    if case.media_type == "multipart/form-data" and not isinstance(case.body, dict):
        # A multipart body is a set of named parts; schemathesis' negative
        # cases that make it a list or a string cannot be sent at all.
        return
    headers, cookies = callers.credentials(case.operation.path)
    response = case.call_and_validate(headers=headers, cookies=cookies, checks=CHECKS)
    callers.statuses[case.operation.label].add(response.status_code)
    callers.calls[case.operation.label] += 1
