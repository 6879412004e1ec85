"""A money day end to end, every process real on localhost (issue 16): the
center (`center serve`, its commands on its own SQLite database), a handheld
terminal, the signature server, the simulated national center and four
simulated banks (three card banks of the generated province, 邮储银行 the
settlement bank).

The demo data's days are there (`load_demo`: two generated days cleared, the
first answered by file). Then: the handheld charges the demo card at the
open-road station and uploads it; the front server sends the second day's
packages and the national center answers them (记账, one record in fifty
disputed) and sums them (清分统计, reconciled); it hands us a 原始交易包 of the
demo card used in Jiangsu, TAC-verified and charged; today is cleared; the
banks collect the second day's debit accounts — one account refused (list type
4, recovery), then funded and collected (lifted); the settlement bank confirms
the day's transfer instructions. At the end the ledger balances and each
counterparty's view equals ours."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_terminal_processes import read_and_photo, register
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
NATIONAL = "0000000000000001"
POSTAL = "0000000000000100"
#: The generated province's card banks (etcnet.clearing.generate.BANKS).
BANKS = {
    "0000000000000102": "中国工商银行陕西省分行",
    "0000000000000105": "中国建设银行陕西省分行",
    "0000000000000103": "中国农业银行陕西省分行",
}
ELSEWHERE = """
import django, httpx, ssl, sys
django.setup()
from etcnet.demo import exchange
package = exchange._card_used_elsewhere()
context = ssl.create_default_context(cafile=sys.argv[2])
httpx.post(sys.argv[1] + "/sim/queue", content=package, verify=context).raise_for_status()
"""


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "etcnet.cli", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


class Sim:
    """A simulator's control calls over its own TLS certificate."""

    def __init__(self, port: int, folder: Path) -> None:
        self.url, self.folder = f"https://127.0.0.1:{port}", folder

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        context = ssl.create_default_context(cafile=str(self.folder / "tls-cert.pem"))
        answer = httpx.request(method, self.url + path, verify=context, timeout=60, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def wait(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                self.call("GET", "/sim/state")
                return
            except (httpx.HTTPError, OSError):
                assert process.poll() is None, f"{self.url} exited"
                assert time.monotonic() < deadline, f"{self.url} did not start"
                time.sleep(0.2)


@pytest.fixture
def province(tmp_path: Path) -> Any:
    data = tmp_path / "center"
    ports = {name: free_port() for name in ("center", "signer", "national", *BANKS, POSTAL)}
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        ETCNET_DATA_DIR=str(data),
        ETCNET_SIGNER_URL=f"http://127.0.0.1:{ports['signer']}",
        ETCNET_NATIONAL_URL=f"https://127.0.0.1:{ports['national']}",
        ETCNET_EXCHANGE_RETRY_S="0",
    )
    cli(env, "migrate", "--verbosity", "0")
    cli(env, "load_demo")
    cli(env, "signer", "init")
    center_cert = str(data / "signer" / "certificate.json")
    processes = [
        etcnet("center", "serve", "--port", str(ports["center"]), env=env),
        etcnet("signer", "serve", "--port", str(ports["signer"]), env=env),
        etcnet("exchange", "national-sim", "--dir", str(data / "national-sim"), "--peer-cert",
               center_cert, "--port", str(ports["national"]), "--dispute-every", "50",
               "--auto-summary", env=env),
    ]  # fmt: skip
    sims = {NATIONAL: Sim(ports["national"], data / "national-sim")}
    for bank_id, name in [*BANKS.items(), (POSTAL, "中国邮政储蓄银行陕西省分行")]:
        folder = data / f"bank-{bank_id}"
        processes.append(
            etcnet("exchange", "bank-sim", "--dir", str(folder), "--peer-cert", center_cert,
                   "--bank-id", bank_id, "--name", name, "--port", str(ports[bank_id]), env=env)
        )  # fmt: skip
        sims[bank_id] = Sim(ports[bank_id], folder)
    try:
        wait_up(f"http://127.0.0.1:{ports['center']}/api/v1/docs", processes[0])
        wait_up(env["ETCNET_SIGNER_URL"] + "/v1/health", processes[1])
        for sim, process in zip(sims.values(), processes[2:], strict=True):
            sim.wait(process)
        config = {
            "settlement_bank": POSTAL,
            "banks": {
                bank_id: {"name": name, "url": sims[bank_id].url,
                          "tls_ca": str(sims[bank_id].folder / "tls-cert.pem")}
                for bank_id, name in [*BANKS.items(), (POSTAL, "中国邮政储蓄银行陕西省分行")]
            },
            "accounts": {
                "center": "9100000000000001", "owner:*": "9200000000000001",
                "bank:*": "9300000000000001", "purses": "9400000000000001",
                "station_cash:*": "9500000000000001", "mobile:*": "9600000000000001",
                "national_center": "9700000000000001",
            },
        }  # fmt: skip
        (data / "banks.json").write_text(json.dumps(config, ensure_ascii=False))
        cli(env, "exchange", "certificate", "register", center_cert, "--kind", "self")
        for party, sim in sims.items():
            kind = "national" if party == NATIONAL else "bank"
            cli(env, "exchange", "certificate", "register",
                str(sim.folder / "signer" / "certificate.json"), "--kind", kind)  # fmt: skip
        yield env, ports, sims, data
    finally:
        for process in processes:
            stop(process)


def exchange_until_quiet(env: dict[str, str], *steps: str) -> None:
    """`etcnet exchange run` (and the banks' loop) until a pass has nothing to do."""
    for _ in range(10):
        said = cli(env, "exchange", *steps)
        if not said.strip():
            return
    raise AssertionError(f"still busy after ten passes: {said}")


def test_a_money_day_end_to_end(province, tmp_path):
    env, ports, sims, data = province
    db = data / "etcnet.sqlite3"
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    first, second = today - dt.timedelta(days=2), today - dt.timedelta(days=1)

    # 1. The handheld at the open-road station 轻纺城匝道北 charges the demo card.
    center = f"http://127.0.0.1:{ports['center']}"
    secret = register(env, "HH-OPEN", "S1201035", "3")
    port = free_port()
    terminal = start_terminal(
        center=center, terminal_id="HH-OPEN", secret=secret, cards=data / "cards",
        data=tmp_path / "HH-OPEN", port=port,
    )  # fmt: skip
    try:
        (obu_file,) = rows(
            db,
            "SELECT o.emulator_file FROM cards_binding b JOIN cards_cardunit c ON c.id = b.card_id"
            " JOIN cards_obuunit o ON o.id = b.obu_id WHERE c.card_no = ?",
            CARD,
        )[0]
        lane = TerminalPages(port)
        lane.sign_in("collector", PASSWORD)
        lane.post("/shift/start", {"lane": "3"})
        read_and_photo(lane, "/exit/linkage", card=f"card-{CARD}.json", obu=obu_file)
        lane.post("/exit/linkage", {"action": "quote", "vehicle_class": "1", "vehicle_kind": "0"})
        paid = lane.post("/exit/linkage", {"action": "commit"})
        assert 'data-testid="done"' in paid.text, paid.text[:2000]
        lane.wait_synced()
    finally:
        stop(terminal)
    uploaded = rows(db, "SELECT COUNT(*) FROM tolling_tolltransaction t JOIN tolling_terminal m"
                        " ON m.id = t.terminal_id WHERE m.terminal_id = 'HH-OPEN'")  # fmt: skip
    assert uploaded == [(1,)]

    # 2. The national center: the second day's packages out and answered, the
    #    demo card's Jiangsu purchase in, the day's 清分统计 reconciled.
    national = sims[NATIONAL]
    subprocess.run(
        [sys.executable, "-c", ELSEWHERE, national.url, str(national.folder / "tls-cert.pem")],
        env={**env, "DJANGO_SETTINGS_MODULE": "etcnet.settings"}, cwd=ROOT, check=True,
    )  # fmt: skip
    exchange_until_quiet(env, "run")
    out = rows(db, "SELECT state, response_code, COUNT(*) FROM exchange_transfer"
                   " WHERE direction = 'out' GROUP BY state, response_code")  # fmt: skip
    assert out
    assert all(state == "acked" and code == 1 for state, code, _ in out)
    summaries = rows(db, "SELECT clear_target_date, finding FROM clearing_exchangefile"
                         " WHERE direction = 'in' AND kind = 'summary'")  # fmt: skip
    assert summaries == [(second.isoformat(), "")]
    incoming = rows(db, "SELECT card_no, result FROM clearing_incomingtransaction")
    assert incoming == [(CARD, None)]  # TAC verified, charged
    # Their view of what they took of ours equals ours of what they accepted.
    taken = national.call("GET", "/sim/state")["received"]
    theirs = {r["kind"]: (r["records"], r["amount_fen"]) for r in taken if r["result"] == 1}
    ours = rows(db, "SELECT SUM(count), SUM(amount_fen) FROM clearing_exchangefile f"
                    " JOIN exchange_transfer t ON t.kind = 'transactions' AND t.direction = 'out'"
                    " AND t.message_id = f.message_id WHERE f.direction = 'out'"
                    " AND f.kind = 'transactions'")  # fmt: skip
    assert theirs["TransactionPackage"] == ours[0]
    accepted = rows(db, "SELECT SUM(amount_fen) FROM clearing_exchangefile"
                        " WHERE direction = 'in' AND kind = 'accounting'"
                        " AND clear_target_date = ?", second.isoformat())  # fmt: skip
    assert accepted[0][0] > 0

    # 3. Today cleared: the handheld's record, the accepted records, flow 3.
    cli(env, "clearing", "run", "--date", today.isoformat())

    # 4. The banks collect the second day's debit accounts; one account is short.
    debit = {}
    for bank_id, name in BANKS.items():
        accounts = rows(db, "SELECT bank_account_no FROM cards_account WHERE bank_name = ?", name)
        debit[bank_id] = [a for (a,) in accounts]
        funded = dict.fromkeys(debit[bank_id], 10_000_000)
        sims[bank_id].call("POST", "/sim/accounts", json={"accounts": funded})
    cli(env, "exchange", "bank", "debit", "--date", second.isoformat())
    lines = rows(db, "SELECT f.bank, l.bank_account_no FROM exchange_debitline l"
                     " JOIN exchange_bankfile f ON f.id = l.file_id ORDER BY l.id")  # fmt: skip
    short_bank, short_account = lines[0]
    sims[short_bank].call("POST", "/sim/accounts", json={"accounts": {short_account: 0}})
    exchange_until_quiet(env, "bank", "run")
    assert rows(db, "SELECT state, COUNT(*) FROM exchange_debitline GROUP BY state") == sorted(
        [("collected", len(lines) - 1), ("refused", 1)]
    )
    (recovery,) = rows(db, "SELECT id, state, owed_fen FROM exchange_recovery")
    assert recovery[1] == "open"
    # The account's debit card enters list type 4 (the lanes' next version carries it).
    entered = rows(db, "SELECT medium_id FROM lists_listevent WHERE list_type = 4"
                       " AND status = 1")  # fmt: skip
    assert len(entered) == 1

    # … then funded: the bank collects it later; the recovery closes, the list lifts.
    sims[short_bank].call("POST", "/sim/accounts", json={"accounts": {short_account: 10_000_000}})
    assert sims[short_bank].call("POST", "/sim/retry")["collected"] == 1
    exchange_until_quiet(env, "bank", "run")
    assert rows(db, "SELECT state, owed_fen FROM exchange_recovery") == [("paid", 0)]
    left = rows(db, "SELECT medium_id FROM lists_listevent WHERE list_type = 4"
                    " AND status = 2")  # fmt: skip
    assert left == entered
    for bank_id in BANKS:
        collected = sims[bank_id].call("GET", "/sim/state")["debits"].get("C", {})
        ours_collected = rows(
            db, "SELECT COALESCE(SUM(l.amount_fen), 0) FROM exchange_debitline l JOIN"
                " exchange_bankfile f ON f.id = l.file_id"
                " WHERE f.bank = ? AND l.state = 'collected'",
            bank_id,
        )  # fmt: skip
        assert collected.get("amount_fen", 0) == ours_collected[0][0]

    # 5. Settlement of the second day through 邮储银行: every instruction confirmed.
    cli(env, "exchange", "bank", "instruct", "--date", second.isoformat())
    exchange_until_quiet(env, "bank", "run")
    instructed = rows(db, "SELECT reference, amount_fen, state FROM exchange_settlementinstruction"
                          " ORDER BY reference")  # fmt: skip
    assert instructed
    assert {state for _, _, state in instructed} == {"confirmed"}
    executed = sims[POSTAL].call("GET", "/sim/state")["executed"]
    assert [(e["reference"], e["amount_fen"]) for e in executed] == [
        (ref, amount) for ref, amount, _ in instructed
    ]

    # 6. The ledger balances.
    cli(env, "ledger", "check")
    assert first < second
