"""SM2 signatures with SM3 (GB/T 32918) and the exchange's certificates.

Pure: no Django. GmSSL does the arithmetic (``gmssl_pyx``, compiled); this
module adds what the exchange needs around it:

- the signer's digest ``e = SM3(Z ‖ M)`` with ``Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖
  yG ‖ xA ‖ yA)`` (GB/T 32918.2 §5.5), so that a client hashes a 10,000-record
  package itself and sends the signature server 32 bytes, not the package;
- a certificate: the holder's party id, its SM2 public key and a validity
  period, signed by its issuer (self-signed for a front server; the counterpart
  registers it out of band, docs/exchange.md). It is canonical JSON, so both
  sides hash the same bytes;
- a detached signature (who signed, with which certificate, the DER value),
  written as one header line or one sidecar file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import gmssl_pyx

__all__ = [
    "ALGORITHM",
    "DEFAULT_ID",
    "Certificate",
    "KeyPair",
    "Signature",
    "SignatureError",
    "digest",
    "fingerprint",
    "generate",
    "make_certificate",
    "sign_digest",
    "verify",
    "verify_digest",
    "z_value",
]

ALGORITHM = "SM2-SM3"
#: GB/T 32918's default signer identity (and GmSSL's).
DEFAULT_ID = b"1234567812345678"
_A = bytes.fromhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC")
_B = bytes.fromhex("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93")
_G = bytes.fromhex(
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0"
)
_CERT_VERSION = 1


class SignatureError(ValueError):
    """A signature, key or certificate that does not hold; ``field`` names what."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class KeyPair:
    public: bytes  # 64 bytes, x ‖ y
    private: bytes  # 32 bytes


def generate() -> KeyPair:
    public, private = gmssl_pyx.sm2_key_generate()
    return KeyPair(public=public, private=private)


def public_key(value: str | bytes) -> bytes:
    """A 64-byte point on the curve, from hex or bytes (04-prefixed or not)."""
    try:
        return bytes(gmssl_pyx.normalize_sm2_public_key(value))
    except gmssl_pyx.InvalidValueError as exc:
        raise SignatureError("public_key", "not an SM2 public key") from exc


def z_value(public: bytes, signer_id: bytes = DEFAULT_ID) -> bytes:
    entl = (len(signer_id) * 8).to_bytes(2, "big")
    return bytes(gmssl_pyx.sm3_hash(entl + signer_id + _A + _B + _G + public))


def digest(public: bytes, message: bytes, signer_id: bytes = DEFAULT_ID) -> bytes:
    """The SM3 digest an SM2 signature of ``message`` by ``public``'s holder signs."""
    return bytes(gmssl_pyx.sm3_hash(z_value(public, signer_id) + message))


def sign_digest(private: bytes, value: bytes) -> bytes:
    if len(value) != 32:
        raise SignatureError("digest", "must be 32 bytes (SM3)")
    return bytes(gmssl_pyx.sm2_sign_sm3_digest(private, value))


def verify_digest(public: bytes, value: bytes, signature: bytes) -> bool:
    if len(value) != 32 or not signature:
        return False
    try:
        return bool(gmssl_pyx.sm2_verify_sm3_digest(public, value, signature))
    except gmssl_pyx.GmsslInnerError:
        return False


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    return verify_digest(public, digest(public, message), signature)


def fingerprint(data: bytes) -> str:
    return bytes(gmssl_pyx.sm3_hash(data)).hex()


def _utc(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("certificate times carry their zone")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_utc(value: str, name: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except (TypeError, ValueError) as exc:
        raise SignatureError(name, "must be a UTC time like 2026-12-03T00:00:00Z") from exc


@dataclass(frozen=True)
class Certificate:
    """A party's signing key and its validity, signed by ``issuer``."""

    serial: str
    subject: str  # the holder's party id (16 digits: a center, a bank)
    subject_name: str
    issuer: str
    public_key: str  # hex, 64 bytes
    not_before: str  # UTC, 2026-12-03T00:00:00Z
    not_after: str
    usage: str = "digitalSignature"
    version: int = _CERT_VERSION
    signature: str = field(default="", compare=False)  # hex DER, by the issuer's key

    def body(self) -> bytes:
        fields = asdict(self)
        del fields["signature"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    @property
    def public(self) -> bytes:
        return public_key(self.public_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.body())

    @property
    def valid_from(self) -> dt.datetime:
        return _parse_utc(self.not_before, "not_before")

    @property
    def valid_until(self) -> dt.datetime:
        return _parse_utc(self.not_after, "not_after")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Certificate:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignatureError("certificate", "not JSON") from exc
        if not isinstance(data, dict):
            raise SignatureError("certificate", "not a JSON object")
        names = {
            "serial", "subject", "subject_name", "issuer", "public_key",
            "not_before", "not_after", "usage", "version", "signature",
        }  # fmt: skip
        missing = names - data.keys()
        if missing:
            raise SignatureError("certificate", f"missing {', '.join(sorted(missing))}")
        if data["version"] != _CERT_VERSION:
            raise SignatureError("version", f"unknown certificate version {data['version']!r}")
        for name in names - {"version"}:
            if not isinstance(data[name], str):
                raise SignatureError(name, "must be text")
        cert = cls(**{k: data[k] for k in names})
        public_key(cert.public_key)
        if cert.valid_until <= cert.valid_from:
            raise SignatureError("not_after", "must be after not_before")
        return cert

    def check(self, issuer_public: bytes, at: dt.datetime) -> None:
        """Raise unless the issuer signed it and ``at`` lies in its validity."""
        try:
            value = bytes.fromhex(self.signature)
        except ValueError as exc:
            raise SignatureError("signature", "not hex") from exc
        if not verify(issuer_public, self.body(), value):
            raise SignatureError("signature", "the issuer's signature does not verify")
        if at < self.valid_from:
            raise SignatureError("not_before", f"not valid before {self.not_before}")
        if at >= self.valid_until:
            raise SignatureError("not_after", f"expired at {self.not_after}")


def make_certificate(
    keys: KeyPair,
    *,
    subject: str,
    subject_name: str,
    serial: str,
    not_before: dt.datetime,
    years: int,
    issuer: str | None = None,
    issuer_keys: KeyPair | None = None,
) -> Certificate:
    """A certificate for ``keys``, self-signed unless ``issuer_keys`` are given."""
    end = not_before.replace(year=not_before.year + years)
    unsigned = Certificate(
        serial=serial,
        subject=subject,
        subject_name=subject_name,
        issuer=issuer or subject,
        public_key=keys.public.hex(),
        not_before=_utc(not_before),
        not_after=_utc(end),
    )
    signer = issuer_keys or keys
    value = sign_digest(signer.private, digest(signer.public, unsigned.body()))
    return Certificate(**{**asdict(unsigned), "signature": value.hex()})


@dataclass(frozen=True)
class Signature:
    """A detached SM2 signature: who signed, with which certificate, the value."""

    signer: str
    serial: str
    value: bytes
    algorithm: str = ALGORITHM

    def header(self) -> str:
        """One HTTP header value: ``SM2-SM3 signer=…, serial=…, value=<base64>``."""
        value = base64.b64encode(self.value).decode()
        return f"{self.algorithm} signer={self.signer}, serial={self.serial}, value={value}"

    @classmethod
    def from_header(cls, text: str | None) -> Signature:
        if not text:
            raise SignatureError("signature", "missing")
        algorithm, _, rest = text.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise SignatureError("signature", f"algorithm must be {ALGORITHM}")
        parts: dict[str, str] = {}
        for item in rest.split(","):
            name, sep, value = item.strip().partition("=")
            if sep:
                parts[name] = value
        return cls._from(parts)

    def to_json(self) -> str:
        data = {
            "algorithm": self.algorithm,
            "signer": self.signer,
            "serial": self.serial,
            "value": base64.b64encode(self.value).decode(),
        }
        return json.dumps(data, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Signature:
        try:
            data: Any = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignatureError("signature", "not JSON") from exc
        if not isinstance(data, dict) or data.get("algorithm") != ALGORITHM:
            raise SignatureError("signature", f"algorithm must be {ALGORITHM}")
        return cls._from({k: v for k, v in data.items() if isinstance(v, str)})

    @classmethod
    def _from(cls, parts: dict[str, str]) -> Signature:
        for name in ("signer", "serial", "value"):
            if not parts.get(name):
                raise SignatureError("signature", f"missing {name}")
        try:
            value = base64.b64decode(parts["value"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError("signature", "value is not base64") from exc
        return cls(signer=parts["signer"], serial=parts["serial"], value=value)
