"""The center's ingest of terminal uploads, through the real API, with real
purchases made by the terminal's provisioned PSAM on emulated cards."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from etcnet.cards import devices, ledger
from etcnet.cards.models import CardUnit
from etcnet.smartcard import ops
from etcnet.smartcard.transport import open_emulated
from etcnet.tolling import services
from etcnet.tolling.models import Terminal, TollTransaction

pytestmark = pytest.mark.django_db

URL = "/api/v1/tolling/uploads"
EXIT = dt.datetime(2026, 11, 21, 10, 30, 0)  # Asia/Shanghai, as the card signs it


def purchase(terminal: Any, card: CardUnit, amount: int) -> ops.PurchaseResult:
    _, _, psam = terminal
    return ops.purchase(devices.open_unit(card), open_emulated(psam), amount=amount, when=EXIT)


def record(result: ops.PurchaseResult, *, seq: int, **overrides: Any) -> dict[str, Any]:
    data = {
        "seq": seq,
        "lane": 3,
        "exit_time": EXIT.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))).isoformat(),
        "entry_station": "S1201001",
        "card_no": result.card_no,
        "plate": "陕A12345",
        "plate_color": 0,
        "vehicle_class": 1,
        "method": "path",
        "fee_fen": 7525,
        "discount_fen": 376,
        "payable_fen": result.amount,
        "payment_type": 22,
        "amount_fen": result.amount,
        "trans_type": result.trans_type,
        "terminal_trans_seq": int.from_bytes(result.terminal_seq, "big"),
        "tac": result.tac.hex().upper(),
        "collector": "carl",
    }
    data.update(overrides)
    return data


def client_for(terminal: Any) -> Client:
    term, secret, _ = terminal
    return Client(HTTP_AUTHORIZATION=f"Bearer {term.terminal_id}.{secret}")


def test_an_exit_purchase_is_accepted_once_with_its_tac_verified(terminal, card):
    result = purchase(terminal, card, 7149)
    body = {"upload_key": "u1", "records": [record(result, seq=1)]}
    client = client_for(terminal)

    answers = [client.post(URL, body, content_type="application/json").json() for _ in range(3)]

    assert answers[0]["results"][0]["result"] == "accepted"
    # The first answer each time; only the clock reading is new.
    first = {k: v for k, v in answers[0].items() if k != "server_time"}
    assert all({k: v for k, v in a.items() if k != "server_time"} == first for a in answers)
    assert answers[2]["server_time"] > answers[0]["server_time"]
    txn = TollTransaction.objects.get()
    assert (txn.status, txn.tac_verified, txn.payable_fen) == ("accepted", True, 7149)
    card.refresh_from_db()
    assert card.shadow_balance_fen == 10_000 - 7149
    assert devices.read_card(card).balance == 10_000 - 7149
    assert ledger.tolls_payable_total() == -7149
    assert ledger.check() == []


def test_a_record_sent_again_in_another_upload_is_a_duplicate(terminal, card):
    result = purchase(terminal, card, 1000)
    client = client_for(terminal)
    client.post(
        URL,
        {"upload_key": "a", "records": [record(result, seq=7)]},
        content_type="application/json",
    )

    again = client.post(
        URL,
        {"upload_key": "b", "records": [record(result, seq=7)]},
        content_type="application/json",
    ).json()
    changed = client.post(
        URL,
        {"upload_key": "c", "records": [record(result, seq=7, plate="陕A99999")]},
        content_type="application/json",
    ).json()

    assert again["results"][0] == {
        "seq": 7,
        "result": "duplicate",
        "first_result": "accepted",
        "code": None,
        "id": TollTransaction.objects.get().pk,
    }
    assert changed["results"][0]["result"] == "conflict"
    assert TollTransaction.objects.count() == 1
    assert CardUnit.objects.get(pk=card.pk).shadow_balance_fen == 9_000


def test_the_same_upload_key_with_another_payload_is_a_409(terminal, card):
    result = purchase(terminal, card, 500)
    client = client_for(terminal)
    client.post(
        URL,
        {"upload_key": "k", "records": [record(result, seq=1)]},
        content_type="application/json",
    )

    response = client.post(
        URL,
        {"upload_key": "k", "records": [record(result, seq=2)]},
        content_type="application/json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("overrides", "code", "posted"),
    [
        ({"tac": "00000000"}, 1, False),
        ({"card_no": "61019999999999999999"}, 8, False),
        # The TAC proves the card paid: rejected, the debit posted all the same.
        ({"lane": 4}, 11, True),
        ({"payment_type": 23}, 4, True),
        ({"exit_time": "2026-11-21T10:30:00"}, 6, True),
    ],
)
def test_rejected_records_are_kept_with_their_dispute_code(terminal, card, overrides, code, posted):
    result = purchase(terminal, card, 800)
    body = {"upload_key": "r", "records": [record(result, seq=3, **overrides)]}

    answer = client_for(terminal).post(URL, body, content_type="application/json").json()

    assert answer["results"][0]["result"] == "rejected"
    assert answer["results"][0]["code"] == code
    txn = TollTransaction.objects.get()
    assert (txn.status, txn.dispute_code, txn.tac_verified) == ("rejected", code, posted)
    paid = 800 if posted else 0
    assert CardUnit.objects.get(pk=card.pk).shadow_balance_fen == 10_000 - paid
    assert ledger.tolls_payable_total() == -paid
    assert ledger.check() == []


def test_a_psam_sequence_used_twice_is_a_duplicate_transaction(terminal, card):
    result = purchase(terminal, card, 600)
    client = client_for(terminal)
    client.post(
        URL,
        {"upload_key": "1", "records": [record(result, seq=1)]},
        content_type="application/json",
    )

    answer = client.post(
        URL,
        {"upload_key": "2", "records": [record(result, seq=2)]},
        content_type="application/json",
    ).json()

    assert (answer["results"][0]["result"], answer["results"][0]["code"]) == ("rejected", 2)
    assert CardUnit.objects.get(pk=card.pk).shadow_balance_fen == 9_400


def test_no_anonymous_or_forged_upload(terminal):
    term, secret, _ = terminal
    body = {"upload_key": "x", "records": []}
    assert Client().post(URL, body, content_type="application/json").status_code == 401
    forged = Client(HTTP_AUTHORIZATION=f"Bearer {term.terminal_id}.{secret}x")
    assert forged.post(URL, body, content_type="application/json").status_code == 401
    assert TollTransaction.objects.count() == 0


def test_only_operators_register_terminals(clerk, tianjin):
    from etcnet.core.errors import Forbidden

    with pytest.raises(Forbidden):
        services.register_terminal("HH-9", station_id="S1201005", lanes=[3], actor=clerk)
    assert Terminal.objects.count() == 0


def test_operators_see_transactions_the_rejected_queue_and_shift_totals(
    operator, collector, terminal, card
):
    good = purchase(terminal, card, 2000)
    client = client_for(terminal)
    client.post(
        URL,
        {
            "upload_key": "p",
            "records": [
                record(good, seq=1, shift="S1"),
                record(good, seq=2, tac="00000000", terminal_trans_seq=99),
            ],
        },
        content_type="application/json",
    )
    page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    page.force_login(operator)

    listing = page.get("/tolling/").content.decode()
    rejected = page.get("/tolling/", {"result": "rejected"}).content.decode()
    txn = TollTransaction.objects.get(seq=1)
    detail = page.get(f"/tolling/{txn.pk}/").content.decode()

    assert 'data-seq="1"' in listing
    assert 'data-seq="2"' in listing
    assert "已拒收: 1" in listing
    assert 'data-seq="1"' not in rejected
    assert "验证未通过（TAC错误）" in rejected
    assert "20.00" in listing  # shift S1's accepted total
    assert "已验证" in detail
    assert "tolling.transaction_accepted" in detail
    forbidden = Client()
    forbidden.force_login(collector)
    assert forbidden.get("/tolling/").status_code == 403


def test_the_register_command_prints_the_secret_once(operator, tianjin):
    import io

    from django.core.management import call_command

    operator.username = "operator"
    operator.save()
    out = io.StringIO()
    call_command(
        "terminal_register", "LANE-01", "--station", "S1201005", "--lanes", "3,4", stdout=out
    )
    secret = out.getvalue().split("secret (shown once): ")[1].strip()
    assert services.authenticate("LANE-01", secret) is not None
    assert Terminal.objects.get().secret_digest != secret


def test_a_terminal_downloads_its_station_tariff_and_verifiers(terminal, card, collector):
    from etcnet.network.models import Node
    from etcnet.tolling.models import StationMembership

    StationMembership.objects.create(user=collector, station=Node.objects.get(node_id="S1201005"))
    client = client_for(terminal)

    station = client.get("/api/v1/tolling/downloads/station").json()
    tariff = client.get("/api/v1/tolling/downloads/tariff").json()
    users = client.get("/api/v1/tolling/downloads/verifiers").json()

    assert station["station"]["hex"] == "12010301"
    assert [(lane["number"], lane["allowed"]) for lane in station["lanes"]] == [
        (1, False),
        (3, True),
        (4, False),
    ]
    assert tariff["version"] == "1220260101001"
    to_here = {(r["entry"], r["vehicle_class"]): r["fee_fen"] for r in tariff["minimum_fees"]}
    assert to_here[("S1201001", 1)] == 7525
    [carl] = [u for u in users["users"] if u["username"] == "carl"]
    assert carl["roles"] == ["toll_collector"]
    assert "pw-12345678" not in carl["verifier"]
    assert Client().get("/api/v1/tolling/downloads/verifiers").status_code == 401


def test_a_special_case_with_its_photo_is_in_the_exceptions_queue(operator, terminal, card):
    import base64
    import io

    from PIL import Image

    raw = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(raw, format="JPEG")
    paid = purchase(terminal, card, 1000)
    client_for(terminal).post(
        URL,
        {
            "upload_key": "s",
            "records": [
                record(
                    paid,
                    seq=1,
                    special_case="mismatch",
                    special_reason="卡签不一致, 按实际车型",
                    photo_jpeg=base64.b64encode(raw.getvalue()).decode(),
                ),
                record(paid, seq=2, payment_type=1, tac="", photo_jpeg="not base64!"),
            ],
        },
        content_type="application/json",
    )
    page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    page.force_login(operator)
    txn = TollTransaction.objects.get(seq=1)

    queue = page.get("/tolling/", {"special": "1"}).content.decode()
    detail = page.get(f"/tolling/{txn.pk}/").content.decode()
    image = page.get(f"/tolling/{txn.pk}/photo")

    assert 'data-seq="1"' in queue
    assert 'data-seq="2"' not in queue
    assert "卡签不一致, 按实际车型" in detail
    assert 'data-testid="vehicle-photo"' in detail
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    bad = TollTransaction.objects.get(seq=2)
    assert (bad.status, bad.dispute_code, bad.reason) == (
        "rejected",
        6,
        "vehicle photo: file_not_image",
    )
