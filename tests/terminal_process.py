"""Starting etcnet processes (center, terminal) for the tests that need them
as separate processes, and a small client for the terminal's pages."""

from __future__ import annotations

import contextlib
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
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Under libfaketime (the suite a year ahead: README, "Tests") a terminal process
# never syncs. Its sync loop's `Event.wait(interval)` is, in CPython 3.11, a
# sem_clockwait until the monotonic clock reads now + interval; libfaketime 0.9.10
# shifts what the clock reads but does not intercept that call, so the wait lasts
# the shift (a year). FAKETIME_DONT_FAKE_MONOTONIC=1 breaks time.sleep instead
# (EINVAL). The tests that start terminal processes skip under it.
UNDER_FAKETIME = "faketime" in os.environ.get("LD_PRELOAD", "")


# The waits below end as soon as what they wait for happens; their limits are
# generous for a loaded machine (parallel workers, CI), where a process can take
# a while to start.


def free_port() -> int:
    """A port the OS has just handed out (bind to port 0), never a fixed one: parallel
    workers (pytest -n) and other runs on the machine each get their own. (Between
    this and the server's bind another process could take it; the OS hands ports
    out at random from its ephemeral range, so that is very unlikely.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
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
    if UNDER_FAKETIME:
        pytest.skip("terminal processes hang under libfaketime: tests/terminal_process.py")
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
        process.wait(timeout=60)


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

    def wait_synced(self, timeout_s: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.status()
            if status["waiting"] == 0 and status["last_sync_utc"]:
                return status
            time.sleep(0.3)
        raise AssertionError(f"still waiting: {self.status()}")


def start_center(
    *, port: int, env: dict[str, str], wait: bool = True, timeout_s: float = 120
) -> subprocess.Popen[bytes]:
    """`etcnet center serve` on `port` as the leader of its own process group (so
    `kill_group` ends it and anything it started); with `wait`, once its API
    answers (else `wait_center` later)."""
    process = etcnet("center", "serve", "--port", str(port), env=env, start_new_session=True)
    if wait:
        wait_center(port, process, timeout_s=timeout_s)
    return process


def wait_center(port: int, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    wait_up(f"http://127.0.0.1:{port}/api/v1/docs", process, timeout_s=timeout_s)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the process group `start_center` made, as a crash would end it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
