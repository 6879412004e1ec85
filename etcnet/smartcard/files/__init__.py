"""User-card and OBU files: frozen dataclasses that encode to and decode from bytes.

Layouts are those of ETC.md Part 2 §1.2–§1.5 (card) and §2.1–§2.2 (OBU); where the
reference is silent the choice is etcnet's and listed in ``docs/smartcard.md``. Every
field is validated on encode (and so on decode, which builds through the same
checks); a refusal is a ``FileFormatError`` naming the field.

The package: ``_base`` (field checks, ``describe``), ``card`` (0015, 0016, 0019, the
purse log), ``obu`` (system, vehicle and fee files).
"""

from __future__ import annotations

from etcnet.smartcard.codec import FileFormatError
from etcnet.smartcard.files._base import CAPP_RECORD_ID, CAPP_RECORD_LENGTH, describe
from etcnet.smartcard.files.card import (
    Card0015,
    Card0016,
    Card0019,
    Card0019Legacy,
    PurseLogRecord,
    blank_0015,
    card_no_of,
    is_blank_0015,
)
from etcnet.smartcard.files.obu import (
    ObuFeeFile,
    ObuSystemFile,
    ObuVehicleFile,
    TamperFlag,
    blank_obu_system,
    is_blank_obu_system,
)

__all__ = [
    "CAPP_RECORD_ID",
    "CAPP_RECORD_LENGTH",
    "Card0015",
    "Card0016",
    "Card0019",
    "Card0019Legacy",
    "FileFormatError",
    "ObuFeeFile",
    "ObuSystemFile",
    "ObuVehicleFile",
    "PurseLogRecord",
    "TamperFlag",
    "blank_0015",
    "blank_obu_system",
    "card_no_of",
    "describe",
    "is_blank_0015",
    "is_blank_obu_system",
]
