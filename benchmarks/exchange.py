"""The exchange with the national center at a province's size: 原始交易包 of up to
10,000 records signed, sent over HTTPS, verified and applied, beside the raw SM2
sign and verify rate of GmSSL.

    python -m benchmarks.exchange [--trips N] [--database-url URL]

Works in a scratch PostgreSQL database of its own (``etcnet_bench_<pid>``, dropped
at the end; the named database is never touched) and a temporary data directory,
with a real signature server and a real simulated national center
(`etcnet exchange national-sim`), each its own process on a free port.

Preparation (not timed): ``generate_day`` writes yesterday's province day
(``--trips`` exits, default 200,000: about a quarter of them other issuers' cards
over five networks) and ``run_day`` clears it; its other-issuer records wait for
their packages.

Timed, each step alone:

- make: the day's packages built and written (XML, ≤ 10,000 records each);
- sign: each package hashed (SM3 of Z ‖ M) and signed by the signature server
  over its local API, the outbox rows stored (`link.queue`);
- send: each package posted over HTTPS; the national-sim verifies the SM2
  signature, reads and checks every record, stores it and answers a signed
  Response, which the sender verifies and stores (`link.send`);
- apply: the issuers' 记账 (one per package, every 50th record disputed) fetched,
  verified, applied to our records whole and answered (`link.receive`).

Printed: packages and records per second for each, beside GmSSL's raw SM2 sign
and verify per second and SM3 throughput in this process. Exit 2 when PostgreSQL
does not answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import httpx

from benchmarks.ingest import DEFAULT_URL, ServerUnreachable, _setup_django, scratch_database

TRIPS = 200_000
CARDS = 20_000
SEED = 16
SETTINGS = ("server_version", "shared_buffers")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_sm2(seconds: float = 1.0) -> tuple[float, float, float]:
    """GmSSL in this process: SM2 signs/s and verifies/s of a digest, SM3 MB/s."""
    from etcnet.exchange import sm2

    keys = sm2.generate()
    digest = sm2.digest(keys.public, b"x" * 1000)
    signature = sm2.sign_digest(keys.private, digest)
    rates = []
    for work in (
        lambda: sm2.sign_digest(keys.private, digest),
        lambda: sm2.verify_digest(keys.public, digest, signature),
    ):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            work()
            count += 1
        rates.append(count / (time.perf_counter() - start))
    data = b"<Transaction>" * 800_000  # about 10 MB, a full package's size
    start = time.perf_counter()
    sm2.fingerprint(data)
    return rates[0], rates[1], len(data) / 1e6 / (time.perf_counter() - start)


def _wait(url: str, process: subprocess.Popen[bytes], verify: object = True) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, verify=verify, timeout=2)  # type: ignore[arg-type]
            return
        except (httpx.HTTPError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start") from None
            time.sleep(0.2)


def run(trips: int, server_url: str, out: TextIO) -> int:
    with scratch_database(server_url, SETTINGS) as scratch:
        _setup_django(scratch.url, scratch.data_dir)
        data = Path(scratch.data_dir)
        signer_port, national_port = _free_port(), _free_port()
        os.environ["ETCNET_SIGNER_URL"] = f"http://127.0.0.1:{signer_port}"
        os.environ["ETCNET_NATIONAL_URL"] = f"https://127.0.0.1:{national_port}"
        from django.conf import settings
        from django.core.management import call_command

        settings.ETCNET_SIGNER_URL = os.environ["ETCNET_SIGNER_URL"]
        settings.ETCNET_NATIONAL_URL = os.environ["ETCNET_NATIONAL_URL"]
        settings.ETCNET_SIGNER_TOKEN_FILE = data / "signer" / "client.token"
        settings.ETCNET_NATIONAL_TLS_CA = data / "national-sim" / "tls-cert.pem"
        settings.ETCNET_EXCHANGE_TIMEOUT_S = 600
        call_command("migrate", verbosity=0)
        from etcnet.clearing import exchange, generate
        from etcnet.clearing import run as clearing
        from etcnet.exchange import link, signing

        date = dt.date.today() - dt.timedelta(days=1)
        out.write(f"PostgreSQL: {scratch.version}\npreparing {trips:,} trips of {date} …\n")
        generate.generate_day(date, trips=trips, seed=SEED, cards=CARDS)
        clearing.run_day(date)
        python = [sys.executable, "-m", "etcnet.cli"]
        env = {**os.environ}
        subprocess.run([*python, "signer", "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        processes = [
            subprocess.Popen([*python, "signer", "serve", "--port", str(signer_port)], env=env,
                             stdout=subprocess.DEVNULL),
            subprocess.Popen([*python, "exchange", "national-sim", "--dir",
                              str(data / "national-sim"), "--peer-cert",
                              str(data / "signer" / "certificate.json"), "--port",
                              str(national_port), "--dispute-every", "50"], env=env,
                             stdout=subprocess.DEVNULL),
        ]  # fmt: skip
        try:
            _wait(settings.ETCNET_SIGNER_URL + "/v1/health", processes[0])
            ca = settings.ETCNET_NATIONAL_TLS_CA
            deadline = time.monotonic() + 60
            while not ca.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            import ssl

            _wait(settings.ETCNET_NATIONAL_URL + "/sim/state", processes[1],
                  ssl.create_default_context(cafile=str(ca)))  # fmt: skip
            signing.register((data / "signer" / "certificate.json").read_bytes(), kind="self",
                             actor="benchmark")  # fmt: skip
            signing.register((data / "national-sim" / "signer" / "certificate.json").read_bytes(),
                             kind="national", actor="benchmark")  # fmt: skip

            start = time.perf_counter()
            made = list(exchange.day_packages(date, actor="benchmark"))
            make_s = time.perf_counter() - start
            records = sum(f.count for f in made)
            size = sum((exchange.folder() / f.name).stat().st_size for f in made)
            start = time.perf_counter()
            queued = link.queue(actor="benchmark")
            sign_s = time.perf_counter() - start
            start = time.perf_counter()
            sent = link.send(limit=10_000, actor="benchmark")
            send_s = time.perf_counter() - start
            start = time.perf_counter()
            got = link.receive(actor="benchmark")
            apply_s = time.perf_counter() - start
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
        sign_rate, verify_rate, sm3_mb = raw_sm2()
        ok = queued == len(made) and sent.acked == len(made) and got.applied == len(made)
        n = len(made)
        out.write(
            f"\n{n} packages, {records:,} records ({records / max(n, 1):,.0f} a package), "
            f"{size / 1e6:,.1f} MB of XML\n\n"
            f"{'step':<44}{'s':>8}{'packages/s':>12}{'records/s':>12}\n"
        )
        for name, seconds in (
            ("make (build, write XML)", make_s),
            ("sign (SM3 + signature server, outbox)", sign_s),
            ("send (HTTPS, sim verifies and checks)", send_s),
            ("apply (their 记账 verified and applied)", apply_s),
            ("all four", make_s + sign_s + send_s + apply_s),
        ):
            out.write(f"{name:<44}{seconds:>8.2f}{n / seconds:>12.2f}{records / seconds:>12,.0f}\n")
        out.write(
            f"\nGmSSL in this process: SM2 sign {sign_rate:,.0f}/s, verify {verify_rate:,.0f}/s, "
            f"SM3 {sm3_mb:,.0f} MB/s\n"
        )
        if not ok:
            out.write(
                f"MISMATCH: made {n}, queued {queued}, acknowledged {sent.acked}, "
                f"answers applied {got.applied} ({sent.failed[:3]} {got.failed[:3]})\n"
            )
            return 1
        return 0


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exchange", description=__doc__)
    parser.add_argument("--trips", type=int, default=TRIPS)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args(argv)
    try:
        return run(args.trips, args.database_url, out)
    except ServerUnreachable as error:
        out.write(f"{error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
