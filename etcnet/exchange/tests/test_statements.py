"""Signed statements: a counterparty's statement as PDF and Excel, each signed by
the signature server, in one zip with our certificate; the counterparty (or
`etcnet exchange verify`) proves them against the registered certificate, and an
edited file fails. Without the signature server nothing is handed out."""

from __future__ import annotations

import io
import zipfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from conftest import make_user
from etcnet.clearing.models import Position
from etcnet.clearing.tests.test_reports import DAY, build_days
from etcnet.exchange import signing, sm2

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_day(lane_terminal, signer):
    build_days(lane_terminal)
    signing.register((signer.dir / "certificate.json").read_text(), kind="self", actor="test")
    return Position.objects.filter(day__date=DAY, kind="owner").order_by("counterparty_id")[0]


def test_a_signed_statement_verifies_and_an_edited_one_does_not(owner_day, tmp_path):
    client = Client()
    client.force_login(make_user("anna", "auditor"))
    query = f"?period={DAY}&counterparty={owner_day.counterparty_id}"
    answer = client.get(f"/exchange/statements/owner.zip{query}")
    assert answer.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    names = sorted(archive.namelist())
    assert names[0] == "certificate.json"
    assert [n.rsplit(".", 2)[-1] for n in names[1:]] == ["pdf", "sig", "xlsx", "sig"]
    certificate = sm2.Certificate.from_json(archive.read("certificate.json"))
    for name in names[1:]:
        if name.endswith(".sig"):
            continue
        data = archive.read(name)
        signature = sm2.Signature.from_json(archive.read(f"{name}.sig"))
        # The counterparty needs only our certificate to check it …
        assert sm2.verify(certificate.public, data, signature.value)
        # … and we verify it against our registry.
        assert signing.verify(data, signature, party=certificate.subject).kind == "self"
        assert not sm2.verify(certificate.public, data + b"x", signature.value)

    archive.extractall(tmp_path)
    pdf = next(tmp_path.glob("*.pdf"))
    out = StringIO()
    call_command("exchange", "verify", str(pdf), stdout=out)
    assert "signed by 0000000000006101" in out.getvalue()
    pdf.write_bytes(pdf.read_bytes() + b"%edited")
    with pytest.raises(CommandError, match="altered"):
        call_command("exchange", "verify", str(pdf))


def test_the_command_writes_the_zip_and_names_bad_input(owner_day, tmp_path):
    out = StringIO()
    call_command("exchange", "statement", "--kind", "owner", "--counterparty",
                 owner_day.counterparty_id, "--period", str(DAY), "--out", str(tmp_path),
                 stdout=out)  # fmt: skip
    (made,) = tmp_path.glob("*.zip")
    assert str(made) in out.getvalue()
    with pytest.raises(CommandError, match="--period"):
        call_command("exchange", "statement", "--kind", "owner", "--period", "2026-13",
                     "--out", str(tmp_path))  # fmt: skip
    with pytest.raises(CommandError, match="no position"):
        call_command("exchange", "statement", "--kind", "owner", "--counterparty", "NOBODY",
                     "--period", str(DAY), "--out", str(tmp_path))  # fmt: skip


def test_without_the_signature_server_nothing_is_handed_out(lane_terminal, settings):
    build_days(lane_terminal)
    owner = Position.objects.filter(day__date=DAY, kind="owner")[0]
    settings.ETCNET_SIGNER_URL = "http://127.0.0.1:9"
    settings.ETCNET_SIGNER_TOKEN = "t"
    signing._certificates.clear()
    client = Client()
    client.force_login(make_user("olga", "center_operator"))
    answer = client.get(
        f"/exchange/statements/owner.zip?period={DAY}&counterparty={owner.counterparty_id}"
    )
    assert answer.status_code == 503
    assert client.get("/exchange/statements/owner.zip?period=x").status_code == 400
    assert "signature server" in answer.content.decode()  # a plain reason, no traceback
    clerk = Client()
    clerk.force_login(make_user("carl", "issuance_clerk"))
    assert clerk.get(f"/exchange/statements/owner.zip?period={DAY}").status_code == 403
