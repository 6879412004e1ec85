"""SM2 with SM3, certificates and detached signatures (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import gmssl_pyx
import pytest

from etcnet.exchange import sm2

T0 = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def keys() -> sm2.KeyPair:
    return sm2.generate()


def test_the_digest_is_gbt_32918s_so_gmssl_verifies_it_whole(keys: sm2.KeyPair) -> None:
    message = b"<Message>" * 1000
    signature = sm2.sign_digest(keys.private, sm2.digest(keys.public, message))
    # GmSSL computes Z and SM3(Z || M) itself here: the same bytes were signed.
    assert gmssl_pyx.sm2_verify(keys.public, message, signature)
    assert sm2.verify(keys.public, message, signature)
    assert not sm2.verify(keys.public, message + b" ", signature)
    assert not sm2.verify(sm2.generate().public, message, signature)
    assert not sm2.verify(keys.public, message, b"\x30\x00")
    assert not sm2.verify(keys.public, message, b"")


def test_a_digest_must_be_32_bytes(keys: sm2.KeyPair) -> None:
    with pytest.raises(sm2.SignatureError) as caught:
        sm2.sign_digest(keys.private, b"short")
    assert caught.value.field == "digest"


def test_a_certificate_is_valid_five_years_and_checks(keys: sm2.KeyPair) -> None:
    cert = sm2.make_certificate(
        keys, subject="0000000000006101", subject_name="陕西中心", serial="00000001",
        not_before=T0, years=5,
    )  # fmt: skip
    assert cert.not_after == "2031-12-03T08:00:00Z"
    cert.check(keys.public, T0)
    again = sm2.Certificate.from_json(cert.to_json())
    assert again == cert
    assert again.signature == cert.signature
    assert again.fingerprint == cert.fingerprint
    with pytest.raises(sm2.SignatureError) as caught:
        cert.check(keys.public, dt.datetime(2031, 12, 3, 8, 0, tzinfo=dt.UTC))
    assert caught.value.field == "not_after"
    with pytest.raises(sm2.SignatureError) as caught:
        cert.check(keys.public, T0 - dt.timedelta(seconds=1))
    assert caught.value.field == "not_before"


def test_an_altered_certificate_fails_its_check(keys: sm2.KeyPair) -> None:
    cert = sm2.make_certificate(
        keys, subject="0000000000006101", subject_name="c", serial="00000001",
        not_before=T0, years=5,
    )  # fmt: skip
    longer = replace(cert, not_after="2041-12-03T08:00:00Z")
    with pytest.raises(sm2.SignatureError) as caught:
        longer.check(keys.public, T0)
    assert caught.value.field == "signature"
    other = sm2.generate()
    swapped = replace(cert, public_key=other.public.hex())
    with pytest.raises(sm2.SignatureError):
        swapped.check(keys.public, T0)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b"not json", "certificate"),
        (b"[]", "certificate"),
        (b'{"serial": "1"}', "certificate"),
    ],
)
def test_a_malformed_certificate_names_its_field(text: bytes, field: str) -> None:
    with pytest.raises(sm2.SignatureError) as caught:
        sm2.Certificate.from_json(text)
    assert caught.value.field == field


def test_a_certificate_with_a_point_off_the_curve_is_refused(keys: sm2.KeyPair) -> None:
    cert = sm2.make_certificate(
        keys, subject="0000000000006101", subject_name="c", serial="00000001",
        not_before=T0, years=5,
    )  # fmt: skip
    bad = replace(cert, public_key="00" * 64).to_json()
    with pytest.raises(sm2.SignatureError) as caught:
        sm2.Certificate.from_json(bad)
    assert caught.value.field == "public_key"


def test_a_signature_round_trips_as_a_header_and_a_file() -> None:
    signature = sm2.Signature(signer="0000000000006101", serial="00000002", value=b"\x30\x44" * 9)
    assert sm2.Signature.from_header(signature.header()) == signature
    assert sm2.Signature.from_json(signature.to_json()) == signature


@pytest.mark.parametrize(
    "header",
    [None, "", "RSA signer=a, serial=1, value=AA==", "SM2-SM3 signer=a, serial=1",
     "SM2-SM3 signer=a, serial=1, value=***"],
)  # fmt: skip
def test_a_malformed_signature_header_is_refused(header: str | None) -> None:
    with pytest.raises(sm2.SignatureError) as caught:
        sm2.Signature.from_header(header)
    assert caught.value.field == "signature"
