"""ETC card cryptography: key diversification, MACs, session keys, MAC1/MAC2/TAC.

3DES follows the PBOC e-purse scheme of ETC.md Part 2 §1.6 exactly (its worked
example is a test). SM4 follows etcnet's profile (ETC.md Part 1, "SM4 crypto"): the
same structure with 16-byte blocks. The load (圈存) formulas are the PBOC ones, taken
as etcnet's profile because the reference gives only the APDUs. Every choice is
listed in ``docs/smartcard.md`` ("Crypto profile").

All cipher work goes through ``cryptography``. Two-key 3DES keys (K1‖K2) are expanded
to the equivalent three-key form (K1‖K2‖K1) and single-DES keys to K‖K‖K before
they reach ``cryptography``, which deprecates 16-byte TripleDES keys.

Speed (the center verifies every uploaded TAC): the key schedule is the expensive part
of a block cipher call, so a key's ECB context is made once and reused. ECB over whole
blocks is stateless — ``update`` of a block multiple returns exactly its blocks and
buffers nothing — so one context serves any number of calls; it is never finalized.
CBC (the PBOC MAC) is computed as ECB of XOR-chained blocks through that context, bit
for bit what a CBC context gives. :class:`CipherKey` holds a key's context for a
caller that keeps the key (the vault's issuer-level keys, a card's TAC key); keys
passed as bytes find their context in a small bounded cache (``context_cache_info``).
"""

from __future__ import annotations

import datetime
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import _CacheInfo, lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

try:  # cryptography >= 43 keeps TripleDES among the "decrepit" algorithms.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef,unused-ignore]
        TripleDES,
    )


__all__ = [
    "LOAD_TRANS_TYPE",
    "Alg",
    "CardKeys",
    "CipherKey",
    "TacKey",
    "context_cache_info",
    "derive",
    "diversify",
    "line_protection_mac",
    "load_mac1",
    "load_mac2",
    "load_session_key",
    "load_tac",
    "mac",
    "purchase_mac1",
    "purchase_mac2",
    "purchase_session_key",
    "purchase_tac",
    "retail_mac",
    "tac_key",
    "verify_load_tac",
    "verify_purchase_tac",
]

#: PBOC transaction type of an e-purse load (圈存).
LOAD_TRANS_TYPE = 0x02


class Alg(Enum):
    """The card algorithm: 3DES (PBOC) or SM4 (国密, etcnet's profile)."""

    TDES = "3des"
    SM4 = "sm4"

    @property
    def card_alg_id(self) -> int:
        """The algorithm byte of the 8050 response and the 8070 command (00 / 04)."""
        return 0x00 if self is Alg.TDES else 0x04

    @property
    def record_id(self) -> int:
        """``algorithmIdentifier`` of gantry and exit transaction records (1 / 2)."""
        return 1 if self is Alg.TDES else 2

    @property
    def block_size(self) -> int:
        return 8 if self is Alg.TDES else 16

    @property
    def session_key_length(self) -> int:
        return 8 if self is Alg.TDES else 16

    @classmethod
    def from_card_alg_id(cls, value: int) -> Alg:
        for alg in cls:
            if alg.card_alg_id == value:
                return alg
        raise ValueError(f"algorithm id {value:02X} is neither 00 (3DES) nor 04 (SM4)")


# --- block primitives ----------------------------------------------------------------


def _need(value: bytes, length: int, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(value)}")
    return bytes(value)


def _fixed(value: bytes | int, length: int, name: str) -> bytes:
    """A counter or amount given as bytes of ``length`` or as an unsigned int."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be bytes or an int")
    if isinstance(value, int):
        if not 0 <= value < 1 << (8 * length):
            raise ValueError(f"{name} must fit in {length} bytes, got {value}")
        return value.to_bytes(length, "big")
    return _need(value, length, name)


def _amount(value: int, name: str = "amount") -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int number of fen")
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} must be between 0 and 4294967295 fen, got {value}")
    return value.to_bytes(4, "big")


def _tdes_alg(key: bytes) -> TripleDES:
    if len(key) == 8:
        return TripleDES(key * 3)
    if len(key) == 16:
        return TripleDES(key + key[:8])
    raise ValueError(f"a DES/3DES key is 8 or 16 bytes, got {len(key)}")


def _cipher_alg(alg: Alg, key: bytes) -> TripleDES | SM4:
    if alg is Alg.TDES:
        return _tdes_alg(key)
    return SM4(_need(key, 16, "SM4 key"))


_ECB = modes.ECB()  # a mode object holds no state

#: Bytes in → the same number of bytes out: one reusable ECB encryption context's update.
Encrypt = Callable[[bytes], bytes]


def _new_encryptor(alg: Alg, key: bytes) -> Encrypt:
    """A fresh ECB context for ``key``. Callers pass whole blocks only, so it never
    buffers: every call is one ``update`` that leaves no state behind, and the context
    serves any number of calls, from any thread."""
    return Cipher(_cipher_alg(alg, key), _ECB).encryptor().update


#: Contexts of keys passed as bytes: the issuer master keys while deriving, a test's
#: keys; one-off session keys pass through and age out. Bounded: a context with its
#: key schedule is about 1 KB.
_encryptor = lru_cache(maxsize=512)(_new_encryptor)


def context_cache_info() -> _CacheInfo:
    """Hits, misses and size of the cache of cipher contexts of keys given as bytes."""
    return _encryptor.cache_info()


def _ecb(alg: Alg, key: bytes, data: bytes) -> bytes:
    if len(data) % alg.block_size:  # a reused context must never hold a partial block
        raise ValueError(f"ECB input must be whole {alg.block_size}-byte blocks")
    return _encryptor(alg, bytes(key))(data)


def _cbc_last(encrypt: Encrypt, iv: bytes, data: bytes) -> bytes:
    """The last block of the CBC encryption of ``data`` (whole blocks) under ``iv``:
    each block XORed with the previous cipher block, then encrypted through ECB."""
    size = len(iv)
    bits, mask = 8 * size, (1 << 8 * size) - 1
    whole = int.from_bytes(data, "big")  # the blocks as one number: XOR without slicing
    chain = int.from_bytes(iv, "big")
    out = iv
    for shift in range(len(data) * 8 - bits, -1, -bits):
        out = encrypt((chain ^ (whole >> shift & mask)).to_bytes(size, "big"))
        chain = int.from_bytes(out, "big")
    return out


def _pad80(data: bytes, block: int) -> bytes:
    """ISO 9797-1 method 2: always append 80, then 00 up to a multiple of ``block``."""
    data = data + b"\x80"
    return data + bytes(-len(data) % block)


def _xor(left: bytes, right: bytes) -> bytes:
    if len(left) != len(right):
        raise ValueError("XOR of blocks of different lengths")
    value = int.from_bytes(left, "big") ^ int.from_bytes(right, "big")
    return value.to_bytes(len(left), "big")


_NOT = bytes(b ^ 0xFF for b in range(256))


def _not(data: bytes) -> bytes:
    return data.translate(_NOT)


# --- keys ----------------------------------------------------------------------------


class CipherKey:
    """A key held with its ECB cipher context, for many operations under one key.

    The vault keeps its issuer-level keys this way (each card's keys are one
    ``diversify`` away) and a card's TAC key (:class:`TacKey`). Results are those of
    the module functions given the same key as bytes. ``repr`` never shows the key."""

    __slots__ = ("_encrypt", "alg")

    def __init__(self, alg: Alg, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError(f"key must be bytes, got {type(key).__name__}")
        self.alg = alg
        self._encrypt = _new_encryptor(alg, bytes(key))  # checks the length

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.alg.value}, <hidden>)"

    def encrypt(self, data: bytes) -> bytes:
        """ECB of whole blocks (3DES: two-key EDE for a 16-byte key, DES for 8)."""
        if len(data) % self.alg.block_size:
            raise ValueError(f"ECB input must be whole {self.alg.block_size}-byte blocks")
        return self._encrypt(data)

    def diversify(self, factor: bytes) -> bytes:
        """:func:`diversify` with this (16-byte) key: ``F ‖ ~F`` in one ECB call — the
        same bytes for 3DES (two blocks) and SM4 (one block)."""
        factor = _need(factor, 8, "diversification factor")
        return self._encrypt(factor + _not(factor))

    def mac(self, data: bytes, iv: bytes | None = None) -> bytes:
        """:func:`mac` with this key (3DES: an 8-byte single-DES key)."""
        block = self.alg.block_size
        iv = bytes(block) if iv is None else _need(iv, block, "IV")
        return _cbc_last(self._encrypt, iv, _pad80(data, block))[:4]


class TacKey(CipherKey):
    """A card's TAC key prepared from its DTK (:func:`tac_key`), for verifying many of
    its TACs; :func:`verify_purchase_tac` and :func:`verify_load_tac` take it in place
    of the DTK."""

    __slots__ = ()

    def __init__(self, alg: Alg, dtk: bytes) -> None:
        super().__init__(alg, tac_key(alg, dtk))


def diversify(alg: Alg, master: bytes, factor: bytes) -> bytes:
    """One level of key diversification (分散) of a 16-byte key with an 8-byte factor.

    3DES: ``E(MK, F) ‖ E(MK, ~F)`` with two-key 3DES-EDE (§1.6). SM4: ``SM4(MK, F ‖ ~F)``
    (Part 1 SM4 profile)."""
    master = _need(master, 16, "master key")
    factor = _need(factor, 8, "diversification factor")
    # 3DES: ECB of the two blocks F, ~F is E(F) ‖ E(~F); SM4: one block.
    return _encryptor(alg, master)(factor + _not(factor))


def derive(alg: Alg, master: bytes, *factors: bytes) -> bytes:
    """Diversify ``master`` with each factor in turn (ETC cards: issuer factor, serial)."""
    key = _need(master, 16, "master key")
    for factor in factors:
        key = diversify(alg, key, factor)
    return key


@dataclass(frozen=True, repr=False)
class CardKeys:
    """A user card's keys (each 16 bytes): purchase, load, TAC, maintenance.

    ``damk`` (application maintenance key) protects secure-messaging updates of the
    card files. The same shape holds the issuer master keys they derive from.
    ``repr`` never shows key material."""

    dpk: bytes
    dlk: bytes
    dtk: bytes
    damk: bytes

    def __post_init__(self) -> None:
        for name in ("dpk", "dlk", "dtk", "damk"):
            _need(getattr(self, name), 16, name)

    def __repr__(self) -> str:
        return "CardKeys(<hidden>)"

    def derived(self, alg: Alg, *factors: bytes) -> CardKeys:
        """These (master) keys diversified with ``factors``: the card's own keys."""
        return CardKeys(
            dpk=derive(alg, self.dpk, *factors),
            dlk=derive(alg, self.dlk, *factors),
            dtk=derive(alg, self.dtk, *factors),
            damk=derive(alg, self.damk, *factors),
        )


def tac_key(alg: Alg, dtk: bytes) -> bytes:
    """The key the TAC is computed with: DTK_left XOR DTK_right (3DES), DTK itself (SM4)."""
    dtk = _need(dtk, 16, "DTK")
    return _xor(dtk[:8], dtk[8:]) if alg is Alg.TDES else dtk


# --- MACs ----------------------------------------------------------------------------


def mac(alg: Alg, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    """The PBOC MAC: CBC-MAC with 80-padding, left 4 bytes of the last block.

    3DES profile: single-DES CBC-MAC with an 8-byte key (session keys, TAC key; §1.6).
    SM4: SM4 CBC-MAC with a 16-byte key and 16-byte blocks. ``iv`` defaults to zeros."""
    block = alg.block_size
    key = _need(key, 8, "single-DES MAC key") if alg is Alg.TDES else _need(key, 16, "SM4 key")
    iv = bytes(block) if iv is None else _need(iv, block, "IV")
    return _cbc_last(_encryptor(alg, key), iv, _pad80(data, block))[:4]


def retail_mac(key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    """ISO 9797-1 MAC algorithm 3 ("retail MAC") with a 16-byte key, 80-padding.

    Single-DES CBC with K1 over every block, then the final block D(K2), E(K1); left 4
    bytes. Used for line protection of secure-messaging updates under 3DES."""
    key = _need(key, 16, "retail MAC key")
    iv = bytes(8) if iv is None else _need(iv, 8, "IV")
    padded = _pad80(data, 8)
    k1 = _encryptor(Alg.TDES, key[:8])
    chained = _cbc_last(k1, iv, padded)
    decryptor = Cipher(_tdes_alg(key[8:]), _ECB).decryptor()
    middle = decryptor.update(chained) + decryptor.finalize()
    return k1(middle)[:4]


def line_protection_mac(alg: Alg, key: bytes, challenge4: bytes, apdu_without_mac: bytes) -> bytes:
    """The 4-byte MAC of a secure-messaging (CLA 04) command.

    ``apdu_without_mac`` is the header, Lc (already counting the 4 MAC bytes) and the
    body. IV = challenge ‖ zeros (8 bytes for 3DES, 16 for SM4). 3DES: retail MAC with
    the 16-byte maintenance key; SM4: SM4 CBC-MAC."""
    challenge4 = _need(challenge4, 4, "challenge")
    iv = challenge4 + bytes(alg.block_size - 4)
    if alg is Alg.TDES:
        return retail_mac(key, apdu_without_mac, iv)
    return mac(alg, key, apdu_without_mac, iv)


# --- purchase ------------------------------------------------------------------------


#: 0-99 as one BCD byte.
_BCD = bytes(n // 10 << 4 | n % 10 for n in range(100))


def _stamp(when: datetime.datetime) -> bytes:
    """BCD ``yyyymmddhhmmss`` (7 bytes): codec's ``bcd_date`` + ``bcd_time`` by table
    lookup, as every TAC pays for it."""
    if not isinstance(when, datetime.datetime):
        raise TypeError("when must be a datetime (the terminal's local date and time)")
    bcd = _BCD
    year = when.year
    return bytes(
        (
            bcd[year // 100],
            bcd[year % 100],
            bcd[when.month],
            bcd[when.day],
            bcd[when.hour],
            bcd[when.minute],
            bcd[when.second],
        )
    )


def _tac_mac(alg: Alg, dtk: bytes | TacKey, data: bytes) -> bytes:
    if isinstance(dtk, TacKey):
        if dtk.alg is not alg:
            raise ValueError(f"a {dtk.alg.value} TAC key cannot verify a {alg.value} TAC")
        return dtk.mac(data)
    return mac(alg, tac_key(alg, dtk), data)


def _session_input(alg: Alg, data8: bytes) -> bytes:
    # 3DES: the 8 bytes are one block. SM4 profile: 80-padded to one 16-byte block.
    return data8 if alg is Alg.TDES else _pad80(data8, 16)


def purchase_session_key(
    alg: Alg,
    dpk: bytes,
    random4: bytes,
    offline_atc2: bytes | int,
    terminal_seq4: bytes | int,
) -> bytes:
    """SESPK = E(DPK, random ‖ offline ATC ‖ terminal seq right 2 bytes) (§1.6; SM4 padded)."""
    data = (
        _need(random4, 4, "random")
        + _fixed(offline_atc2, 2, "offline ATC")
        + _fixed(terminal_seq4, 4, "terminal transaction sequence")[2:]
    )
    return _ecb(alg, _need(dpk, 16, "DPK"), _session_input(alg, data))


def purchase_mac1(
    alg: Alg,
    session_key: bytes,
    amount: int,
    trans_type: int,
    terminal6: bytes,
    when: datetime.datetime,
) -> bytes:
    """MAC1 over amount ‖ type ‖ terminal ‖ date ‖ time."""
    data = _amount(amount) + _fixed(trans_type, 1, "transaction type")
    data += _need(terminal6, 6, "terminal number") + _stamp(when)
    return mac(alg, session_key, data)


def purchase_mac2(alg: Alg, session_key: bytes, amount: int) -> bytes:
    """MAC2 over the amount."""
    return mac(alg, session_key, _amount(amount))


def purchase_tac(
    alg: Alg,
    dtk: bytes | TacKey,
    amount: int,
    trans_type: int,
    terminal6: bytes,
    terminal_seq4: bytes | int,
    when: datetime.datetime,
) -> bytes:
    """TAC over amount ‖ type ‖ terminal ‖ terminal seq ‖ date ‖ time.

    ``dtk``: the card's DTK, or a :class:`TacKey` prepared from it."""
    data = _amount(amount) + _fixed(trans_type, 1, "transaction type")
    data += _need(terminal6, 6, "terminal number")
    data += _fixed(terminal_seq4, 4, "terminal transaction sequence") + _stamp(when)
    return _tac_mac(alg, dtk, data)


def verify_purchase_tac(
    alg: Alg,
    dtk: bytes | TacKey,
    amount: int,
    trans_type: int,
    terminal6: bytes,
    terminal_seq4: bytes | int,
    when: datetime.datetime,
    tac: bytes,
) -> bool:
    """True when ``tac`` is the card's TAC of this purchase (constant-time compare)."""
    expected = purchase_tac(alg, dtk, amount, trans_type, terminal6, terminal_seq4, when)
    return hmac.compare_digest(expected, bytes(tac))


# --- load (圈存) ----------------------------------------------------------------------


def load_session_key(alg: Alg, dlk: bytes, random4: bytes, online_atc2: bytes | int) -> bytes:
    """Load session key = E(DLK, random ‖ online ATC ‖ 8000) (PBOC; SM4 padded to 16)."""
    data = _need(random4, 4, "random") + _fixed(online_atc2, 2, "online ATC") + b"\x80\x00"
    return _ecb(alg, _need(dlk, 16, "DLK"), _session_input(alg, data))


def load_mac1(
    alg: Alg,
    sk: bytes,
    balance_before: int,
    amount: int,
    trans_type: int = LOAD_TRANS_TYPE,
    terminal6: bytes | None = None,
) -> bytes:
    """The card's MAC1 of a load: balance before ‖ amount ‖ type ‖ terminal.

    ``terminal6`` is required (a keyword after the defaulted ``trans_type``)."""
    if terminal6 is None:
        raise TypeError("load_mac1 needs terminal6, the 6-byte terminal number")
    data = _amount(balance_before, "balance") + _amount(amount)
    data += _fixed(trans_type, 1, "transaction type") + _need(terminal6, 6, "terminal number")
    return mac(alg, sk, data)


def load_mac2(
    alg: Alg,
    sk: bytes,
    amount: int,
    trans_type: int,
    terminal6: bytes,
    when: datetime.datetime,
) -> bytes:
    """The host's MAC2 of a load: amount ‖ type ‖ terminal ‖ date ‖ time."""
    data = _amount(amount) + _fixed(trans_type, 1, "transaction type")
    data += _need(terminal6, 6, "terminal number") + _stamp(when)
    return mac(alg, sk, data)


def load_tac(
    alg: Alg,
    dtk: bytes | TacKey,
    balance_after: int,
    online_atc2: bytes | int,
    amount: int,
    trans_type: int,
    terminal6: bytes,
    when: datetime.datetime,
) -> bytes:
    """The card's TAC of a load: new balance ‖ online ATC (before it is incremented) ‖
    amount ‖ type ‖ terminal ‖ date ‖ time."""
    data = _amount(balance_after, "balance") + _fixed(online_atc2, 2, "online ATC")
    data += _amount(amount) + _fixed(trans_type, 1, "transaction type")
    data += _need(terminal6, 6, "terminal number") + _stamp(when)
    return _tac_mac(alg, dtk, data)


def verify_load_tac(
    alg: Alg,
    dtk: bytes | TacKey,
    balance_after: int,
    online_atc2: bytes | int,
    amount: int,
    trans_type: int,
    terminal6: bytes,
    when: datetime.datetime,
    tac: bytes,
) -> bool:
    """True when ``tac`` is the card's TAC of this load (constant-time compare)."""
    expected = load_tac(alg, dtk, balance_after, online_atc2, amount, trans_type, terminal6, when)
    return hmac.compare_digest(expected, bytes(tac))
