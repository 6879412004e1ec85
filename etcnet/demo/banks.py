"""The demo's banks beside the center (`make demo`, docs/banks.md): two simulated
banks, each a process of its own on a fixed port, and the banks' front server's
loop.

- 中国工商银行陕西省分行 (party 0000000000000102, https://127.0.0.1:8730): the bank of
  the demo's debit accounts — 张三's (card 61010000000000000002) and the
  generated province's accounts at it. Every account it is sent has funds but
  one, which it refuses (51 余额不足): that account goes into recovery (追缴) and
  its cards onto status list type 4.
- 中国邮政储蓄银行陕西省分行 (party 0000000000000100, https://127.0.0.1:8731): the
  settlement bank (全国ETC结算行). It executes the closed days' transfer
  instructions but holds one back unconfirmed, to be chased once overdue
  (``ETCNET_BANK_CONFIRM_HOURS``).

On each start: ``ETCNET_BANKS_FILE`` is written if there is none; a transport
key is agreed with each bank (in the vault's key file, and the bank's own
copy); both banks' certificates are registered; every closed clearing day gets
its debit, usage and transfer files (each made once); then `etcnet exchange
bank run --every 15` sends them and takes the banks' answers."""

from __future__ import annotations

import json
import secrets
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings

from etcnet.cards import vault
from etcnet.clearing.models import ClearingDay, DayStatus
from etcnet.exchange import signing
from etcnet.exchange.banks import debits, settlement
from etcnet.exchange.banks.config import ConfigError
from etcnet.exchange.models import BankFile, BankFileKind, DebitLine, DebitState

__all__ = ["BANKS", "DEBIT_ACCOUNT", "DEBIT_BANK", "start"]

ACTOR = "etcnet center demo"


@dataclass(frozen=True)
class DemoBank:
    label: str
    id: str
    name: str
    port: int


DEBIT_BANK = "中国工商银行陕西省分行"
#: 张三's bank account under the three-party agreement (the loader links it).
DEBIT_ACCOUNT = "6222600000000000002"
ICBC = DemoBank("icbc", "0000000000000102", DEBIT_BANK, 8730)
POSTAL = DemoBank("postal", "0000000000000100", "中国邮政储蓄银行陕西省分行", 8731)
BANKS = (ICBC, POSTAL)
FUNDS_FEN = 1_000_000_00  # what each funded account holds at the bank


def _etcnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "etcnet.cli", *args]


def _folder(bank: DemoBank) -> Path:
    return Path(settings.DATA_DIR) / "bank-sims" / bank.label


def _config() -> None:
    """The demo's ETCNET_BANKS_FILE, unless one is there (an operator's own)."""
    path = Path(settings.ETCNET_BANKS_FILE)
    if path.exists():
        return
    config = {
        "settlement_bank": POSTAL.id,
        "banks": {
            b.id: {
                "name": b.name,
                "url": f"https://127.0.0.1:{b.port}",
                "tls_ca": str(_folder(b) / "tls-cert.pem"),
            }
            for b in BANKS
        },
        # The settlement accounts at 邮储银行: ours, and one per kind of counterparty.
        "accounts": {
            "center": "9100000000000001",
            "owner:*": "9200000000000001",
            "bank:*": "9300000000000001",
            "purses": "9400000000000001",
            "station_cash:*": "9500000000000001",
            "mobile:*": "9600000000000001",
            "national_center": "9700000000000001",
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _transport_key(bank: DemoBank) -> Path:
    """The transport key agreed with ``bank`` (out of band in real life): in the
    vault's key file and in the bank's folder. None is agreed when the vault
    comes from ETCNET_KEYS (the bank then sends no shared keys)."""
    mine = _folder(bank) / "transport.key"
    key_file = Path(settings.ETCNET_KEYS_FILE)
    if not key_file.is_file():
        return mine
    keys = json.loads(key_file.read_text())
    agreed = keys.setdefault("transport", {})
    if bank.id not in agreed:
        agreed[bank.id] = secrets.token_hex(16).upper()
        key_file.write_text(json.dumps(keys, indent=2))
        vault.reset_cache()
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text(agreed[bank.id])
    mine.chmod(0o600)
    return mine


def _wait(process: subprocess.Popen[bytes], paths: list[Path], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(p.exists() for p in paths):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the demo's bank did not start: {process.args!r}")
        time.sleep(0.1)


def _sim(bank: DemoBank, path: str, body: object) -> None:
    """A control call to a running bank-sim (loopback, its own TLS certificate)."""
    context = ssl.create_default_context(cafile=str(_folder(bank) / "tls-cert.pem"))
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(
                f"https://127.0.0.1:{bank.port}{path}", json=body, verify=context, timeout=10
            ).raise_for_status()
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _signer_up(timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            signing.health()
            return True
        except signing.SignerUnavailable:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def _files() -> list[str]:
    """Each closed clearing day's debit, usage and transfer files (made once)."""
    said = []
    for day in ClearingDay.objects.filter(status=DayStatus.CLOSED).order_by("date"):
        for make in (debits.make_debit_files, debits.make_usage_files):
            try:
                made = make(day.date, actor=ACTOR)
            except (debits.BankError, ConfigError) as error:
                said.append(f"{day.date}: {error}")
                continue
            said.extend(f"{f.name}: {f.lines} lines" for f in made)
        try:
            instructed = settlement.make_instructions(day.date, actor=ACTOR)
        except (debits.BankError, ConfigError) as error:
            said.append(f"{day.date}: {error}")
        else:
            if instructed is not None:
                said.append(f"{instructed.name}: {instructed.lines} instructions")
    return said


def _accounts() -> None:
    """The debit bank's balances for the lines it has not answered yet: every
    account funded but the first one it was ever sent, which it refuses."""
    lines = DebitLine.objects.filter(file__bank=ICBC.id).order_by("file__created_at", "pk")
    first = lines.values_list("bank_account_no", flat=True).first()
    pending = set(lines.filter(state=DebitState.PENDING).values_list("bank_account_no", flat=True))
    balances = dict.fromkeys(pending | {DEBIT_ACCOUNT}, FUNDS_FEN)
    if first is not None and first != DEBIT_ACCOUNT:
        balances[first] = 0
    _sim(ICBC, "/sim/accounts", {"accounts": balances})


def _hold_one() -> None:
    """The settlement bank holds back the latest day's transfer to the national
    center (or its first instruction): it stays unconfirmed, to be chased."""
    latest = (
        BankFile.objects.filter(bank=POSTAL.id, kind=BankFileKind.TRANSFER, direction="out")
        .order_by("-date")
        .first()
    )
    if latest is None:
        return
    instructions = list(latest.instructions.order_by("line"))
    held = next((i for i in instructions if i.kind == "national_center"), None) or (
        instructions[0] if instructions else None
    )
    if held is not None:
        _sim(POSTAL, "/sim/behaviour", {"mode": "accept", "hold_confirm": [held.reference]})


def start() -> list[subprocess.Popen[bytes]]:
    """Starts the two banks and the bank loop; returns them for the center to stop.
    Expects the signature server started (etcnet.demo.exchange)."""
    _config()
    signer_cert = Path(settings.DATA_DIR) / "signer" / "certificate.json"
    processes = []
    for bank in BANKS:
        folder = _folder(bank)
        folder.mkdir(parents=True, exist_ok=True)
        key = _transport_key(bank)
        args = ["exchange", "bank-sim", "--dir", str(folder), "--peer-cert", str(signer_cert),
                "--bank-id", bank.id, "--name", bank.name, "--port", str(bank.port)]  # fmt: skip
        if key.exists():
            args += ["--transport-key-file", str(key)]
        process = subprocess.Popen(_etcnet(*args))
        processes.append(process)
        _wait(process, [folder / "tls-cert.pem", folder / "signer" / "certificate.json"])
        signing.register(
            (folder / "signer" / "certificate.json").read_bytes(), kind="bank", actor=ACTOR
        )
    if _signer_up():
        for said in _files():
            print(f"banks: {said}", flush=True)
        _accounts()
        _hold_one()
    else:
        print("banks: the signature server does not answer: no bank file made", flush=True)
    processes.append(subprocess.Popen(_etcnet("exchange", "bank", "run", "--every", "15")))
    print(
        f"bank-sims: {ICBC.name} on https://127.0.0.1:{ICBC.port}/, {POSTAL.name} (the"
        f" settlement bank) on https://127.0.0.1:{POSTAL.port}/ (their state: /sim/state);"
        " the bank loop runs every 15 s (/exchange/banks/)",
        flush=True,
    )
    return processes
