"""争议处理结果 over the national center link: the issuer disputed one of our
records (held with its code); the national center's dispute result says it pays
after all — resolved, cleared by the next run — or not — written off. A result
naming a record we did not send, or one not held, refuses the whole file (4)."""

from __future__ import annotations

import datetime as dt

import pytest

from etcnet.clearing import run
from etcnet.clearing.models import ClearingEntry
from etcnet.exchange import disputes, link
from etcnet.exchange.models import Transfer

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 2)
OURS, NATIONAL = "0000000000006101", "0000000000000001"


def states() -> list[tuple[str, int | None]]:
    return [(e.state, e.hold_code) for e in ClearingEntry.objects.order_by("transaction_id")]


@pytest.fixture
def disputed(foreign_day, national):
    """Our package sent; the issuer disputes the second record (TAC, code 1)."""
    national.behave(mode="answer", code=1)  # acknowledge, take nothing: we answer by hand
    link.queue()
    link.send()
    package = Transfer.objects.get(direction="out").message_id
    from etcnet.clearing import packages

    result = packages.AccountingResult(
        header=packages.Header(sender_id=NATIONAL, receiver_id=OURS, message_id=500),
        clear_target_date=DAY, service_provider_id="6101", issuer_id="3201",
        message_id=package, count=1, amount_fen=2375,
        disputed=(packages.DisputedRecord(2, packages.DisputeResult(1)),),
    )  # fmt: skip
    national.queue(packages.write(result))
    assert link.receive().applied == 1
    assert states() == [("accepted", None), ("held", 1)]
    return package


def test_the_issuer_pays_after_all_and_the_next_run_clears_it(disputed, national):
    national.queue_file(
        disputes.write(NATIONAL, OURS, [(disputed, 2, True, "TAC re-checked: valid")]),
        "DISPUTE_RESULT_0000000000000001_000001.txt",
    )
    got = link.receive()
    assert (got.applied, got.refused) == (1, 0)
    assert states()[1] == ("resolved", 1)
    run.run_day(DAY + dt.timedelta(days=1))
    assert [state for state, _ in states()] == ["cleared", "cleared"]
    taken = Transfer.objects.get(direction="in", kind="disputes")
    assert (taken.state, taken.response_code) == ("applied", 1)


def test_a_result_naming_a_record_not_held_refuses_the_whole_file(disputed, national):
    national.queue_file(
        disputes.write(NATIONAL, OURS, [(disputed, 2, False, "no"), (disputed, 1, True, "")]),
        "DISPUTE_RESULT_0000000000000001_000002.txt",
    )
    assert link.receive().refused == 1
    refused = Transfer.objects.get(direction="in", kind="disputes")
    assert (refused.state, refused.response_code) == ("refused", 4)
    assert "line 3" in refused.last_error
    assert states() == [("accepted", None), ("held", 1)]  # nothing of it applied
