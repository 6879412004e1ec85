"""The banks' front server and two simulated banks, each a real process on
localhost (HTTPS, SM2-signed files and receipts): the three-party agreement's
debit files and results, recovery and status list type 4, each bank's cards'
out-of-province usage — and what goes wrong (refusals, late and duplicated
files, a malformed line, a bad signature)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from etcnet.cards import ledger
from etcnet.cards.models import JournalEntry
from etcnet.cards.services import listed_types
from etcnet.core.models import AuditEvent
from etcnet.exchange import bankfiles
from etcnet.exchange.banks import debits, transport
from etcnet.exchange.models import BankFile, DebitLine, Recovery
from etcnet.exchange.tests.banks import (
    BANK_NO_1,
    BANK_NO_2,
    CARD_1,
    CARD_2,
    DAY,
    debit_day,
)
from etcnet.exchange.tests.conftest import ICBC, BankSim
from etcnet.lists.models import ListEvent, Medium

pytestmark = pytest.mark.django_db

OURS = "0000000000006101"


@pytest.fixture
def day(lane_terminal, banks):
    return debit_day(lane_terminal)


def lines() -> list[tuple[int, str, int, int, str]]:
    return [
        (d.number, d.account.number, d.amount_fen, d.trips, d.state)
        for d in DebitLine.objects.select_related("account").order_by("number")
    ]


def snapshot() -> tuple[object, ...]:
    """What a refused or repeated file must not change."""
    return (
        lines(),
        list(Recovery.objects.values_list("pk", "owed_fen", "state")),
        JournalEntry.objects.count(),
        ledger.balance("receivable:A0001"),
        ledger.balance("receivable:A0002"),
        ListEvent.objects.count(),
    )


def collect(icbc: BankSim) -> transport.Received:
    """The day's debit file made, sent and answered."""
    assert len(debits.make_debit_files(DAY)) == 1
    assert transport.send().acked == 1
    return transport.receive(bank=ICBC)


def test_a_days_debit_file_is_signed_sent_and_collected(day, banks):
    icbc = banks["icbc"]
    icbc.accounts(**{BANK_NO_1: 200_00, BANK_NO_2: 100_00})

    made = debits.make_debit_files(DAY)
    assert debits.make_debit_files(DAY) == made  # made once
    (debit,) = made  # 邮储银行 has no debit accounts: no file
    assert (debit.bank, debit.kind, debit.state, debit.lines, debit.amount_fen) == (
        ICBC, "debit", "pending", 2, 17673,
    )  # fmt: skip
    # 105.24 over two trips here and one elsewhere; 71.49.
    assert lines() == [(1, "A0001", 10524, 3, "pending"), (2, "A0002", 7149, 1, "pending")]
    from django.conf import settings

    path = settings.DATA_DIR / debit.path
    assert path.read_bytes().decode().splitlines() == [
        f"H|etcnet-bank/1|DEBIT|{debit.name}|{OURS}|{ICBC}|2026-12-02|2|17673",
        f"D|1|A0001|{BANK_NO_1}|10524|3",
        f"D|2|A0002|{BANK_NO_2}|7149|1",
    ]
    assert path.with_name(path.name + ".sig").exists()

    sent = transport.send()
    assert (sent.acked, sent.refused, sent.failed) == (1, 0, [])
    debit.refresh_from_db()
    assert (debit.state, debit.attempts) == ("acked", 1)
    got = transport.receive(bank=ICBC)
    assert (got.applied, got.duplicates, got.refused, got.quarantined) == (1, 0, 0, 0)

    assert [state for *_, state in lines()] == ["collected", "collected"]
    assert icbc.state()["accounts"] == {BANK_NO_1: 200_00 - 10524, BANK_NO_2: 100_00 - 7149}
    assert ledger.balance("receivable:A0001") == 0
    assert ledger.balance("receivable:A0002") == 0
    assert ledger.balance(f"bank_collections:{ICBC}") == 17673
    assert ledger.check() == []
    assert not Recovery.objects.exists()


def test_a_refusal_lists_the_account_until_the_bank_collects_it_later(day, banks):
    icbc = banks["icbc"]
    icbc.accounts(**{BANK_NO_1: 200_00, BANK_NO_2: 50_00})  # A0002 owes 71.49
    assert collect(icbc).applied == 1

    assert [state for *_, state in lines()] == ["collected", "refused"]
    refused = DebitLine.objects.get(number=2)
    assert (refused.reason_code, refused.reason) == ("51", "余额不足 insufficient funds")
    recovery = Recovery.objects.get()
    assert (recovery.account.number, recovery.owed_fen, recovery.state) == ("A0002", 7149, "open")
    assert refused.recovery == recovery
    assert 4 in listed_types(Medium.CARD, CARD_2)  # 账户透支
    assert 4 not in listed_types(Medium.CARD, CARD_1)
    assert ledger.balance("receivable:A0002") == 7149  # still owed
    assert AuditEvent.objects.filter(action="exchange.recovery_opened").count() == 1
    out = StringIO()
    call_command("exchange", "bank", "recoveries", "--open", stdout=out)
    assert f"{recovery.pk} account A0002 owes 7149 fen (of 7149) open" in out.getvalue()

    icbc.accounts(**{BANK_NO_2: 100_00})  # the holder tops up the bank account
    assert icbc.retry() == 1  # the bank collects the refused line again
    assert transport.receive(bank=ICBC).applied == 1
    recovery.refresh_from_db()
    assert (recovery.owed_fen, recovery.state, recovery.closed_by) == (0, "paid", "bank")
    assert DebitLine.objects.get(number=2).state == "collected"
    assert 4 not in listed_types(Medium.CARD, CARD_2)  # lifted
    assert ListEvent.objects.filter(medium_id=CARD_2, list_type=4).count() == 2
    assert ledger.balance("receivable:A0002") == 0
    assert ledger.balance(f"bank_collections:{ICBC}") == 17673
    assert ledger.check() == []


def test_a_repayment_closes_the_recovery_and_a_later_collection_of_it_is_refused(day, banks):
    icbc = banks["icbc"]
    icbc.accounts(**{BANK_NO_1: 200_00, BANK_NO_2: 0})
    collect(icbc)
    recovery = Recovery.objects.get()

    before = snapshot()
    with pytest.raises(CommandError, match="amount_fen: the account owes 7149 fen"):
        call_command("exchange", "bank", "repay", str(recovery.pk), "--amount-fen", "7000")
    assert snapshot() == before

    out = StringIO()
    call_command("exchange", "bank", "repay", str(recovery.pk), "--amount-fen", "7149",
                 "--outlet", "610101001", stdout=out)  # fmt: skip
    assert "paid" in out.getvalue()
    recovery.refresh_from_db()
    assert (recovery.owed_fen, recovery.state, recovery.closed_by) == (0, "paid", "repayment")
    assert DebitLine.objects.get(number=2).state == "repaid"
    assert 4 not in listed_types(Medium.CARD, CARD_2)
    assert ledger.balance("receivable:A0002") == 0
    assert ledger.balance("cash:610101001") == 7149
    assert ledger.check() == []

    # The bank collects the line all the same: refused whole, nothing changes.
    icbc.accounts(**{BANK_NO_2: 100_00})
    icbc.retry()
    before = snapshot()
    got = transport.receive(bank=ICBC)
    assert (got.applied, got.refused) == (0, 1)
    refused = BankFile.objects.get(direction="in", state="refused")
    assert refused.report == [
        {"line": 2, "field": "status", "reason": f"{refused_debit()} line 2 was repaid before"}
    ]
    assert snapshot() == before


def refused_debit() -> str:
    return BankFile.objects.get(kind="debit").name


def test_the_same_result_file_twice_changes_nothing(day, banks):
    icbc = banks["icbc"]
    icbc.accounts(**{BANK_NO_1: 200_00, BANK_NO_2: 0})
    icbc.behave(mode="twice")
    debits.make_debit_files(DAY)
    transport.send()
    first = transport.receive(bank=ICBC)
    assert (first.applied, first.duplicates) == (1, 1)  # delivered twice, taken once
    result = BankFile.objects.get(direction="in")
    assert (result.kind, result.state, result.deliveries) == ("result", "applied", 2)
    assert Recovery.objects.get().owed_fen == 7149
    assert ListEvent.objects.filter(list_type=4).count() == 1
    assert AuditEvent.objects.filter(action="exchange.bank_result_applied").count() == 1

    # The same bytes again, later (the bank resends its file): nothing changes.
    before = snapshot()
    from django.conf import settings

    icbc.behave(mode="accept")
    icbc.queue((settings.DATA_DIR / result.path).read_bytes())
    again = transport.receive(bank=ICBC)
    assert (again.applied, again.duplicates) == (0, 1)
    assert snapshot() == before
    assert [o["result"] for o in icbc.state()["outbox"]] == ["duplicate", "duplicate"]


def test_a_late_result_file_is_taken_when_it_comes(day, banks):
    icbc = banks["icbc"]
    icbc.accounts(**{BANK_NO_1: 200_00, BANK_NO_2: 100_00})
    icbc.behave(mode="late")
    got = collect(icbc)
    assert got.applied == 0  # nothing yet
    assert [state for *_, state in lines()] == ["pending", "pending"]
    assert ledger.balance("receivable:A0001") == 10524
    # The next day's run of the center finds the lines still pending, nothing refused.
    assert not Recovery.objects.exists()

    assert icbc.release() == 1
    assert transport.receive(bank=ICBC).applied == 1
    assert [state for *_, state in lines()] == ["collected", "collected"]
    assert ledger.check() == []


def result_file(debit: BankFile, *records: tuple[object, ...]) -> bytes:
    name = bankfiles.file_id("RESULT", ICBC, OURS, DAY, 90)
    return bankfiles.write("RESULT", file_id=name, sender=ICBC, receiver=OURS, date=DAY,
                           records=records)  # fmt: skip


def test_a_malformed_line_refuses_the_file_whole_naming_line_and_field(day, banks):
    icbc = banks["icbc"]
    icbc.behave(mode="late")  # the bank's own answer waits
    debits.make_debit_files(DAY)
    transport.send()
    debit = BankFile.objects.get(kind="debit")
    good = result_file(
        debit,
        ("D", debit.name, 1, "A0001", 10524, "C", "", ""),
        ("D", debit.name, 2, "A0002", 7149, "R", "51", "insufficient"),
    )
    before = snapshot()
    icbc.queue(good.replace(b"|7149|R|", b"|71.49|R|"))  # a malformed amount on line 3
    got = transport.receive(bank=ICBC)
    assert (got.applied, got.refused) == (0, 1)
    refused = BankFile.objects.get(direction="in")
    assert refused.state == "refused"
    assert refused.report == [
        {"line": 3, "field": "amount_fen", "reason": "not an integer: '71.49'"}
    ]
    assert refused.last_error == "line 3, amount_fen: not an integer: '71.49'"
    assert snapshot() == before  # the good first line was not applied either
    assert icbc.state()["outbox"][-1]["result"] == "refused"

    # A line that reads but is not ours (another amount): refused whole too.
    icbc.queue(
        result_file(
            debit,
            ("D", debit.name, 1, "A0001", 10524, "C", "", ""),
            ("D", debit.name, 2, "A0002", 7000, "R", "51", "insufficient"),
        )
    )
    assert transport.receive(bank=ICBC).refused == 1
    assert BankFile.objects.filter(direction="in", state="refused").count() == 2
    assert snapshot() == before

    icbc.release()  # the genuine file still goes through
    assert transport.receive(bank=ICBC).applied == 1
    assert [state for *_, state in lines()] == ["refused", "refused"]  # no balances set


def test_a_bad_signature_is_refused_and_kept_both_ways(day, banks, settings):
    icbc = banks["icbc"]
    icbc.behave(mode="late")
    debits.make_debit_files(DAY)
    out = BankFile.objects.get(kind="debit")
    # Someone alters our signature on the way: the bank refuses the file and keeps it.
    BankFile.objects.filter(pk=out.pk).update(
        signature=out.signature.replace("value=ME", "value=MF", 1)
    )
    sent = transport.send()
    assert sent.refused == 1
    out.refresh_from_db()
    assert out.state == "refused"
    assert "signature" in out.last_error
    assert icbc.state()["refused_signatures"] == 1

    # A file from "the bank" whose signature does not verify: quarantined, answered refused.
    debit = out
    forged = result_file(debit, ("D", debit.name, 1, "A0001", 10524, "C", "", ""),
                         ("D", debit.name, 2, "A0002", 7149, "C", "", ""))  # fmt: skip
    before = snapshot()
    icbc.queue(forged, forge=True)
    got = transport.receive(bank=ICBC)
    assert (got.applied, got.quarantined) == (0, 1)
    kept = BankFile.objects.get(direction="in")
    assert kept.state == "quarantined"
    assert "does not verify" in kept.last_error
    assert (settings.DATA_DIR / kept.path).read_bytes() == forged
    assert snapshot() == before
    assert icbc.state()["outbox"][-1]["result"] == "refused"


def test_each_bank_receives_its_cards_out_of_province_usage(day, banks, settings):
    (usage,) = debits.make_usage_files(DAY)
    assert debits.make_usage_files(DAY) == [usage]
    assert (usage.bank, usage.kind, usage.lines, usage.amount_fen) == (ICBC, "usage", 1, 1000)
    text = (settings.DATA_DIR / usage.path).read_text().splitlines()
    assert text[1] == (
        f"D|1|{CARD_1}|A0001|2026-12-02T00:00:00+00:00|3201|G0002|陕A12345_0|1000|3201-1.xml"
    )
    assert transport.send().acked == 1
    assert banks["icbc"].state()["received"] == [
        {"name": usage.name, "kind": "USAGE", "result": "received", "reason": "", "lines": 1}
    ]


def test_the_debit_command_names_an_open_day_and_changes_nothing(day, banks):
    with pytest.raises(CommandError, match="date: the clearing day 2026-12-03 is not closed"):
        call_command("exchange", "bank", "debit", "--date", "2026-12-03")
    assert not BankFile.objects.exists()
    out = StringIO()
    call_command("exchange", "bank", "debit", "--date", "2026-12-02", stdout=out)
    assert "2 lines, 17673 fen, pending" in out.getvalue()
