"""The demo's exchange processes beside the center (`make demo`): the signature
server, the simulated national center and the front server's loop, each a
process of its own, as deployed — and, once, a package of the demo card used on
another province's road, which the national center hands to us.

The second demo clearing day's other-issuer records go out through the link
when the loop first runs; the simulated national center answers them (one
record in fifty disputed) and, once we have answered all of a day's 记账, sends
that day's 清分统计."""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.utils import timezone

from etcnet.cards import devices
from etcnet.cards.models import CardUnit
from etcnet.clearing import packages
from etcnet.exchange import signing
from etcnet.smartcard import ops
from etcnet.smartcard.transport import open_emulated

__all__ = ["start"]

ACTOR = "etcnet center demo"
DEMO_CARD = "61010000000000000001"
#: Another province's lane (江苏) where the demo card paid, and what it paid.
ELSEWHERE_PSAM, ELSEWHERE_FEN = "320101000001", 1_235
NATIONAL_PORT = 8720
_LOCAL = dt.timezone(dt.timedelta(hours=8))


def _etcnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "etcnet.cli", *args]


def _wait_for(paths: list[Path], process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(p.exists() for p in paths):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the demo's exchange process did not start: {process.args!r}")
        time.sleep(0.1)


def start(into: list[subprocess.Popen[bytes]]) -> None:
    """Starts the processes, each added to ``into`` as it starts (the center
    stops them, also when one of them fails to start)."""
    data = Path(settings.DATA_DIR)
    signer_dir = data / "signer"
    if not (signer_dir / "key.json").exists():
        subprocess.run(
            _etcnet("signer", "--dir", str(signer_dir), "init"),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    into.append(subprocess.Popen(_etcnet("signer", "--dir", str(signer_dir), "serve")))
    national_dir = data / "national-sim"
    national = subprocess.Popen(
        _etcnet(
            "exchange", "national-sim", "--dir", str(national_dir),
            "--peer-cert", str(signer_dir / "certificate.json"),
            "--port", str(NATIONAL_PORT), "--dispute-every", "50", "--auto-summary",
        )
    )  # fmt: skip
    into.append(national)
    _wait_for(
        [national_dir / "tls-cert.pem", national_dir / "signer" / "certificate.json"], national
    )
    signing.register((signer_dir / "certificate.json").read_bytes(), kind="self", actor=ACTOR)
    signing.register(
        (national_dir / "signer" / "certificate.json").read_bytes(), kind="national", actor=ACTOR
    )
    marker = national_dir / "demo-card-elsewhere"
    if not marker.exists():
        _hand_over(_card_used_elsewhere(), national_dir / "tls-cert.pem")
        marker.write_text("handed over\n")
    into.append(subprocess.Popen(_etcnet("exchange", "run", "--every", "15")))
    print(
        f"etcnet signer on {settings.ETCNET_SIGNER_URL}; national-sim on "
        f"https://127.0.0.1:{NATIONAL_PORT}/ (its state: /sim/state); the exchange runs every 15 s",
        flush=True,
    )
    from etcnet.demo import banks  # the simulated banks and the bank loop (docs/banks.md)

    into.extend(banks.start())


def _card_used_elsewhere() -> bytes | None:
    """The demo card pays 12.35 on a Jiangsu lane yesterday: a real purchase on
    the emulated card with a PSAM holding the shared purchase key, as the
    national center then forwards it (原始交易包) to us, its issuer."""
    card = CardUnit.objects.filter(card_no=DEMO_CARD).first()
    if card is None or not card.emulator_file:
        return None
    when = (timezone.localtime() - dt.timedelta(days=1)).replace(
        hour=15, minute=20, second=0, microsecond=0
    )
    with tempfile.TemporaryDirectory() as folder:
        psam = Path(folder) / "psam.json"
        devices.provision_psam(psam, terminal_no=ELSEWHERE_PSAM)
        paid = ops.purchase(
            devices.open_unit(card), open_emulated(psam), amount=ELSEWHERE_FEN,
            when=when.replace(tzinfo=None),
        )  # fmt: skip
    transaction = packages.Transaction(
        time=when.astimezone(_LOCAL),
        fee_fen=paid.amount,
        service=packages.Service(service_type=1, description="高速公路通行费", detail="G2 江苏"),
        card=packages.ICCard(
            card_type=packages.CardType(card.card_type or 22), net_no=DEMO_CARD[:4],
            card_id=DEMO_CARD[4:], license="陕A12345",
            pre_balance_fen=paid.balance_before, post_balance_fen=paid.balance_after,
        ),
        validation=packages.Validation(
            tac=paid.tac.hex().upper(), trans_type=packages.TransType("09"),
            terminal_no=ELSEWHERE_PSAM, terminal_trans_no=paid.terminal_seq.hex().upper(),
        ),
        customized=packages.CustomizedData(
            source_id=1, card_trans_no=paid.offline_atc, exit_station="G0002320010010",
            entry_station="", intervals=(),
        ),
        vehicle_type=1, algorithm=packages.Algorithm.TDES, trans_id=1,
    )  # fmt: skip
    package = packages.TransactionPackage(
        header=packages.Header(
            sender_id=settings.ETCNET_NATIONAL_CENTER_ID,
            receiver_id=settings.ETCNET_CLEARING_SENDER_ID,
            message_id=1_000_001,
        ),
        clear_target_date=when.date(),
        service_provider_id="3201",
        issuer_id=settings.ETCNET_SERVICE_PROVIDER_ID,
        message_id=1_000_001,
        transactions=(transaction,),
    )
    return packages.write(package)


def _hand_over(package: bytes | None, tls_ca: Path) -> None:
    if package is None:
        return
    context = ssl.create_default_context(cafile=str(tls_ca))
    answer = httpx.post(
        f"https://127.0.0.1:{NATIONAL_PORT}/sim/queue", content=package, verify=context, timeout=30
    )
    answer.raise_for_status()
