"""Two transports on one emulated card file: no update is lost, and a session
begun on one is gone once the other changed the card (as on a real card)."""

import datetime
from pathlib import Path

import pytest

from etcnet.smartcard import crypto, ops
from etcnet.smartcard.crypto import Alg
from etcnet.smartcard.ops import CardError
from etcnet.smartcard.tests import card_keys, issue_card, make_0015
from etcnet.smartcard.transport import open_emulated

TERMINAL = bytes.fromhex("430101000001")
WHEN = datetime.datetime(2026, 11, 21, 10, 0, 0)


def _mac2(init: ops.LoadInit) -> bytes:
    keys = card_keys(make_0015())
    session = crypto.load_session_key(Alg.TDES, keys.dlk, init.random, init.online_atc)
    return crypto.load_mac2(Alg.TDES, session, init.amount, 0x02, TERMINAL, WHEN)


def test_a_load_on_one_handle_survives_a_session_begun_on_the_other(tmp_path: Path) -> None:
    issue_card(tmp_path)
    counter = open_emulated(tmp_path / "card.json")
    terminal = open_emulated(tmp_path / "card.json")

    # the counter begins a load of 100.00 ...
    first = ops.init_load(counter, amount=10_000, terminal6=TERMINAL)
    # ... while the other handle runs a whole load of 200.00
    second = ops.init_load(terminal, amount=20_000, terminal6=TERMINAL)
    ops.finish_load(terminal, mac2=_mac2(second), when=WHEN)

    # the counter's session is gone: its credit is refused, nothing is lost
    with pytest.raises(CardError):
        ops.finish_load(counter, mac2=_mac2(first), when=WHEN)
    assert ops.read_card(counter).balance == 20_000
    assert ops.read_card(open_emulated(tmp_path / "card.json")).balance == 20_000
