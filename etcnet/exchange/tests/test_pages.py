"""The exchange page: the signer's certificate, the registered certificates, the
messages with their states; only operators send the waiting messages now."""

from __future__ import annotations

import pytest
from django.test import Client

from conftest import make_user
from etcnet.core.models import AuditEvent
from etcnet.exchange import link
from etcnet.exchange.models import Transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client() -> Client:
    client = Client()
    client.force_login(make_user("olga", "center_operator"))
    return client


def test_the_page_shows_the_signer_the_certificates_and_the_messages(
    foreign_day, national, operator_client
):
    link.queue()
    national.behave(mode="down", down_for_s=3600)
    link.send()
    page = operator_client.get("/exchange/")
    text = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="signer-down"' not in text
    assert text.count('data-testid="certificate"') == 2
    assert 'data-state="pending"' in text
    assert "not answered" in text
    assert 'data-testid="send-now"' in text

    answer = operator_client.post("/exchange/send-now/")
    assert answer.status_code == 302
    assert AuditEvent.objects.filter(action="exchange.send_now").exists()
    national.behave(mode="accept")
    assert link.send().acked == 1
    page = operator_client.get("/exchange/?state=acked&direction=out")
    assert 'data-state="acked"' in page.content.decode()


def test_bad_filters_name_their_field_and_auditors_only_read(db, settings):
    settings.ETCNET_SIGNER_URL = "http://127.0.0.1:9"
    settings.ETCNET_SIGNER_TOKEN = "t"
    auditor = Client()
    auditor.force_login(make_user("anna", "auditor"))
    page = auditor.get("/exchange/?state=lost")
    assert page.status_code == 400
    assert 'data-field="state"' in page.content.decode()
    assert 'data-testid="signer-down"' in page.content.decode()
    assert auditor.post("/exchange/send-now/").status_code == 403
    assert not Transfer.objects.exists()
    clerk = Client()
    clerk.force_login(make_user("carl", "issuance_clerk"))
    assert clerk.get("/exchange/").status_code == 403
