"""Starting etcnet processes (center, terminal) for the tests that need them
as separate processes, and a small client for the terminal's pages."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def etcnet(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "etcnet.cli", *args], env=env, cwd=ROOT, **kwargs
    )


def start_terminal(
    *,
    center: str,
    terminal_id: str,
    secret: str,
    cards: Path,
    data: Path,
    port: int,
    sync_interval: float = 0.5,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ETCNET_TERMINAL_SECRET": secret, **(extra_env or {})}
    process = etcnet(
        "terminal",
        "serve",
        "--center",
        center,
        "--terminal-id",
        terminal_id,
        "--data",
        str(data),
        "--cards",
        str(cards),
        "--port",
        str(port),
        "--sync-interval",
        str(sync_interval),
        env=env,
    )
    wait_up(f"http://127.0.0.1:{port}/status.json", process)
    return process


def stop(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        process.wait(timeout=20)


class TerminalPages:
    """The collector's browser, reduced to form posts: cookies and CSRF tokens."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.base, timeout=30, follow_redirects=True)

    def _token(self, path: str) -> str:
        page = self.client.get("/" if path in ("/shift/start", "/sync", "/logout") else path)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert found, f"no form on {path}: {page.status_code}"
        return found.group(1)

    def post(self, path: str, data: dict[str, Any], files: Any = None) -> httpx.Response:
        token = self._token(path)
        return self.client.post(
            path,
            data={"csrfmiddlewaretoken": token, **data},
            files=files,
            headers={"Referer": self.base + path},
        )

    def sign_in(self, username: str, password: str) -> None:
        response = self.post("/login", {"username": username, "password": password})
        assert response.status_code == 200, response.text[:500]

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get("/status.json").json()
        return body

    def wait_synced(self, timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.status()
            if status["waiting"] == 0 and status["last_sync_utc"]:
                return status
            time.sleep(0.3)
        raise AssertionError(f"still waiting: {self.status()}")
