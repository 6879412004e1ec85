"""The front server killed between sending a package and storing its answer,
every process real: the center's commands on their own SQLite database, the
signature server, and the simulated national center, which takes the package
and answers only after a delay — long enough for the sender to die (SIGKILL)
first. Run again, the sender sends the package once more, hears 5 (消息重复),
and stores that; the national center took each package once, and each issuer's
记账 comes back and is applied once: 0 lost, 0 doubled."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.terminal_process import ROOT, free_port, stop

DAY = dt.date(2026, 11, 30)

GENERATE = f"""
import datetime as dt, django
django.setup()
from etcnet.clearing import generate, run
generate.generate_day(dt.date.fromisoformat("{DAY}"), trips=1500, seed=3, cards=100)
run.run_day(dt.date.fromisoformat("{DAY}"))
"""


def etcnet(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "etcnet.cli", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


class Sim:
    def __init__(self, url: str, ca: Path) -> None:
        self.url, self.ca = url, ca

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        context = ssl.create_default_context(cafile=str(self.ca))  # made by the sim at start
        answer = httpx.request(method, self.url + path, verify=context, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def taken(self) -> int:
        return sum(r["messages"] for r in self.call("GET", "/sim/state")["received"])


@pytest.fixture
def exchange(tmp_path: Path) -> Any:
    data = tmp_path / "center"
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    signer_port, national_port = free_port(), free_port()
    env.update(
        ETCNET_DATA_DIR=str(data),
        DJANGO_SETTINGS_MODULE="etcnet.settings",
        ETCNET_SIGNER_URL=f"http://127.0.0.1:{signer_port}",
        ETCNET_NATIONAL_URL=f"https://127.0.0.1:{national_port}",
        ETCNET_EXCHANGE_RETRY_S="0",
    )
    etcnet(env, "migrate", "--verbosity", "0")
    subprocess.run([sys.executable, "-c", GENERATE], env=env, cwd=ROOT, check=True)
    etcnet(env, "signer", "init")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "etcnet.cli", "signer", "serve", "--port", str(signer_port)],
            env=env, cwd=ROOT,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "etcnet.cli", "exchange", "national-sim", "--dir",
             str(data / "national-sim"), "--peer-cert", str(data / "signer" / "certificate.json"),
             "--port", str(national_port)],
            env=env, cwd=ROOT,
        ),
    ]  # fmt: skip
    try:
        sim = Sim(env["ETCNET_NATIONAL_URL"], data / "national-sim" / "tls-cert.pem")
        deadline = time.monotonic() + 60
        while True:
            try:
                sim.call("GET", "/sim/state")
                httpx.get(env["ETCNET_SIGNER_URL"] + "/v1/health")
                break
            except (httpx.HTTPError, OSError):
                assert time.monotonic() < deadline, "the signer or the national-sim did not start"
                time.sleep(0.2)
        for path, kind in (
            (data / "signer" / "certificate.json", "self"),
            (data / "national-sim" / "signer" / "certificate.json", "national"),
        ):
            etcnet(env, "exchange", "certificate", "register", str(path), "--kind", kind)
        yield env, sim, data / "etcnet.sqlite3"
    finally:
        for process in processes:
            stop(process)


def test_the_sender_killed_before_it_stores_the_answer_loses_and_doubles_nothing(exchange):
    env, sim, db = exchange
    assert "queued" in etcnet(env, "exchange", "queue")
    packages = rows(db, "SELECT message_id FROM exchange_transfer WHERE direction = 'out'")
    assert packages

    sim.call("POST", "/sim/behaviour", json={"mode": "accept", "delay_s": 60})
    sender = subprocess.Popen(
        [sys.executable, "-m", "etcnet.cli", "exchange", "send"],
        env=env, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while sim.taken() < 1:
        assert time.monotonic() < deadline
        assert sender.poll() is None
        time.sleep(0.1)
    os.killpg(sender.pid, signal.SIGKILL)  # taken there, never answered here
    sender.wait()
    (first,) = rows(
        db,
        "SELECT state, attempts, response_code FROM exchange_transfer"
        " WHERE direction = 'out' ORDER BY message_id LIMIT 1",
    )
    assert first == ("pending", 1, None)

    sim.call("POST", "/sim/behaviour", json={"mode": "accept"})
    etcnet(env, "exchange", "run")
    out = rows(
        db,
        "SELECT message_id, state, response_code FROM exchange_transfer"
        " WHERE direction = 'out' AND kind = 'transactions' ORDER BY message_id",
    )
    assert [state for _, state, _ in out] == ["acked"] * len(packages)
    assert out[0][2] == 5  # it had it already
    assert [code for _, _, code in out[1:]] == [1] * (len(packages) - 1)
    state = sim.call("GET", "/sim/state")
    assert state["received"] == [
        {**state["received"][0], "kind": "TransactionPackage", "result": 1,
         "messages": len(packages)},
    ]  # fmt: skip
    # Each issuer's 记账 applied once; nothing left waiting for us.
    applied = rows(
        db,
        "SELECT COUNT(*) FROM exchange_transfer WHERE direction = 'in' AND state = 'applied'",
    )
    assert applied == [(len(packages),)]
    assert all(o["waiting"] == 0 for o in state["outbox"])
    waiting = rows(db, "SELECT COUNT(*) FROM clearing_clearingentry WHERE state = 'sent'")
    assert waiting == [(0,)]
    assert json.loads(json.dumps(state))  # the simulator's view is plain JSON
