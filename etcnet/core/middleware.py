"""Request id: every request gets one, audit events and logs carry it."""

from __future__ import annotations

import contextvars
import ipaddress
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def current_request_id() -> str:
    return _request_id.get()


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for login throttling (django-axes) and logs.

    REMOTE_ADDR, unless ETCNET_TRUSTED_PROXY_HEADER names the header that our own
    reverse proxies set (e.g. X-Forwarded-For): then the address our outermost
    trusted proxy saw — the ETCNET_TRUSTED_PROXY_COUNT-th entry from the right,
    since each proxy appends what it saw and a client can only prepend. A
    missing or malformed header falls back to REMOTE_ADDR, so a client never
    chooses the address it is counted under."""
    from django.conf import settings

    remote = request.META.get("REMOTE_ADDR") or None
    header = getattr(settings, "ETCNET_TRUSTED_PROXY_HEADER", "")
    if not header:
        return remote
    raw = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    entries = [part.strip() for part in raw.split(",") if part.strip()]
    count = max(1, int(getattr(settings, "ETCNET_TRUSTED_PROXY_COUNT", 1)))
    if len(entries) < count:
        return remote
    candidate = entries[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller when well-formed, otherwise makes one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class DomainErrorMiddleware:
    """A page whose service raised NotFound or Forbidden answers 404 or 403
    instead of a server error; views handle the other errors themselves."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.template.response import TemplateResponse

        from etcnet.core.errors import Forbidden, NotFound

        if isinstance(exception, NotFound):
            return TemplateResponse(
                request, "core/not_found.html", {"message": exception.message}, status=404
            )
        if isinstance(exception, Forbidden):
            return TemplateResponse(
                request, "core/forbidden.html", {"message": exception.message}, status=403
            )
        return None
