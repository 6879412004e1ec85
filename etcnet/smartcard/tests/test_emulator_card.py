"""The software card and PSAM driven through ``ops`` and raw APDUs: purchase,
load, PIN, status words for bad commands, secure updates and personalisation.

The center side (key derivation, MAC1 check, MAC2, TAC verification) is computed here
from the master keys, as the center's vault will."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from etcnet.core.codes import CardType
from etcnet.smartcard import crypto, ops
from etcnet.smartcard.apdu import ApduError
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.emulator import LOG_RECORDS, SoftCard, SoftPsam
from etcnet.smartcard.files import Card0015, Card0019
from etcnet.smartcard.ops import CardError, OperationError
from etcnet.smartcard.tests import (
    ALGS,
    MASTERS,
    NOON,
    TERMINAL,
    WHEN,
    card_keys,
    center_load_mac2,
    h,
    issue_card,
    make_0015,
    make_0016,
    make_psam,
    send,
    state_bytes,
    vault_mac_for,
)
from etcnet.smartcard.transport import EmulatorTransport, TransportError, open_emulated


def test_purchase_through_the_emulator_reproduces_the_worked_example(tmp_path: Path) -> None:
    # Given the card and PSAM of §1.6: offline ATC 5, terminal sequence 0x123, random A1B2C3D4
    card = issue_card(tmp_path, balance=10_000)
    card.offline_atc = 5
    card.save()
    card.random = lambda n: h("A1B2C3D4")
    psam = make_psam(tmp_path, sequence=0x123)

    # When the lane charges 12.34 yuan in a composite purchase at 2020-01-01 12:00:00
    result = ops.purchase(EmulatorTransport(card), EmulatorTransport(psam), amount=1234, when=NOON)

    # Then every value is the one of the worked example
    assert result.as_json() == {
        "card_no": "43011900232500052902",
        "alg": "3des",
        "key_version": 1,
        "trans_type": "09",
        "amount": 1234,
        "when": "2020-01-01T12:00:00",
        "balance_before": 10_000,
        "offline_atc": 5,
        "terminal_no": "430101000001",
        "terminal_seq": "00000123",
        "mac1": "A82C7D47",
        "mac2": "C2AD3F27",
        "tac": "11093965",
        "balance_after": 8766,
    }
    reloaded = SoftCard.load(card.path)
    assert (reloaded.balance, reloaded.offline_atc) == (8766, 6)
    assert SoftPsam.load(psam.path).sequence == 0x124


@ALGS
def test_full_purchase_with_psam_and_center_tac_check(tmp_path: Path, alg: Alg) -> None:
    card = issue_card(tmp_path, alg=alg, balance=50_00)
    psam = make_psam(tmp_path)
    record = Card0019(network="4301", station=0x0102, lane=7, time=1_714_523_415, plate="湘A12345")

    result = ops.purchase(
        EmulatorTransport(card), EmulatorTransport(psam), amount=35_50, when=WHEN, record0019=record
    )

    assert (result.balance_before, result.balance_after, result.alg) == (50_00, 14_50, alg)
    dtk = card_keys(make_0015(version=0x50 if alg is Alg.SM4 else 0x40), alg).dtk
    assert crypto.verify_purchase_tac(
        alg, dtk, 35_50, 0x09, result.terminal_no, result.terminal_seq, WHEN, result.tac
    )
    reading = ops.read_card(open_emulated(card.path))
    assert reading.balance == 14_50
    assert reading.f0019 == record
    log = ops.read_log(open_emulated(card.path))
    assert [(r.atc, r.amount, r.trans_type, r.terminal, r.when) for r in log] == [
        (0, 35_50, 0x09, TERMINAL, WHEN)
    ]


def test_ordinary_purchase_uses_type_06(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=1000)
    psam = make_psam(tmp_path)
    result = ops.purchase(
        EmulatorTransport(card), EmulatorTransport(psam), amount=100, when=WHEN, trans_type=0x06
    )
    dtk = card_keys(make_0015()).dtk
    assert crypto.verify_purchase_tac(
        Alg.TDES, dtk, 100, 0x06, TERMINAL, result.terminal_seq, WHEN, result.tac
    )
    assert ops.read_log(EmulatorTransport(card))[0].trans_type == 0x06


def test_zero_amount_composite_purchase_on_a_debit_card(tmp_path: Path) -> None:
    card = issue_card(tmp_path, card_type=CardType.DEBIT)
    psam = make_psam(tmp_path)

    result = ops.purchase(EmulatorTransport(card), EmulatorTransport(psam), amount=0, when=WHEN)

    assert (result.balance_before, result.balance_after) == (0, 0)
    dtk = card_keys(make_0015(card_type=CardType.DEBIT)).dtk
    assert crypto.verify_purchase_tac(
        Alg.TDES, dtk, 0, 0x09, TERMINAL, result.terminal_seq, WHEN, result.tac
    )
    assert SoftCard.load(card.path).offline_atc == 1


def test_insufficient_balance_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=999)
    psam = make_psam(tmp_path)
    before = state_bytes(card.path)

    with pytest.raises(CardError) as refused:
        ops.purchase(EmulatorTransport(card), EmulatorTransport(psam), amount=1000, when=WHEN)

    assert refused.value.sw == 0x9401
    assert str(refused.value) == "9401 to INITIALIZE FOR PURCHASE: insufficient balance"
    assert state_bytes(card.path) == before
    assert SoftPsam.load(psam.path).sequence == 1


def test_a_debit_card_refuses_a_nonzero_amount(tmp_path: Path) -> None:
    card = issue_card(tmp_path, card_type=CardType.DEBIT)
    with pytest.raises(CardError) as refused:
        ops.purchase(
            EmulatorTransport(card), EmulatorTransport(make_psam(tmp_path)), amount=1, when=WHEN
        )
    assert refused.value.sw == 0x9401


class PulledBefore:
    """A reader from which the card is pulled just before the given instruction."""

    def __init__(self, device: SoftCard, cla_ins: bytes) -> None:
        self.inner = EmulatorTransport(device)
        self.cla_ins = cla_ins
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[:2] == self.cla_ins:
            raise TransportError("card removed")
        self.sent.append(apdu[:2])
        return self.inner.transmit(apdu)


def test_card_pulled_between_8050_and_8054_then_retry(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=10_000)
    psam = make_psam(tmp_path)
    before = state_bytes(card.path)
    pulled = PulledBefore(card, h("8054"))

    with pytest.raises(TransportError):
        ops.purchase(pulled, EmulatorTransport(psam), amount=1234, when=WHEN)

    assert h("8050") in pulled.sent
    assert h("80DC") not in pulled.sent  # no record given
    assert state_bytes(card.path) == before
    # The card is put back (a fresh power-up) and the lane runs the purchase again.
    again = SoftCard.load(card.path)
    assert (again.balance, again.offline_atc) == (10_000, 0)
    result = ops.purchase(EmulatorTransport(again), EmulatorTransport(psam), amount=1234, when=WHEN)
    assert (result.balance_before, result.balance_after, result.offline_atc) == (10_000, 8766, 0)
    assert result.terminal_seq == h("00000002")
    dtk = card_keys(make_0015()).dtk
    assert crypto.verify_purchase_tac(
        Alg.TDES, dtk, 1234, 0x09, TERMINAL, result.terminal_seq, WHEN, result.tac
    )
    assert SoftCard.load(card.path).balance == 8766


def test_the_capp_record_is_written_only_with_the_debit(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=10_000)
    record = Card0019(network="4301", station=9, plate="湘A12345")
    with pytest.raises(TransportError):
        ops.purchase(
            PulledBefore(card, h("8054")),
            EmulatorTransport(make_psam(tmp_path)),
            amount=1,
            when=WHEN,
            record0019=record,
        )
    assert ops.read_card(open_emulated(card.path)).f0019 == Card0019()


def test_debit_with_a_wrong_mac1_is_refused(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=10_000)
    before = state_bytes(card.path)
    assert send(card, "00A40000021001").ok
    assert send(card, "805003020B01000004D24301010000010F").ok
    refused = send(card, "805401000F00000001202405010830150000000008")
    assert refused.sw == 0x9302
    assert state_bytes(card.path) == before
    # The pending purchase is gone: a second DEBIT is out of sequence.
    assert send(card, "805401000F00000001202405010830150000000008").sw == 0x6985


def test_psam_refuses_a_wrong_mac2_and_an_unknown_key(tmp_path: Path) -> None:
    psam = make_psam(tmp_path)
    assert send(psam, "807200000401020304").sw == 0x6985
    data = "A1B2C3D40005000004D2092020010112000001001900232500052902BAFEC4CFBAFEC4CF"
    answer = send(psam, "8070000024" + data + "08")
    assert answer.ok
    assert (
        answer.data.hex().upper()
        == "00000001"
        + crypto.purchase_mac1(
            Alg.TDES,
            crypto.purchase_session_key(Alg.TDES, card_keys(make_0015()).dpk, h("A1B2C3D4"), 5, 1),
            1234,
            9,
            TERMINAL,
            NOON,
        )
        .hex()
        .upper()
    )
    assert send(psam, "807200000401020304").sw == 0x6988
    unknown_version = data.replace("0100" + "1900", "0200" + "1900")
    assert send(psam, "8070000024" + unknown_version + "08").sw == 0x9403
    assert send(psam, "00B0960006").data == TERMINAL


def test_log_is_cyclic_and_newest_first(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=10_000)
    psam = make_psam(tmp_path)
    for amount in range(1, 13):
        ops.purchase(EmulatorTransport(card), EmulatorTransport(psam), amount=amount, when=WHEN)
    log = ops.read_log(EmulatorTransport(card))
    assert [record.amount for record in log] == list(range(12, 2, -1))
    assert len(log) == LOG_RECORDS
    assert [record.atc for record in log[:2]] == [11, 10]


@ALGS
def test_load_with_the_center_computing_mac2_and_checking_the_tac(tmp_path: Path, alg: Alg) -> None:
    card = issue_card(tmp_path, alg=alg, balance=500)
    t = EmulatorTransport(card)
    key_index = 0x41 if alg is Alg.SM4 else 0x01

    init = ops.init_load(t, amount=100_00, terminal6=TERMINAL, key_index=key_index)
    assert (init.balance, init.online_atc, init.key_version, init.alg) == (500, 0, 1, alg)
    mac2 = center_load_mac2(card, init, when=WHEN)
    result = ops.finish_load(t, mac2=mac2, when=WHEN)

    assert result.balance_after == 105_00
    f0015 = Card0015.decode(bytes(card.adf_files[0x15]))
    dtk = MASTERS.derived(alg, f0015.issuer_factor, f0015.serial).dtk
    assert crypto.verify_load_tac(
        alg, dtk, 105_00, init.online_atc, 100_00, 0x02, TERMINAL, WHEN, result.tac
    )
    reloaded = SoftCard.load(card.path)
    assert (reloaded.balance, reloaded.online_atc, reloaded.offline_atc) == (105_00, 1, 0)
    assert ops.read_log(open_emulated(card.path))[0].trans_type == 0x02


def test_load_with_a_wrong_mac2_credits_nothing(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=500)
    t = EmulatorTransport(card)
    init = ops.init_load(t, amount=100_00, terminal6=TERMINAL)
    before = state_bytes(card.path)
    good = center_load_mac2(card, init, when=WHEN)

    with pytest.raises(CardError) as refused:
        ops.finish_load(t, mac2=bytes(b ^ 0xFF for b in good), when=WHEN)

    assert refused.value.sw == 0x9302
    assert refused.value.meaning == "MAC invalid"
    assert state_bytes(card.path) == before
    assert SoftCard.load(card.path).balance == 500
    # The right MAC2 afterwards is too late: the card dropped the pending load.
    with pytest.raises(CardError) as late:
        ops.finish_load(t, mac2=good, when=WHEN)
    assert late.value.sw == 0x6985


def test_load_needs_the_pin_and_counts_wrong_tries(tmp_path: Path) -> None:
    card = issue_card(tmp_path)
    assert send(card, "00A40000021001").ok
    assert send(card, "805000020B010000271043010100000110").sw == 0x6982
    with pytest.raises(CardError) as wrong:
        ops.init_load(EmulatorTransport(card), amount=1, terminal6=TERMINAL, pin="654321")
    assert wrong.value.sw == 0x63C2
    assert SoftCard.load(card.path).pin_tries_left == 2
    ops.init_load(EmulatorTransport(card), amount=1, terminal6=TERMINAL)
    assert SoftCard.load(card.path).pin_tries_left == 3


def test_pin_blocks_after_three_wrong_tries(tmp_path: Path) -> None:
    card = issue_card(tmp_path)
    assert [send(card, "0020000006" + b"000000".hex()).sw for _ in range(4)] == [
        0x63C2,
        0x63C1,
        0x63C0,
        0x6983,
    ]
    assert send(card, "0020000006" + b"123456".hex()).sw == 0x6983


def test_a_debit_card_cannot_be_loaded(tmp_path: Path) -> None:
    card = issue_card(tmp_path, card_type=CardType.DEBIT)
    with pytest.raises(CardError) as refused:
        ops.init_load(EmulatorTransport(card), amount=100, terminal6=TERMINAL)
    assert refused.value.sw == 0x6A81


def test_wrong_key_index_is_refused(tmp_path: Path) -> None:
    card = issue_card(tmp_path)
    with pytest.raises(CardError) as refused:
        ops.init_load(EmulatorTransport(card), amount=100, terminal6=TERMINAL, key_index=0x41)
    assert refused.value.sw == 0x9403


@pytest.mark.parametrize(
    ("apdus", "sw"),
    [
        (["00A40000021002"], 0x6A82),
        (["00A40400021001"], 0x6A86),
        (["00A4000001"], 0x6700),
        (["00A40000021001", "805003020A01000004D24301010000010F"], 0x6700),
        (["00A40000021001", "805003020B01000004D24301010000010E"], 0x6700),
        (["00A40000021001", "805003030B01000004D24301010000010F"], 0x6A86),
        (["805003020B01000004D24301010000010F"], 0x6985),  # purse is in ADF 1001
        (["00A40000021001", "805401000F000000012024050108301500000000"], 0x6985),
        (["00A40000021001", "80DCAAC82B" + "AA29" + "00" * 41], 0x6985),
        (["00A40000021001", "00B202CC2B"], 0x6A83),
        (["00A40000021001", "00B201CC20"], 0x6C2B),
        (["00A40000021001", "00B0950040"], 0x6C32),
        (["00A40000021001", "00B0953300"], 0x6B00),
        (["00A40000021001", "00B0960037"], 0x6A82),  # 0016 lives in the MF
        (["00A40000021001", "00D695000400000000"], 0x6E00),  # plain update: wrong class
        (["00A40000021001", "04D69518082030123100000000"], 0x6985),  # no challenge
        (["00A40000021001", "805C000104"], 0x6A86),
        (["00CA000000"], 0x6D00),
        (["90A40000023F00"], 0x6E00),
        (["0084000008"], 0x6700),
        (["00A4000002"], 0x6700),
    ],
)
def test_bad_commands_get_their_status_word_and_change_nothing(
    tmp_path: Path, apdus: list[str], sw: int
) -> None:
    card = issue_card(tmp_path, balance=10_000)
    before = state_bytes(card.path)
    responses = [send(card, apdu) for apdu in apdus]
    assert all(response.ok for response in responses[:-1])
    assert responses[-1].sw == sw
    assert state_bytes(card.path) == before


def test_a_malformed_apdu_raises_at_the_transport_and_gets_6700_from_the_device(
    tmp_path: Path,
) -> None:
    card = issue_card(tmp_path)
    with pytest.raises(ApduError, match="Lc mismatch: Lc says 2 data bytes but 4 bytes follow"):
        EmulatorTransport(card).transmit(h("00A400000210010000"))
    assert card.transmit(h("00A400000210010000")) == h("6700")
    assert card.transmit(h("00A4")) == h("6700")


def test_personalise_a_blank_card_with_vault_macs(tmp_path: Path) -> None:
    f0015 = make_0015()
    keys = card_keys(f0015)
    card = SoftCard.blank(
        tmp_path / "card.json",
        internal_no=f0015.internal_no,
        network="4301",
        keys=keys,
        alg=Alg.TDES,
    )
    t = EmulatorTransport(card)
    blank = ops.read_card(t)
    assert (blank.card_no, blank.is_blank, blank.f0016, blank.balance) == (
        "43011900232500052902",
        True,
        None,
        0,
    )

    reading = ops.personalize_card(
        t, f0015=f0015, f0016=make_0016(), mac_for=vault_mac_for(Alg.TDES, keys.damk)
    )

    assert (reading.f0015, reading.f0016) == (f0015, make_0016())
    assert ops.read_card(open_emulated(card.path)).f0015 == f0015


def test_personalising_another_cards_number_is_refused(tmp_path: Path) -> None:
    card = issue_card(tmp_path)
    other = make_0015(internal_no="1900232500059999")
    with pytest.raises(OperationError, match="this card is 43011900232500052902"):
        ops.personalize_card(
            EmulatorTransport(card),
            f0015=other,
            f0016=make_0016(),
            mac_for=vault_mac_for(Alg.TDES, card_keys(other).damk),
        )


def test_secure_update_with_a_wrong_mac_is_refused(tmp_path: Path) -> None:
    card = issue_card(tmp_path)
    before = state_bytes(card.path)
    t = EmulatorTransport(card)
    t.transmit(h("00A40000021001"))
    wrong_key = vault_mac_for(Alg.TDES, MASTERS.damk)  # the master, not the card's key

    with pytest.raises(CardError) as refused:
        ops.secure_update(t, sfi_or_path=0x15, offset=0x18, data=h("20351231"), mac_for=wrong_key)

    assert refused.value.sw == 0x6988
    assert state_bytes(card.path) == before


@ALGS
def test_expiry_date_update_at_offset_0x18(tmp_path: Path, alg: Alg) -> None:
    card = issue_card(tmp_path, alg=alg)
    damk = card.keys.damk
    seen: list[bytes] = []

    def mac_for(challenge: bytes, apdu: bytes) -> bytes:
        seen.append(apdu)
        return crypto.line_protection_mac(alg, damk, challenge, apdu)

    t = EmulatorTransport(card)
    t.transmit(h("00A40000021001"))
    ops.secure_update(t, sfi_or_path=0x15, offset=0x18, data=h("20351231"), mac_for=mac_for)

    assert seen == [h("04D695180820351231")]
    reading = ops.read_card(open_emulated(card.path))
    assert reading.f0015 is not None
    assert reading.f0015.expiry_date == datetime.date(2035, 12, 31)


def test_secure_update_by_path(tmp_path: Path) -> None:
    card = issue_card(tmp_path)
    t = EmulatorTransport(card)
    ops.secure_update(
        t,
        sfi_or_path=(0x3F00, 0x1001, 0x0015),
        offset=28,
        data="湘B54321".encode("gb2312"),
        mac_for=vault_mac_for(Alg.TDES, card.keys.damk),
    )
    reading = ops.read_card(open_emulated(card.path))
    assert reading.f0015 is not None
    assert reading.f0015.plate == "湘B54321"


def test_a_challenge_is_good_for_one_command_only(tmp_path: Path) -> None:
    card = issue_card(tmp_path)
    assert send(card, "00A40000021001").ok
    challenge = send(card, "0084000004").data
    assert send(card, "805C000204").ok  # any command in between uses up the challenge
    apdu = h("04D695180820351231")
    mac = crypto.line_protection_mac(Alg.TDES, card.keys.damk, challenge, apdu)
    assert card.transmit(apdu + mac)[-2:] == h("6985")


def test_format_blank_refuses_a_card_with_money_then_recycles(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=1)
    mac_for = vault_mac_for(Alg.TDES, card.keys.damk)
    with pytest.raises(OperationError, match="still holds 1 fen"):
        ops.format_blank(EmulatorTransport(card), device="card", mac_for=mac_for)

    empty = issue_card(tmp_path, name="empty.json")
    ops.format_blank(EmulatorTransport(empty), device="card", mac_for=mac_for)
    reading = ops.read_card(open_emulated(empty.path))
    assert (reading.is_blank, reading.f0016, reading.card_no) == (
        True,
        None,
        "43011900232500052902",
    )


def test_reformat_blank_in_software(tmp_path: Path) -> None:
    card = issue_card(tmp_path)
    card.reformat_blank()
    assert ops.read_card(open_emulated(card.path)).is_blank
    rich = issue_card(tmp_path, balance=5, name="rich.json")
    with pytest.raises(ValueError, match="still holds 5 fen"):
        rich.reformat_blank()
