"""Card services through the real database and emulated cards and OBUs, one
module a section of ``etcnet.cards.services``: every refusal leaves nothing
changed and the ledger balanced. Here: what they share — the state a refusal
must leave as it was, issued and active cards, and readers that fail on cue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from conftest import photo
from etcnet.cards import devices, services
from etcnet.cards.errors import LoadInterrupted
from etcnet.cards.models import Binding, CardUnit, JournalEntry, ObuUnit, TopUp
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS
from etcnet.core.models import AuditEvent
from etcnet.lists.models import ListEvent
from etcnet.smartcard.transport import TransportError

STORED_VALUE, DEBIT = 22, 23


def state() -> dict[str, Any]:
    """What a refused request must leave as it was, device files included."""
    root = Path(settings.ETCNET_CARD_DIR)
    return {
        "cards": list(
            CardUnit.objects.order_by("pk").values_list("pk", "state", "shadow_balance_fen")
        ),
        "obus": list(ObuUnit.objects.order_by("pk").values_list("pk", "state")),
        "bindings": Binding.objects.count(),
        "entries": JournalEntry.objects.count(),
        "top_ups": TopUp.objects.count(),
        "events": AuditEvent.objects.count(),
        "list": ListEvent.objects.count(),
        "files": {p.name: p.read_bytes() for p in sorted(root.glob("*.json"))},
    }


def issued(clerk: Any, application: Any, n: int = 0, card_type: int = STORED_VALUE) -> Binding:
    return services.issue(
        application.pk,
        card_no=CARD_NOS[n],
        contract_no=OBU_NOS[n],
        card_type=card_type,
        actor=clerk,
    )


def active(clerk: Any, application: Any, n: int = 0, card_type: int = STORED_VALUE) -> Binding:
    binding = issued(clerk, application, n, card_type)
    return services.activate(binding.pk, photo=photo("installed"), actor=clerk)


class PulledOut:
    """A reader whose card is pulled out when the center sends CREDIT FOR LOAD."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[:2] == b"\x80\x52":
            raise TransportError("card removed")
        return self.inner.transmit(apdu)


def pending_top_up(clerk, card_no, amount, key, monkeypatch):
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: PulledOut(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        services.top_up(
            card_no, amount_fen=amount, channel="cash", idempotency_key=key, actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    return TopUp.objects.get(idempotency_key=key)


class LostAnswer:
    """The card executes CREDIT FOR LOAD, but its answer never comes back."""

    def __init__(self, inner):
        self.inner = inner

    def transmit(self, apdu):
        response = self.inner.transmit(apdu)
        if apdu[:2] == b"\x80\x52":
            raise TransportError("answer lost")
        return response


class CorruptTac:
    """A reader that garbles the TAC in the card's answer to CREDIT FOR LOAD."""

    def __init__(self, inner):
        self.inner = inner

    def transmit(self, apdu):
        response = self.inner.transmit(apdu)
        if apdu[:2] == b"\x80\x52" and response[-2:] == b"\x90\x00":
            return bytes([response[0] ^ 0xFF]) + response[1:]
        return response
