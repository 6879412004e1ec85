"""The banks' page (/exchange/banks/): a closed day's debit file collected by
工商银行 but for account A0002 (refused, 51: in recovery, its card on list type
4), the day's instructions confirmed by 邮储银行 but one held back; past the
deadline it is marked overdue and an operator chases it (audited); auditors
read only; a filter that does not hold names its field. The signer and the
bank-sims are real processes."""

from __future__ import annotations

import pytest
from django.test import Client

from conftest import make_user
from etcnet.core.models import AuditEvent
from etcnet.exchange.banks import debits, settlement, transport
from etcnet.exchange.models import BankFile, SettlementInstruction
from etcnet.exchange.tests.banks import BANK_NO_1, BANK_NO_2, CARD_2, DAY, debit_day
from etcnet.exchange.tests.conftest import ICBC, POSTAL

pytestmark = pytest.mark.django_db

HELD = f"{DAY:%Y%m%d}-owner-C"


@pytest.fixture
def day(lane_terminal, banks):
    debit_day(lane_terminal)
    banks["icbc"].accounts(**{BANK_NO_1: 200_00, BANK_NO_2: 0})
    debits.make_debit_files(DAY)
    banks["postal"].behave(hold_confirm=[HELD])
    settlement.make_instructions(DAY)
    assert transport.send().acked == 2
    assert transport.receive().applied == 2  # the RESULT and the CONFIRM file


def login(name: str, role: str) -> Client:
    client = Client()
    client.force_login(make_user(name, role))
    return client


def rows(text: str, testid: str) -> int:
    return text.count(f'data-testid="{testid}"')


def test_an_operator_sees_the_files_the_recovery_and_chases_the_overdue(day, settings):
    operator = login("olga", "center_operator")
    page = operator.get("/exchange/banks/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "与银行数据交换" in text
    # Each bank with its files: 工商银行 the debit file out, its result in.
    assert f'data-bank="{ICBC}"' in text
    assert f'data-bank="{POSTAL}"' in text
    assert rows(text, "bank-file") == 4
    assert 'data-kind="debit" data-state="acked"' in text
    assert 'data-kind="result" data-state="applied"' in text
    assert 'data-kind="confirm" data-state="applied"' in text
    # A0002 refused: in recovery, 71.49 yuan, its card on list type 4.
    assert rows(text, "recovery") == 1
    assert 'data-account="A0002"' in text
    assert "71.49" in text
    assert f'data-listed="1">{CARD_2}</span>' in text
    assert "1 个账户追缴中，欠款 71.49 元" in text
    # Five instructions confirmed, one held back, not overdue yet: nothing to chase.
    assert rows(text, "instruction") == 6
    assert text.count('data-state="confirmed"') == 5
    assert 'data-state="sent" data-overdue="0"' in text
    assert 'data-testid="chase"' not in text

    settings.ETCNET_BANK_CONFIRM_HOURS = 0  # the deadline passed
    text = operator.get("/exchange/banks/?instruction=overdue").content.decode()
    assert rows(text, "instruction") == 1
    assert 'data-state="sent" data-overdue="1" class="error"' in text
    assert HELD in text
    assert "38.48" in text
    assert 'data-testid="chase"' in text

    answer = operator.post("/exchange/banks/chase/", follow=True)
    assert "1 条逾期指令已在 CHASE_" in answer.content.decode()
    held = SettlementInstruction.objects.get(reference=HELD)
    assert (held.state, held.chased) == ("sent", 1)
    chase = BankFile.objects.get(kind="chase")
    assert (chase.bank, chase.state, chase.lines, chase.amount_fen) == (POSTAL, "pending", 1, 3848)
    event = AuditEvent.objects.get(action="exchange.instructions_chased")
    assert (event.actor.username, event.after) == ("olga", {"references": [HELD]})
    text = operator.get("/exchange/banks/").content.decode()
    assert 'data-kind="chase" data-state="pending"' in text

    # A chase can be repeated: it is overdue again (the deadline is 0 h) and is sent again.
    assert operator.post("/exchange/banks/chase/").status_code == 302
    assert SettlementInstruction.objects.get(reference=HELD).chased == 2
    assert AuditEvent.objects.filter(action="exchange.instructions_chased").count() == 2


def test_filters_narrow_the_files_and_a_bad_one_names_its_field(day):
    operator = login("olga", "center_operator")
    text = operator.get(f"/exchange/banks/?bank={ICBC}&kind=debit").content.decode()
    assert f'data-bank="{POSTAL}"' not in text
    assert rows(text, "bank-file") == 1
    assert 'data-kind="debit"' in text
    text = operator.get("/exchange/banks/?state=applied").content.decode()
    assert rows(text, "bank-file") == 2
    text = operator.get("/exchange/banks/?instruction=confirmed").content.decode()
    assert rows(text, "instruction") == 5
    for field, value in (("bank", "0000000000009999"), ("kind", "loan"), ("state", "lost"),
                         ("instruction", "paid")):  # fmt: skip
        page = operator.get(f"/exchange/banks/?{field}={value}")
        assert page.status_code == 400
        assert f'data-field="{field}"' in page.content.decode()
    assert operator.get("/exchange/banks/").status_code == 200


def test_auditors_only_read_and_other_roles_see_nothing(day, settings):
    settings.ETCNET_BANK_CONFIRM_HOURS = 0
    auditor = login("anna", "auditor")
    page = auditor.get("/exchange/banks/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-overdue="1"' in text
    assert 'data-testid="chase"' not in text
    events = AuditEvent.objects.count()
    assert auditor.post("/exchange/banks/chase/").status_code == 403
    assert SettlementInstruction.objects.get(reference=HELD).chased == 0
    assert not BankFile.objects.filter(kind="chase").exists()
    assert AuditEvent.objects.count() == events
    clerk = login("carl", "issuance_clerk")
    assert clerk.get("/exchange/banks/").status_code == 403
    assert clerk.post("/exchange/banks/chase/").status_code == 403


def test_the_page_names_a_missing_banks_file_and_nothing_to_chase(db, settings, tmp_path):
    settings.ETCNET_BANKS_FILE = tmp_path / "none.json"
    operator = login("olga", "center_operator")
    page = operator.get("/exchange/banks/")
    assert page.status_code == 200
    assert 'data-testid="config-error"' in page.content.decode()
    answer = operator.post("/exchange/banks/chase/", follow=True)
    assert "ETCNET_BANKS_FILE" in answer.content.decode()
    assert not AuditEvent.objects.filter(action="exchange.instructions_chased").exists()
