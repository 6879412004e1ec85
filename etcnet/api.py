"""The JSON API under /api/v1/ with its OpenAPI schema (/api/v1/openapi.json)
and docs page (/api/v1/docs).

Every error has one shape: {"code", "message", "errors": [{"field", "code",
"message"}]}, in the caller's language (Accept-Language), with a stable code.
"""

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import URLPattern, URLResolver, re_path
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import django_auth
from pydantic import BaseModel

from etcnet.cards.api import router as cards_router
from etcnet.core.errors import DomainError, FieldIssue, InvalidInput
from etcnet.core.roles import roles_of
from etcnet.core.schemas import date_issue, errors
from etcnet.core.validators import gettext_noop
from etcnet.issuance.api import router as issuance_router
from etcnet.network.api import router as network_router
from etcnet.tolling.api import router as tolling_router


class EtcnetAPI(NinjaAPI):
    """The API; a path under it that names no operation answers the error body
    (404 `not_found`) rather than the site's HTML page."""

    def _get_urls(self) -> list[URLResolver | URLPattern]:
        return [*super()._get_urls(), re_path(r"^.*$", _unknown_path)]


@csrf_exempt
def _unknown_path(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    body = {"code": "not_found", "message": gettext("Not found."), "errors": []}
    return JsonResponse(body, status=404, json_dumps_params={"ensure_ascii": False})


api = EtcnetAPI(
    title="etcnet center API",
    version="1",
    description="ETC issuance, tolling and clearing. Money is integer fen; times are UTC.",
    auth=django_auth,
    urls_namespace="api",
)


def _error(status: int, code: str, message: str, errors: list[dict[str, str]] | None = None) -> Any:
    return status, {"code": code, "message": message, "errors": errors or []}


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return api.create_response(request, exc.as_dict(), status=exc.status)


_SOURCES = {"body", "query", "path", "form", "file", "header", "cookie"}
_SCHEMA_PARAMS = {"payload", "filters"}
_TYPE_TAGS = {"str", "int", "bool", "float", "none", "list", "dict"}


def _field_name(location: tuple[object, ...]) -> str:
    """`("body", "payload", "seats", "int")` → `seats`: the name a caller sent."""
    parts = [str(part) for part in location]
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    if len(parts) > 1 and parts[0] in _SCHEMA_PARAMS:
        parts = parts[1:]
    parts = [p for p in parts if p not in _TYPE_TAGS and not p.startswith("function-")]
    return ".".join(parts) or "body"


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    seen = set()
    for error in exc.errors:
        field = _field_name(tuple(error.get("loc", ())))
        if field in seen:
            continue  # one entry per field, whatever union member failed
        seen.add(field)
        missing = error.get("type") == "missing"
        errors.append(
            {
                "field": field,
                "code": "required" if missing else "invalid",
                "message": gettext("This field is required.")
                if missing
                else gettext("This value is not valid."),
            }
        )
    body = {
        "code": "invalid_input",
        "message": gettext("Some fields are not valid; correct them and try again."),
        "errors": errors,
    }
    return api.create_response(request, body, status=400)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    body = {"code": "unauthenticated", "message": gettext("Log in first."), "errors": []}
    return api.create_response(request, body, status=401)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        # ninja's own 400: a body that is not JSON (or not the declared form).
        body = {
            "code": "invalid_input",
            "message": gettext("Some fields are not valid; correct them and try again."),
            "errors": [
                {
                    "field": "body",
                    "code": "malformed",
                    "message": gettext("The request body cannot be read."),
                }
            ],
        }
    elif exc.status_code == 403 and "CSRF" in str(exc):
        body = {
            "code": "csrf_failed",
            "message": gettext(
                "The request lacks its CSRF token: send the csrf_token of /auth/login "
                "as X-CSRFToken."
            ),
            "errors": [],
        }
    else:
        body = {"code": "http_error", "message": str(exc), "errors": []}
    return api.create_response(request, body, status=exc.status_code)


def _unstorable(value: object, name: str) -> Iterator[FieldIssue]:
    """The fields of a parsed input that no service could store: text with a
    NUL character (PostgreSQL keeps none), a date or time out of range."""
    if isinstance(value, str):
        if "\x00" in value:
            yield FieldIssue(
                name or "body",
                "invalid_character",
                gettext_noop("This value holds a character that is not allowed."),
            )
    elif isinstance(value, dt.date):
        issue = date_issue(name or "body", value)
        if issue is not None:
            yield issue
    elif isinstance(value, BaseModel):
        for key in type(value).model_fields:
            yield from _unstorable(getattr(value, key), f"{name}.{key}" if name else key)
    elif isinstance(value, dict):
        for key, item in value.items():
            label = f"{name}.{key}" if name else str(key)
            yield from _unstorable(key, label)
            yield from _unstorable(item, label)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _unstorable(item, f"{name}.{index}" if name else str(index))
    elif isinstance(value, UploadedFile):
        yield from _unstorable(value.name or "", name)


def refuse_unstorable_input(view: Callable[..., Any]) -> Callable[..., Any]:
    """No input reaches a service with a NUL character in its text or a date
    out of range (each answered 500, on PostgreSQL or on both databases);
    no field of ours has a use for either. Applied to every operation after
    ninja parsed its input; the error names each field."""

    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        issues: dict[str, FieldIssue] = {}
        for param, value in kwargs.items():
            # A body or query schema's fields are named as the caller sent them.
            for issue in _unstorable(value, "" if param in _SCHEMA_PARAMS else param):
                issues.setdefault(issue.field, issue)
        if issues:
            raise InvalidInput(issues=list(issues.values()))
        return view(request, *args, **kwargs)

    return checked


api.add_decorator(refuse_unstorable_input)


class LoginIn(Schema):
    username: str
    password: str


class JsonRequired(DomainError):
    # 400, not 415: the one error body and status set every operation declares.
    status = 400
    code = "json_required"
    template = gettext_noop("Send the request body as JSON (Content-Type: application/json).")


class SessionOut(Schema):
    username: str
    roles: list[str]
    csrf_token: str


@api.post("/auth/login", auth=None, response={200: SessionOut, **errors(400, 429)}, tags=["auth"])
def api_login(request: HttpRequest, payload: LoginIn) -> dict[str, Any]:
    """Start a session (cookie) for scripts; unsafe calls then send X-CSRFToken.

    Failed logins are throttled exactly as on the login page. Only a JSON body
    is taken (400 `json_required` otherwise): a cross-site HTML form can post
    form-encoded or text/plain bodies, never application/json, so no other site
    can log a browser in (login CSRF)."""
    if request.content_type != "application/json":
        raise JsonRequired()
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None:
        raise DomainError(gettext_noop("Wrong username or password."), code="login_failed")
    login(request, user)
    return {
        "username": user.get_username(),
        "roles": sorted(roles_of(user)),
        "csrf_token": get_token(request),
    }


@api.post("/auth/logout", response={204: None, **errors(401, 403)}, tags=["auth"])
def api_logout(request: HttpRequest) -> Status[None]:
    logout(request)
    return Status(204, None)


api.add_router("/issuance", issuance_router, tags=["issuance"])
api.add_router("/cards", cards_router, tags=["cards"])
api.add_router("/network", network_router, tags=["network"])
api.add_router("/tolling", tolling_router, tags=["tolling"])
