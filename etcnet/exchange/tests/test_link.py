"""The front server and the simulated national center, each a real process on
localhost: HTTPS, SM2-signed messages, the durable outbox, the inbox — and what
goes wrong on a network (lost acknowledgements, double delivery, a malformed
record, a bad signature, the counterpart down for an hour)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from etcnet.clearing import exchange, packages, simulated
from etcnet.clearing.models import ClearingEntry, ExchangeFile
from etcnet.core.models import AuditEvent
from etcnet.exchange import link
from etcnet.exchange.models import Transfer
from etcnet.exchange.tests.conftest import NationalSim

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 2)
OURS, NATIONAL = "0000000000006101", "0000000000000001"


def received(sim: NationalSim) -> list[tuple[str, int, int]]:
    return sorted((r["kind"], r["result"], r["messages"]) for r in sim.state()["received"])


def entries() -> dict[int, tuple[str, int | None]]:
    return {e.transaction_id: (e.state, e.hold_code) for e in ClearingEntry.objects.all()}


def test_a_day_goes_out_signed_is_acknowledged_answered_and_summed(foreign_day, national):
    assert link.queue() == 1
    assert link.queue() == 0  # stored once
    out = Transfer.objects.get(direction="out")
    assert (out.state, out.kind, out.signature.startswith("SM2-SM3 signer=" + OURS)) == (
        "pending", "transactions", True,
    )  # fmt: skip

    sent = link.send()
    assert (sent.acked, sent.refused, sent.failed) == (1, 0, [])
    out.refresh_from_db()
    assert (out.state, out.response_code, out.attempts) == ("acked", 1, 1)
    assert received(national) == [("TransactionPackage", 1, 1)]

    got = link.receive()  # the issuer's 记账, then nothing more
    assert (got.applied, got.duplicates, got.refused, got.quarantined) == (1, 0, 0, 0)
    assert set(entries().values()) == {("accepted", None)}
    national.summary(DAY.isoformat())
    assert link.receive().applied == 1
    summary = ExchangeFile.objects.get(kind="summary")
    assert (summary.count, summary.amount_fen, summary.finding) == (2, 4750, "")
    assert all(o["waiting"] == 0 for o in national.state()["outbox"])
    assert AuditEvent.objects.filter(action="exchange.received").count() == 2


def test_lost_acknowledgements_are_resent_and_answered_5_never_doubled(foreign_day, national):
    link.queue()
    national.behave(mode="drop-acks")
    sent = link.send()
    assert (sent.acked, len(sent.failed)) == (0, 1)
    out = Transfer.objects.get(direction="out")
    assert out.state == "pending"
    assert "not answered" in out.last_error
    assert received(national) == [("TransactionPackage", 1, 1)]  # it has it

    national.behave(mode="accept")
    assert link.send().acked == 1
    out.refresh_from_db()
    assert (out.state, out.response_code, out.attempts) == ("acked", 5, 2)
    assert received(national) == [("TransactionPackage", 1, 1)]  # taken once
    assert [o["messages"] for o in national.state()["outbox"]] == [1]  # one 记账


def test_a_message_delivered_twice_is_applied_once(foreign_day, national):
    link.queue()
    link.send()
    national.behave(mode="twice")
    got = link.receive()
    assert (got.applied, got.duplicates) == (1, 1)
    assert Transfer.objects.get(direction="in").deliveries == 2
    assert set(entries().values()) == {("accepted", None)}
    assert ExchangeFile.objects.filter(direction="in").count() == 1


def test_a_package_with_one_malformed_record_is_refused_whole_with_4(foreign_day, national):
    (made,) = exchange.day_packages(DAY)
    path = exchange.folder() / made.name
    path.write_bytes(path.read_bytes().replace(b"<Fee>23.75</Fee>", b"<Fee>23.7x</Fee>", 1))
    link.queue()
    sent = link.send()
    assert sent.refused == 1
    out = Transfer.objects.get(direction="out")
    assert (out.state, out.response_code) == ("refused", 4)
    assert "Fee" in out.last_error
    assert national.state()["outbox"] == []  # nothing of it taken, nothing answered


def test_an_incoming_message_with_a_malformed_record_is_refused_whole_with_4(foreign_day, national):
    link.queue()
    link.send()
    national.behave(mode="answer", code=1)  # takes nothing more: its 记账 is queued already
    good = ExchangeFile.objects.get(direction="out")
    bad = packages.write(
        packages.AccountingResult(
            header=packages.Header(sender_id=NATIONAL, receiver_id=OURS, message_id=900),
            clear_target_date=DAY, service_provider_id="6101", issuer_id="3201",
            message_id=good.body_message_id, count=1, amount_fen=2375,
            disputed=(packages.DisputedRecord(2, packages.DisputeResult(1)),),
        )
    ).replace(b"<Result>1</Result>", b"<Result>99</Result>")  # fmt: skip
    national.queue(bad)
    got = link.receive()
    assert (got.applied, got.refused) == (1, 1)  # the good 记账, then the bad one
    refused = Transfer.objects.get(direction="in", message_id=900)
    assert (refused.state, refused.response_code) == ("refused", 4)
    assert set(entries().values()) == {("accepted", None)}  # the bad one changed nothing


def test_a_bad_signature_is_refused_with_its_reason_and_kept(foreign_day, national):
    link.queue()
    out = Transfer.objects.get(direction="out")
    other = Transfer.objects.filter(pk=out.pk)
    # Someone alters the signature on the way. (A DER SM2 signature in base64
    # starts "ME": 0x30 0x44 or 0x30 0x45.)
    other.update(signature=out.signature.replace("value=ME", "value=MF", 1))
    sent = link.send()
    assert sent.refused == 1
    out.refresh_from_db()
    assert (out.state, out.response_code) == ("refused", 2)
    assert "signature" in out.last_error
    assert national.state()["refused_signatures"] == 1  # kept there


def test_the_national_center_down_for_an_hour_loses_nothing(foreign_day, national, settings):
    settings.ETCNET_EXCHANGE_RETRY_S = 60
    link.queue()
    national.behave(mode="down", down_for_s=3600)
    assert len(link.send().failed) == 1
    assert link.receive().failed
    out = Transfer.objects.get(direction="out")
    assert out.state == "pending"
    assert out.next_attempt_at > timezone.now()
    assert link.send().failed == []  # not due yet: nothing tried

    national.advance(3600)  # the hour passes there …
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1)):  # … and here
        assert link.send().acked == 1
        assert link.receive().applied == 1
    out.refresh_from_db()
    assert (out.state, out.attempts) == ("acked", 2)
    assert set(entries().values()) == {("accepted", None)}


def test_the_commands_say_what_is_missing_and_change_nothing(foreign_day, settings, tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.ETCNET_NATIONAL_TLS_CA = tmp_path / "missing.pem"
    with pytest.raises(CommandError, match="ETCNET_NATIONAL_TLS_CA"):
        call_command("exchange", "send", stdout=StringIO())
    settings.ETCNET_SIGNER_URL = "http://127.0.0.1:9"
    settings.ETCNET_SIGNER_TOKEN = "t"
    with pytest.raises(CommandError, match="signature server"):
        call_command("exchange", "queue", stdout=StringIO())
    assert not Transfer.objects.exists()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CommandError, match="certificate"):
        call_command("exchange", "certificate", "register", str(tmp_path / "bad.json"),
                     "--kind", "national")  # fmt: skip


def test_a_package_answered_by_file_is_not_sent_again(foreign_day, national, tmp_path):
    (path,) = exchange.export_day(DAY, tmp_path)
    answer = tmp_path / "accounting.xml"
    answer.write_bytes(simulated.answer(path.read_bytes(), message_id=1))
    exchange.import_file(answer)
    assert link.queue() == 0
    assert national.state()["received"] == []


def test_a_clearing_summary_that_does_not_reconcile_is_answered_8(foreign_day, national):
    link.queue()
    link.send()
    link.receive()  # the issuer's 记账 for our package
    accounting = ExchangeFile.objects.get(direction="in", kind="accounting")
    answered = (exchange.folder() / accounting.name).read_bytes()
    wrong = packages.read(
        simulated.summary(
            [answered], message_id=700, issuer_id="3201",
            process_time=dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC),
        )
    )  # fmt: skip
    national.queue(packages.write(dataclasses.replace(wrong, amount_fen=wrong.amount_fen + 1)))
    assert link.receive().applied == 1  # kept …
    taken = Transfer.objects.get(direction="in", kind="summary")
    assert taken.response_code == 8  # … and answered 清分统计对帐失败
    assert "清分统计对帐失败" in taken.last_error
    (sim_answer,) = [o for o in national.state()["outbox"] if o["kind"] == "queued"]
    assert sim_answer["waiting"] == 0
