"""A closed clearing day of debit cards (记账卡) at 工商银行, in the real store.

Owners A, B, C on G1 (30.00), G2 (25.00), G3 (20.25) for class 1. Account A0001
(bank account 6222000000000001) drove G1-G3 (71.49) and G2 (23.75) on our roads
and paid 10.00 on another province's (flow 3): 105.24 over 3 trips. Account
A0002 (6222000000000002) drove G1-G3: 71.49. A cash exit over G1 paid 30.00.

Positions of the day: 工商银行 owes 176.73, the station's cash 30.00; owner A is
owed 87.00 (28.50 + 28.50 + 30.00), B 71.25, C 38.48, the national center
10.00. The intake's postings are made as the intake makes them (each debit
trip: receivable of the account / tolls payable of the terminal; flow 3:
receivable / national payable), so the receivables are what the accounts owe.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from etcnet.cards import ledger
from etcnet.cards.models import Account, Batch, CardUnit, EntryKind
from etcnet.clearing import run
from etcnet.clearing.models import ExchangeFile, IncomingTransaction
from etcnet.clearing.tests.store import VERSION, exit_, local, route, tariff
from etcnet.exchange.tests.conftest import ICBC_NAME
from etcnet.issuance.models import Customer, Outlet

DAY = dt.date(2026, 12, 2)
CARD_1, CARD_2 = "61010000000000000101", "61010000000000000102"
BANK_NO_1, BANK_NO_2 = "6222000000000001", "6222000000000002"


def debit_card(n: int, card_no: str, bank_account_no: str) -> CardUnit:
    outlet, _ = Outlet.objects.get_or_create(code="610101009", defaults={"name": "网点"})
    user, _ = User.objects.get_or_create(username="stock")
    batch, _ = Batch.objects.get_or_create(
        kind="card", reference="DEBIT-1",
        defaults={"location": outlet, "quantity": 2, "received_at": timezone.now(),
                  "received_by": user},
    )  # fmt: skip
    customer = Customer.objects.create(
        customer_type=1, name=f"持卡人{n}", id_type=101, id_number=f"61010119800101{n:04d}",
        phone="13800000000", address="西安",
    )  # fmt: skip
    account = Account.objects.create(
        customer=customer, number=f"A{n:04d}", bank_name=ICBC_NAME,
        bank_account_no=bank_account_no, agreement_signed_at=timezone.now(),
    )  # fmt: skip
    return CardUnit.objects.create(
        card_no=card_no, batch=batch, location=outlet, state="active", card_type=23,
        account=account, is_master=True, expiry_date=dt.date(2031, 12, 31),
        issued_at=timezone.now(),
    )  # fmt: skip


def _intake(account: str, amount: int, credit: str) -> None:
    with transaction.atomic():
        ledger.post(
            EntryKind.PURCHASE,
            [
                ledger.Line(ledger.account(ledger.receivable_code(account)), amount),
                ledger.Line(ledger.account(credit), -amount),
            ],
        )


def debit_day(lane_terminal: Any) -> dict[str, Any]:
    tariff(
        VERSION,
        {"G1": ("A", 3000), "G2": ("B", 2500), "G3": ("C", 2025)},
        effective_at=local(DAY, 0) - dt.timedelta(days=30),
    )
    debit_card(1, CARD_1, BANK_NO_1)
    debit_card(2, CARD_2, BANK_NO_2)
    t = lane_terminal
    debit = {"payment_type": 23, "card_network": "6101"}
    exit_(t, 1, local(DAY, 9), card_no=CARD_1, **debit)
    exit_(t, 2, local(DAY, 10), card_no=CARD_1, fee_fen=2500, discount_fen=125,
          payable_fen=2375, amount_fen=2375, intervals=route("G2"), **debit)  # fmt: skip
    exit_(t, 3, local(DAY, 11), card_no=CARD_2, **debit)
    exit_(t, 4, local(DAY, 12), payment_type=1, card_no="", card_network="",
          card_trans_no=None, fee_fen=3000, discount_fen=0, payable_fen=3000, amount_fen=0,
          intervals=route("G1"))  # fmt: skip
    payable = ledger.tolls_payable_code("HH-0001")
    _intake("A0001", 7149 + 2375, payable)
    _intake("A0002", 7149, payable)
    # Flow 3: A0001's card on another province's road, taken before the day's run.
    package = ExchangeFile.objects.create(
        direction="in", kind="transactions", clear_target_date=DAY, sender_id="0000000000000001",
        receiver_id="0000000000006101", message_id=1, body_message_id=1, name="in/3201-1.xml",
        sha256="0" * 64, count=1, amount_fen=1000, created_at=timezone.now(),
    )  # fmt: skip
    IncomingTransaction.objects.create(
        package=package, trans_id=1, card_no=CARD_1, card_type=23, card_trans_no=9,
        time=local(DAY, 8), fee_fen=1000, service_provider_id="3201", exit_station="G0002",
        plate="陕A12345_0", payer=ledger.receivable_code("A0001"), bank=ICBC_NAME,
    )  # fmt: skip
    _intake("A0001", 1000, ledger.NATIONAL_PAYABLE)
    job = run.run_day(DAY)
    assert job.status == "succeeded", job.error
    return {"terminal": t}
