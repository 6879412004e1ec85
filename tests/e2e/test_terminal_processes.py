"""The center and three terminals as separate processes, as deployed: the demo
data's card and OBU enter at 杨村, leave at 小孙庄 through seed 002 (single card,
station hex, station master) while the center is down and the terminal is
killed right after the payment, then pass the open-road station 轻纺城匝道北 through
seed 001 (ETC linkage). The center ends up with every transaction once, TACs
verified, the fees of the tariff and the card's balance debited once each."""

from __future__ import annotations

import io
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from etcnet.smartcard import ops
from etcnet.smartcard.transport import open_emulated
from tests.terminal_process import (
    ROOT,
    UNDER_FAKETIME,
    TerminalPages,
    etcnet,
    free_port,
    start_terminal,
    stop,
    wait_up,
)

pytestmark = pytest.mark.skipif(
    UNDER_FAKETIME, reason="terminal processes hang under libfaketime: tests/terminal_process.py"
)

CARD = "61010000000000000001"
PASSWORD = "etcnet-demo"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "etcnet.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def register(env: dict[str, str], terminal_id: str, station: str, lanes: str) -> str:
    out = run(env, "terminal_register", terminal_id, "--station", station, "--lanes", lanes)
    found = re.search(r"secret \(shown once\): (\S+)", out)
    assert found, out
    return found.group(1)


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def read_and_photo(t: TerminalPages, path: str, **devices: str) -> None:
    answer = t.post(path, {"action": "read", **devices})
    assert 'data-testid="card-info"' in answer.text, answer.text[:2000]
    plate = re.search(r'name="plate" value="([^"]*)"', answer.text)
    assert plate
    answer = t.post(
        path,
        {"action": "photo", "plate": plate.group(1), "plate_color": "0", **devices},
        files={"photo": ("car.jpg", jpeg(), "image/jpeg")},
    )
    assert 'data-testid="photo-ok"' in answer.text, answer.text[:2000]


@pytest.fixture
def center(tmp_path: Path) -> Any:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["ETCNET_DATA_DIR"] = str(tmp_path / "center")
    run(env, "migrate", "--verbosity", "0")
    run(env, "load_demo")
    secrets = {
        "HH-DEMO": (tmp_path / "center" / "terminal-HH-DEMO" / "secret").read_text().strip(),
        "HH-ENTRY": register(env, "HH-ENTRY", "S1201048", "1"),
        "HH-OPEN": register(env, "HH-OPEN", "S1201035", "3"),
    }
    port = free_port()
    state: dict[str, Any] = {"env": env, "port": port, "secrets": secrets}

    def start() -> None:
        state["process"] = etcnet("center", "serve", "--port", str(port), env=env)
        wait_up(f"http://127.0.0.1:{port}/api/v1/docs", state["process"])

    state["start"] = start
    start()
    yield state
    stop(state["process"])


def test_entry_closed_exit_and_open_exit_across_processes(center, tmp_path):
    data = tmp_path / "center"
    cards = data / "cards"
    db = data / "etcnet.sqlite3"
    url = f"http://127.0.0.1:{center['port']}"
    ports = {name: free_port() for name in center["secrets"]}
    procs = {
        name: start_terminal(
            center=url,
            terminal_id=name,
            secret=secret,
            cards=cards,
            data=tmp_path / name,
            port=ports[name],
        )
        for name, secret in center["secrets"].items()
    }
    card_file = f"card-{CARD}.json"
    (obu_file,) = rows(
        db,
        "SELECT o.emulator_file FROM cards_binding b JOIN cards_cardunit c ON c.id = b.card_id"
        " JOIN cards_obuunit o ON o.id = b.obu_id WHERE c.card_no = ?",
        CARD,
    )[0:1]
    try:
        # 1. Entry at 杨村, lane 01.
        entry = TerminalPages(ports["HH-ENTRY"])
        entry.sign_in("collector", PASSWORD)
        entry.post("/shift/start", {"lane": "1"})
        read_and_photo(entry, "/entry", card=card_file)
        done = entry.post("/entry", {"action": "commit", "vehicle_class": "1", "vehicle_kind": "0"})
        assert 'data-testid="done"' in done.text, done.text[:2000]
        entry.wait_synced()

        # 2. Exit at 小孙庄 (seed 002) with the center down.
        closed = TerminalPages(ports["HH-DEMO"])
        closed.sign_in("collector", PASSWORD)
        closed.post("/shift/start", {"lane": "3"})
        stop(center["process"])
        read_and_photo(closed, "/exit/single", card=card_file)
        fee = closed.post(
            "/exit/single", {"action": "quote", "vehicle_class": "1", "vehicle_kind": "0"}
        )
        assert "12010301" in fee.text
        assert 'data-testid="master-username"' in fee.text  # the minimum fee needs the master
        amount = re.search(r'data-testid="amount">([0-9.]+)<', fee.text)
        assert amount
        authorised = closed.post(
            "/exit/single",
            {"action": "authorise", "master_username": "master", "master_password": PASSWORD},
        )
        assert 'data-testid="authorised"' in authorised.text, authorised.text[:2000]
        wrong_hex = closed.post("/exit/single", {"action": "commit", "station_hex": "12010302"})
        assert 'data-code="hex_mismatch"' in wrong_hex.text
        paid = closed.post("/exit/single", {"action": "commit", "station_hex": "12010301"})
        assert 'data-testid="done"' in paid.text, paid.text[:2000]
        assert closed.status()["waiting"] == 1
        # Killed right after the payment; nothing is lost on restart.
        stop(procs["HH-DEMO"], kill=True)
        procs["HH-DEMO"] = start_terminal(
            center=url,
            terminal_id="HH-DEMO",
            secret=center["secrets"]["HH-DEMO"],
            cards=cards,
            data=tmp_path / "HH-DEMO",
            port=ports["HH-DEMO"],
        )
        assert closed.status()["waiting"] == 1
        center["start"]()
        closed.wait_synced()

        # 3. The open-road station 轻纺城匝道北 (seed 001): card and OBU.
        linkage = TerminalPages(ports["HH-OPEN"])
        linkage.sign_in("collector", PASSWORD)
        linkage.post("/shift/start", {"lane": "3"})
        read_and_photo(linkage, "/exit/linkage", card=card_file, obu=obu_file)
        fee = linkage.post(
            "/exit/linkage", {"action": "quote", "vehicle_class": "1", "vehicle_kind": "0"}
        )
        assert 'data-testid="amount">4.75<' in fee.text  # 5.00 less the 5 % ETC discount
        paid = linkage.post("/exit/linkage", {"action": "commit"})
        assert 'data-testid="done"' in paid.text, paid.text[:2000]
        assert 'data-testid="obu-written"' in paid.text
        block = ops.read_obu_fee(open_emulated(cards / obu_file[0]))
        assert block is not None
        assert (block.actual_fen, block.successes, block.provinces) == (475, 1, (("12", 475),))
        linkage.wait_synced()
    finally:
        for process in procs.values():
            stop(process)

    found = rows(
        db,
        "SELECT t.terminal_id, x.direction, x.status, x.tac_verified, x.payable_fen,"
        " x.method, x.authorised_by, x.photo != '' FROM tolling_tolltransaction x"
        " JOIN tolling_terminal t ON t.id = x.terminal_id"
        # The demo's generated clearing days have terminals of their own (T…).
        " WHERE t.terminal_id LIKE 'HH-%' ORDER BY x.id",
    )
    closed_fen = round(float(amount.group(1)) * 100)
    assert found == [
        ("HH-ENTRY", "entry", "accepted", 1, 0, "entry", "", 1),  # 0-amount TAC
        ("HH-DEMO", "exit", "accepted", 1, closed_fen, "minimum", "master", 1),
        ("HH-OPEN", "exit", "accepted", 1, 475, "open", "", 1),
    ]
    (balance,) = rows(db, "SELECT shadow_balance_fen FROM cards_cardunit WHERE card_no = ?", CARD)[
        0
    ]
    assert balance == 20_000 - closed_fen - 475
