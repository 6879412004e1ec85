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

Speed: the center verifies the TAC of every card purchase it receives. The first
level of diversification (master key × issuer factor) is the same for every card, so
a process does it once, on first use, and keeps those issuer-level keys with their
cipher contexts; a card's key is then one block operation away. The purchase path
derives only the key it needs, the DTK, and keeps the TAC keys of recent cards ready
with their cipher contexts in an LRU cache per algorithm (``ETCNET_CARD_KEY_CACHE``
cards, default 20,000; about 1.3 KB a 3DES card and 1 KB an SM4 card, so at most
some 50 MB a process). ``reset_cache()`` forgets all of it — call it after changing
the keys; changing the ``ETCNET_KEYS_FILE`` or ``ETCNET_CARD_KEY_CACHE`` setting does
it by itself. Nothing cached is ever logged or shown by ``repr``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import _CacheInfo, _lru_cache_wrapper, cache, lru_cache, partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from etcnet.core.errors import DomainError
from etcnet.core.validators import gettext_noop
from etcnet.smartcard import crypto
from etcnet.smartcard.crypto import Alg, CardKeys, CipherKey, TacKey

KEY_NAMES = ("purchase", "load", "tac", "update", "obu")
#: The card keys, diversified per issuer then per card (the OBU key per contract only).
CARD_KEY_NAMES = ("purchase", "load", "tac", "update")
#: Cards per algorithm whose TAC key is kept ready, unless ETCNET_CARD_KEY_CACHE says.
DEFAULT_CARD_KEY_CACHE = 20_000


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


class _Keyring:
    """What a process derives from the master keys once: the issuer-level keys (the
    first diversification) ready to diversify per card, and recent cards' TAC keys."""

    __slots__ = ("issuer", "tac_keys")

    def __init__(self, keys: MasterKeys, card_cache: int) -> None:
        # §1.5: the first-level factor is the 4-byte issuing region, twice.
        factor = keys.issuer_id[:4] * 2
        self.issuer: dict[Alg, dict[str, CipherKey]] = {
            alg: {
                name: CipherKey(alg, crypto.diversify(alg, table[name], factor))
                for name in CARD_KEY_NAMES
            }
            for alg, table in keys.keys.items()
        }
        # One LRU per algorithm, keyed by the internal number alone (a str key is
        # stored as is: the smallest entry lru_cache makes).
        self.tac_keys: dict[Alg, _lru_cache_wrapper[TacKey]] = {
            alg: lru_cache(maxsize=card_cache)(partial(self._tac_key, alg)) for alg in Alg
        }

    def __repr__(self) -> str:
        return "_Keyring(<hidden>)"

    def card_key(self, alg: Alg, name: str, internal_no: str) -> bytes:
        return self.issuer[alg][name].diversify(_serial(internal_no))

    def _tac_key(self, alg: Alg, internal_no: str) -> TacKey:
        return TacKey(alg, self.card_key(alg, "tac", internal_no))


_keyring: _Keyring | None = None


def _card_cache_size() -> int:
    size = getattr(settings, "ETCNET_CARD_KEY_CACHE", DEFAULT_CARD_KEY_CACHE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise VaultNotConfigured(
            gettext_noop("The key configuration in {source} is not valid: {problem}."),
            params={"source": "ETCNET_CARD_KEY_CACHE", "problem": "a card count, 0 or more"},
        )
    return size


def _ring() -> _Keyring:
    global _keyring
    ring = _keyring
    if ring is None:
        # Two threads may both build it; either result is the same, the last one stays.
        ring = _keyring = _Keyring(master(), _card_cache_size())
    return ring


def reset_cache() -> None:
    """Forget the master keys and everything derived from them (issuer-level keys,
    cards' TAC keys): the next call reads the configuration again."""
    global _keyring
    _load.cache_clear()
    _keyring = None


def card_key_cache_info() -> dict[Alg, _CacheInfo]:
    """Hits, misses and size of the cache of cards' TAC keys, per algorithm."""
    return {alg: tac_keys.cache_info() for alg, tac_keys in _ring().tac_keys.items()}


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("ETCNET_KEYS_FILE", "ETCNET_CARD_KEY_CACHE"):
        reset_cache()


setting_changed.connect(_on_setting_changed, dispatch_uid="etcnet.cards.vault")


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


def _serial(internal_no: str) -> bytes:
    return bytes.fromhex(internal_no)  # 16 BCD digits → 8 bytes


def card_keys(alg: Alg, internal_no: str) -> CardKeys:
    """The card's own keys, two-level diversified (issuer factor, then card serial)."""
    ring = _ring()
    return CardKeys(
        dpk=ring.card_key(alg, "purchase", internal_no),
        dlk=ring.card_key(alg, "load", internal_no),
        dtk=ring.card_key(alg, "tac", internal_no),
        damk=ring.card_key(alg, "update", internal_no),
    )


def _dlk(alg: Alg, internal_no: str) -> bytes:
    return _ring().card_key(alg, "load", internal_no)


def _tac_key(alg: Alg, internal_no: str) -> TacKey:
    return _ring().tac_keys[alg](internal_no)


def obu_update_key(contract_no: str) -> bytes:
    """The OBU ESAM's maintenance key, diversified by its contract serial (§2.3)."""
    return crypto.derive(Alg.TDES, master().keys[Alg.TDES]["obu"], _serial(contract_no))


def purchase_master_key(alg: Alg) -> bytes:
    """For provisioning a PSAM only."""
    return master().keys[alg]["purchase"]


def card_update_mac(alg: Alg, internal_no: str, challenge: bytes, apdu: bytes) -> bytes:
    damk = _ring().card_key(alg, "update", internal_no)
    return crypto.line_protection_mac(alg, damk, challenge, apdu)


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
    session = crypto.load_session_key(alg, _dlk(alg, internal_no), random, online_atc)
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
    session = crypto.load_session_key(alg, _dlk(alg, internal_no), random, online_atc)
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
    return crypto.verify_load_tac(
        alg,
        _tac_key(alg, internal_no),
        balance_after,
        online_atc,
        amount,
        0x02,
        terminal_no,
        when,
        tac,
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
    """True when ``tac`` is the card's TAC of this purchase: the center's per-record check.

    Only the card's TAC key is derived, once per card while it stays in the cache."""
    return crypto.verify_purchase_tac(
        alg, _tac_key(alg, internal_no), amount, trans_type, terminal_no, terminal_seq, when, tac
    )


# -- shared keys of non-transport issuers (the banks' cards) ------------------------
#
# A bank that issues ETC cards (a non-transport issuer, 非交通机构) shares its card
# master keys with the center (共享密钥接收) so that the center can verify its
# cards' TACs. They arrive wrapped under a transport key agreed with that bank
# out of band — configured beside the master keys, ``"transport": {"<bank party
# id>": "<hex, 16 bytes>"}`` — and are kept only here, sealed: SM4-GCM under a
# storage key the vault derives from its own master keys (HKDF-SM3, a label of
# its own), one file each under ``shared-keys/`` beside the key file (mode 600).
# Nothing in clear reaches the disk, a log or the database; callers see the key
# check value (KCV) only.

_SHARED_LABEL = b"etcnet vault: shared-key storage"


def _source() -> tuple[str, str]:
    env = os.environ.get("ETCNET_KEYS", "")
    if env:
        return env, "ETCNET_KEYS"
    path = settings.ETCNET_KEYS_FILE
    if path and Path(path).is_file():
        return Path(path).read_text(), path
    raise VaultNotConfigured()


def transport_key(bank_id: str) -> bytes:
    """The transport key agreed with ``bank_id`` (raises VaultNotConfigured)."""
    text, source = _source()
    try:
        key = bytes.fromhex(json.loads(text)["transport"][bank_id])
    except (ValueError, KeyError, TypeError) as error:
        raise VaultNotConfigured(
            gettext_noop("The key configuration in {source} is not valid: {problem}."),
            params={"source": source, "problem": f"no transport key for {bank_id}"},
        ) from error
    if len(key) != 16:
        raise VaultNotConfigured(
            gettext_noop("The key configuration in {source} is not valid: {problem}."),
            params={"source": source, "problem": f"the transport key of {bank_id}: 16 bytes"},
        )
    return key


def _storage_key() -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    keys = master()
    material = b"".join(keys.keys[alg][name] for alg in Alg for name in KEY_NAMES)
    return HKDF(hashes.SM3(), 16, keys.issuer_id, _SHARED_LABEL).derive(material)


def shared_key_dir() -> Path:
    return Path(settings.ETCNET_KEYS_FILE).resolve().parent / "shared-keys"


def _shared_path(issuer: str, version: int, alg: str, name: str) -> Path:
    if not (issuer.isalnum() and alg.isalnum() and name.isalnum()):
        raise ValueError("issuer, algorithm and key name are letters and digits")
    return shared_key_dir() / f"{issuer}-{version}-{alg}-{name}.json"


def store_shared_key(
    *, issuer: str, version: int, alg: str, name: str, key: bytes, bank: str
) -> str:
    """Seal and keep a bank's shared key; returns its KCV. Storing the same key
    again changes nothing; another key under the same issuer, version, algorithm
    and name replaces it (a bank resending its keys after a ceremony)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    check = crypto_kcv(key)
    path = _shared_path(issuer, version, alg, name)
    meta = {"alg": alg, "bank": bank, "issuer": issuer, "kcv": check, "name": name,
            "version": version}  # fmt: skip
    aad = json.dumps(meta, sort_keys=True).encode()
    if path.exists():
        kept = json.loads(path.read_text())
        if kept.get("kcv") == check:
            return check
    nonce = secrets.token_bytes(12)
    encryptor = Cipher(algorithms.SM4(_storage_key()), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    sealed = encryptor.update(key) + encryptor.finalize()
    body = {**meta, "nonce": nonce.hex(), "sealed": sealed.hex(), "tag": encryptor.tag.hex()}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(body, sort_keys=True))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return check


def shared_key(*, issuer: str, version: int, alg: str, name: str) -> bytes:
    """A bank's shared key, unsealed, for the vault's own computations."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    body = json.loads(_shared_path(issuer, version, alg, name).read_text())
    meta = {k: body[k] for k in ("alg", "bank", "issuer", "kcv", "name", "version")}
    decryptor = Cipher(
        algorithms.SM4(_storage_key()),
        modes.GCM(bytes.fromhex(body["nonce"]), bytes.fromhex(body["tag"])),
    ).decryptor()
    decryptor.authenticate_additional_data(json.dumps(meta, sort_keys=True).encode())
    return decryptor.update(bytes.fromhex(body["sealed"])) + decryptor.finalize()


def shared_keys() -> list[dict[str, Any]]:
    """What the vault holds of the banks' keys: issuer, version, algorithm, name,
    bank and KCV — never a key."""
    folder = shared_key_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        body = json.loads(path.read_text())
        found.append({k: body[k] for k in ("issuer", "version", "alg", "name", "bank", "kcv")})
    return found


def crypto_kcv(key: bytes) -> str:
    """The key check value: the first 3 bytes of SM4(key, 0¹²⁸), hex."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return (encryptor.update(bytes(16)) + encryptor.finalize())[:3].hex().upper()
