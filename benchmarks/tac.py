"""TAC verifications per second: what the center does per uploaded purchase.

    python -m benchmarks.tac [--seconds N] [--cards N]

(``make benchmark`` runs it with the defaults.) For 3DES and SM4 it times
``etcnet.cards.vault.verify_purchase_tac`` — the call the center's intake makes for
every card purchase it receives: find the card's TAC key (the issuer master key
diversified twice, by issuer and by card) and verify the TAC —

- repeat cards: ``--cards`` cards (default 10,000) cycled, each transaction with its
  own amount and terminal sequence, after one pass has warmed the vault;
- first-seen cards: a card number the vault has never seen, every call;

and beside them the raw rates on the same core: ``etcnet.smartcard.crypto.
verify_purchase_tac`` given the card's DTK, and ``cryptography``'s single-block
encryption with a new cipher context per block and with one context reused.

``--seconds`` (default 5) is the timed budget, split evenly over the ten figures. Time
is counted as CPU time of this process (``time.process_time``): the rate of one core,
whatever else a shared machine is running. Expected TACs are computed outside the
timing, straight from the master key with ``crypto.derive``, and every verdict is
checked, so a fast but wrong vault fails the run. The vault reads fixed test keys from
``ETCNET_KEYS``, set for the run and restored after it; ``DJANGO_SETTINGS_MODULE``
defaults to ``etcnet.settings``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

from etcnet.cards import vault
from etcnet.smartcard.crypto import Alg, derive, purchase_tac, verify_purchase_tac

try:  # the same import as etcnet.smartcard.crypto
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef,unused-ignore]
        TripleDES,
    )

# The worked example's TAC master key (ETC.md Part 2 §1.6); the other keys are fillers.
MTK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
ISSUER_ID = "C9C2CEF761010001"
ISSUER_FACTOR = bytes.fromhex(ISSUER_ID[:8] * 2)
FACTORS = (bytes.fromhex("BAFEC4CFBAFEC4CF"), bytes.fromhex("1900232500052902"))
TERMINAL = bytes.fromhex("430101000001")
WHEN = datetime.datetime(2020, 1, 1, 12, 0, 0)
PURCHASE = 0x09

# CPU seconds of this process: the rate one core gives, whatever else the machine runs.
_clock = time.process_time


def _keys_json() -> str:
    table = {
        "purchase": "11223344556677888877665544332211",
        "load": "22334455667788999988776655443322",
        "tac": MTK.hex().upper(),
        "update": "33445566778899AAAA99887766554433",
        "obu": "445566778899AABBBBAA998877665544",
    }
    return json.dumps(
        {"issuer_id": ISSUER_ID, "key_version": 1, "keys": {"3des": table, "sm4": table}}
    )


@contextmanager
def _bench_keys() -> Iterator[None]:
    """The vault on the benchmark's keys; the environment restored after."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etcnet.settings")
    before = os.environ.get("ETCNET_KEYS")
    os.environ["ETCNET_KEYS"] = _keys_json()
    vault.reset_cache()
    try:
        yield
    finally:
        if before is None:
            del os.environ["ETCNET_KEYS"]
        else:
            os.environ["ETCNET_KEYS"] = before
        vault.reset_cache()


@dataclass(frozen=True)
class Purchase:
    internal_no: str
    amount: int
    seq: bytes
    tac: bytes


def _purchases(alg: Alg, first: int, count: int) -> list[Purchase]:
    """``count`` purchases of cards ``first``… with their TACs, computed from MTK."""
    out = []
    for n in range(first, first + count):
        internal_no = f"{n:016d}"
        dtk = derive(alg, MTK, ISSUER_FACTOR, bytes.fromhex(internal_no))
        amount, seq = 100 + n % 9_000, (n * 7).to_bytes(4, "big")
        out.append(
            Purchase(
                internal_no,
                amount,
                seq,
                purchase_tac(alg, dtk, amount, PURCHASE, TERMINAL, seq, WHEN),
            )
        )
    return out


def _verify_all(alg: Alg, purchases: Sequence[Purchase]) -> None:
    check = vault.verify_purchase_tac
    for p in purchases:
        if not check(
            alg,
            p.internal_no,
            amount=p.amount,
            trans_type=PURCHASE,
            terminal_no=TERMINAL,
            terminal_seq=p.seq,
            when=WHEN,
            tac=p.tac,
        ):
            raise AssertionError(f"the vault refused a good TAC of card {p.internal_no}")


def repeat_rate(alg: Alg, cards: int, seconds: float) -> float:
    """Verifications per second over ``cards`` cards cycled, after a warming pass."""
    purchases = _purchases(alg, 1, cards)
    _verify_all(alg, purchases)
    calls, elapsed = 0, 0.0
    while elapsed < seconds:
        start = _clock()
        _verify_all(alg, purchases)
        elapsed += _clock() - start
        calls += len(purchases)
    return calls / elapsed


def first_seen_rate(alg: Alg, seconds: float, chunk: int = 1_000) -> float:
    """Verifications per second, each of a card the vault has not seen before."""
    calls, elapsed, first = 0, 0.0, 10_000_000
    while elapsed < seconds:
        purchases = _purchases(alg, first, chunk)  # untimed
        first += chunk
        start = _clock()
        _verify_all(alg, purchases)
        elapsed += _clock() - start
        calls += chunk
    return calls / elapsed


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls of ``work`` per second, measured for about ``seconds``."""
    calls, batch = 0, 64
    start = _clock()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            work()
        calls += batch
        now = _clock()
        if now >= deadline:
            return calls / (now - start)


def _tac_verifier(alg: Alg) -> Callable[[], object]:
    dtk = derive(alg, MTK, *FACTORS)
    tac = purchase_tac(alg, dtk, 1234, PURCHASE, TERMINAL, 0x123, WHEN)

    def verify() -> bool:
        ok = verify_purchase_tac(alg, dtk, 1234, PURCHASE, TERMINAL, 0x123, WHEN, tac)
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


HEADER = (
    "alg",
    "repeat cards/s",
    "first-seen/s",
    "TAC verify/s (DTK given)",
    "block/s (new context)",
    "block/s (reused)",
)
WIDTHS = (5, 15, 13, 25, 22, 17)


def _row(cells: Sequence[str]) -> str:
    first, *rest = cells
    return f"{first:<{WIDTHS[0]}}" + "".join(
        f" {cell:>{width}}" for cell, width in zip(rest, WIDTHS[1:], strict=True)
    )


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tac",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="total budget (default 5)")
    parser.add_argument(
        "--cards", type=int, default=10_000, help="repeat cards cycled (default 10,000)"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    if args.cards <= 0:
        parser.error("--cards must be positive")
    share = args.seconds / 10
    import cryptography

    rows = []
    with _bench_keys():
        for alg in Alg:
            rows.append(
                (
                    alg.value,
                    repeat_rate(alg, args.cards, share),
                    first_seen_rate(alg, share),
                    rate(_tac_verifier(alg), share),
                    rate(_fresh_block(alg), share),
                    rate(_reused_block(alg), share),
                )
            )
    out.write(
        "Center TAC verification (vault.verify_purchase_tac) vs. raw crypto "
        f"(cryptography {cryptography.__version__}), one core\n"
    )
    out.write(_row(HEADER) + "\n")
    for name, *figures in rows:
        out.write(_row([str(name), *(f"{figure:,.0f}" for figure in figures)]) + "\n")
    out.write(
        f"repeat cards = {args.cards:,} cards cycled, the vault warm; first-seen = a new "
        "card number every call; each verdict checked against an independent TAC\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
