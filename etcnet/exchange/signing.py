"""Signing through the signature server, verifying against registered certificates.

The center's processes never hold the private key: `sign` hashes the message
itself (SM3 of Z ‖ M, with the signer's public key from its certificate) and
asks the signer (etcnet.exchange.signer) over its local API to sign the 32-byte
digest. `verify` checks a counterpart's detached signature against the
certificate registered for that party and serial (docs/exchange.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.exchange import sm2
from etcnet.exchange.models import PartyCertificate, PartyKind

__all__ = [
    "SignerUnavailable",
    "register",
    "sign",
    "sign_file",
    "signature_file",
    "verify",
    "verify_file",
]

#: The signer's certificate by signer URL, read once per process and after a renewal.
_certificates: dict[str, sm2.Certificate] = {}


class SignerUnavailable(Exception):
    """The signature server did not answer or refused; nothing was signed."""


def _token() -> str:
    if settings.ETCNET_SIGNER_TOKEN:
        return str(settings.ETCNET_SIGNER_TOKEN)
    try:
        return Path(settings.ETCNET_SIGNER_TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SignerUnavailable(f"signer token: {exc}") from exc


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = settings.ETCNET_SIGNER_URL.rstrip("/") + path
    try:
        response = httpx.request(
            method,
            url,
            json=body,
            headers={"Authorization": f"Bearer {_token()}"},
            timeout=settings.ETCNET_SIGNER_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise SignerUnavailable(f"signature server at {url}: {exc}") from exc
    try:
        data = response.json()
    except ValueError as exc:
        raise SignerUnavailable(f"signature server answered {response.status_code}") from exc
    if response.status_code != 200:
        raise SignerUnavailable(f"signature server: {data.get('error', response.status_code)}")
    if not isinstance(data, dict):
        raise SignerUnavailable("signature server: not a JSON object")
    return data


def health() -> dict[str, Any]:
    """The signer's own word on its certificate: status, serial, days left."""
    return _call("GET", "/v1/health")


def certificate() -> sm2.Certificate:
    """The signer's current certificate (asked again after a renewal)."""
    return sm2.Certificate.from_json(json.dumps(_call("GET", "/v1/certificate")))


def _signed(data: bytes, cert: sm2.Certificate, purpose: str) -> dict[str, Any]:
    return _call(
        "POST", "/v1/sign", {"digest": sm2.digest(cert.public, data).hex(), "purpose": purpose}
    )


def sign(data: bytes, *, purpose: str) -> sm2.Signature:
    """The center's signature of ``data``, by the signature server."""
    url = settings.ETCNET_SIGNER_URL
    cert = _certificates.get(url)
    if cert is None:
        cert = _certificates[url] = certificate()
    answer = _signed(data, cert, purpose)
    if answer.get("serial") != cert.serial:
        # Renewed since we read the certificate: hash again with the new key.
        cert = _certificates[url] = certificate()
        answer = _signed(data, cert, purpose)
    return sm2.Signature(
        signer=str(answer["signer"]),
        serial=str(answer["serial"]),
        value=base64.b64decode(str(answer["signature"])),
    )


def signature_file(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def sign_file(path: Path, *, purpose: str) -> sm2.Signature:
    """Sign the file at ``path``; the signature goes beside it as ``NAME.sig``."""
    signature = sign(path.read_bytes(), purpose=purpose)
    signature_file(path).write_text(signature.to_json(), encoding="utf-8")
    return signature


def verify(
    data: bytes,
    signature: sm2.Signature,
    *,
    party: str | None = None,
    at: dt.datetime | None = None,
) -> PartyCertificate:
    """The registered certificate under which ``signature`` verifies ``data``.

    Raises `sm2.SignatureError` naming why not: an unknown party or serial, a
    signer other than ``party``, a revoked or expired certificate, a signature
    that does not verify."""
    if party is not None and signature.signer != party:
        raise sm2.SignatureError("signature", f"signed by {signature.signer}, expected {party}")
    cert = PartyCertificate.objects.filter(party=signature.signer, serial=signature.serial).first()
    if cert is None:
        raise sm2.SignatureError(
            "signature",
            f"no certificate {signature.serial} of {signature.signer} is registered",
        )
    when = at or timezone.now()
    if cert.revoked_at is not None and cert.revoked_at <= when:
        raise sm2.SignatureError("signature", f"certificate {cert.serial} was revoked")
    if not cert.not_before <= when < cert.not_after:
        raise sm2.SignatureError(
            "signature", f"certificate {cert.serial} is not valid at {when:%Y-%m-%d %H:%M}"
        )
    if not sm2.verify(bytes.fromhex(cert.public_key), data, signature.value):
        raise sm2.SignatureError(
            "signature", "does not verify: the message or signature was altered"
        )
    return cert


def verify_file(path: Path, *, party: str | None = None) -> PartyCertificate:
    """Verify the file at ``path`` against its ``NAME.sig``."""
    sig = signature_file(path)
    if not sig.exists():
        raise sm2.SignatureError("signature", f"{sig.name} is missing")
    return verify(path.read_bytes(), sm2.Signature.from_json(sig.read_bytes()), party=party)


def register(text: str | bytes, *, kind: str, actor: Any) -> PartyCertificate:
    """Register a counterpart's certificate (self-signed, checked before it is kept).

    Registering the same certificate again changes nothing; another certificate
    with the same party and serial is refused."""
    cert = sm2.Certificate.from_json(text)
    if kind not in PartyKind.values:
        raise sm2.SignatureError("kind", f"must be one of {', '.join(PartyKind.values)}")
    if cert.issuer != cert.subject:
        raise sm2.SignatureError("issuer", "only self-signed certificates are registered")
    cert.check(cert.public, cert.valid_from)
    with transaction.atomic():
        existing = PartyCertificate.objects.filter(party=cert.subject, serial=cert.serial).first()
        if existing is not None:
            if existing.fingerprint != cert.fingerprint:
                raise sm2.SignatureError(
                    "serial",
                    f"{cert.subject} already has another certificate {cert.serial} registered",
                )
            return existing
        row = PartyCertificate.objects.create(
            party=cert.subject,
            party_name=cert.subject_name,
            kind=kind,
            serial=cert.serial,
            public_key=cert.public_key,
            fingerprint=cert.fingerprint,
            not_before=cert.valid_from,
            not_after=cert.valid_until,
            body=cert.to_json(),
            registered_at=timezone.now(),
            registered_by=str(getattr(actor, "username", actor)),
        )
        audit.record(
            actor=actor,
            action="exchange.certificate_registered",
            subject=row,
            after={
                "party": row.party,
                "kind": kind,
                "serial": row.serial,
                "fingerprint": row.fingerprint,
                "not_after": row.not_after,
            },
        )
    return row
