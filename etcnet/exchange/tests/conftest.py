"""A real signature server for the exchange's tests: its own process and folder."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SignerProcess:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "etcnet.cli", "signer", "--dir", str(self.dir), "serve",
             "--init", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/v1/health", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the signer did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="session")
def signer_process(tmp_path_factory: Any) -> Iterator[SignerProcess]:
    process = SignerProcess(tmp_path_factory.mktemp("signer") / "signer")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def signer(signer_process: SignerProcess, settings: Any) -> SignerProcess:
    """The center's settings pointed at the running signature server."""
    settings.ETCNET_SIGNER_URL = signer_process.url
    settings.ETCNET_SIGNER_TOKEN_FILE = signer_process.dir / "client.token"
    settings.ETCNET_SIGNER_TOKEN = ""
    return signer_process
