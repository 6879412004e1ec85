"""The devices' state files: carried across instances and processes, written
atomically and privately, refused when bad, and loaded by kind."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcnet.smartcard import ops
from etcnet.smartcard.emulator import SoftCard, SoftObu, SoftPsam, StateFileError
from etcnet.smartcard.tests import (
    TERMINAL,
    WHEN,
    blank_obu,
    center_load_mac2,
    issue_card,
    make_psam,
)
from etcnet.smartcard.transport import EmulatorTransport, open_emulated


def test_state_survives_reload_in_another_softcard(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=500)
    t = EmulatorTransport(card)
    init = ops.init_load(t, amount=1000, terminal6=TERMINAL)
    ops.finish_load(t, mac2=center_load_mac2(card, init, when=WHEN), when=WHEN)

    other = SoftCard.load(card.path)

    assert other.state() == card.state()
    assert (other.balance, other.online_atc, other.keys) == (1500, 1, card.keys)
    assert json.loads(card.path.read_text())["purse"] == {
        "balance": 1500,
        "offline_atc": 0,
        "online_atc": 1,
        "overdraft_limit": 0,
    }


def test_state_can_be_carried_to_another_process(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=2500)
    script = (
        "import sys\n"
        "from etcnet.smartcard import ops\n"
        "from etcnet.smartcard.transport import open_emulated\n"
        "t = open_emulated(sys.argv[1])\n"
        "print(ops.read_card(t).balance)\n"
        "init = ops.init_load(t, amount=1, terminal6=bytes(6))\n"
        "print(init.online_atc)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script, str(card.path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert output.split() == ["2500", "0"]


def test_state_file_is_written_atomically_and_private(tmp_path: Path) -> None:
    card = issue_card(tmp_path, balance=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
    assert card.path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such state file"),
        ("{not json", "not JSON"),
        ('{"format": 1, "device": "card"}', "malformed card state"),
        ('{"format": 9}', "not an etcnet device state file"),
        ('{"format": 1, "device": "obu"}', "holds a 'obu', not a 'card'"),
    ],
)
def test_a_bad_state_file_is_refused(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "card.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(StateFileError, match=message):
        SoftCard.load(path)


def test_create_refuses_to_overwrite_a_card(tmp_path: Path) -> None:
    issue_card(tmp_path, balance=100)
    with pytest.raises(FileExistsError):
        issue_card(tmp_path)
    assert SoftCard.load(tmp_path / "card.json").balance == 100


def test_open_emulated_picks_the_device_kind(tmp_path: Path) -> None:
    devices: Iterator[object] = (
        open_emulated(path).device
        for path in (issue_card(tmp_path).path, blank_obu(tmp_path).path, make_psam(tmp_path).path)
    )
    assert [type(device) for device in devices] == [SoftCard, SoftObu, SoftPsam]
