"""The terminal's HTTP client for the center's tolling API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from etcnet.terminal.outbox import CenterUnavailable

__all__ = ["HttpCenter"]


class HttpCenter:
    """Talks to ``base_url`` as terminal ``terminal_id`` with its secret (the
    Bearer token ``<id>.<secret>`` every call carries)."""

    def __init__(
        self,
        base_url: str,
        *,
        terminal_id: str,
        secret: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/tolling",
            headers={"Authorization": f"Bearer {terminal_id}.{secret}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def upload(self, upload_key: str, records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        return self._call("POST", "/uploads", json={"upload_key": upload_key, "records": records})

    def login(self, username: str, password: str) -> Mapping[str, Any] | None:
        """The user's roles and verifier when the center accepts the password,
        None when it refuses (403); CenterUnavailable when it cannot say."""
        try:
            response = self._client.post(
                "/logins", json={"username": username, "password": password}
            )
        except httpx.HTTPError as error:
            raise CenterUnavailable(f"center unreachable: {error}") from error
        if response.status_code == 403:
            return None
        if response.status_code != 200:
            raise CenterUnavailable(f"center answered {response.status_code}")
        body: Mapping[str, Any] = response.json()
        return body

    def download(self, what: str) -> Mapping[str, Any]:
        """``station``, ``tariff``, ``status-list`` or ``verifiers``."""
        return self._call("GET", f"/downloads/{what}")

    def list_plan(self, held: str | None) -> Mapping[str, Any]:
        """What to download to bring the status list from ``held`` up to date."""
        return self._call("GET", "/downloads/status-list/plan", params={"held": held or ""})

    def list_file(self, kind: str, number: str) -> bytes:
        """A status-list version file: ``increment`` or ``full``, by number."""
        try:
            response = self._client.get(f"/downloads/status-list/{kind}/{number}")
        except httpx.HTTPError as error:
            raise CenterUnavailable(f"center unreachable: {error}") from error
        if response.status_code != 200:
            raise CenterUnavailable(f"center answered {response.status_code} for {kind} {number}")
        return response.content

    def _call(self, method: str, path: str, **kwargs: Any) -> Mapping[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise CenterUnavailable(f"center unreachable: {error}") from error
        if response.status_code != 200:
            raise CenterUnavailable(
                f"center answered {response.status_code}: {response.text[:200]}"
            )
        try:
            body: Mapping[str, Any] = response.json()
        except ValueError as error:
            raise CenterUnavailable("center answered with something that is not JSON") from error
        return body
