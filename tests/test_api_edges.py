"""Every parameter of every operation, one at a time, with the values that
once answered 500 — a NUL character in text, a date or time at the ends of
the calendar, an integer past 64 bits — the others left valid: each answer
is below 500 and, when it is an error, in the one error body.

The schemathesis run (tests/test_api_schema.py) draws values at random and
missed these on PostgreSQL; this sweep is exhaustive over the schema and
takes seconds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from django.db import transaction
from django.test import Client

from etcnet.api import api
from etcnet.cards.tests.conftest import _vault  # noqa: F401  (fixtures)
from etcnet.tolling.tests.conftest import terminal, tianjin  # noqa: F401  (fixtures)

SCHEMA = api.get_openapi_schema(path_prefix="/api/v1/")
BAD: dict[str, list[Any]] = {
    "string": ["\x00", "a\x00b"],
    "date": ["9999-12-31", "0001-01-01"],
    "date-time": ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"],
    "integer": [2**70, -(2**70)],
}
GOOD = {"string": "1", "date": "2026-01-01", "date-time": "2026-01-01T08:00:00+08:00"}
ERROR_KEYS = {"code", "message", "errors"}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(SCHEMA["components"]["schemas"][name])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _resolve(options[0]) if options else {}
    return schema


def _kind(schema: dict[str, Any]) -> str:
    schema = _resolve(schema)
    if schema.get("format") in ("date", "date-time"):
        return str(schema["format"])
    return str(schema.get("type", "string"))


def _valid(schema: dict[str, Any]) -> Any:
    schema = _resolve(schema)
    kind = _kind(schema)
    if kind in GOOD:
        return GOOD[kind]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _valid(properties[name]) for name in schema.get("required", [])}
    return None


def _cases() -> Iterator[tuple[str, str, str, dict[str, Any], dict[str, Any], Any]]:
    """(label, method, path with valid path parameters, query, body, bad value
    placed) for each parameter and each bad value of its kind."""
    for path, operations in SCHEMA["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            path_values = {p["name"]: _valid(p["schema"]) for p in params if p["in"] == "path"}
            query = {
                p["name"]: _valid(p["schema"])
                for p in params
                if p["in"] == "query" and p.get("required")
            }
            content = operation.get("requestBody", {}).get("content", {})
            body_schema = _resolve(content.get("application/json", {}).get("schema", {}))
            body = _valid(body_schema) if body_schema else None
            slots: list[tuple[str, str, dict[str, Any]]] = [
                (p["in"], p["name"], p["schema"]) for p in params if p["in"] in ("path", "query")
            ]
            slots += [
                ("body", name, schema) for name, schema in body_schema.get("properties", {}).items()
            ]
            for where, name, schema in slots:
                for bad in BAD.get(_kind(schema), []):
                    values = {**path_values}
                    q, b = dict(query), dict(body) if isinstance(body, dict) else body
                    if where == "path":
                        values[name] = bad
                    elif where == "query":
                        q[name] = bad
                    else:
                        b = {**(b or {}), name: bad}
                    url = path.format(**{k: quote(str(v), safe="") for k, v in values.items()})
                    label = f"{method.upper()} {path} {where}:{name}={bad!r}"
                    yield label, method, url, q, b, bad


def test_no_parameter_of_any_operation_answers_500_at_the_edges(
    clerk: Any,
    operator: Any,
    terminal: Any,  # noqa: F811
) -> None:
    # A 500 is collected, not raised, and rolled back to its savepoint so the
    # test's transaction (aborted by it on PostgreSQL) goes on.
    clients = {"clerk": Client(raise_request_exception=False)}
    clients["operator"] = Client(raise_request_exception=False)
    clients["clerk"].force_login(clerk)
    clients["operator"].force_login(operator)
    clients["terminal"] = Client(
        headers={"Authorization": f"Bearer {terminal[0].terminal_id}.{terminal[1]}"},
        raise_request_exception=False,
    )
    failures = []
    calls = 0
    for label, method, url, query, body, _bad in _cases():
        if "/auth/logout" in url:
            continue  # it takes no input; it would end the clerk's session
        who = "terminal" if "/tolling/" in url else "operator" if "/network/" in url else "clerk"
        target = f"{url}?{urlencode(query)}" if query else url
        data = json.dumps(body) if body is not None else ""
        savepoint = transaction.savepoint()
        response = clients[who].generic(
            method.upper(), target, data, content_type="application/json"
        )
        calls += 1
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)
            failures.append((label, response.status_code))
            continue
        transaction.savepoint_commit(savepoint)
        if response.status_code >= 400 and not set(response.json()) >= ERROR_KEYS:
            failures.append((label, response.content[:100]))
    assert calls > 100
    assert failures == []
