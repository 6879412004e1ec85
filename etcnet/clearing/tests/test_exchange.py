"""The exchange with the national center as §6.2 files: flow 2 (other issuers'
cards on our roads) out and its accounting result back, flow 3 (our cards
elsewhere) in with our answer — through the real database, with real TACs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from etcnet.cards import devices, ledger
from etcnet.cards.models import CardUnit
from etcnet.clearing import exchange, packages, run, simulated
from etcnet.clearing.models import ClearingEntry, ExchangeFile, IncomingTransaction, Position
from etcnet.clearing.tests.store import VERSION, exit_, local, route, tariff
from etcnet.tolling.models import TollTransaction
from etcnet.tolling.tests.test_ingest import EXIT, purchase

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 2)
NEXT = DAY + dt.timedelta(days=1)
OURS, NATIONAL = "0000000000006101", "0000000000000001"


def positions(date: dt.date) -> dict[tuple[str, str], int]:
    return {(p.kind, p.counterparty_id): p.net_fen for p in Position.objects.filter(day__date=date)}


@pytest.fixture
def foreign_day(lane_terminal):
    tariff(VERSION, {"G1": ("A", 3000), "G2": ("B", 2500)},
           effective_at=local(DAY, 0) - dt.timedelta(days=30))  # fmt: skip
    made = [
        exit_(
            lane_terminal,
            seq,
            local(DAY, 9 + seq),
            card_no=f"3201{seq:016d}",
            card_network="3201",
            fee_fen=2500,
            discount_fen=125,
            payable_fen=2375,
            amount_fen=2375,
            intervals=route("G2"),
            tac="1A2B3C4D",
            trans_type=9,
            terminal_trans_seq=100 + seq,
            balance_before_fen=10_000,
            plate="苏A12345",
        )
        for seq in (1, 2)
    ]
    run.run_day(DAY)
    return made


def test_other_issuers_cards_go_out_in_a_package_and_are_cleared_once_accepted(
    foreign_day, tmp_path
):
    (path,) = exchange.export_day(DAY, tmp_path / "out")

    package = packages.read(path.read_bytes())
    assert isinstance(package, packages.TransactionPackage)
    assert (package.issuer_id, package.count, package.amount_fen) == ("3201", 2, 4750)
    first, second = package.transactions
    assert (first.customized.source_id, first.fee_fen, first.card.card_id) == (
        foreign_day[0].pk, 2375, "0000000000000001",
    )  # fmt: skip
    assert (first.validation.terminal_trans_no, first.card.post_balance_fen) == ("00000065", 7625)
    # Exported again: the same file, no new package.
    (again,) = exchange.export_day(DAY, tmp_path / "again")
    assert again.read_bytes() == path.read_bytes()
    assert ExchangeFile.objects.filter(direction="out").count() == 1

    # The issuer accepts the first and disputes the second's TAC (code 1).
    answer = packages.AccountingResult(
        header=packages.Header(sender_id=NATIONAL, receiver_id=OURS, message_id=77),
        clear_target_date=DAY, service_provider_id="6101", issuer_id="3201",
        message_id=package.message_id, count=1, amount_fen=2375,
        disputed=(packages.DisputedRecord(second.trans_id, packages.DisputeResult(1)),),
    )  # fmt: skip
    file = tmp_path / "accounting.xml"
    file.write_bytes(packages.write(answer))
    assert exchange.import_file(file).created
    assert not exchange.import_file(file).created  # the same file again: nothing changes

    entries = {e.transaction_id: (e.state, e.hold_code) for e in ClearingEntry.objects.all()}
    assert entries == {foreign_day[0].pk: ("accepted", None), foreign_day[1].pk: ("held", 1)}
    run.run_day(NEXT)
    # Cleared on the next day: B's split, and the national center owes it.
    assert positions(NEXT) == {("owner", "B"): -2375, ("national_center", ""): 2375}
    assert ClearingEntry.objects.get(transaction_id=foreign_day[0].pk).cleared_on.date == NEXT
    assert ledger.balance("national_receivable") == 2375


def test_a_file_that_cannot_be_read_or_reuses_a_message_id_is_refused(foreign_day, tmp_path):
    (path,) = exchange.export_day(DAY, tmp_path)
    package = packages.read(path.read_bytes())
    bad = tmp_path / "bad.xml"
    bad.write_bytes(path.read_bytes().replace(b"<Count>2</Count>", b"<Count>3</Count>"))
    with pytest.raises(exchange.ExchangeError, match="Count"):
        exchange.import_file(bad)

    answer = packages.AccountingResult(
        header=packages.Header(sender_id=NATIONAL, receiver_id=OURS, message_id=5),
        clear_target_date=DAY, service_provider_id="6101", issuer_id="3201",
        message_id=package.message_id, count=2, amount_fen=4750, disputed=(),
    )  # fmt: skip
    ok, other = tmp_path / "ok.xml", tmp_path / "other.xml"
    ok.write_bytes(packages.write(answer))
    exchange.import_file(ok)
    other.write_bytes(packages.write(dataclasses.replace(answer, count=1, amount_fen=2375)))
    with pytest.raises(exchange.ExchangeError, match="消息重复"):
        exchange.import_file(other)
    assert ExchangeFile.objects.filter(direction="in").count() == 1

    err = StringIO()
    with pytest.raises(CommandError, match="1 of 2"):
        call_command("clearing", "import", str(bad), str(ok), stderr=err, stdout=StringIO())
    assert "Body/Count" in err.getvalue()


def _incoming(result, psam: str, trans_id: int, **changes) -> packages.Transaction:
    t = packages.Transaction(
        time=EXIT.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))),
        fee_fen=result.amount,
        service=packages.Service(service_type=1, description="高速公路通行费", detail="path"),
        card=packages.ICCard(card_type=packages.CardType(22), net_no=result.card_no[:4],
                             card_id=result.card_no[4:], license="陕A12345",
                             pre_balance_fen=10_000, post_balance_fen=10_000 - result.amount),
        validation=packages.Validation(tac=result.tac.hex().upper(),
                                       trans_type=packages.TransType("09"),
                                       terminal_no=psam.upper(),
                                       terminal_trans_no=result.terminal_seq.hex().upper()),
        customized=packages.CustomizedData(source_id=trans_id, card_trans_no=result.offline_atc,
                                           exit_station="G0015320010010", entry_station="",
                                           intervals=()),
        vehicle_type=1, algorithm=packages.Algorithm.TDES, trans_id=trans_id,
    )  # fmt: skip
    return dataclasses.replace(t, **changes)


def test_our_card_charged_elsewhere_is_verified_charged_and_answered(
    terminal,
    card,
    tmp_path,
):
    paid = purchase(terminal, card, 2_000)
    psam = terminal[0].psam_terminal_no
    good = _incoming(paid, psam, 1)
    transactions = (
        good,
        _incoming(paid, psam, 2),  # the same card debit again
        _incoming(paid, psam, 3, fee_fen=1_999),  # not what the card signed: the TAC fails
        _incoming(paid, psam, 4, card=dataclasses.replace(good.card, card_id="9" * 16)),
    )
    package = packages.TransactionPackage(
        header=packages.Header(sender_id=NATIONAL, receiver_id=OURS, message_id=9),
        clear_target_date=DAY, service_provider_id="3201", issuer_id="6101", message_id=9,
        transactions=transactions,
    )  # fmt: skip
    file = tmp_path / "incoming.xml"
    file.write_bytes(packages.write(package))

    taken = exchange.import_file(file)

    ours = packages.read(taken.answer.read_bytes())
    assert isinstance(ours, packages.AccountingResult)
    assert (ours.message_id, ours.count, ours.amount_fen) == (9, 1, 2_000)
    assert [(d.trans_id, int(d.result)) for d in ours.disputed] == [(2, 2), (3, 1), (4, 8)]
    assert CardUnit.objects.get(pk=card.pk).shadow_balance_fen == 10_000 - 2_000
    assert devices.read_card(card).balance == 10_000 - 2_000
    assert ledger.balance("national_payable") == -2_000  # owed to the national center
    assert ledger.check() == []
    assert exchange.import_file(file).created is False

    run.run_day(DAY)
    assert positions(DAY) == {("purses", ""): 2_000, ("national_center", ""): -2_000}
    assert IncomingTransaction.objects.get(trans_id=1).cleared_on.date == DAY


def test_the_simulated_national_center_answers_and_its_summary_is_compared(foreign_day, tmp_path):
    (path,) = exchange.export_day(DAY, tmp_path)
    accounting = simulated.answer(path.read_bytes(), message_id=1, dispute=lambda t: None)
    (tmp_path / "a.xml").write_bytes(accounting)
    exchange.import_file(tmp_path / "a.xml")
    when = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)

    agreed = simulated.summary([accounting], message_id=2, issuer_id="3201", process_time=when)
    (tmp_path / "s.xml").write_bytes(agreed)
    taken = exchange.import_file(tmp_path / "s.xml").file
    assert (taken.kind, taken.count, taken.amount_fen, taken.finding) == ("summary", 2, 4750, "")

    wrong = packages.read(simulated.summary([accounting], message_id=3, issuer_id="3201",
                                            process_time=when))  # fmt: skip
    (tmp_path / "w.xml").write_bytes(packages.write(dataclasses.replace(wrong, amount_fen=4751)))
    disagreed = exchange.import_file(tmp_path / "w.xml").file
    assert disagreed.finding.startswith("清分统计对帐失败")
    assert ClearingEntry.objects.filter(state="accepted").count() == 2


def test_a_record_a_package_cannot_carry_is_held_not_left_waiting(foreign_day, tmp_path):
    reversal = foreign_day[1]
    ClearingEntry.objects.filter(transaction_id=reversal.pk).update(payable_fen=-2375)
    TollTransaction.objects.filter(pk=reversal.pk).update(payable_fen=-2375)

    (path,) = exchange.export_day(DAY, tmp_path)

    package = packages.read(path.read_bytes())
    assert [t.customized.source_id for t in package.transactions] == [foreign_day[0].pk]
    held = ClearingEntry.objects.get(transaction_id=reversal.pk)
    assert (held.state, held.hold_code) == ("held", 6)
