"""The signature server: a process of its own, its API, renewal, and the center's
signing and verifying through it."""

from __future__ import annotations

import datetime as dt
import io
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone

from etcnet.core.models import AuditEvent
from etcnet.exchange import signer as signer_module
from etcnet.exchange import signing, sm2
from etcnet.exchange.models import PartyCertificate
from etcnet.exchange.tests.conftest import SignerProcess

pytestmark = pytest.mark.django_db


def _register_own(signer: SignerProcess) -> PartyCertificate:
    return signing.register(
        (signer.dir / "certificate.json").read_text(), kind="self", actor="test"
    )


def test_the_key_is_readable_by_its_owner_only(signer: SignerProcess) -> None:
    assert stat.S_IMODE(signer.dir.stat().st_mode) == 0o700
    for name in ("key.json", "client.token", "certificate.json"):
        assert stat.S_IMODE((signer.dir / name).stat().st_mode) == 0o600
    private = json.loads((signer.dir / "key.json").read_text())["private"]
    token = (signer.dir / "client.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/v1/health", "/v1/certificate"):
        assert private not in httpx.get(signer.url + path, headers=headers).text


def test_a_call_without_the_token_is_refused(signer: SignerProcess) -> None:
    digest = {"digest": "00" * 32, "purpose": "x"}
    assert httpx.post(signer.url + "/v1/sign", json=digest).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(signer.url + "/v1/sign", json=digest, headers=wrong).status_code == 401


def test_bad_input_names_its_field(signer: SignerProcess) -> None:
    headers = {"Authorization": f"Bearer {(signer.dir / 'client.token').read_text().strip()}"}
    answer = httpx.post(signer.url + "/v1/sign", json={"digest": "zz"}, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("digest")
    answer = httpx.post(signer.url + "/v1/sign", content=b"{", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("body")


def test_the_center_signs_through_the_server_and_verifies_against_the_registry(
    signer: SignerProcess,
) -> None:
    _register_own(signer)
    data = "<Message>原始交易包</Message>".encode()
    signature = signing.sign(data, purpose="test package")
    assert signature.signer == "0000000000006101"
    cert = signing.verify(data, signature, party="0000000000006101")
    assert cert.kind == "self"
    with pytest.raises(sm2.SignatureError, match="altered"):
        signing.verify(data + b" ", signature)
    with pytest.raises(sm2.SignatureError, match="expected"):
        signing.verify(data, signature, party="0000000000000001")
    log = (signer.dir / "signed.log").read_text().splitlines()
    assert any(json.loads(line)["purpose"] == "test package" for line in log)


def test_a_signature_under_an_unregistered_certificate_is_refused(signer: SignerProcess) -> None:
    signature = signing.sign(b"x", purpose="t")
    with pytest.raises(sm2.SignatureError, match="is registered"):
        signing.verify(b"x", signature)


def test_signed_files_carry_their_signature_beside_them(
    signer: SignerProcess, tmp_path: Path
) -> None:
    _register_own(signer)
    path = tmp_path / "statement.xlsx"
    path.write_bytes(b"PK\x03\x04 a workbook")
    signing.sign_file(path, purpose="statement")
    assert signing.verify_file(path).party == "0000000000006101"
    path.write_bytes(b"PK\x03\x04 a workbook, edited")
    with pytest.raises(sm2.SignatureError):
        signing.verify_file(path)
    signing.signature_file(path).unlink()
    with pytest.raises(sm2.SignatureError, match="missing"):
        signing.verify_file(path)


def test_registering_is_audited_and_idempotent(signer: SignerProcess) -> None:
    first = _register_own(signer)
    assert _register_own(signer).pk == first.pk
    assert AuditEvent.objects.filter(action="exchange.certificate_registered").count() == 1
    other = sm2.make_certificate(
        sm2.generate(), subject=first.party, subject_name="imposter", serial=first.serial,
        not_before=timezone.now(), years=5,
    )  # fmt: skip
    with pytest.raises(sm2.SignatureError, match="already has another"):
        signing.register(other.to_json(), kind="self", actor="test")
    with pytest.raises(sm2.SignatureError) as caught:
        signing.register(b"{}", kind="bank", actor="test")
    assert caught.value.field == "certificate"


def test_renewal_while_serving_signs_with_the_new_key_and_old_signatures_still_verify(
    tmp_path: Path, settings: Any
) -> None:
    process = SignerProcess(tmp_path / "signer")
    process.start()
    try:
        settings.ETCNET_SIGNER_URL = process.url
        settings.ETCNET_SIGNER_TOKEN_FILE = process.dir / "client.token"
        _register_own(process)
        old = signing.sign(b"before", purpose="t")
        out = io.StringIO()
        assert signer_module.main(["--dir", str(process.dir), "renew"], out) == 0
        assert "00000001 is replaced by 00000002" in out.getvalue()
        signing.register(
            (process.dir / "certificates" / "00000002.json").read_text(), kind="self", actor="t"
        )
        new = signing.sign(b"after", purpose="t")
        assert (old.serial, new.serial) == ("00000001", "00000002")
        signing.verify(b"before", old)
        signing.verify(b"after", new)
        assert (process.dir / "certificates" / "00000001.json").exists()
    finally:
        process.stop()


def test_an_expired_certificate_signs_nothing(tmp_path: Path) -> None:
    store = signer_module.KeyStore(tmp_path / "s")
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    store.init(subject="0000000000006101", name="c", years=5, now=start)
    with pytest.raises(signer_module.SignerError, match="expired"):
        store.sign(b"\x00" * 32, purpose="t", now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    store.sign(b"\x00" * 32, purpose="t", now=dt.datetime(2024, 12, 31, tzinfo=dt.UTC))


def test_the_commands_report_the_certificate(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    out = io.StringIO()
    assert signer_module.main(["--dir", str(folder), "init"], out) == 0
    assert "valid" in out.getvalue()
    out = io.StringIO()
    assert signer_module.main(["--dir", str(folder), "init"], out) == 1
    assert "use renew" in out.getvalue()
    out = io.StringIO()
    assert signer_module.main(["--dir", str(folder), "status"], out) == 0
    assert "days left" in out.getvalue()
    target = tmp_path / "center.cert.json"
    assert signer_module.main(["--dir", str(folder), "certificate", "--out", str(target)], out) == 0
    assert sm2.Certificate.from_json(target.read_text()).serial == "00000001"
    out = io.StringIO()
    assert signer_module.main(["--dir", str(tmp_path / "none"), "status"], out) == 1
    assert "signer init" in out.getvalue()
