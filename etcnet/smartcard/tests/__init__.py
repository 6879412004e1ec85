"""Factories shared by the smart-card tests: plain functions with keyword defaults.

The master keys are those of the §1.6 worked example (MPK, MTK) plus two synthetic
ones for load and maintenance; the issuer is "湖南" (BAFEC4CF) as in the example.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from etcnet.core.codes import CardType, PlateColor, VehicleClass
from etcnet.smartcard import crypto, ops
from etcnet.smartcard.apdu import Response
from etcnet.smartcard.crypto import Alg, CardKeys, derive, line_protection_mac
from etcnet.smartcard.emulator import SoftCard, SoftObu, SoftPsam
from etcnet.smartcard.files import Card0015, Card0016, ObuSystemFile, ObuVehicleFile
from etcnet.smartcard.ops import MacFor

MASTERS = CardKeys(
    dpk=bytes.fromhex("11223344556677888877665544332211"),
    dlk=bytes.fromhex("00112233445566778899AABBCCDDEEFF"),
    dtk=bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
    damk=bytes.fromhex("FFEEDDCCBBAA99887766554433221100"),
)
OBU_MASTER = bytes.fromhex("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
ISSUER_ID = bytes.fromhex("BAFEC4CF43010001")
SERIAL = "1900232500052902"
TERMINAL = bytes.fromhex("430101000001")
NOON = datetime.datetime(2020, 1, 1, 12, 0, 0)


def make_0015(**overrides: Any) -> Card0015:
    values: dict[str, Any] = {
        "issuer_id": ISSUER_ID,
        "card_type": CardType.STORED_VALUE,
        "version": 0x40,
        "network": "4301",
        "internal_no": SERIAL,
        "start_date": datetime.date(2020, 1, 1),
        "expiry_date": datetime.date(2030, 1, 1),
        "plate": "湘A12345",
        "user_type": 0,
        "plate_color": PlateColor.BLUE,
        "vehicle_class": VehicleClass.PASSENGER_1,
    }
    values.update(overrides)
    return Card0015(**values)


def make_0016(**overrides: Any) -> Card0016:
    values: dict[str, Any] = {
        "holder_flag": 0,
        "staff_flag": 0,
        "name": "张三",
        "id_number": "11010519491231002X",
        "id_type": 0,
    }
    values.update(overrides)
    return Card0016(**values)


def card_keys(f0015: Card0015, alg: Alg = Alg.TDES) -> CardKeys:
    """What the center's vault derives for this card: issuer factor, then serial."""
    return MASTERS.derived(alg, f0015.issuer_factor, f0015.serial)


def issue_card(
    folder: Path,
    *,
    alg: Alg = Alg.TDES,
    balance: int = 0,
    name: str = "card.json",
    **overrides: Any,
) -> SoftCard:
    if alg is Alg.SM4:
        overrides.setdefault("version", 0x50)
    f0015 = make_0015(**overrides)
    return SoftCard.create(
        folder / name,
        card_file_0015=f0015,
        card_file_0016=make_0016(),
        keys=card_keys(f0015, alg),
        alg=alg,
        balance=balance,
    )


def make_psam(folder: Path, *, sequence: int = 1, name: str = "psam.json") -> SoftPsam:
    return SoftPsam.create(
        folder / name,
        terminal_no=TERMINAL,
        purchase_keys={(Alg.TDES, 1): MASTERS.dpk, (Alg.SM4, 1): MASTERS.dpk},
        sequence=sequence,
    )


def vault_mac_for(alg: Alg, key: bytes) -> MacFor:
    """The center's vault computing line-protection MACs with ``key``."""

    def mac_for(challenge: bytes, apdu_without_mac: bytes) -> bytes:
        return line_protection_mac(alg, key, challenge, apdu_without_mac)

    return mac_for


def make_obu_system(**overrides: Any) -> ObuSystemFile:
    values: dict[str, Any] = {
        "issuer_id": bytes.fromhex("BAFEC4CF43010001"),
        "contract_type": 1,
        "contract_version": 0x10,
        "contract_serial": "4301190220052902",
        "signed_date": datetime.date(2024, 5, 1),
        "expiry_date": datetime.date(2034, 5, 1),
    }
    values.update(overrides)
    return ObuSystemFile(**values)


def make_obu_vehicle(**overrides: Any) -> ObuVehicleFile:
    values: dict[str, Any] = {
        "plate": "湘A12345",
        "plate_color": PlateColor.BLUE,
        "vehicle_class": VehicleClass.PASSENGER_1,
        "length_mm": 4800,
        "width_mm": 1800,
        "height_mm": 1500,
        "wheels": 4,
        "axles": 2,
        "wheelbase_dm": 28,
        "load_or_seats": 5,
        "description": "大众帕萨特",
        "engine_no": "EA888123456",
    }
    values.update(overrides)
    return ObuVehicleFile(**values)


def obu_update_key(alg: Alg, contract_serial: str = "4301190220052902") -> bytes:
    return derive(alg, OBU_MASTER, bytes.fromhex(contract_serial))


def blank_obu(folder: Path, *, alg: Alg = Alg.TDES, name: str = "obu.json") -> SoftObu:
    return SoftObu.blank(
        folder / name,
        contract_serial="4301190220052902",
        update_key=obu_update_key(alg),
        alg=alg,
    )


# --- driving the emulated devices ---------------------------------------------------

h = bytes.fromhex
ALGS = pytest.mark.parametrize("alg", list(Alg), ids=["3des", "sm4"])
WHEN = datetime.datetime(2024, 5, 1, 8, 30, 15)


def send(device: SoftCard | SoftObu | SoftPsam, hex_apdu: str) -> Response:
    return Response.parse(device.transmit(h(hex_apdu)))


def state_bytes(path: Path) -> bytes:
    return path.read_bytes()


def center_load_mac2(
    card: SoftCard, init: ops.LoadInit, *, when: datetime.datetime, dlk: bytes | None = None
) -> bytes:
    """The center: derive DLK, check the card's MAC1, compute MAC2."""
    f0015 = Card0015.decode(bytes(card.adf_files[0x15]))
    key = dlk or MASTERS.derived(card.alg, f0015.issuer_factor, f0015.serial).dlk
    sk = crypto.load_session_key(init.alg, key, init.random, init.online_atc)
    expected_mac1 = crypto.load_mac1(
        init.alg, sk, init.balance, init.amount, crypto.LOAD_TRANS_TYPE, init.terminal
    )
    assert init.mac1 == expected_mac1
    return crypto.load_mac2(init.alg, sk, init.amount, crypto.LOAD_TRANS_TYPE, init.terminal, when)
