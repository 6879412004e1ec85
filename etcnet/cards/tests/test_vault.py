"""The vault's derived keys: the same bytes as deriving from the master keys every time,
kept once per process, forgotten when the keys change. No database."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.tac import main as tac_benchmark
from etcnet.cards import vault
from etcnet.smartcard import crypto
from etcnet.smartcard.crypto import Alg, CardKeys

INTERNAL_NO = "1900232500052902"
TERMINAL = bytes.fromhex("430101000001")
SEQ = bytes.fromhex("00000123")
NOON = datetime.datetime(2020, 1, 1, 12, 0, 0)


@pytest.fixture
def key_file(_vault: Path) -> Path:
    """The fresh key file the cards conftest points the vault at."""
    return _vault


def _masters(key_file: Path, alg: Alg) -> dict[str, bytes]:
    table = json.loads(key_file.read_text())["keys"][alg.value]
    return {name: bytes.fromhex(value) for name, value in table.items()}


def _factors(key_file: Path, internal_no: str = INTERNAL_NO) -> tuple[bytes, bytes]:
    region = bytes.fromhex(json.loads(key_file.read_text())["issuer_id"])[:4]
    return region + region, bytes.fromhex(internal_no)


def _expected_tac(key_file: Path, alg: Alg, internal_no: str, amount: int) -> bytes:
    dtk = crypto.derive(alg, _masters(key_file, alg)["tac"], *_factors(key_file, internal_no))
    return crypto.purchase_tac(alg, dtk, amount, 0x09, TERMINAL, SEQ, NOON)


def _verify(alg: Alg, internal_no: str, amount: int, tac: bytes) -> bool:
    return vault.verify_purchase_tac(
        alg,
        internal_no,
        amount=amount,
        trans_type=0x09,
        terminal_no=TERMINAL,
        terminal_seq=SEQ,
        when=NOON,
        tac=tac,
    )


@pytest.mark.parametrize("alg", list(Alg))
def test_card_keys_are_the_two_level_derivation_from_the_master_keys(
    key_file: Path, alg: Alg
) -> None:
    masters = _masters(key_file, alg)
    expected = CardKeys(
        dpk=masters["purchase"], dlk=masters["load"], dtk=masters["tac"], damk=masters["update"]
    ).derived(alg, *_factors(key_file))

    keys = vault.card_keys(alg, INTERNAL_NO)

    assert (keys.dpk, keys.dlk, keys.dtk, keys.damk) == (
        expected.dpk,
        expected.dlk,
        expected.dtk,
        expected.damk,
    )


@pytest.mark.parametrize("alg", list(Alg))
def test_a_purchase_tac_verifies_first_seen_and_repeat_and_a_forged_one_never(
    key_file: Path, alg: Alg
) -> None:
    tac = _expected_tac(key_file, alg, INTERNAL_NO, 1234)

    assert _verify(alg, INTERNAL_NO, 1234, tac)  # first seen: derived
    assert _verify(alg, INTERNAL_NO, 1234, tac)  # repeat: from the cache
    assert not _verify(alg, INTERNAL_NO, 1235, tac)
    assert not _verify(alg, "1900232500052903", 1234, tac)  # another card's key
    info = vault.card_key_cache_info()[alg]
    assert (info.hits, info.misses, info.currsize) == (2, 2, 2)


def test_the_purchase_path_derives_the_tac_key_only_once_per_card(key_file: Path) -> None:
    tacs = [_expected_tac(key_file, Alg.SM4, INTERNAL_NO, amount) for amount in (100, 200, 300)]

    for amount, tac in zip((100, 200, 300), tacs, strict=True):
        assert _verify(Alg.SM4, INTERNAL_NO, amount, tac)

    info = vault.card_key_cache_info()[Alg.SM4]
    assert (info.misses, info.hits) == (1, 2)
    assert vault.card_key_cache_info()[Alg.TDES].currsize == 0


def test_the_load_tac_shares_the_cached_tac_key(key_file: Path) -> None:
    dtk = crypto.derive(Alg.TDES, _masters(key_file, Alg.TDES)["tac"], *_factors(key_file))
    tac = crypto.load_tac(Alg.TDES, dtk, 10_500, 7, 10_000, 0x02, TERMINAL, NOON)
    purchase = _expected_tac(key_file, Alg.TDES, INTERNAL_NO, 99)

    assert _verify(Alg.TDES, INTERNAL_NO, 99, purchase)
    assert vault.verify_load_tac(
        Alg.TDES,
        INTERNAL_NO,
        balance_after=10_500,
        online_atc=7,
        amount=10_000,
        terminal_no=TERMINAL,
        when=NOON,
        tac=tac,
    )
    info = vault.card_key_cache_info()[Alg.TDES]
    assert (info.misses, info.hits) == (1, 1)


def test_the_card_cache_is_bounded_by_the_setting(key_file: Path, settings: Any) -> None:
    settings.ETCNET_CARD_KEY_CACHE = 2
    cards = [f"{n:016d}" for n in range(1, 5)]
    tacs = [_expected_tac(key_file, Alg.TDES, card, 500) for card in cards]

    for card, tac in zip(cards, tacs, strict=True):
        assert _verify(Alg.TDES, card, 500, tac)
    assert _verify(Alg.TDES, cards[0], 500, tacs[0])  # evicted, derived again

    info = vault.card_key_cache_info()[Alg.TDES]
    assert (info.maxsize, info.currsize, info.misses, info.hits) == (2, 2, 5, 0)


def test_a_card_cache_of_nought_keeps_nothing_and_still_verifies(
    key_file: Path, settings: Any
) -> None:
    settings.ETCNET_CARD_KEY_CACHE = 0
    tac = _expected_tac(key_file, Alg.SM4, INTERNAL_NO, 1)

    assert _verify(Alg.SM4, INTERNAL_NO, 1, tac)
    assert _verify(Alg.SM4, INTERNAL_NO, 1, tac)
    assert vault.card_key_cache_info()[Alg.SM4].currsize == 0


@pytest.mark.parametrize("size", [-1, "20000", 2.5, True])
def test_a_bad_card_cache_setting_is_a_clear_vault_error(settings: Any, size: object) -> None:
    settings.ETCNET_CARD_KEY_CACHE = size

    with pytest.raises(vault.VaultNotConfigured) as caught:
        vault.card_keys(Alg.TDES, INTERNAL_NO)

    assert caught.value.params == {
        "source": "ETCNET_CARD_KEY_CACHE",
        "problem": "a card count, 0 or more",
    }


def test_new_keys_after_reset_cache_leave_nothing_derived_from_the_old(
    key_file: Path, tmp_path: Path
) -> None:
    old_tac = _expected_tac(key_file, Alg.TDES, INTERNAL_NO, 700)
    assert _verify(Alg.TDES, INTERNAL_NO, 700, old_tac)
    old_keys = vault.card_keys(Alg.TDES, INTERNAL_NO)

    # The same file rewritten with new keys: only reset_cache() can tell.
    vault.generate_key_file(key_file)
    vault.reset_cache()

    assert not _verify(Alg.TDES, INTERNAL_NO, 700, old_tac)
    assert _verify(Alg.TDES, INTERNAL_NO, 700, _expected_tac(key_file, Alg.TDES, INTERNAL_NO, 700))
    assert vault.card_keys(Alg.TDES, INTERNAL_NO).dtk != old_keys.dtk


def test_pointing_the_setting_at_another_key_file_forgets_the_derived_keys(
    key_file: Path, settings: Any, tmp_path: Path
) -> None:
    old_tac = _expected_tac(key_file, Alg.SM4, INTERNAL_NO, 700)
    assert _verify(Alg.SM4, INTERNAL_NO, 700, old_tac)
    other = tmp_path / "other-keys.json"
    vault.generate_key_file(other, issuer_id="BAFEC4CF43010001")

    settings.ETCNET_KEYS_FILE = str(other)  # no reset_cache(): the setting signal does it

    assert not _verify(Alg.SM4, INTERNAL_NO, 700, old_tac)
    assert _verify(Alg.SM4, INTERNAL_NO, 700, _expected_tac(other, Alg.SM4, INTERNAL_NO, 700))


def test_nothing_derived_shows_key_material(key_file: Path) -> None:
    keys = vault.card_keys(Alg.TDES, INTERNAL_NO)
    tac_key = vault._tac_key(Alg.TDES, INTERNAL_NO)
    ring = vault._ring()
    issuer_key = ring.issuer[Alg.TDES]["tac"]
    secrets = [value.hex() for value in _masters(key_file, Alg.TDES).values()]
    secrets += [keys.dtk.hex(), crypto.tac_key(Alg.TDES, keys.dtk).hex()]

    shown = " ".join(
        repr(thing).lower() for thing in (keys, tac_key, ring, issuer_key, vault.master())
    )
    shown += str(vault.card_key_cache_info()).lower()

    assert not [secret for secret in secrets if secret.lower() in shown]
    assert repr(tac_key) == "TacKey(3des, <hidden>)"


def test_the_tac_benchmark_times_the_vault_and_prints_a_table(key_file: Path) -> None:
    out = io.StringIO()

    assert tac_benchmark(["--seconds", "0.05", "--cards", "20"], out) == 0

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Center TAC verification (vault.verify_purchase_tac) vs. raw")
    assert lines[1].split()[:5] == ["alg", "repeat", "cards/s", "first-seen/s", "TAC"]
    assert [line.split()[0] for line in lines[2:4]] == ["3des", "sm4"]
    assert all(float(cell.replace(",", "")) > 0 for line in lines[2:4] for cell in line.split()[1:])
    assert lines[4].startswith("repeat cards = 20 cards cycled")
    # The benchmark's keys were set for its run only: the test's vault is back.
    assert _verify(Alg.TDES, INTERNAL_NO, 5, _expected_tac(key_file, Alg.TDES, INTERNAL_NO, 5))
