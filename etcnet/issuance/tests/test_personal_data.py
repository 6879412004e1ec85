"""Document photos are personal data in full: the auditor, who sees personal
data masked, gets them refused, and sees one only through an explicit reveal
with a reason, which is audited (who, what, why)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import complete_application, make_user
from etcnet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

PERSONAS = ["clerk", "operator", "auditor", "collector", "office", None]


@pytest.fixture
def office(db: Any) -> Any:
    return make_user("vera", "vehicle_office_clerk")


@pytest.fixture
def application(clerk: Any) -> Any:
    return complete_application(clerk)


def client_for(request: Any, persona: str | None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    if persona is not None:
        client.force_login(request.getfixturevalue(persona))
    return client


def _page(a: Any) -> str:
    return f"/issuance/applications/{a.pk}/"


ENDPOINTS = {
    "photo": ("get", lambda a: f"{_page(a)}documents/id_photo/"),
    "thumbnail": ("get", lambda a: f"{_page(a)}documents/id_photo/thumbnail/"),
    "detail": ("get", _page),
    "api": ("get", lambda a: f"/api/v1/issuance/applications/{a.pk}"),
    "reveal": ("post", lambda a: f"{_page(a)}documents/id_photo/reveal/"),
}
# persona → endpoint → status (302: the login page).
EXPECTED = {
    "clerk": {"photo": 200, "thumbnail": 200, "detail": 200, "api": 200, "reveal": 403},
    "operator": {"photo": 200, "thumbnail": 200, "detail": 200, "api": 200, "reveal": 403},
    "auditor": {"photo": 403, "thumbnail": 403, "detail": 200, "api": 200, "reveal": 200},
    "collector": {"photo": 403, "thumbnail": 403, "detail": 403, "api": 403, "reveal": 403},
    "office": {"photo": 403, "thumbnail": 403, "detail": 403, "api": 403, "reveal": 403},
    None: {"photo": 302, "thumbnail": 302, "detail": 302, "api": 401, "reveal": 302},
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("persona", PERSONAS)
def test_roles_on_the_document_endpoints(request, application, persona, endpoint):
    method, path = ENDPOINTS[endpoint]
    client = client_for(request, persona)

    answer = getattr(client, method)(path(application), {"reason": "抽查档案 2026-12"})

    assert answer.status_code == EXPECTED[persona][endpoint]
    revealed = AuditEvent.objects.filter(action="issuance.document_revealed").count()
    assert revealed == (1 if answer.status_code == 200 and endpoint == "reveal" else 0)


def test_the_auditor_sees_no_photo_link_only_the_reveal_form(application, auditor, clerk):
    audit_client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    audit_client.force_login(auditor)
    clerk_client = Client()
    clerk_client.force_login(clerk)

    page = audit_client.get(_page(application)).content.decode()
    body = audit_client.get(f"/api/v1/issuance/applications/{application.pk}").json()
    clerk_body = clerk_client.get(f"/api/v1/issuance/applications/{application.pk}").json()

    assert "documents/id_photo/thumbnail/" not in page
    assert 'data-testid="masked-photo-id_photo"' in page
    assert {(d["url"], d["thumbnail_url"]) for d in body["documents"]} == {("", "")}
    assert all(d["url"] for d in clerk_body["documents"])


def test_a_reveal_needs_a_reason_and_records_who_what_why(application, auditor):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(auditor)
    url = f"{_page(application)}documents/id_photo/reveal/"

    refused = client.post(url, {"reason": "  "}, follow=True)
    assert "请填写查看照片的原因" in refused.content.decode()
    assert not AuditEvent.objects.filter(action="issuance.document_revealed").exists()

    shown = client.post(url, {"reason": "投诉核查 #12"})

    assert shown.status_code == 200
    assert shown["Content-Type"] == "image/jpeg"
    assert shown["Cache-Control"] == "private, no-store"
    document = application.documents.get(kind="id_photo")
    event = AuditEvent.objects.get(action="issuance.document_revealed")
    assert (event.actor, event.subject_type, event.subject_id) == (
        auditor,
        "issuance.application",
        str(application.pk),
    )
    assert event.after == {"kind": "id_photo", "sha256": document.sha256, "reason": "投诉核查 #12"}
    assert client.get(url).status_code == 405  # a reveal is never a plain link
