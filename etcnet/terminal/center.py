"""The terminal's HTTP client for the center's tolling API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from etcnet.terminal.outbox import BatchFailed, CenterUnavailable

__all__ = ["CENTER_UNAVAILABLE_STATUSES", "HttpCenter"]

#: Answers to an upload that say nothing about the records in it: the terminal
#: is refused (401, 403), or the center or its proxy is busy or away (408, 429,
#: 502–504). Any other non-200 answer is the center failing on the batch.
CENTER_UNAVAILABLE_STATUSES = frozenset({401, 403, 408, 429, 502, 503, 504})


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
        """POST the batch. ``CenterUnavailable`` when the center cannot be reached
        or refuses the terminal (``CENTER_UNAVAILABLE_STATUSES``); ``BatchFailed``
        when it answers the batch with another error or with a body that is not
        JSON — the outbox then sends the records in smaller batches."""
        try:
            response = self._client.post(
                "/uploads", json={"upload_key": upload_key, "records": records}
            )
        except httpx.HTTPError as error:
            raise CenterUnavailable(f"center unreachable: {error}") from error
        if response.status_code in CENTER_UNAVAILABLE_STATUSES:
            raise CenterUnavailable(
                f"center answered {response.status_code}: {response.text[:200]}"
            )
        if response.status_code != 200:
            raise BatchFailed(f"center answered {response.status_code}: {response.text[:200]}")
        try:
            body: Mapping[str, Any] = response.json()
        except ValueError as error:
            raise BatchFailed("center answered with something that is not JSON") from error
        return body

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
