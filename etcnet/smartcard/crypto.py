"""ETC card cryptography: key diversification, MACs, session keys, MAC1/MAC2/TAC.

3DES follows the PBOC e-purse scheme of ETC.md Part 2 §1.6 exactly (its worked
example is a test). SM4 follows etcnet's profile (ETC.md Part 1, "SM4 crypto"): the
same structure with 16-byte blocks. The load (圈存) formulas are the PBOC ones, taken
as etcnet's profile because the reference gives only the APDUs. Every choice is
listed in ``docs/smartcard.md`` ("Crypto profile").

All cipher work goes through ``cryptography``. Two-key 3DES keys (K1‖K2) are expanded
to the equivalent three-key form (K1‖K2‖K1) and single-DES keys to K‖K‖K before
they reach ``cryptography``, which deprecates 16-byte TripleDES keys.
"""

from __future__ import annotations

import datetime
import hmac
from dataclasses import dataclass
from enum import Enum

from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

try:  # cryptography >= 43 keeps TripleDES among the "decrepit" algorithms.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef,unused-ignore]
        TripleDES,
    )

from etcnet.smartcard.codec import bcd_date, bcd_time

__all__ = [
    "LOAD_TRANS_TYPE",
    "Alg",
    "CardKeys",
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


def _ecb(alg: Alg, key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(_cipher_alg(alg, key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _cbc_last(cipher: TripleDES | SM4, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(cipher, modes.CBC(iv)).encryptor()
    out = encryptor.update(data) + encryptor.finalize()
    return out[-len(iv) :]


def _pad80(data: bytes, block: int) -> bytes:
    """ISO 9797-1 method 2: always append 80, then 00 up to a multiple of ``block``."""
    data = data + b"\x80"
    return data + bytes(-len(data) % block)


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _not(data: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in data)


# --- keys ----------------------------------------------------------------------------


def diversify(alg: Alg, master: bytes, factor: bytes) -> bytes:
    """One level of key diversification (分散) of a 16-byte key with an 8-byte factor.

    3DES: ``E(MK, F) ‖ E(MK, ~F)`` with two-key 3DES-EDE (§1.6). SM4: ``SM4(MK, F ‖ ~F)``
    (Part 1 SM4 profile)."""
    master = _need(master, 16, "master key")
    factor = _need(factor, 8, "diversification factor")
    if alg is Alg.TDES:
        return _ecb(alg, master, factor) + _ecb(alg, master, _not(factor))
    return _ecb(alg, master, factor + _not(factor))


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
    if alg is Alg.TDES:
        key = _need(key, 8, "single-DES MAC key")
    iv = bytes(block) if iv is None else _need(iv, block, "IV")
    return _cbc_last(_cipher_alg(alg, key), iv, _pad80(data, block))[:4]


def retail_mac(key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    """ISO 9797-1 MAC algorithm 3 ("retail MAC") with a 16-byte key, 80-padding.

    Single-DES CBC with K1 over every block, then the final block D(K2), E(K1); left 4
    bytes. Used for line protection of secure-messaging updates under 3DES."""
    key = _need(key, 16, "retail MAC key")
    iv = bytes(8) if iv is None else _need(iv, 8, "IV")
    padded = _pad80(data, 8)
    chained = _cbc_last(_tdes_alg(key[:8]), iv, padded)
    decryptor = Cipher(_tdes_alg(key[8:]), modes.ECB()).decryptor()
    middle = decryptor.update(chained) + decryptor.finalize()
    return _ecb(Alg.TDES, key[:8], middle)[:4]


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


def _stamp(when: datetime.datetime) -> bytes:
    if not isinstance(when, datetime.datetime):
        raise TypeError("when must be a datetime (the terminal's local date and time)")
    return bcd_date(when, field="when") + bcd_time(when)


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
    dtk: bytes,
    amount: int,
    trans_type: int,
    terminal6: bytes,
    terminal_seq4: bytes | int,
    when: datetime.datetime,
) -> bytes:
    """TAC over amount ‖ type ‖ terminal ‖ terminal seq ‖ date ‖ time."""
    data = _amount(amount) + _fixed(trans_type, 1, "transaction type")
    data += _need(terminal6, 6, "terminal number")
    data += _fixed(terminal_seq4, 4, "terminal transaction sequence") + _stamp(when)
    return mac(alg, tac_key(alg, dtk), data)


def verify_purchase_tac(
    alg: Alg,
    dtk: bytes,
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
    dtk: bytes,
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
    return mac(alg, tac_key(alg, dtk), data)


def verify_load_tac(
    alg: Alg,
    dtk: bytes,
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
