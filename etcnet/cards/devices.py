"""The issuance counter's card and OBU readers.

An emulated unit is a state file under `ETCNET_CARD_DIR` (the demo and the
tests); a real one is reached through the counter's PC/SC reader named in
`ETCNET_COUNTER_READER`. Every write to a card or OBU goes through
`etcnet.smartcard.ops` with MACs computed by the vault, so the counter never
holds a key. Card faults become `CardFault` with the status word's meaning.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

from etcnet.cards import vault
from etcnet.cards.errors import CardFault
from etcnet.cards.models import CardUnit, ObuUnit
from etcnet.core.codes import CardType, PlateColor, VehicleClass
from etcnet.smartcard import ops
from etcnet.smartcard.apdu import ApduError, Command
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.emulator import SoftCard, SoftObu, default_key_index
from etcnet.smartcard.files import Card0015, Card0016, ObuSystemFile, ObuVehicleFile
from etcnet.smartcard.transport import Transport, TransportError, open_emulated

# The 0015 version byte: "4X" layout (plate colour and class in the file) for
# 3DES cards, "5X" for SM4 cards, whose purchase key index (41) terminals pick
# from that nibble.
CARD_VERSIONS = {Alg.TDES: 0x40, Alg.SM4: 0x50}


def _root() -> Path:
    root = Path(settings.ETCNET_CARD_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root


def create_blank_card(card_no: str, alg: Alg) -> str:
    """A blank software card with its keys derived by the vault; returns its file name."""
    name = f"card-{card_no}.json"
    SoftCard.blank(
        _root() / name,
        internal_no=card_no[4:],
        network=card_no[:4],
        keys=vault.card_keys(alg, card_no[4:]),
        alg=alg,
    )
    return name


def create_blank_obu(contract_no: str) -> str:
    name = f"obu-{contract_no}.json"
    SoftObu.blank(
        _root() / name,
        contract_serial=contract_no,
        update_key=vault.obu_update_key(contract_no),
        alg=Alg.TDES,
    )
    return name


def remove(names: Iterable[str]) -> None:
    for name in names:
        if name:
            (_root() / name).unlink(missing_ok=True)


def path_of(unit: CardUnit | ObuUnit) -> Path:
    return _root() / unit.emulator_file


@contextmanager
def _faults() -> Iterator[None]:
    try:
        yield
    except ops.CardError as error:
        raise CardFault(params={"meaning": f"{error.sw:04X} {error.meaning}"}) from error
    except (TransportError, ApduError, ops.OperationError, OSError) as error:
        raise CardFault(params={"meaning": str(error)}) from error


def open_unit(unit: CardUnit | ObuUnit) -> Transport:
    """The transport to a unit: its emulator file, or the counter's PC/SC reader."""
    if unit.emulator_file:
        with _faults():
            return open_emulated(path_of(unit))
    reader = os.environ.get("ETCNET_COUNTER_READER", "")
    if not reader:
        raise CardFault(params={"meaning": "no card reader is configured (ETCNET_COUNTER_READER)"})
    from etcnet.smartcard.transport import PcscTransport

    with _faults():
        return PcscTransport(reader)


def _card_mac(card: CardUnit) -> Callable[[bytes, bytes], bytes]:
    alg = Alg(card.alg)
    return lambda challenge, apdu: vault.card_update_mac(alg, card.internal_no, challenge, apdu)


def _obu_mac(obu: ObuUnit) -> Callable[[bytes, bytes], bytes]:
    return lambda challenge, apdu: vault.obu_update_mac(obu.contract_no, challenge, apdu)


def personalize_card(card: CardUnit, *, vehicle: Any, customer: Any) -> None:
    """Writes 0015 (card, vehicle) and 0016 (holder) for the card's binding."""
    today = dt.date.today()
    f0015 = Card0015(
        issuer_id=vault.master().issuer_id,
        card_type=CardType(int(card.card_type or 0)),
        version=CARD_VERSIONS[Alg(card.alg)],
        network=card.network,
        internal_no=card.internal_no,
        start_date=today,
        expiry_date=card.expiry_date or today,
        plate=vehicle.plate,
        user_type=vehicle.user_type,
        plate_color=PlateColor(vehicle.plate_color),
        vehicle_class=VehicleClass(vehicle.toll_class),
    )
    f0016 = Card0016(
        holder_flag=0,
        staff_flag=0,
        name=(customer.name or "")[:10],
        id_number=customer.id_number,
        id_type=int(customer.id_type) % 100,
    )
    with _faults():
        ops.personalize_card(open_unit(card), f0015=f0015, f0016=f0016, mac_for=_card_mac(card))


def personalize_obu(obu: ObuUnit, *, vehicle: Any) -> None:
    """Writes the OBU's system file (not activated) and its vehicle file."""
    today = dt.date.today()
    # 29 February has no twin N years on: the 28th, like the card's expiry.
    day = today.replace(day=28) if (today.month, today.day) == (2, 29) else today
    system = ObuSystemFile(
        issuer_id=vault.master().issuer_id,
        contract_type=1,
        contract_version=1,
        contract_serial=obu.contract_no,
        signed_date=today,
        expiry_date=day.replace(year=day.year + settings.ETCNET_CARD_VALID_YEARS),
    )
    file = vehicle_file(vehicle)
    with _faults():
        ops.personalize_obu(open_unit(obu), system=system, vehicle=file, mac_for=_obu_mac(obu))


def vehicle_file(vehicle: Any) -> ObuVehicleFile:
    """The OBU vehicle file in the layout the vehicle's class takes."""
    return ObuVehicleFile.from_vehicle(
        plate=vehicle.plate,
        plate_color=PlateColor(vehicle.plate_color),
        vehicle_class=VehicleClass(vehicle.toll_class),
        user_type=vehicle.user_type,
        length_mm=vehicle.length_mm,
        width_mm=vehicle.width_mm,
        height_mm=vehicle.height_mm,
        description=_fit(vehicle.brand_model, 16),
        wheels=vehicle.wheels,
        axles=vehicle.axles,
        seats=vehicle.seats,
        engine_no=vehicle.engine_no[:16],
        approved_load_kg=vehicle.approved_load_kg,
        curb_weight_kg=vehicle.curb_mass_kg,
        total_mass_kg=vehicle.total_mass_kg,
        vin=vehicle.vin,
    )


def _fit(text: str, size: int) -> str:
    """As much of the text as fits in `size` bytes of GB2312."""
    while len(text.encode("gb2312", errors="replace")) > size:
        text = text[:-1]
    return text


def obu_vehicle(obu: ObuUnit) -> tuple[str, int, int]:
    """(plate, colour, class) as the OBU's vehicle file has them."""
    with _faults():
        reading = ops.read_obu(open_unit(obu))
    if reading.vehicle is None:
        return ("", -1, -1)
    file = reading.vehicle
    return (file.plate, int(file.plate_color), int(file.vehicle_class))


def activate_obu(obu: ObuUnit) -> None:
    with _faults():
        ops.activate_obu(open_unit(obu), mac_for=_obu_mac(obu))


def read_card(card: CardUnit) -> ops.CardReading:
    with _faults():
        return ops.read_card(open_unit(card))


def read_log(card: CardUnit) -> list[Any]:
    """The purse's transaction log, newest first."""
    with _faults():
        return ops.read_log(open_unit(card))


def init_load(transport: Transport, card: CardUnit, amount_fen: int, terminal: str) -> ops.LoadInit:
    """INITIALIZE FOR LOAD with the key index of the card's algorithm (01 / 41)."""
    with _faults():
        return ops.init_load(
            transport,
            amount=amount_fen,
            terminal6=bytes.fromhex(terminal),
            key_index=default_key_index(Alg(card.alg)),
        )


def finish_load(transport: Transport, mac2: bytes, when: dt.datetime) -> bytes:
    with _faults():
        return ops.finish_load(transport, mac2=mac2, when=when).tac


def write_expiry(card: CardUnit) -> None:
    """The renewed expiry date into 0015 (offset 0x18, BCD yyyymmdd)."""
    assert card.expiry_date is not None
    data = bytes.fromhex(card.expiry_date.strftime("%Y%m%d"))
    with _faults():
        transport = open_unit(card)
        # SELECT the ETC application, then 04D6 95 18: SFI 15, offset 0x18.
        ops.exchange(transport, Command(0x00, 0xA4, 0x00, 0x00, b"\x10\x01"), what="SELECT 1001")
        ops.secure_update(
            transport, sfi_or_path=0x15, offset=0x18, data=data, mac_for=_card_mac(card)
        )


def provision_psam(path: Path, *, terminal_no: str, alg: Alg = Alg.TDES) -> None:
    """An emulated PSAM for a terminal: its number and the purchase master key,
    as a real lane PSAM holds it (never the load, TAC or update keys)."""
    from etcnet.smartcard.emulator import SoftPsam

    SoftPsam.create(
        path,
        terminal_no=bytes.fromhex(terminal_no),
        purchase_keys={(alg, vault.master().key_version): vault.purchase_master_key(alg)},
    )


def format_card(card: CardUnit) -> None:
    """Reformats a returned card to blank. Money still in its purse (already
    refunded or moved in the ledger) is first debited by a purchase signed
    with the center's own PSAM, so nothing of value leaves on a recycled card."""
    with _faults():
        transport = open_unit(card)
        balance = ops.read_card(transport).balance
        if balance:
            with tempfile.TemporaryDirectory() as folder:
                psam = Path(folder) / "center-psam.json"
                provision_psam(
                    psam, terminal_no=settings.ETCNET_COUNTER_TERMINAL_NO, alg=Alg(card.alg)
                )
                ops.purchase(transport, open_emulated(psam), amount=balance, when=dt.datetime.now())
        ops.format_blank(transport, device="card", mac_for=_card_mac(card))


def format_obu(obu: ObuUnit) -> None:
    with _faults():
        ops.format_blank(open_unit(obu), device="obu", mac_for=_obu_mac(obu))
