"""A real signature server for the exchange's tests: its own process and folder."""

from __future__ import annotations

import socket
import ssl
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


# The tolling fixtures (a terminal at the demo network's station, an issued card,
# the key vault) and the clearing day of other issuers' cards.
from etcnet.clearing.tests.test_exchange import foreign_day  # noqa: E402, F401
from etcnet.tolling.tests.conftest import (  # noqa: E402, F401
    _vault,
    approved,
    card,
    stock,
    terminal,
    tianjin,
)
from etcnet.tolling.tests.test_partitions import lane_terminal  # noqa: E402, F401


class NationalSim:
    def __init__(self, directory: Path, peer_cert: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "etcnet.cli", "exchange", "national-sim", "--dir",
             str(directory), "--peer-cert", str(peer_cert), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                self.state()
                return
            except (httpx.HTTPError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def tls_ca(self) -> Path:
        return self.dir / "tls-cert.pem"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        context = ssl.create_default_context(cafile=str(self.tls_ca))
        answer = httpx.request(method, self.url + path, verify=context, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def state(self) -> dict[str, Any]:
        return dict(self._call("GET", "/sim/state"))

    def behave(self, **behaviour: Any) -> None:
        self._call("POST", "/sim/behaviour", json=behaviour)

    def queue(self, data: bytes) -> int:
        return int(self._call("POST", "/sim/queue", content=data)["delivery"])

    def queue_file(self, data: bytes, name: str) -> int:
        return int(
            self._call("POST", "/sim/queue-file", params={"name": name}, content=data)["delivery"]
        )

    def summary(self, date: str) -> None:
        self._call("POST", "/sim/summary", json={"date": date})

    def advance(self, seconds: float) -> None:
        self._call("POST", "/sim/clock", json={"advance_s": seconds})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def national(signer: SignerProcess, tmp_path: Path, settings: Any) -> Iterator[NationalSim]:
    """A simulated national center of its own, both sides' certificates registered."""
    from etcnet.exchange import signing

    sim = NationalSim(tmp_path / "national", signer.dir / "certificate.json")
    settings.ETCNET_NATIONAL_URL = sim.url
    settings.ETCNET_NATIONAL_TLS_CA = sim.tls_ca
    settings.ETCNET_EXCHANGE_RETRY_S = 0
    signing.register((signer.dir / "certificate.json").read_text(), kind="self", actor="test")
    signing.register(
        (sim.dir / "signer" / "certificate.json").read_text(), kind="national", actor="test"
    )
    yield sim
    sim.stop()


# -- the banks (docs/banks.md) ----------------------------------------------------

ICBC, POSTAL = "0000000000000102", "0000000000000100"
ICBC_NAME, POSTAL_NAME = "中国工商银行陕西省分行", "中国邮政储蓄银行陕西省分行"


class BankSim(NationalSim):
    """A simulated bank's front server: its own process, folder and keys (the
    national simulator's client calls, and the bank's own)."""

    def __init__(  # the national simulator's process is not started
        self, directory: Path, peer_cert: Path, *, bank_id: str, name: str, transport: Path
    ) -> None:
        self.dir = directory
        self.id = bank_id
        self.name = name
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "etcnet.cli", "exchange", "bank-sim", "--dir", str(directory),
             "--peer-cert", str(peer_cert), "--port", str(self.port), "--bank-id", bank_id,
             "--name", name, "--transport-key-file", str(transport)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                self.state()
                return
            except (httpx.HTTPError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def accounts(self, **balances: int) -> None:
        self._call("POST", "/sim/accounts", json={"accounts": balances})

    def release(self) -> int:
        return int(self._call("POST", "/sim/release")["released"])

    def retry(self) -> int:
        return int(self._call("POST", "/sim/retry")["collected"])

    def keys(self, **request: Any) -> dict[str, Any]:
        return dict(self._call("POST", "/sim/keys", json=request))

    def queue(self, data: bytes, *, forge: bool = False) -> int:
        path = "/sim/queue?forge=1" if forge else "/sim/queue"
        return int(self._call("POST", path, content=data)["delivery"])


@pytest.fixture
def banks(signer: SignerProcess, tmp_path: Path, settings: Any) -> Iterator[dict[str, BankSim]]:
    """Two simulated banks of their own — 工商银行 (debit cards) and 邮储银行 (the
    settlement bank) — configured in ETCNET_BANKS_FILE, every certificate
    registered, a transport key agreed with each (in the vault's key file)."""
    import json
    import secrets

    from etcnet.cards import vault
    from etcnet.exchange import signing

    key_file = Path(settings.ETCNET_KEYS_FILE)  # the test's vault (the autouse `_vault`)
    keys = json.loads(key_file.read_text())
    keys["transport"] = {}
    sims: dict[str, BankSim] = {}
    for label, bank_id, name in (("icbc", ICBC, ICBC_NAME), ("postal", POSTAL, POSTAL_NAME)):
        folder = tmp_path / f"bank-{label}"
        folder.mkdir()
        transport = secrets.token_hex(16).upper()
        (folder / "transport.key").write_text(transport)
        keys["transport"][bank_id] = transport
        sims[label] = BankSim(
            folder, signer.dir / "certificate.json", bank_id=bank_id, name=name,
            transport=folder / "transport.key",
        )  # fmt: skip
    key_file.write_text(json.dumps(keys))
    vault.reset_cache()
    config = {
        "settlement_bank": POSTAL,
        "banks": {
            sim.id: {"name": sim.name, "url": sim.url, "tls_ca": str(sim.tls_ca)}
            for sim in sims.values()
        },
        "accounts": {
            "center": "9100000000000001",
            "owner:*": "9200000000000001",
            f"bank:{ICBC_NAME}": "9300000000000001",
            "purses": "9400000000000001",
            "station_cash:*": "9500000000000001",
            "mobile:*": "9600000000000001",
            "national_center": "9700000000000001",
        },
    }
    (tmp_path / "banks.json").write_text(json.dumps(config, ensure_ascii=False))
    settings.ETCNET_BANKS_FILE = tmp_path / "banks.json"
    settings.ETCNET_EXCHANGE_RETRY_S = 0
    signing.register((signer.dir / "certificate.json").read_text(), kind="self", actor="test")
    for sim in sims.values():
        signing.register(
            (sim.dir / "signer" / "certificate.json").read_text(), kind="bank", actor="test"
        )
    yield sims
    for sim in sims.values():
        sim.stop()
