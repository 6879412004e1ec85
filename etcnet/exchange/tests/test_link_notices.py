"""Refund and supplementary-payment notices (退费/补缴通知) over the national
center link: our card on another province's road; each notice kept open for the
refund and recovery work, shown to operators (card masked for auditors), once;
a notice naming a card we did not issue refuses the whole file (4)."""

from __future__ import annotations

import pytest
from django.test import Client

from conftest import make_user
from etcnet.core.models import AuditEvent
from etcnet.exchange import link, notices
from etcnet.exchange.models import Notice, Transfer

pytestmark = pytest.mark.django_db

OURS, NATIONAL = "0000000000006101", "0000000000000001"


def notice_file(card_no: str, *more: tuple[str, ...]) -> bytes:
    return notices.write(NATIONAL, OURS, [
        ("R", "3201-20261202-0007", card_no, 350, "3201", "2026-12-02T15:20:00+08:00",
         "重复扣费 (charged twice)"),
        ("S", "3201-20261202-0008", card_no, 1200, "3201", "2026-12-02T16:05:00+08:00",
         "逃费补缴 (entry not recorded)"),
        *more,
    ])  # fmt: skip


def test_notices_are_kept_open_once_and_shown(card, national):
    national.behave(mode="twice")
    national.queue_file(notice_file(card.card_no), "NOTICE_0000000000000001_000001.txt")
    got = link.receive()
    assert (got.applied, got.duplicates) == (1, 1)
    kept = list(Notice.objects.order_by("notice_id").values_list("kind", "amount_fen", "state"))
    assert kept == [("refund", 350, "open"), ("supplement", 1200, "open")]
    assert Notice.objects.filter(account=card.account).count() == 2
    assert AuditEvent.objects.filter(action="exchange.notice_received").count() == 2

    operator = Client()
    operator.force_login(make_user("olga", "center_operator"))
    page = operator.get("/exchange/").content.decode()
    assert page.count('data-testid="notice"') == 2
    assert card.card_no in page
    auditor = Client()
    auditor.force_login(make_user("anna", "auditor"))
    assert card.card_no not in auditor.get("/exchange/").content.decode()


def test_a_notice_for_a_card_not_ours_refuses_the_file(card, national):
    data = notice_file(
        card.card_no,
        ("R", "3201-20261202-0009", "32010000000000000001", 100, "3201",
         "2026-12-02T17:00:00+08:00", "not ours"),
    )  # fmt: skip
    national.queue_file(data, "NOTICE_0000000000000001_000002.txt")
    assert link.receive().refused == 1
    refused = Transfer.objects.get(direction="in", kind="notices")
    assert (refused.state, refused.response_code) == ("refused", 4)
    assert "line 4, card_no" in refused.last_error
    assert not Notice.objects.exists()


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (("X", "n1", "c", "1", "p", "2026-12-02T17:00:00+08:00", "r"), "kind"),
        (("R", "n1", "c", "1.5", "p", "2026-12-02T17:00:00+08:00", "r"), "amount_fen"),
        (("R", "n1", "c", "-1", "p", "2026-12-02T17:00:00+08:00", "r"), "amount_fen"),
        (("R", "n1", "c", "1", "p", "2026-12-02 17:00", "r"), "time"),
    ],
)
def test_a_malformed_line_names_its_field(db, line, field):
    with pytest.raises(notices.NoticeFileError) as caught:
        notices.apply(notices.write(NATIONAL, OURS, [line]), file="f", actor="t")
    assert (caught.value.line, caught.value.field) == (2, field)
