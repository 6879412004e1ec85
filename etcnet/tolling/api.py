"""The terminals' ingest endpoint. A terminal authenticates every call with
`Authorization: Bearer <terminal_id>.<secret>`; no anonymous upload."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.security import HttpBearer

from etcnet.tolling import services
from etcnet.tolling.models import Terminal


class TerminalAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Terminal | None:
        terminal_id, _, secret = token.partition(".")
        if not terminal_id or not secret:
            return None
        return services.authenticate(terminal_id, secret)


router = Router(auth=TerminalAuth())


class UploadIn(Schema):
    upload_key: str
    records: list[dict[str, Any]]


class UploadOut(Schema):
    upload_key: str
    results: list[dict[str, Any]]
    server_time: str


@router.post("/uploads", response=UploadOut)
def upload(request: HttpRequest, payload: UploadIn) -> Any:
    """Exit transactions from a terminal, each answered `accepted`, `duplicate`,
    `rejected` (with the §6.2 dispute code) or `conflict`. The same upload key
    with the same payload gets the same answer; with another payload, 409
    `idempotency_conflict`. `server_time` lets the terminal measure its clock offset."""
    terminal: Terminal = request.auth  # type: ignore[attr-defined]
    return services.ingest(terminal, upload_key=payload.upload_key[:64], records=payload.records)
