"""The software OBU: personalisation, activation, the vehicle file and the fee file
(EF04) written in the clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etcnet.core.codes import PlateColor, VehicleClass
from etcnet.smartcard import ops
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.emulator import SoftObu
from etcnet.smartcard.files import Card0019, ObuFeeFile, TamperFlag
from etcnet.smartcard.ops import CardError, OperationError
from etcnet.smartcard.tests import (
    ALGS,
    blank_obu,
    h,
    make_obu_system,
    make_obu_vehicle,
    obu_update_key,
    send,
    state_bytes,
    vault_mac_for,
)
from etcnet.smartcard.transport import EmulatorTransport, open_emulated


@ALGS
def test_obu_personalise_activate_and_read(tmp_path: Path, alg: Alg) -> None:
    obu = blank_obu(tmp_path, alg=alg)
    mac_for = vault_mac_for(alg, obu_update_key(alg))
    t = EmulatorTransport(obu)
    assert ops.read_obu(t).system is None

    personalised = ops.personalize_obu(
        t, system=make_obu_system(), vehicle=make_obu_vehicle(), mac_for=mac_for
    )
    assert personalised.system == make_obu_system()
    assert personalised.vehicle == make_obu_vehicle()
    assert not personalised.activated

    activated = ops.activate_obu(t, mac_for=mac_for)
    assert activated.activated
    assert activated.system == make_obu_system(tamper_flag=TamperFlag.ACTIVE)
    again = ops.read_obu(open_emulated(obu.path))
    assert (again.obu_no, again.tamper_flag, again.vehicle) == (
        "4301190220052902",
        0x01,
        make_obu_vehicle(),
    )


def test_obu_activation_apdu_and_wrong_mac(tmp_path: Path) -> None:
    obu = SoftObu.create(
        tmp_path / "obu.json",
        system=make_obu_system(),
        vehicle=make_obu_vehicle(),
        update_key=obu_update_key(Alg.TDES),
        alg=Alg.TDES,
    )
    before = state_bytes(obu.path)
    seen: list[bytes] = []

    def wrong(challenge: bytes, apdu: bytes) -> bytes:
        seen.append(apdu)
        return bytes(4)

    with pytest.raises(CardError) as refused:
        ops.activate_obu(EmulatorTransport(obu), mac_for=wrong)
    assert refused.value.sw == 0x6988
    assert seen == [h("04D6811A0501")]
    assert state_bytes(obu.path) == before


def test_obu_personalisation_refuses_an_active_flag_and_another_serial(tmp_path: Path) -> None:
    obu = blank_obu(tmp_path)
    mac_for = vault_mac_for(Alg.TDES, obu_update_key(Alg.TDES))
    with pytest.raises(OperationError, match="not activated"):
        ops.personalize_obu(
            EmulatorTransport(obu),
            system=make_obu_system(tamper_flag=TamperFlag.ACTIVE),
            vehicle=make_obu_vehicle(),
            mac_for=mac_for,
        )
    with pytest.raises(OperationError, match="this OBU is 4301190220052902"):
        ops.personalize_obu(
            EmulatorTransport(obu),
            system=make_obu_system(contract_serial="4301190220050000"),
            vehicle=make_obu_vehicle(),
            mac_for=mac_for,
        )


def test_obu_truck_vehicle_file_and_recycling(tmp_path: Path) -> None:
    obu = blank_obu(tmp_path)
    mac_for = vault_mac_for(Alg.TDES, obu_update_key(Alg.TDES))
    truck = make_obu_vehicle(
        vehicle_class=VehicleClass.TRUCK_3,
        plate_color=PlateColor.YELLOW,
        length_mm=11_990,
        width_mm=2550,
        height_mm=3990,
        wheels=0,
        axles=0,
        wheelbase_dm=0,
        load_or_seats=0,
        engine_no="",
        approved_load_kg=15_000,
        curb_weight_kg=10_000,
        total_mass_kg=25_000,
        seats=2,
        vin="LGAX2A137H1234567",
    )
    t = EmulatorTransport(obu)
    reading = ops.personalize_obu(t, system=make_obu_system(), vehicle=truck, mac_for=mac_for)
    assert reading.vehicle == truck
    ops.activate_obu(t, mac_for=mac_for)

    ops.format_blank(t, device="obu", mac_for=mac_for)

    recycled = ops.read_obu(open_emulated(obu.path))
    assert (recycled.system, recycled.vehicle, recycled.tamper_flag, recycled.obu_no) == (
        None,
        None,
        0,
        "4301190220052902",
    )


def test_obu_fee_file_is_written_in_the_clear_and_read_back(tmp_path: Path) -> None:
    obu = SoftObu.create(
        tmp_path / "obu.json",
        system=make_obu_system(tamper_flag=TamperFlag.ACTIVE),
        vehicle=make_obu_vehicle(),
        update_key=obu_update_key(Alg.TDES),
        alg=Alg.TDES,
    )
    t = EmulatorTransport(obu)
    assert ops.read_obu_fee(t) is None
    fee = ObuFeeFile(
        entry_0019=Card0019(network="1201", station=0x0E02, lane=1).encode()[:39],
        successes=1,
        actual_fen=4501,
        provinces=(("12", 4501),),
    )
    ops.write_obu_fee(t, fee)
    assert ops.read_obu_fee(open_emulated(obu.path)) == fee
    assert SoftObu.load(obu.path).describe()["fee_file"]["actual_fen"] == 4501

    # The block sits at 314 (013A) of EF04, 171 bytes, after SELECT DF01 / EF04.
    send(obu, "00A4000002DF01")
    send(obu, "00A4000002EF04")
    assert send(obu, "00B0013A04").data == h("AA290012")
    # A plain write anywhere but EF04 is refused and changes nothing.
    send(obu, "00A4000002EF01")
    before = state_bytes(obu.path)
    assert send(obu, "00D6000001FF").sw == 0x6982
    assert send(obu, "00D6810001FF").sw == 0x6982
    assert state_bytes(obu.path) == before
    # Past the end of the file.
    send(obu, "00A4000002EF04")
    assert send(obu, "00D601FF02FFFF").sw == 0x6B00

    # Recycling clears it.
    ops.format_blank(t, device="obu", mac_for=vault_mac_for(Alg.TDES, obu_update_key(Alg.TDES)))
    assert ops.read_obu_fee(t) is None


def test_an_obu_state_file_from_before_ef04_loads_with_an_empty_fee_file(tmp_path: Path) -> None:
    obu = SoftObu.create(
        tmp_path / "obu.json",
        system=make_obu_system(),
        vehicle=make_obu_vehicle(),
        update_key=obu_update_key(Alg.TDES),
        alg=Alg.TDES,
    )
    state = json.loads(obu.path.read_text())
    del state["files"]["fee"]
    obu.path.write_text(json.dumps(state))
    assert ops.read_obu_fee(open_emulated(obu.path)) is None
