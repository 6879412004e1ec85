"""Issue 14: every card debit accounted for. Each case the review reproduced on
the old intake, through the real API with real TACs made by the terminal's
PSAM on emulated cards: a debit whose TAC verifies is posted for what the card
paid, whatever else is wrong with the record; what looks wrong is a dispute
with its §6.2 code; one bad record never costs the others or answers 500."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from etcnet.cards import devices, ledger
from etcnet.cards import services as cards
from etcnet.cards.errors import LoadInterrupted
from etcnet.cards.models import CardPurchase, CardUnit, TopUp
from etcnet.cards.tests.conftest import CARD_NOS
from etcnet.cards.tests.services import LostAnswer
from etcnet.core.models import AuditEvent
from etcnet.tolling import intake
from etcnet.tolling.models import RecordKey, TollTransaction, Upload
from etcnet.tolling.tests.test_ingest import URL, client_for, purchase, record

pytestmark = pytest.mark.django_db

# A day after the card paid (2026-11-21 10:30 in Xi'an).
LATER = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)
PERIOD = dt.timedelta(days=settings.ETCNET_FUND_DISPUTE_DAYS)


def upload(terminal: Any, key: str, *records: Any) -> list[dict[str, Any]]:
    response = client_for(terminal).post(
        URL, {"upload_key": key, "records": list(records)}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()["results"]


def shadow(card: CardUnit) -> int:
    return CardUnit.objects.get(pk=card.pk).shadow_balance_fen


def test_a_lost_card_s_late_record_is_posted_and_the_replacement_gets_what_the_card_held(
    terminal, card, clerk
):
    # given a card with 100.00 that pays 30.00 at the lane
    paid = purchase(terminal, card, 3_000)
    assert devices.read_card(card).balance == 7_000
    with time_machine.travel(LATER, tick=False) as traveller:
        # when it is reported lost and replaced before the lane's record arrives
        cards.report_loss(card.card_no, actor=clerk)
        new = cards.replace_card(card.card_no, new_card_no=CARD_NOS[1], actor=clerk).card
        (answer,) = upload(terminal, "late", record(paid, seq=1))

        # then the debit is posted, the card's state a dispute for the queue
        assert (answer["result"], answer["code"], answer["disputes"]) == ("accepted", None, [9])
        txn = TollTransaction.objects.get()
        assert (txn.tac_verified, txn.dispute_code, txn.amount_fen) == (True, 9, 3_000)
        assert [f["kind"] for f in txn.findings] == ["card_state"]
        assert shadow(card) == -3_000  # what the center held moved off the purse already
        assert ledger.tolls_payable_total() == -3_000
        assert ledger.check() == []

        # and the replacement is loaded with the 70.00 the card really held
        traveller.shift(PERIOD + dt.timedelta(days=1))
        assert cards.settle_due() == 1
    transfer = TopUp.objects.get(card=new)
    assert (transfer.channel, transfer.amount_fen) == ("balance_transfer", 7_000)
    assert ledger.check() == []


@pytest.mark.parametrize("weight", [-100, "abc", "🚛", 1.5, 2**63])
def test_a_record_with_a_bad_weight_is_kept_rejected_and_its_debit_posted(terminal, card, weight):
    paid = purchase(terminal, card, 7_149)
    bad = record(paid, seq=1, axles=3, total_weight_kg=weight)

    # Sent again in another upload (the terminal lost the answer and re-batched).
    answers = [upload(terminal, key, bad)[0] for key in ("w1", "w2")]

    assert answers[0]["result"] == "rejected"
    assert answers[0]["code"] == 6
    assert "total_weight_kg" in answers[0]["reason"]
    assert answers[1]["result"] == "duplicate"
    assert answers[1]["first_result"] == "rejected"
    txn = TollTransaction.objects.get()
    assert (txn.tac_verified, txn.amount_fen, txn.total_weight_kg) == (True, 7_149, None)
    assert txn.raw["total_weight_kg"] == weight
    assert shadow(card) == 10_000 - 7_149
    assert ledger.tolls_payable_total() == -7_149
    assert ledger.check() == []
    assert AuditEvent.objects.filter(action="tolling.transaction_rejected").count() == 1


def refuse_collector(name: str) -> None:
    """The database refuses transactions of collector `name` (a value the schema
    lets through): a check on PostgreSQL, a trigger on SQLite; gone with the
    test's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "ALTER TABLE tolling_tolltransaction ADD CONSTRAINT test_refused"
                f" CHECK (collector <> '{name}')"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER test_refused BEFORE INSERT ON tolling_tolltransaction"
                f" WHEN NEW.collector = '{name}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


def test_a_row_the_database_refuses_is_kept_rejected_and_the_others_go_in(terminal, card):
    # given a database that refuses one value the schema takes
    paid = [purchase(terminal, card, amount) for amount in (1_000, 2_000, 3_000)]
    refuse_collector("mallory")

    # when it arrives with two good records
    answers = upload(
        terminal,
        "r",
        record(paid[0], seq=1),
        record(paid[1], seq=2, collector="mallory"),
        record(paid[2], seq=3),
    )

    # then the two are accepted; the refused one is a rejected shell holding what
    # was sent, its debit posted all the same
    assert [(a["result"], a.get("code")) for a in answers] == [
        ("accepted", None),
        ("rejected", 6),
        ("accepted", None),
    ]
    assert answers[1]["reason"].startswith("unreadable record")
    refused = TollTransaction.objects.get(seq=2)
    assert (refused.raw["collector"], refused.amount_fen, refused.tac_verified) == (
        "mallory",
        2_000,
        True,
    )
    assert TollTransaction.objects.count() == RecordKey.objects.count() == 3
    assert shadow(card) == 10_000 - 6_000
    assert ledger.tolls_payable_total() == -6_000
    assert ledger.check() == []
    assert CardPurchase.objects.count() == 3


def test_a_purchase_beyond_the_shadow_balance_is_posted_and_disputed_and_the_upload_goes_on(
    terminal, card, clerk, monkeypatch
):
    # given a top-up of 50.00 the card took but whose answer was lost: pending
    real_open = devices.open_unit
    monkeypatch.setattr(devices, "open_unit", lambda unit: LostAnswer(real_open(unit)))
    with pytest.raises(LoadInterrupted):
        cards.top_up(
            card.card_no, amount_fen=5_000, channel="cash", idempotency_key="p", actor=clerk
        )
    monkeypatch.setattr(devices, "open_unit", real_open)
    assert devices.read_card(card).balance == 15_000

    # when the card pays 120.00 (more than the center's 100.00) and then 10.00
    first, second = purchase(terminal, card, 12_000), purchase(terminal, card, 1_000)
    answers = upload(
        terminal,
        "p",
        record(first, seq=1, fee_fen=12_000, discount_fen=0, balance_before_fen=15_000),
        record(second, seq=2, fee_fen=1_000, discount_fen=0, balance_before_fen=3_000),
    )

    # then both are posted; each is a 卡帐不符 (14) dispute with the shadow it met
    assert [(a["result"], a["disputes"]) for a in answers] == [("accepted", [14])] * 2
    one, two = TollTransaction.objects.order_by("seq")
    assert one.findings[0]["evidence"] == {
        "shadow_before_fen": 10_000,
        "amount_fen": 12_000,
        "balance_before_fen": 15_000,
    }
    assert two.findings[0]["evidence"]["shadow_before_fen"] == -2_000
    assert shadow(card) == -3_000
    assert ledger.check() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fee_fen", 2**63),
        ("clock_offset_ms", 2**63),
        ("terminal_trans_seq", -1),
        ("plate_color", "黄"),
        ("fee_fen", 7525.9),
        ("payable_fen", "7149"),
        ("vehicle_class", True),
        ("direction", "sideways"),
        ("exit_time", "yesterday"),
        ("plate", "陕A" + "1" * 20),
    ],
)
def test_a_record_breaking_the_schema_is_answered_alone_naming_the_field(
    terminal, card, field, value
):
    bad_paid, good_paid = purchase(terminal, card, 7_149), purchase(terminal, card, 500)
    answers = upload(
        terminal,
        "s",
        record(bad_paid, seq=1, **{field: value}),
        record(good_paid, seq=2, payable_fen=500, fee_fen=526, discount_fen=26),
    )

    assert answers[0]["result"] == "rejected"
    assert answers[0]["code"] == 6
    assert answers[0]["reason"].startswith(f"{field}:")
    assert answers[1]["result"] == "accepted"
    bad = TollTransaction.objects.get(seq=1)
    assert bad.raw[field] == value
    if field == "fee_fen":
        assert bad.fee_fen == 0  # nothing truncated into place
    # The proof fields still read: the debit happened and is posted.
    proven = field not in ("terminal_trans_seq", "exit_time")
    assert bad.tac_verified is proven
    assert shadow(card) == 10_000 - 500 - (7_149 if proven else 0)
    assert ledger.check() == []


def test_an_oversized_or_missing_seq_is_invalid_and_the_rest_are_processed(terminal, card):
    paid = purchase(terminal, card, 800)
    answers = upload(
        terminal,
        "q",
        {**record(paid, seq=1), "seq": 2**63},
        "not a record",
        [1, 2, 3],
        record(paid, seq=5),
    )
    assert [a["result"] for a in answers] == ["invalid", "invalid", "invalid", "accepted"]
    assert answers[0]["seq"] == 2**63
    assert answers[0]["code"] == "bad_seq"
    assert TollTransaction.objects.get().seq == 5


def test_a_debit_that_is_not_the_payable_amount_is_posted_as_debited_and_disputed(terminal, card):
    paid = purchase(terminal, card, 100)
    (answer,) = upload(terminal, "d", record(paid, seq=1, payable_fen=7_149))

    assert (answer["result"], answer["disputes"]) == ("accepted", [6])
    txn = TollTransaction.objects.get()
    assert (txn.payable_fen, txn.amount_fen, txn.dispute_code) == (7_149, 100, 6)
    assert txn.findings[0]["kind"] == "debit_differs"
    assert ledger.tolls_payable_total() == -100
    assert shadow(card) == 10_000 - 100


def test_an_over_long_card_number_matches_no_card_and_posts_nothing(terminal, card):
    paid = purchase(terminal, card, 800)
    (answer,) = upload(terminal, "l", record(paid, seq=1, card_no=card.card_no + "9"))

    assert (answer["result"], answer["code"]) == ("rejected", 6)
    assert answer["reason"].startswith("card_no:")
    txn = TollTransaction.objects.get()
    assert (txn.card_no, txn.tac_verified) == ("", False)
    assert txn.raw["card_no"] == card.card_no + "9"
    assert shadow(card) == 10_000
    assert ledger.tolls_payable_total() == 0


def test_another_issuers_card_awaits_clearing_with_its_issuer(terminal, card):
    paid = purchase(terminal, card, 800)
    tianjin_card = "1201" + card.card_no[4:]
    (answer,) = upload(terminal, "o", record(paid, seq=1, card_no=tianjin_card))

    assert (answer["result"], answer["code"]) == ("accepted", None)
    txn = TollTransaction.objects.get()
    assert (txn.card_network, txn.tac_verified, txn.amount_fen) == ("1201", False, 800)
    assert ledger.tolls_payable_total() == 0  # cleared with the issuer, not posted here
    # A number of our own network that does not exist is still code 8.
    (unknown,) = upload(terminal, "u", record(paid, seq=2, card_no="6101" + "9" * 16))
    assert (unknown["result"], unknown["code"]) == ("rejected", 8)


def test_a_record_without_the_new_fields_is_taken_as_before(terminal, card):
    paid = purchase(terminal, card, 800)
    old = record(paid, seq=1)
    for name in ("list_version", "tariff_version", "balance_before_fen"):
        old.pop(name, None)
    (answer,) = upload(terminal, "old", old)
    assert answer["result"] == "accepted"
    txn = TollTransaction.objects.get()
    assert (txn.list_version, txn.tariff_version, txn.balance_before_fen) == ("", "", None)


def test_an_upload_costs_the_same_queries_whatever_its_size(terminal, card):
    """Set-based: the statements of an upload do not grow with its records."""

    def queries(key: str, first: int, count: int) -> int:
        records = [record(purchase(terminal, card, 10), seq=first + n) for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            upload(terminal, key, *records)
        return len(captured)

    queries("warm", 1, 2)  # accounts made on first use
    small, large = queries("small", 10, 5), queries("large", 100, 40)
    # SQLite splits a bulk insert by its limit of bound variables: one more.
    assert large <= small + (1 if connection.vendor == "sqlite" else 0)
    assert TollTransaction.objects.filter(status="accepted").count() == 47
    assert ledger.check() == []


def test_the_disputes_queue_shows_rejected_records_and_findings_with_their_evidence(
    operator, terminal, card
):
    plain, short, broken = (purchase(terminal, card, amount) for amount in (500, 100, 800))
    upload(
        terminal,
        "q",
        record(plain, seq=1, payable_fen=500, fee_fen=526, discount_fen=26),
        record(short, seq=2, payable_fen=7_149),
        record(broken, seq=3, plate_color="黄"),
    )
    page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    page.force_login(operator)

    queue = page.get("/tolling/", {"disputes": "1"}).content.decode()
    detail = page.get(f"/tolling/{TollTransaction.objects.get(seq=2).pk}/").content.decode()
    raw = page.get(f"/tolling/{TollTransaction.objects.get(seq=3).pk}/").content.decode()

    assert 'data-seq="1"' not in queue
    assert 'data-seq="2"' in queue
    assert 'data-seq="3"' in queue
    assert "争议: 2" in queue or "争议：2" in queue
    assert 'data-testid="findings"' in detail
    assert "payable_fen=7149" in detail
    assert "卡内扣款" in detail
    assert 'data-testid="raw"' in raw
    assert "plate_color: 黄" in raw


def test_each_record_key_is_kept_once_with_its_first_answer(terminal, card):
    # given a purchase stored, and a record rejected for a bad weight
    paid = purchase(terminal, card, 1_000)
    upload(terminal, "k1", record(paid, seq=1), record(paid, seq=2, total_weight_kg=-1))

    # then each (terminal, seq) has its key with the answer it got
    term = terminal[0]
    keys = RecordKey.objects.filter(terminal=term).order_by("seq")
    stored = TollTransaction.objects.order_by("seq")
    assert list(keys.values_list("seq", "transaction_id", "status", "dispute_code")) == [
        (1, stored[0].pk, "accepted", None),
        (2, stored[1].pk, "rejected", 2),
    ]
    # the PSAM sequence of seq 1 was used again by seq 2: a duplicate (code 2)
    assert CardPurchase.objects.filter(card=card).count() == 1

    # and the database itself refuses the same key twice, whatever the day
    with pytest.raises(IntegrityError), transaction.atomic():
        RecordKey.objects.create(
            terminal=term,
            seq=1,
            transaction_id=stored[0].pk,
            exit_time=stored[0].exit_time + dt.timedelta(days=3),
            payload_hash="0" * 64,
            status="accepted",
        )

    # and the same records sent again are answered from their keys
    again = upload(terminal, "k2", record(paid, seq=1), record(paid, seq=2, total_weight_kg=-1))
    assert [(a["result"], a["first_result"], a["id"]) for a in again] == [
        ("duplicate", "accepted", stored[0].pk),
        ("duplicate", "rejected", stored[1].pk),
    ]


def test_a_record_stored_under_the_old_fingerprint_still_matches_when_sent_again(terminal, card):
    # given a record and its upload stored before orjson (json.dumps fingerprints)
    paid = purchase(terminal, card, 1_000)
    sent = record(paid, seq=1)
    (first,) = upload(terminal, "old", sent)
    legacy = intake._legacy_hash(json.loads(json.dumps(sent)))
    assert legacy != intake._hash(json.loads(json.dumps(sent)))
    RecordKey.objects.filter(seq=1).update(payload_hash=legacy)
    Upload.objects.filter(upload_key="old").update(payload_hash=intake._upload_hash([legacy]))

    # then the same upload gets its stored answer, and the record re-sent is a duplicate
    assert upload(terminal, "old", sent) == [first]
    (again,) = upload(terminal, "new", sent)
    assert (again["result"], again["first_result"]) == ("duplicate", "accepted")
    # while another payload under the same seq is still a conflict
    (other,) = upload(terminal, "other", record(paid, seq=1, plate="陕A99999"))
    assert other["result"] == "conflict"
