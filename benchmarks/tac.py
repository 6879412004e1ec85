"""TAC verifications per second in the center, beside the raw cipher rate.

    python -m benchmarks.tac [--seconds N]

For 3DES and SM4 it times ``etcnet.smartcard.crypto.verify_purchase_tac`` (what the
center runs for every uploaded purchase) and the raw single-block encryption rate of
``cryptography`` on the same machine: once with a new cipher context per block (the
cost a TAC verification pays per call) and once with one context reused. ``--seconds``
is the total budget, split evenly over the six measurements (default 3).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

from etcnet.smartcard.crypto import Alg, derive, purchase_tac, verify_purchase_tac

try:  # the same import as etcnet.smartcard.crypto
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef,unused-ignore]
        TripleDES,
    )

MTK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
FACTORS = (bytes.fromhex("BAFEC4CFBAFEC4CF"), bytes.fromhex("1900232500052902"))
TERMINAL = bytes.fromhex("430101000001")
WHEN = datetime.datetime(2020, 1, 1, 12, 0, 0)


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls of ``work`` per second, measured for about ``seconds``."""
    calls, batch = 0, 64
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            work()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def _tac_verifier(alg: Alg) -> Callable[[], object]:
    dtk = derive(alg, MTK, *FACTORS)
    tac = purchase_tac(alg, dtk, 1234, 0x09, TERMINAL, 0x123, WHEN)

    def verify() -> bool:
        ok = verify_purchase_tac(alg, dtk, 1234, 0x09, TERMINAL, 0x123, WHEN, tac)
        assert ok
        return ok

    return verify


def _center_verifier(alg: Alg) -> Callable[[], object]:
    """What the center does per uploaded transaction: derive the card's TAC key
    from the master key (two levels), then verify."""
    dtk = derive(alg, MTK, *FACTORS)
    tac = purchase_tac(alg, dtk, 1234, 0x09, TERMINAL, 0x123, WHEN)

    def verify() -> bool:
        ok = verify_purchase_tac(
            alg, derive(alg, MTK, *FACTORS), 1234, 0x09, TERMINAL, 0x123, WHEN, tac
        )
        assert ok
        return ok

    return verify


def _cipher(alg: Alg) -> Cipher[modes.ECB]:
    if alg is Alg.TDES:
        return Cipher(TripleDES(MTK + MTK[:8]), modes.ECB())
    return Cipher(SM4(MTK), modes.ECB())


def _fresh_block(alg: Alg) -> Callable[[], object]:
    block = bytes(alg.block_size)

    def encrypt() -> bytes:
        encryptor = _cipher(alg).encryptor()
        return encryptor.update(block) + encryptor.finalize()

    return encrypt


def _reused_block(alg: Alg) -> Callable[[], object]:
    block = bytes(alg.block_size)
    encryptor = _cipher(alg).encryptor()

    def encrypt() -> bytes:
        return encryptor.update(block)

    return encrypt


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tac", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="total budget (default 3)")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    share = args.seconds / 8
    import cryptography

    rows = []
    for alg in Alg:
        rows.append(
            (
                alg.value,
                rate(_center_verifier(alg), share),
                rate(_tac_verifier(alg), share),
                rate(_fresh_block(alg), share),
                rate(_reused_block(alg), share),
            )
        )
    out.write(f"TAC verification vs. raw block cipher (cryptography {cryptography.__version__})\n")
    header = (
        "alg",
        "center verify/s",
        "TAC verify/s",
        "block/s (new context)",
        "block/s (reused context)",
    )
    out.write(f"{header[0]:<5} {header[1]:>16} {header[2]:>14} {header[3]:>22} {header[4]:>25}\n")
    for name, center, tac_rate, fresh, reused in rows:
        out.write(
            f"{name:<5} {center:>16,.0f} {tac_rate:>14,.0f} {fresh:>22,.0f} {reused:>25,.0f}\n"
        )
    out.write("center verify = derive the card's TAC key (two levels) + verify, per transaction\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
