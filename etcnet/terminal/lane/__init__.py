"""The toll terminal's lane work: sign-in, shifts, reading a card and OBU with
the checks of seed 001/002, the fee, and the transactions themselves (exit
purchase, entry write), each committed to the terminal's store before the
screen says success.

A purchase is stored as an *intent* (card, ATC, amount, PSAM sequence) just
before the DEBIT (8054) is sent. If the card leaves the reader before its
answer arrives, or the process dies, the intent stays open: the next read of
that card settles it from the card itself — its purse log says whether the
debit happened, GET TRANSACTION PROVE (805A) gives the TAC — and either
completes the transaction record or abandons the intent. So a card is never
debited twice and never debited without a record.

Pure: no Django. The web layer (``etcnet.terminal.web``) and the tests drive it.

The package, one module a seam of ``LaneTerminal``: ``_base`` (codes, errors, the
records the screens exchange, the terminal's store and journal), ``shifts`` (sign-in,
lanes, shifts), ``reading`` (读卡, 算费), ``purchase`` (exit and entry transactions,
interrupted purchases), ``sync`` (uploads, reference data, status list).
"""

from __future__ import annotations

from etcnet.terminal.lane._base import (
    CARD_PAYMENTS,
    CLOCK_MAX_MS,
    FALLBACK_PAYMENTS,
    Center,
    Committed,
    Entry,
    ExitRequest,
    Grey,
    LaneClock,
    LaneError,
    ListSyncError,
    Person,
    Problem,
    Quote,
    Reading,
    Shift,
    ShiftTotals,
)
from etcnet.terminal.lane.reading import Readings
from etcnet.terminal.lane.sync import Sync

__all__ = [
    "CARD_PAYMENTS",
    "CLOCK_MAX_MS",
    "FALLBACK_PAYMENTS",
    "Center",
    "Committed",
    "Entry",
    "ExitRequest",
    "Grey",
    "LaneClock",
    "LaneError",
    "LaneTerminal",
    "ListSyncError",
    "Person",
    "Problem",
    "Quote",
    "Reading",
    "Shift",
    "ShiftTotals",
]


class LaneTerminal(Readings, Sync):
    """One handheld or lane PC. ``store`` is its SQLite file; ``psam`` opens its
    PSAM; ``verify_password(password, verifier)`` checks a cached verifier."""
