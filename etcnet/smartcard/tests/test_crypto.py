import datetime

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4
from hypothesis import given
from hypothesis import strategies as st

from etcnet.smartcard import crypto
from etcnet.smartcard.crypto import Alg, CardKeys
from etcnet.smartcard.tests import MASTERS, NOON, TERMINAL

h = bytes.fromhex

# The worked example of ETC.md Part 2 §1.6.
MPK = h("11223344556677888877665544332211")
MTK = h("0123456789ABCDEFFEDCBA9876543210")
ISSUER_FACTOR = h("BAFEC4CFBAFEC4CF")
SERIAL = h("1900232500052902")
RANDOM = h("A1B2C3D4")
ATC = h("0005")
SEQ = h("00000123")
AMOUNT = 1234


def test_worked_example_of_section_1_6_byte_for_byte() -> None:
    dpk = crypto.derive(Alg.TDES, MPK, ISSUER_FACTOR, SERIAL)
    dtk = crypto.derive(Alg.TDES, MTK, ISSUER_FACTOR, SERIAL)
    sespk = crypto.purchase_session_key(Alg.TDES, dpk, RANDOM, ATC, SEQ)

    assert dpk.hex().upper() == "6B32F0DF503785F5230AA36A885C1DF8"
    assert dtk.hex().upper() == "E1590E1259D2019BFCCE2FC78ED3561F"
    assert sespk.hex().upper() == "3E402B168F5E011A"
    mac1 = crypto.purchase_mac1(Alg.TDES, sespk, AMOUNT, 0x09, TERMINAL, NOON)
    assert mac1.hex().upper() == "A82C7D47"
    assert crypto.purchase_mac2(Alg.TDES, sespk, AMOUNT).hex().upper() == "C2AD3F27"
    assert crypto.tac_key(Alg.TDES, dtk).hex().upper() == "1D9721D5D7015784"
    tac = crypto.purchase_tac(Alg.TDES, dtk, AMOUNT, 0x09, TERMINAL, SEQ, NOON)
    assert tac.hex().upper() == "11093965"
    assert crypto.verify_purchase_tac(Alg.TDES, dtk, AMOUNT, 0x09, TERMINAL, SEQ, NOON, tac)
    assert not crypto.verify_purchase_tac(Alg.TDES, dtk, AMOUNT + 1, 0x09, TERMINAL, SEQ, NOON, tac)


def test_counters_may_be_given_as_ints() -> None:
    dpk = crypto.derive(Alg.TDES, MPK, ISSUER_FACTOR, SERIAL)
    assert crypto.purchase_session_key(Alg.TDES, dpk, RANDOM, 5, 0x123) == h("3E402B168F5E011A")


def test_card_keys_derived_from_masters_match_the_example() -> None:
    keys = MASTERS.derived(Alg.TDES, ISSUER_FACTOR, SERIAL)
    assert keys.dpk == h("6B32F0DF503785F5230AA36A885C1DF8")
    assert keys.dtk == h("E1590E1259D2019BFCCE2FC78ED3561F")
    assert repr(keys) == "CardKeys(<hidden>)"


def test_sm4_block_vector_of_gb_t_32907() -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    encryptor = Cipher(SM4(key), modes.ECB()).encryptor()
    assert encryptor.update(key).hex().upper() == "681EDF34D206965E86B3E94F536E4246"


def test_sm4_one_million_iterations_of_gb_t_32907() -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    encryptor = Cipher(SM4(key), modes.ECB()).encryptor()
    block = key
    for _ in range(1_000_000):
        block = encryptor.update(block)
    assert block.hex().upper() == "595298C7C6FD271F0402F804C33D3F66"


def _sm4(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(SM4(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def test_sm4_profile_diversification_is_sm4_of_factor_and_its_complement() -> None:
    factor = h("0102030405060708")
    expected = _sm4(MPK, factor + h("FEFDFCFBFAF9F8F7"))
    assert crypto.diversify(Alg.SM4, MPK, factor) == expected
    assert crypto.derive(Alg.SM4, MPK, ISSUER_FACTOR, SERIAL) == crypto.diversify(
        Alg.SM4, crypto.diversify(Alg.SM4, MPK, ISSUER_FACTOR), SERIAL
    )


def test_sm4_profile_session_key_mac_and_tac() -> None:
    dpk = crypto.derive(Alg.SM4, MPK, ISSUER_FACTOR, SERIAL)
    dtk = crypto.derive(Alg.SM4, MTK, ISSUER_FACTOR, SERIAL)
    session_key = crypto.purchase_session_key(Alg.SM4, dpk, RANDOM, ATC, SEQ)
    # rand4 ‖ ATC2 ‖ seq-low2 ‖ 80 00…, one 16-byte block.
    assert session_key == _sm4(dpk, h("A1B2C3D4000501238000000000000000"))
    # CBC-MAC, IV 0, 80-padding to 16, left 4: amount ‖ 80 + 11 zeros is one block.
    assert (
        crypto.purchase_mac2(Alg.SM4, session_key, AMOUNT)
        == _sm4(session_key, h("000004D280" + "00" * 11))[:4]
    )
    assert crypto.tac_key(Alg.SM4, dtk) == dtk
    tac = crypto.purchase_tac(Alg.SM4, dtk, AMOUNT, 0x09, TERMINAL, SEQ, NOON)
    assert crypto.verify_purchase_tac(Alg.SM4, dtk, AMOUNT, 0x09, TERMINAL, SEQ, NOON, tac)
    assert len(tac) == 4


def test_sm4_mac_chains_over_blocks() -> None:
    key = h("00112233445566778899AABBCCDDEEFF")
    data = bytes(range(20))
    first = _sm4(key, data[:16])
    last = _sm4(
        key, bytes(a ^ b for a, b in zip(first, data[16:] + h("80") + bytes(11), strict=True))
    )
    assert crypto.mac(Alg.SM4, key, data) == last[:4]


def test_three_des_mac_pads_a_full_block_with_a_whole_block() -> None:
    key = h("0102030405060708")
    with_block = crypto.mac(Alg.TDES, key, bytes(8))
    assert with_block != crypto.mac(Alg.TDES, key, bytes(7))
    assert len(with_block) == 4


def _tdes(key16: bytes, block: bytes) -> bytes:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    encryptor = Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def test_retail_mac_of_one_block_is_3des_of_block_xor_iv() -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    iv = h("1122334455667788")
    block = h("04D6951808202801")  # 7 bytes + 80 padding is one block
    data = block[:7]
    padded = data + h("80")
    expected = _tdes(key, bytes(a ^ b for a, b in zip(padded, iv, strict=True)))[:4]
    assert crypto.retail_mac(key, data, iv) == expected


@given(st.binary(max_size=64))
def test_retail_mac_equals_des_cbc_then_3des_on_the_last_block(data: bytes) -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    padded = data + h("80") + bytes(-(len(data) + 1) % 8)
    chain = bytes(8)
    blocks = [padded[i : i + 8] for i in range(0, len(padded), 8)]
    for block in blocks[:-1]:
        chain = _tdes(key[:8] * 2, bytes(a ^ b for a, b in zip(chain, block, strict=True)))
    last = _tdes(key, bytes(a ^ b for a, b in zip(chain, blocks[-1], strict=True)))
    assert crypto.retail_mac(key, data) == last[:4]


def test_line_protection_mac_uses_the_challenge_as_iv() -> None:
    key = h("0123456789ABCDEFFEDCBA9876543210")
    apdu = h("04D6951808") + h("20301231")
    challenge = h("A1B2C3D4")
    assert crypto.line_protection_mac(Alg.TDES, key, challenge, apdu) == crypto.retail_mac(
        key, apdu, challenge + bytes(4)
    )
    assert crypto.line_protection_mac(Alg.SM4, key, challenge, apdu) == crypto.mac(
        Alg.SM4, key, apdu, challenge + bytes(12)
    )
    assert crypto.line_protection_mac(Alg.TDES, key, h("00000000"), apdu) != (
        crypto.line_protection_mac(Alg.TDES, key, challenge, apdu)
    )


@pytest.mark.parametrize("alg", list(Alg))
def test_load_formulas_follow_the_pboc_structure(alg: Alg) -> None:
    dlk = crypto.derive(alg, MASTERS.dlk, ISSUER_FACTOR, SERIAL)
    dtk = crypto.derive(alg, MASTERS.dtk, ISSUER_FACTOR, SERIAL)
    sk = crypto.load_session_key(alg, dlk, RANDOM, 7)
    if alg is Alg.TDES:
        assert sk == _tdes(dlk, h("A1B2C3D400078000"))
    else:
        assert sk == _sm4(dlk, h("A1B2C3D4000780008000000000000000"))
    mac1 = crypto.load_mac1(alg, sk, 500, 10000, 0x02, TERMINAL)
    assert mac1 == crypto.mac(alg, sk, h("000001F40000271002") + TERMINAL)
    mac2 = crypto.load_mac2(alg, sk, 10000, 0x02, TERMINAL, NOON)
    assert mac2 == crypto.mac(alg, sk, h("0000271002") + TERMINAL + h("20200101120000"))
    tac = crypto.load_tac(alg, dtk, 10500, 7, 10000, 0x02, TERMINAL, NOON)
    assert tac == crypto.mac(
        alg,
        crypto.tac_key(alg, dtk),
        h("0000290400070000271002") + TERMINAL + h("20200101120000"),
    )
    assert crypto.verify_load_tac(alg, dtk, 10500, 7, 10000, 0x02, TERMINAL, NOON, tac)
    assert not crypto.verify_load_tac(alg, dtk, 10501, 7, 10000, 0x02, TERMINAL, NOON, tac)


def test_alg_codes() -> None:
    assert (Alg.TDES.card_alg_id, Alg.TDES.record_id, Alg.TDES.value) == (0x00, 1, "3des")
    assert (Alg.SM4.card_alg_id, Alg.SM4.record_id, Alg.SM4.value) == (0x04, 2, "sm4")
    assert Alg.from_card_alg_id(0x04) is Alg.SM4
    with pytest.raises(ValueError, match="algorithm id 01"):
        Alg.from_card_alg_id(0x01)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: crypto.diversify(Alg.TDES, bytes(8), bytes(8)), "master key must be 16 bytes"),
        (lambda: crypto.diversify(Alg.SM4, bytes(16), bytes(16)), "factor must be 8 bytes"),
        (lambda: crypto.mac(Alg.TDES, bytes(16), b""), "single-DES MAC key must be 8 bytes"),
        (lambda: crypto.mac(Alg.SM4, bytes(8), b""), "SM4 key must be 16 bytes"),
        (lambda: crypto.purchase_mac2(Alg.TDES, bytes(8), -1), "amount must be between"),
        (lambda: crypto.purchase_session_key(Alg.TDES, bytes(16), bytes(3), 0, 0), "random"),
        (lambda: crypto.purchase_session_key(Alg.TDES, bytes(16), bytes(4), 70000, 0), "ATC"),
        (lambda: CardKeys(bytes(16), bytes(16), bytes(15), bytes(16)), "dtk must be 16 bytes"),
    ],
)
def test_wrong_lengths_are_refused_with_the_name(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_when_must_be_a_datetime() -> None:
    with pytest.raises(TypeError, match="datetime"):
        crypto.purchase_mac1(Alg.TDES, bytes(8), 1, 9, TERMINAL, datetime.date(2020, 1, 1))  # type: ignore[arg-type]


def test_sm4_vector_through_etcnets_own_cipher_path() -> None:
    # The block function every SM4 key derivation, session key and MAC goes through.
    from etcnet.smartcard.crypto import _ecb, diversify

    key = h("0123456789ABCDEFFEDCBA9876543210")
    assert _ecb(Alg.SM4, key, key).hex().upper() == "681EDF34D206965E86B3E94F536E4246"
    factor = h("0123456789ABCDEF")
    inverted = bytes(b ^ 0xFF for b in factor)
    assert diversify(Alg.SM4, key, factor) == _ecb(Alg.SM4, key, factor + inverted)


# --- reused cipher contexts: the same bytes as a fresh context every time ----------


def _cbc_reference(alg: Alg, key: bytes, iv: bytes, data: bytes) -> bytes:
    """PBOC MAC through a new CBC context of ``cryptography`` (the pre-cache path)."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    algorithm = TripleDES(key * 3) if alg is Alg.TDES else SM4(key)
    padded = data + h("80") + bytes(-(len(data) + 1) % alg.block_size)
    encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
    return (encryptor.update(padded) + encryptor.finalize())[-alg.block_size :][:4]


@given(
    alg=st.sampled_from(list(Alg)),
    key=st.binary(min_size=16, max_size=16),
    iv=st.binary(min_size=16, max_size=16),
    data=st.binary(max_size=80),
)
def test_mac_through_a_reused_context_equals_a_fresh_cbc_context(
    alg: Alg, key: bytes, iv: bytes, data: bytes
) -> None:
    key = key[:8] if alg is Alg.TDES else key
    iv = iv[: alg.block_size]
    expected = _cbc_reference(alg, key, iv, data)
    assert crypto.mac(alg, key, data, iv) == expected
    assert crypto.mac(alg, key, data, iv) == expected  # again, from the cached context
    assert crypto.CipherKey(alg, key).mac(data, iv) == expected


@given(alg=st.sampled_from(list(Alg)), data=st.binary(max_size=40))
def test_mac_calls_interleaved_over_keys_stay_independent(alg: Alg, data: bytes) -> None:
    keys = [bytes([n]) * (8 if alg is Alg.TDES else 16) for n in (1, 2, 3)]
    zeros = bytes(alg.block_size)
    first = [crypto.mac(alg, key, data) for key in keys]
    assert [crypto.mac(alg, key, data) for key in reversed(keys)] == first[::-1]
    assert first == [_cbc_reference(alg, key, zeros, data) for key in keys]


def test_a_key_given_as_bytes_reuses_its_context() -> None:
    key = h("2233445566778899")
    crypto.mac(Alg.TDES, key, b"first")
    hits = crypto.context_cache_info().hits
    crypto.mac(Alg.TDES, key, b"second")
    assert crypto.context_cache_info().hits == hits + 1


@pytest.mark.parametrize("alg", list(Alg))
def test_cipher_key_diversifies_and_encrypts_as_the_functions_do(alg: Alg) -> None:
    key = crypto.CipherKey(alg, MTK)
    assert key.diversify(ISSUER_FACTOR) == crypto.diversify(alg, MTK, ISSUER_FACTOR)
    block = bytes(range(alg.block_size))
    assert key.encrypt(block * 2) == crypto._ecb(alg, MTK, block * 2)
    assert repr(key) == f"CipherKey({alg.value}, <hidden>)"


@pytest.mark.parametrize("alg", list(Alg))
def test_ecb_refuses_a_partial_block_and_the_context_stays_good(alg: Alg) -> None:
    block = bytes(range(alg.block_size))
    before = crypto._ecb(alg, MTK, block)
    with pytest.raises(ValueError, match="whole"):
        crypto._ecb(alg, MTK, block[:-1])
    with pytest.raises(ValueError, match="whole"):
        crypto.CipherKey(alg, MTK).encrypt(block + b"\x00")
    assert crypto._ecb(alg, MTK, block) == before


def test_the_worked_example_tac_through_a_prepared_tac_key() -> None:
    dtk = crypto.derive(Alg.TDES, MTK, ISSUER_FACTOR, SERIAL)
    key = crypto.TacKey(Alg.TDES, dtk)
    tac = crypto.purchase_tac(Alg.TDES, key, AMOUNT, 0x09, TERMINAL, SEQ, NOON)
    assert tac.hex().upper() == "11093965"
    assert crypto.verify_purchase_tac(Alg.TDES, key, AMOUNT, 0x09, TERMINAL, SEQ, NOON, tac)
    assert not crypto.verify_purchase_tac(Alg.TDES, key, AMOUNT, 0x09, TERMINAL, 0x124, NOON, tac)
    assert dtk.hex() not in repr(key).lower()
    assert "1d9721d5d7015784" not in repr(key).lower()


@pytest.mark.parametrize("alg", list(Alg))
def test_a_tac_key_gives_the_tacs_its_dtk_gives(alg: Alg) -> None:
    dtk = crypto.derive(alg, MTK, ISSUER_FACTOR, SERIAL)
    key = crypto.TacKey(alg, dtk)
    for amount in (0, 1, AMOUNT, 0xFFFFFFFF):
        assert crypto.purchase_tac(alg, key, amount, 0x09, TERMINAL, SEQ, NOON) == (
            crypto.purchase_tac(alg, dtk, amount, 0x09, TERMINAL, SEQ, NOON)
        )
    assert crypto.load_tac(alg, key, 10500, 7, 10000, 0x02, TERMINAL, NOON) == (
        crypto.load_tac(alg, dtk, 10500, 7, 10000, 0x02, TERMINAL, NOON)
    )


def test_a_tac_key_of_the_other_algorithm_is_refused() -> None:
    key = crypto.TacKey(Alg.SM4, MTK)
    with pytest.raises(ValueError, match="a sm4 TAC key cannot verify a 3des TAC"):
        crypto.verify_purchase_tac(Alg.TDES, key, AMOUNT, 0x09, TERMINAL, SEQ, NOON, bytes(4))


@given(st.datetimes(min_value=datetime.datetime(1, 1, 1)))
def test_the_tac_time_stamp_is_the_codecs_bcd_date_and_time(when: datetime.datetime) -> None:
    from etcnet.smartcard.codec import bcd_date, bcd_time

    assert crypto._stamp(when) == bcd_date(when, field="when") + bcd_time(when)


@given(st.binary(max_size=24), st.binary(max_size=24))
def test_xor_and_not_helpers(left: bytes, right: bytes) -> None:
    right = (right + bytes(len(left)))[: len(left)]
    assert crypto._xor(left, right) == bytes(a ^ b for a, b in zip(left, right, strict=True))
    assert crypto._not(left) == bytes(b ^ 0xFF for b in left)
