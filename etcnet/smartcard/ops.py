"""High-level card and OBU sequences over any ``Transport``.

These are what the issuance counter and the terminals call: reading a card or an
OBU, personalising and activating them with MACs computed by the center's key vault
(``mac_for``), the two-phase load (圈存) that lets the center record the money
before it computes MAC2, and the lane purchase with a PSAM. A non-9000 answer is a
``CardError`` carrying the status word; a request refused before anything is sent
is an ``OperationError``. The APDUs are those of ETC.md Part 2 §1.1 and §1.5.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from etcnet.smartcard.apdu import Command, Response, status_meaning
from etcnet.smartcard.codec import bcd_date, bcd_time, hexu
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.files import (
    Card0015,
    Card0016,
    Card0019,
    ObuFeeFile,
    ObuSystemFile,
    ObuVehicleFile,
    PurseLogRecord,
    TamperFlag,
    blank_0015,
    blank_obu_system,
    card_no_of,
    is_blank_0015,
    is_blank_obu_system,
)
from etcnet.smartcard.transport import Transport

__all__ = [
    "CardError",
    "CardReading",
    "LoadInit",
    "LoadResult",
    "MacFor",
    "ObuReading",
    "OperationError",
    "PurchaseIntent",
    "PurchaseResult",
    "activate_obu",
    "exchange",
    "finish_load",
    "format_blank",
    "init_load",
    "personalize_card",
    "personalize_obu",
    "purchase",
    "purchase_key_index",
    "read_card",
    "read_log",
    "read_obu",
    "read_obu_fee",
    "secure_update",
    "transaction_prove",
    "write_obu_fee",
]

#: ``mac_for(challenge4, apdu_without_mac) -> mac4``: the center's vault computes it.
MacFor = Callable[[bytes, bytes], bytes]

FID_MF = 0x3F00
FID_ADF = 0x1001
FID_OBU_DF = 0xDF01
SFI_0015 = 0x15
SFI_0016 = 0x16
SFI_LOG = 0x18
SFI_0019 = 0x19
SFI_OBU_EF01 = 0x01
PURCHASE_TRANS_TYPE = 0x06
COMPOSITE_TRANS_TYPE = 0x09


class CardError(Exception):
    """The card, OBU or PSAM answered a status word other than 9000."""

    def __init__(self, sw: int, meaning: str, command: str = "") -> None:
        where = f" to {command}" if command else ""
        super().__init__(f"{sw:04X}{where}: {meaning}")
        self.sw = sw
        self.meaning = meaning
        self.command = command


class OperationError(ValueError):
    """A sequence refused before it changed anything (wrong card, money still on it…)."""


def exchange(t: Transport, command: Command, *, what: str) -> bytes:
    """Send ``command``; its response data on 9000, else ``CardError`` naming ``what``."""
    response = Response.parse(t.transmit(command.encode()))
    if not response.ok:
        raise CardError(response.sw, status_meaning(response.sw), what)
    return response.data


def _select(t: Transport, fid: int) -> None:
    exchange(t, Command(0x00, 0xA4, 0x00, 0x00, fid.to_bytes(2, "big")), what=f"SELECT {fid:04X}")


def _read_binary(t: Transport, sfi: int, length: int) -> bytes:
    return exchange(
        t, Command(0x00, 0xB0, 0x80 | sfi, 0x00, le=length), what=f"READ BINARY {sfi:02X}"
    )


def _read_record(t: Transport, sfi: int, number: int, length: int) -> bytes:
    return exchange(
        t,
        Command(0x00, 0xB2, number, (sfi << 3) | 0x04, le=length),
        what=f"READ RECORD {sfi:02X}/{number}",
    )


def _get_balance(t: Transport) -> int:
    data = exchange(t, Command(0x80, 0x5C, 0x00, 0x02, le=4), what="GET BALANCE")
    return int.from_bytes(data, "big")


def _stamp(when: datetime.datetime) -> bytes:
    return bcd_date(when, field="when") + bcd_time(when)


# --- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class CardReading:
    """What a card holds. A file never personalised (all zeros) reads as None."""

    card_no: str
    f0015: Card0015 | None
    f0016: Card0016 | None
    f0019: Card0019 | None
    balance: int
    raw_0015: bytes
    raw_0016: bytes
    raw_0019: bytes

    @property
    def is_blank(self) -> bool:
        return self.f0015 is None


def _read_0015(t: Transport) -> bytes:
    try:
        return _read_binary(t, SFI_0015, Card0015.LENGTH)
    except CardError as error:
        # A classic card has a 43-byte 0015: it answers 6Cxx (or 6700) to a 50-byte read.
        if error.sw >> 8 == 0x6C:
            return _read_binary(t, SFI_0015, error.sw & 0xFF)
        if error.sw in (0x6700, 0x6B00):
            return _read_binary(t, SFI_0015, Card0015.CLASSIC_LENGTH)
        raise


def read_card(t: Transport) -> CardReading:
    """SELECT MF, read 0016; SELECT 1001, read 0015, record 0019 and the balance."""
    _select(t, FID_MF)
    raw_0016 = _read_binary(t, SFI_0016, Card0016.LENGTH)
    _select(t, FID_ADF)
    raw_0015 = _read_0015(t)
    raw_0019 = _read_record(t, SFI_0019, 1, Card0019.LENGTH)
    balance = _get_balance(t)
    return CardReading(
        card_no=card_no_of(raw_0015),
        f0015=None if is_blank_0015(raw_0015) else Card0015.decode(raw_0015),
        f0016=Card0016.decode(raw_0016) if any(raw_0016) else None,
        f0019=Card0019.decode(raw_0019) if any(raw_0019[2:]) else None,
        balance=balance,
        raw_0015=raw_0015,
        raw_0016=raw_0016,
        raw_0019=raw_0019,
    )


def read_log(t: Transport) -> list[PurseLogRecord]:
    """The e-purse transaction log, newest first (SFI 18, records until 6A83)."""
    _select(t, FID_ADF)
    records: list[PurseLogRecord] = []
    for number in range(1, 256):
        try:
            raw = _read_record(t, SFI_LOG, number, PurseLogRecord.LENGTH)
        except CardError as error:
            if error.sw == 0x6A83:
                break
            raise
        records.append(PurseLogRecord.decode(raw))
    return records


@dataclass(frozen=True)
class ObuReading:
    """What an OBU holds. Files never personalised read as None."""

    obu_no: str
    system: ObuSystemFile | None
    vehicle: ObuVehicleFile | None
    tamper_flag: int
    raw_system: bytes
    raw_vehicle: bytes

    @property
    def activated(self) -> bool:
        return self.tamper_flag == TamperFlag.ACTIVE


def read_obu(t: Transport) -> ObuReading:
    """SELECT MF, read the system file; SELECT DF01, read the vehicle file."""
    _select(t, FID_MF)
    raw_system = _read_binary(t, SFI_OBU_EF01, ObuSystemFile.LENGTH)
    _select(t, FID_OBU_DF)
    raw_vehicle = _read_binary(t, SFI_OBU_EF01, ObuVehicleFile.LENGTH)
    return ObuReading(
        obu_no=raw_system[10:18].hex(),
        system=None if is_blank_obu_system(raw_system) else ObuSystemFile.decode(raw_system),
        vehicle=ObuVehicleFile.decode(raw_vehicle) if any(raw_vehicle) else None,
        tamper_flag=raw_system[ObuSystemFile.TAMPER_OFFSET],
        raw_system=raw_system,
        raw_vehicle=raw_vehicle,
    )


FID_OBU_EF04 = 0xEF04


def read_obu_fee(t: Transport) -> ObuFeeFile | None:
    """DF01/EF04's fee block (§2.4), or None when never written. Selects DF01 and
    EF04, then reads 171 bytes from offset 314."""
    _select(t, FID_MF)
    _select(t, FID_OBU_DF)
    _select(t, FID_OBU_EF04)
    at = ObuFeeFile.OFFSET
    raw = exchange(
        t,
        Command(0x00, 0xB0, at >> 8, at & 0xFF, le=ObuFeeFile.LENGTH),
        what="READ BINARY EF04",
    )
    return ObuFeeFile.decode(raw) if any(raw) else None


def write_obu_fee(t: Transport, fee: ObuFeeFile) -> None:
    """Write the fee block into DF01/EF04 at offset 314 (a plain UPDATE BINARY:
    etcnet's choice, docs/smartcard.md)."""
    raw = fee.encode()
    _select(t, FID_MF)
    _select(t, FID_OBU_DF)
    _select(t, FID_OBU_EF04)
    at = ObuFeeFile.OFFSET
    exchange(t, Command(0x00, 0xD6, at >> 8, at & 0xFF, raw), what="UPDATE BINARY EF04")


# --- secure updates and personalisation ----------------------------------------------


def secure_update(
    t: Transport,
    *,
    sfi_or_path: int | Sequence[int],
    offset: int,
    data: bytes,
    mac_for: MacFor,
) -> None:
    """UPDATE BINARY with line protection (``04 D6``).

    ``sfi_or_path``: an SFI in the current DF (P1 = 80|SFI, P2 = offset), or a path
    of file identifiers ending with the EF, each SELECTed in turn (P1P2 = offset).
    Then GET CHALLENGE, ``mac_for(challenge, apdu_without_mac)`` and the command."""
    if isinstance(sfi_or_path, int):
        if not 1 <= sfi_or_path <= 0x1E or not 0 <= offset <= 0xFF:
            raise OperationError("an SFI is 1..30 and its offset 0..255")
        p1, p2 = 0x80 | sfi_or_path, offset
    else:
        for fid in sfi_or_path:
            _select(t, fid)
        if not 0 <= offset <= 0x7FFF:
            raise OperationError("an offset is 0..32767")
        p1, p2 = offset >> 8, offset & 0xFF
    if not 1 <= len(data) <= 251:
        raise OperationError("a secure update carries 1..251 data bytes")
    challenge = exchange(t, Command(0x00, 0x84, 0x00, 0x00, le=4), what="GET CHALLENGE")
    apdu_without_mac = bytes((0x04, 0xD6, p1, p2, len(data) + 4)) + data
    mac = mac_for(challenge, apdu_without_mac)
    if len(mac) != 4:
        raise OperationError("mac_for must return 4 bytes")
    exchange(t, Command.parse(apdu_without_mac + mac), what=f"UPDATE BINARY {p1:02X}{p2:02X}")


def personalize_card(
    t: Transport, *, f0015: Card0015, f0016: Card0016, mac_for: MacFor
) -> CardReading:
    """Write 0016 then 0015 (the issuance order of §2.1's Hunan note); read back.

    Refused if 0015 names another card number than the chip's: the card's keys were
    diversified with its own serial."""
    raw_0015, raw_0016 = f0015.encode(), f0016.encode()
    _select(t, FID_ADF)
    chip_no = card_no_of(_read_0015(t))
    if chip_no != f0015.card_no:
        raise OperationError(f"this card is {chip_no}; the 0015 file is for {f0015.card_no}")
    _select(t, FID_MF)
    secure_update(t, sfi_or_path=SFI_0016, offset=0, data=raw_0016, mac_for=mac_for)
    _select(t, FID_ADF)
    secure_update(t, sfi_or_path=SFI_0015, offset=0, data=raw_0015, mac_for=mac_for)
    return read_card(t)


def personalize_obu(
    t: Transport, *, system: ObuSystemFile, vehicle: ObuVehicleFile, mac_for: MacFor
) -> ObuReading:
    """Write the system file (not activated) and the vehicle file; read back."""
    if system.tamper_flag == TamperFlag.ACTIVE:
        raise OperationError("personalisation writes the OBU not activated; use activate_obu")
    raw_system, raw_vehicle = system.encode(), vehicle.encode()
    chip = read_obu(t)
    if chip.obu_no != system.contract_serial:
        raise OperationError(f"this OBU is {chip.obu_no}; the system file is for {system.obu_no}")
    _select(t, FID_MF)
    secure_update(t, sfi_or_path=SFI_OBU_EF01, offset=0, data=raw_system, mac_for=mac_for)
    _select(t, FID_OBU_DF)
    secure_update(t, sfi_or_path=SFI_OBU_EF01, offset=0, data=raw_vehicle, mac_for=mac_for)
    return read_obu(t)


def activate_obu(t: Transport, *, mac_for: MacFor) -> ObuReading:
    """Write the tamper/activation flag 01 at offset 26 (``04D6811A05`` + flag + MAC)."""
    chip = read_obu(t)
    if chip.system is None:
        raise OperationError("the OBU is not personalised")
    _select(t, FID_MF)
    secure_update(
        t,
        sfi_or_path=SFI_OBU_EF01,
        offset=ObuSystemFile.TAMPER_OFFSET,
        data=bytes((TamperFlag.ACTIVE,)),
        mac_for=mac_for,
    )
    return read_obu(t)


def format_blank(t: Transport, *, device: Literal["card", "obu"], mac_for: MacFor) -> None:
    """Recycling: rewrite the files of a returned unit as blank, keeping its number.

    A card must hold no money (the center moves or refunds it first); its 0019
    record, counters and log stay, as only a purchase can write them."""
    if device == "card":
        reading = read_card(t)
        if reading.balance:
            raise OperationError(
                f"card {reading.card_no} still holds {reading.balance} fen; move or refund it first"
            )
        _select(t, FID_MF)
        secure_update(
            t, sfi_or_path=SFI_0016, offset=0, data=bytes(Card0016.LENGTH), mac_for=mac_for
        )
        _select(t, FID_ADF)
        blank = blank_0015(reading.card_no[:4], reading.card_no[4:])
        secure_update(t, sfi_or_path=SFI_0015, offset=0, data=blank, mac_for=mac_for)
        return
    chip = read_obu(t)
    _select(t, FID_MF)
    secure_update(
        t,
        sfi_or_path=SFI_OBU_EF01,
        offset=0,
        data=blank_obu_system(chip.obu_no),
        mac_for=mac_for,
    )
    _select(t, FID_OBU_DF)
    secure_update(
        t,
        sfi_or_path=SFI_OBU_EF01,
        offset=0,
        data=bytes(ObuVehicleFile.LENGTH),
        mac_for=mac_for,
    )
    write_obu_fee(t, ObuFeeFile())


# --- load (圈存) ----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadInit:
    """The card's answer to INITIALIZE FOR LOAD: what the center needs for MAC2."""

    balance: int
    online_atc: int
    key_version: int
    alg_id: int
    random: bytes
    mac1: bytes
    amount: int
    terminal: bytes

    @property
    def alg(self) -> Alg:
        return Alg.from_card_alg_id(self.alg_id)


@dataclass(frozen=True)
class LoadResult:
    tac: bytes
    balance_after: int


def init_load(
    t: Transport,
    *,
    amount: int,
    terminal6: bytes,
    key_index: int = 0x01,
    pin: str = "123456",
) -> LoadInit:
    """SELECT 1001, VERIFY PIN, INITIALIZE FOR LOAD (``8050 00 02``).

    Nothing is credited yet: the center verifies MAC1, records the money, computes
    MAC2 and calls ``finish_load`` — on the same transport, with no command between."""
    if not 0 < amount <= 0xFFFFFFFF:
        raise OperationError("a load amount is 1..4294967295 fen")
    if len(terminal6) != 6:
        raise OperationError("a terminal number is 6 bytes")
    _select(t, FID_ADF)
    exchange(t, Command(0x00, 0x20, 0x00, 0x00, pin.encode("ascii")), what="VERIFY PIN")
    data = exchange(
        t,
        Command(
            0x80,
            0x50,
            0x00,
            0x02,
            bytes((key_index,)) + amount.to_bytes(4, "big") + terminal6,
            le=0x10,
        ),
        what="INITIALIZE FOR LOAD",
    )
    return LoadInit(
        balance=int.from_bytes(data[0:4], "big"),
        online_atc=int.from_bytes(data[4:6], "big"),
        key_version=data[6],
        alg_id=data[7],
        random=data[8:12],
        mac1=data[12:16],
        amount=amount,
        terminal=terminal6,
    )


def finish_load(t: Transport, *, mac2: bytes, when: datetime.datetime) -> LoadResult:
    """CREDIT FOR LOAD (``8052``) with the center's MAC2; the TAC and the new balance."""
    if len(mac2) != 4:
        raise OperationError("MAC2 is 4 bytes")
    tac = exchange(
        t, Command(0x80, 0x52, 0x00, 0x00, _stamp(when) + mac2, le=4), what="CREDIT FOR LOAD"
    )
    return LoadResult(tac=tac, balance_after=_get_balance(t))


# --- purchase ------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseResult:
    """A completed purchase: everything the center needs to verify the TAC."""

    card_no: str
    alg: Alg
    key_version: int
    trans_type: int
    amount: int
    when: datetime.datetime
    balance_before: int
    offline_atc: int
    terminal_no: bytes
    terminal_seq: bytes
    mac1: bytes
    mac2: bytes
    tac: bytes
    balance_after: int

    def as_json(self) -> dict[str, object]:
        return {
            "card_no": self.card_no,
            "alg": self.alg.value,
            "key_version": self.key_version,
            "trans_type": f"{self.trans_type:02X}",
            "amount": self.amount,
            "when": self.when.isoformat(),
            "balance_before": self.balance_before,
            "offline_atc": self.offline_atc,
            "terminal_no": hexu(self.terminal_no),
            "terminal_seq": hexu(self.terminal_seq),
            "mac1": hexu(self.mac1),
            "mac2": hexu(self.mac2),
            "tac": hexu(self.tac),
            "balance_after": self.balance_after,
        }


@dataclass(frozen=True)
class PurchaseIntent:
    """A purchase about to be sent to the card (after PSAM MAC1, before 8054):
    what a terminal stores first, so that a card pulled out while the DEBIT is
    under way can be settled from the card's log and 805A on the next read."""

    card_no: str
    trans_type: int
    amount: int
    when: datetime.datetime
    balance_before: int
    offline_atc: int
    terminal_no: bytes
    terminal_seq: bytes


def transaction_prove(t: Transport, *, atc: int, trans_type: int) -> tuple[bytes, bytes] | None:
    """GET TRANSACTION PROVE (805A): the MAC2 and TAC of the purchase numbered
    ``atc``, or None when the card no longer holds them (9406)."""
    _select(t, FID_ADF)
    try:
        answer = exchange(
            t,
            Command(0x80, 0x5A, 0x00, trans_type, atc.to_bytes(2, "big"), le=8),
            what="GET TRANSACTION PROVE",
        )
    except CardError as error:
        if error.sw == 0x9406:
            return None
        raise
    return answer[0:4], answer[4:8]


def purchase_key_index(f0015: Card0015) -> int:
    """The key index a terminal sends in 8050: 41 when the card version's high nibble
    is 5 (SM4 cards in etcnet's profile), 01 otherwise (§1.5)."""
    return 0x41 if f0015.version >> 4 == 5 else 0x01


def purchase(
    card_t: Transport,
    psam_t: Transport,
    *,
    amount: int,
    when: datetime.datetime,
    trans_type: int = COMPOSITE_TRANS_TYPE,
    record0019: Card0019 | None = None,
    key_index: int | None = None,
    before_debit: Callable[[PurchaseIntent], None] | None = None,
) -> PurchaseResult:
    """The lane purchase of §1.5: 8050, (80DC), PSAM 8070, 8054, PSAM 8072.

    ``trans_type`` 09 is the composite (CAPP) purchase, 06 the ordinary one. If the
    card is pulled before 8054 reaches it, nothing was debited: the error propagates
    and the whole sequence may simply be run again. ``before_debit`` is called
    with the purchase just before 8054 is sent (a terminal stores it durably);
    from then on a lost answer is settled with the log and ``transaction_prove``."""
    if trans_type not in (COMPOSITE_TRANS_TYPE, PURCHASE_TRANS_TYPE):
        raise OperationError("trans_type is 09 (composite) or 06 (ordinary purchase)")
    if record0019 is not None and trans_type != COMPOSITE_TRANS_TYPE:
        raise OperationError("only a composite purchase (09) updates the 0019 record")
    if not 0 <= amount <= 0xFFFFFFFF:
        raise OperationError("an amount is 0..4294967295 fen")
    terminal = _read_binary(psam_t, SFI_0016, 6)
    _select(card_t, FID_ADF)
    raw_0015 = _read_0015(card_t)
    if is_blank_0015(raw_0015):
        raise OperationError(f"card {card_no_of(raw_0015)} is not personalised")
    f0015 = Card0015.decode(raw_0015)
    index = purchase_key_index(f0015) if key_index is None else key_index
    p1 = 0x03 if trans_type == COMPOSITE_TRANS_TYPE else 0x01
    init = exchange(
        card_t,
        Command(
            0x80, 0x50, p1, 0x02, bytes((index,)) + amount.to_bytes(4, "big") + terminal, le=0x0F
        ),
        what="INITIALIZE FOR PURCHASE",
    )
    balance, atc = int.from_bytes(init[0:4], "big"), init[4:6]
    key_version, alg_id, random = init[9], init[10], init[11:15]
    if record0019 is not None:
        exchange(
            card_t,
            Command(0x80, 0xDC, 0xAA, SFI_0019 << 3, record0019.encode()),
            what="UPDATE CAPP DATA CACHE",
        )
    stamp = _stamp(when)
    psam_answer = exchange(
        psam_t,
        Command(
            0x80,
            0x70,
            0x00,
            0x00,
            random
            + atc
            + amount.to_bytes(4, "big")
            + bytes((trans_type,))
            + stamp
            + bytes((key_version, alg_id))
            + f0015.serial
            + f0015.issuer_factor,
            le=8,
        ),
        what="PSAM MAC1",
    )
    seq, mac1 = psam_answer[0:4], psam_answer[4:8]
    if before_debit is not None:
        before_debit(
            PurchaseIntent(
                card_no=f0015.card_no,
                trans_type=trans_type,
                amount=amount,
                when=when,
                balance_before=balance,
                offline_atc=int.from_bytes(atc, "big"),
                terminal_no=terminal,
                terminal_seq=seq,
            )
        )
    debit = exchange(
        card_t, Command(0x80, 0x54, 0x01, 0x00, seq + stamp + mac1, le=8), what="DEBIT"
    )
    tac, mac2 = debit[0:4], debit[4:8]
    exchange(psam_t, Command(0x80, 0x72, 0x00, 0x00, mac2), what="PSAM MAC2")
    return PurchaseResult(
        card_no=f0015.card_no,
        alg=Alg.from_card_alg_id(alg_id),
        key_version=key_version,
        trans_type=trans_type,
        amount=amount,
        when=when,
        balance_before=balance,
        offline_atc=int.from_bytes(atc, "big"),
        terminal_no=terminal,
        terminal_seq=seq,
        mac1=mac1,
        mac2=mac2,
        tac=tac,
        balance_after=balance - amount,
    )
