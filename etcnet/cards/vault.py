"""The center's key vault: issuer master keys, and every computation that needs them.

The master keys come from configuration only: `ETCNET_KEYS_FILE` (a JSON file)
or `ETCNET_KEYS` (the same JSON in the environment). They are never logged,
never returned by an API and never leave this module; callers get derived card
keys for personalisation, MACs and TAC verdicts. Terminals get an emulated
PSAM with the purchase master key, as a real lane PSAM holds it — never the
load, TAC or update keys.

File format (hex, 16-byte keys)::

    {"issuer_id": "C9C2CEF761010001", "key_version": 1,
     "keys": {"3des": {"purchase": "…", "load": "…", "tac": "…", "update": "…", "obu": "…"},
              "sm4":  {"purchase": "…", "load": "…", "tac": "…", "update": "…", "obu": "…"}}}

A software vault is the default; an HSM can replace this module's functions.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from django.conf import settings

from etcnet.core.errors import DomainError
from etcnet.core.validators import gettext_noop
from etcnet.smartcard import crypto
from etcnet.smartcard.crypto import Alg, CardKeys

KEY_NAMES = ("purchase", "load", "tac", "update", "obu")


class VaultNotConfigured(DomainError):
    status = 503
    code = "vault_not_configured"
    template = gettext_noop(
        "The key vault has no issuer keys: set ETCNET_KEYS_FILE or ETCNET_KEYS."
    )


@dataclass(frozen=True)
class MasterKeys:
    issuer_id: bytes  # 8 bytes: province (GB2312, 4) + issuer-defined (4)
    key_version: int
    keys: dict[Alg, dict[str, bytes]]

    def __repr__(self) -> str:  # never print key material
        return f"MasterKeys(issuer_id={self.issuer_id.hex().upper()}, version={self.key_version})"


def _parse(text: str, source: str) -> MasterKeys:
    try:
        raw = json.loads(text)
        issuer = bytes.fromhex(raw["issuer_id"])
        version = int(raw.get("key_version", 1))
        keys: dict[Alg, dict[str, bytes]] = {}
        for alg in Alg:  # both algorithms: a card of either may come to the counter
            table = raw["keys"][alg.value]
            keys[alg] = {name: bytes.fromhex(table[name]) for name in KEY_NAMES}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        # The message names the problem, never a key value.
        raise VaultNotConfigured(
            gettext_noop("The key configuration in {source} is not valid: {problem}."),
            params={"source": source, "problem": type(error).__name__},
        ) from None
    if (
        len(issuer) != 8
        or not 1 <= version <= 255
        or any(len(k) != 16 for t in keys.values() for k in t.values())
    ):
        raise VaultNotConfigured(
            gettext_noop("The key configuration in {source} is not valid: {problem}."),
            params={"source": source, "problem": "issuer id 8 bytes, version 1-255, keys 16 bytes"},
        )
    return MasterKeys(issuer, version, keys)


@cache
def _load(path: str, env: str) -> MasterKeys:
    if env:
        return _parse(env, "ETCNET_KEYS")
    if path and Path(path).is_file():
        return _parse(Path(path).read_text(), path)
    raise VaultNotConfigured()


def master() -> MasterKeys:
    return _load(settings.ETCNET_KEYS_FILE, os.environ.get("ETCNET_KEYS", ""))


def reset_cache() -> None:
    _load.cache_clear()


def generate_key_file(path: Path, *, issuer_id: str = "C9C2CEF761010001") -> None:
    """Fresh random master keys for a demo or a test (file mode 600)."""
    content = {
        "issuer_id": issuer_id,
        "key_version": 1,
        "keys": {
            alg.value: {name: secrets.token_hex(16).upper() for name in KEY_NAMES} for alg in Alg
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content, indent=2))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def issuer_factor() -> bytes:
    """First-level diversification factor: the 4-byte issuing region, twice (§1.5)."""
    region = master().issuer_id[:4]
    return region + region


def _serial(internal_no: str) -> bytes:
    return bytes.fromhex(internal_no)  # 16 BCD digits → 8 bytes


def card_keys(alg: Alg, internal_no: str) -> CardKeys:
    """The card's own keys, two-level diversified (issuer factor, then card serial)."""
    table = master().keys[alg]
    masters = CardKeys(
        dpk=table["purchase"], dlk=table["load"], dtk=table["tac"], damk=table["update"]
    )
    return masters.derived(alg, issuer_factor(), _serial(internal_no))


def obu_update_key(contract_no: str) -> bytes:
    """The OBU ESAM's maintenance key, diversified by its contract serial (§2.3)."""
    return crypto.derive(Alg.TDES, master().keys[Alg.TDES]["obu"], _serial(contract_no))


def purchase_master_key(alg: Alg) -> bytes:
    """For provisioning a PSAM only."""
    return master().keys[alg]["purchase"]


def card_update_mac(alg: Alg, internal_no: str, challenge: bytes, apdu: bytes) -> bytes:
    return crypto.line_protection_mac(alg, card_keys(alg, internal_no).damk, challenge, apdu)


def obu_update_mac(contract_no: str, challenge: bytes, apdu: bytes) -> bytes:
    return crypto.line_protection_mac(Alg.TDES, obu_update_key(contract_no), challenge, apdu)


def verify_load_mac1(
    alg: Alg,
    internal_no: str,
    *,
    random: bytes,
    online_atc: int,
    balance_before: int,
    amount: int,
    terminal_no: bytes,
    mac1: bytes,
) -> bool:
    keys = card_keys(alg, internal_no)
    session = crypto.load_session_key(alg, keys.dlk, random, online_atc)
    expected = crypto.load_mac1(alg, session, balance_before, amount, 0x02, terminal_no)
    return secrets.compare_digest(expected, mac1)


def load_mac2(
    alg: Alg,
    internal_no: str,
    *,
    random: bytes,
    online_atc: int,
    amount: int,
    terminal_no: bytes,
    when: datetime,
) -> bytes:
    keys = card_keys(alg, internal_no)
    session = crypto.load_session_key(alg, keys.dlk, random, online_atc)
    return crypto.load_mac2(alg, session, amount, 0x02, terminal_no, when)


def verify_load_tac(
    alg: Alg,
    internal_no: str,
    *,
    balance_after: int,
    online_atc: int,
    amount: int,
    terminal_no: bytes,
    when: datetime,
    tac: bytes,
) -> bool:
    keys = card_keys(alg, internal_no)
    return crypto.verify_load_tac(
        alg, keys.dtk, balance_after, online_atc, amount, 0x02, terminal_no, when, tac
    )


def verify_purchase_tac(
    alg: Alg,
    internal_no: str,
    *,
    amount: int,
    trans_type: int,
    terminal_no: bytes,
    terminal_seq: bytes,
    when: datetime,
    tac: bytes,
) -> bool:
    keys = card_keys(alg, internal_no)
    return crypto.verify_purchase_tac(
        alg, keys.dtk, amount, trans_type, terminal_no, terminal_seq, when, tac
    )
