"""Settlement through the settlement bank (邮储银行, a real bank-sim process):
transfer instructions from a closed day's net positions, the bank's
confirmations reconciled with the ledger, the unconfirmed listed and chased —
and the banks' shared keys into the key vault, never in clear on disk."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from etcnet.cards import ledger, vault
from etcnet.exchange.banks import debits, settlement, transport
from etcnet.exchange.models import BankFile, SettlementInstruction
from etcnet.exchange.tests.banks import BANK_NO_1, BANK_NO_2, DAY, debit_day
from etcnet.exchange.tests.conftest import ICBC, POSTAL

pytestmark = pytest.mark.django_db

CENTER = "9100000000000001"
REF = DAY.strftime("%Y%m%d")


@pytest.fixture
def day(lane_terminal, banks):
    debit_day(lane_terminal)
    banks["icbc"].accounts(**{BANK_NO_1: 200_00, BANK_NO_2: 100_00})
    debits.make_debit_files(DAY)
    transport.send()
    assert transport.receive(bank=ICBC).applied == 1  # 工商银行 collected 176.73


def instructions() -> dict[str, tuple[str, str, str, int, str]]:
    return {
        i.reference: (i.direction, i.payer_account, i.payee_account, i.amount_fen, i.state)
        for i in SettlementInstruction.objects.all()
    }


def test_instructions_are_confirmed_and_posted_one_unconfirmed_is_listed_and_chased(day, banks):
    postal = banks["postal"]
    postal.behave(hold_confirm=[f"{REF}-owner-C"])  # the bank leaves one unconfirmed

    made = settlement.make_instructions(DAY)
    assert settlement.make_instructions(DAY) == made  # made once
    assert (made.bank, made.kind, made.lines, made.amount_fen) == (POSTAL, "transfer", 6, 41346)
    owners, bank, cash = "9200000000000001", "9300000000000001", "9500000000000001"
    assert instructions() == {
        f"{REF}-bank-中国工商银行陕西省分行": ("in", bank, CENTER, 17673, "sent"),
        f"{REF}-national_center": ("out", CENTER, "9700000000000001", 1000, "sent"),
        f"{REF}-owner-A": ("out", CENTER, owners, 8700, "sent"),
        f"{REF}-owner-B": ("out", CENTER, owners, 7125, "sent"),
        f"{REF}-owner-C": ("out", CENTER, owners, 3848, "sent"),
        f"{REF}-station_cash-S1201005": ("in", cash, CENTER, 3000, "sent"),
    }
    assert transport.send().acked == 1
    got = transport.receive(bank=POSTAL)
    assert (got.applied, got.refused) == (1, 0)

    states = {ref: state for ref, (*_, state) in instructions().items()}
    assert states.pop(f"{REF}-owner-C") == "sent"
    assert set(states.values()) == {"confirmed"}
    # Each confirmed transfer moved its position's money through the settlement account.
    assert ledger.balance("owner_payable:A") == 0
    assert ledger.balance("owner_payable:B") == 0
    assert ledger.balance("owner_payable:C") == -3848  # still owed: not confirmed
    assert ledger.balance(f"bank_collections:{ICBC}") == 0
    assert ledger.balance("lane_cash:S1201005") == 0
    assert ledger.balance("national_payable") == 0
    assert ledger.balance("settlement_bank") == 17673 + 3000 - 1000 - 8700 - 7125
    assert ledger.check() == []

    # Not overdue yet; a day later it is, listed with its age, and chased.
    assert list(settlement.overdue()) == []
    assert settlement.chase() is None
    later = timezone.now() + dt.timedelta(hours=25)
    with time_machine.travel(later):
        out = StringIO()
        call_command("exchange", "bank", "unconfirmed", "--overdue", stdout=out)
        assert f"{REF}-owner-C out 3848 fen  {CENTER} → {owners}" in out.getvalue()
        assert "age 25h00m, chased 0" in out.getvalue()
        postal.behave(hold_confirm=[])
        chased = settlement.chase()
        assert chased is not None
        assert (chased.kind, chased.lines, chased.amount_fen) == ("chase", 1, 3848)
        assert settlement.chase() is None  # chased: not overdue again until the deadline
        assert transport.send().acked == 1
        assert transport.receive(bank=POSTAL).applied == 1
    c = SettlementInstruction.objects.get(reference=f"{REF}-owner-C")
    assert (c.state, c.chased, c.confirmed_fen) == ("confirmed", 1, 3848)
    assert ledger.balance("owner_payable:C") == 0
    assert ledger.balance("settlement_bank") == 0
    assert ledger.check() == []
    # The bank executed every instruction once.
    executed = postal.state()["executed"]
    assert sorted((e["reference"], e["confirmed_fen"]) for e in executed) == sorted(
        (ref, amount) for ref, (_, _, _, amount, _) in instructions().items()
    )


def test_a_confirmation_of_another_amount_is_a_finding_not_a_posting(day, banks):
    banks["postal"].behave(confirm_amount={f"{REF}-owner-B": 7000})
    settlement.make_instructions(DAY)
    transport.send()
    transport.receive(bank=POSTAL)
    b = SettlementInstruction.objects.get(reference=f"{REF}-owner-B")
    assert (b.state, b.confirmed_fen, b.entry_id) == ("finding", 7000, None)
    assert b.finding == "confirmed 7000 fen, instructed 7125 fen"
    assert ledger.balance("owner_payable:B") == -7125  # not posted
    assert ledger.balance("owner_payable:A") == 0
    assert ledger.check() == []


def test_instructions_need_every_counterpartys_account(day, banks, settings, tmp_path):
    import json

    config = json.loads(Path(settings.ETCNET_BANKS_FILE).read_text())
    del config["accounts"]["owner:*"]
    Path(settings.ETCNET_BANKS_FILE).write_text(json.dumps(config))
    with pytest.raises(debits.BankError, match="accounts: no settlement account for owner:A"):
        settlement.make_instructions(DAY)
    assert not SettlementInstruction.objects.exists()
    assert not BankFile.objects.filter(kind="transfer").exists()


# -- the banks' shared keys ------------------------------------------------------------


def on_disk(*folders: Path) -> bytes:
    """Every byte the center keeps in files (and the database file on SQLite)."""
    data = b""
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data += path.read_bytes()
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite" and name and Path(str(name)).is_file():
        data += Path(str(name)).read_bytes()
    return data


def test_shared_keys_are_unwrapped_into_the_vault_and_never_in_clear_on_disk(banks, settings):
    sent = banks["icbc"].keys(
        issuer="6102",
        cards=[
            ["61020000000000000001", "23", "6222000000000009"],
            ["610200000000001", "23", "6222000000000010"],  # 15 digits
            ["11010000000000000001", "22", "6222000000000011"],  # another network
        ],
    )
    got = transport.receive(bank=ICBC)
    assert (got.applied, got.refused) == (1, 0)
    held = vault.shared_keys()
    assert [(k["issuer"], k["name"], k["bank"]) for k in held] == [
        ("6102", "purchase", ICBC),
        ("6102", "tac", ICBC),
    ]
    for name, clear in sent["keys"].items():
        key = vault.shared_key(issuer="6102", version=1, alg="sm4", name=name)
        assert key.hex().upper() == clear
    keys_file = BankFile.objects.get(direction="in")
    assert [(r["line"], r["field"]) for r in keys_file.report] == [(5, "card_no"), (6, "card_no")]
    assert keys_file.report[1]["reason"] == "network 1101 is not the issuer's (6102)"

    disk = on_disk(Path(settings.DATA_DIR), vault.shared_key_dir())
    for clear in sent["keys"].values():
        for form in (clear.encode(), clear.lower().encode(), bytes.fromhex(clear)):
            assert form not in disk


def test_a_key_of_the_wrong_length_refuses_the_keys_file_whole(banks):
    banks["icbc"].keys(issuer="6102", bad="length")
    got = transport.receive(bank=ICBC)
    assert (got.applied, got.refused) == (0, 1)
    refused = BankFile.objects.get(direction="in")
    assert (refused.state, refused.report) == (
        "refused",
        [{"line": 3, "field": "wrapped", "reason": "a wrapped key of 24 bytes, expected 16"}],
    )
    assert vault.shared_keys() == []  # not even the good first key
