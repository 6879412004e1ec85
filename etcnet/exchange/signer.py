"""The signature server (签名服务器): a process of its own that holds the center's
SM2 private key and signs for the other processes over an authenticated local
API. No other process reads the key: it lives in the signer's folder (0700, the
key file 0600; in production the folder belongs to a user of its own,
docs/exchange.md) and never crosses the API.

    etcnet signer init [--subject ID] [--name NAME] [--years 5]
    etcnet signer serve [--host 127.0.0.1] [--port 8710] [--init]
    etcnet signer renew [--years 5]
    etcnet signer certificate [--out FILE]
    etcnet signer status

The folder (``--dir``, else ``$ETCNET_SIGNER_DIR``, else ``$ETCNET_DATA_DIR/signer``,
else ``var/signer`` in the checkout, as the center's settings) holds ``key.json``
(the key pair and its certificate's serial), ``certificate.json`` (the current
certificate), ``certificates/`` (every certificate it ever held, for verifying
old signatures), ``client.token`` (the bearer token of the API; the center reads
it) and ``signed.log`` (one JSON line per signature: when, the certificate, the
digest and what the caller said it signs — 防抵赖).

The API (JSON; every call carries ``Authorization: Bearer <token>``):

    GET  /v1/health        the certificate's serial, validity and days left
    GET  /v1/certificate   the current certificate
    POST /v1/sign          {"digest": hex SM3 of Z‖M, "purpose": text}
                           → {"signature": base64 DER, "serial", "signer"}
    POST /v1/verify        {"certificate": json, "digest": hex, "signature": base64}
                           → {"valid": bool}

Pure of Django: it runs without the center's settings or database.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hmac
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from etcnet.exchange import sm2

__all__ = ["DEFAULT_PORT", "KeyStore", "SignerError", "application", "main"]

DEFAULT_PORT = 8710
DEFAULT_YEARS = 5
DEFAULT_SUBJECT = "0000000000006101"
DEFAULT_NAME = "etcnet provincial center"
#: Renewal is due this many days before the certificate ends (status, health).
RENEW_DAYS = 90

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class SignerError(Exception):
    """The signer cannot do what was asked (no key yet, an expired certificate)."""


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (0600) atomically: a crash leaves the old file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def default_dir() -> Path:
    if os.environ.get("ETCNET_SIGNER_DIR"):
        return Path(os.environ["ETCNET_SIGNER_DIR"])
    data = os.environ.get("ETCNET_DATA_DIR")
    # As the center's settings: $ETCNET_DATA_DIR, else var/ in the checkout.
    return (Path(data) if data else Path(__file__).resolve().parents[2] / "var") / "signer"


class KeyStore:
    """The signer's folder: its key, its certificates, its token and its log."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._lock = threading.Lock()
        self._loaded: tuple[float, sm2.KeyPair, sm2.Certificate] | None = None

    @property
    def key_file(self) -> Path:
        return self.dir / "key.json"

    @property
    def token_file(self) -> Path:
        return self.dir / "client.token"

    @property
    def certificate_file(self) -> Path:
        return self.dir / "certificate.json"

    def exists(self) -> bool:
        return self.key_file.exists()

    def init(self, *, subject: str, name: str, years: int, now: dt.datetime) -> sm2.Certificate:
        if self.exists():
            raise SignerError(f"{self.key_file} exists: the signer has its key (use renew)")
        _private_dir(self.dir)
        _private_dir(self.dir / "certificates")
        if not self.token_file.exists():
            _write_private(self.token_file, secrets.token_urlsafe(32) + "\n")
        return self._new_key(subject=subject, name=name, serial=1, years=years, now=now)

    def renew(self, *, years: int, now: dt.datetime) -> sm2.Certificate:
        """A new key pair and certificate; the old certificate stays in certificates/."""
        _, cert = self.current()
        return self._new_key(
            subject=cert.subject,
            name=cert.subject_name,
            serial=int(cert.serial) + 1,
            years=years,
            now=now,
        )

    def _new_key(
        self, *, subject: str, name: str, serial: int, years: int, now: dt.datetime
    ) -> sm2.Certificate:
        keys = sm2.generate()
        cert = sm2.make_certificate(
            keys,
            subject=subject,
            subject_name=name,
            serial=f"{serial:08d}",
            not_before=now.replace(microsecond=0),
            years=years,
        )
        _write_private(self.dir / "certificates" / f"{cert.serial}.json", cert.to_json())
        _write_private(self.certificate_file, cert.to_json())
        key = {"public": keys.public.hex(), "private": keys.private.hex(), "serial": cert.serial}
        _write_private(self.key_file, json.dumps(key) + "\n")
        return cert

    def token(self) -> str:
        return self.token_file.read_text(encoding="utf-8").strip()

    def current(self) -> tuple[sm2.KeyPair, sm2.Certificate]:
        """The key and certificate, read again when `renew` replaced the file."""
        try:
            mtime = self.key_file.stat().st_mtime
        except FileNotFoundError as exc:
            raise SignerError(f"no key in {self.dir}: run `etcnet signer init`") from exc
        with self._lock:
            if self._loaded is None or self._loaded[0] != mtime:
                data = json.loads(self.key_file.read_text(encoding="utf-8"))
                keys = sm2.KeyPair(
                    public=bytes.fromhex(data["public"]), private=bytes.fromhex(data["private"])
                )
                cert = sm2.Certificate.from_json(self.certificate_file.read_text(encoding="utf-8"))
                if cert.serial != data["serial"] or cert.public_key != data["public"]:
                    raise SignerError("key.json and certificate.json belong to different keys")
                self._loaded = (mtime, keys, cert)
            return self._loaded[1], self._loaded[2]

    def sign(
        self, value: bytes, *, purpose: str, now: dt.datetime
    ) -> tuple[bytes, sm2.Certificate]:
        keys, cert = self.current()
        if now >= cert.valid_until:
            raise SignerError(f"certificate {cert.serial} expired at {cert.not_after}: renew it")
        signature = sm2.sign_digest(keys.private, value)
        line = {
            "at": now.astimezone(dt.UTC).isoformat(),
            "serial": cert.serial,
            "digest": value.hex(),
            "purpose": purpose[:200],
        }
        with self._lock, (self.dir / "signed.log").open("a", encoding="utf-8") as log:
            log.write(json.dumps(line, ensure_ascii=False) + "\n")
        return signature, cert


def _json(start: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode()
    start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 1_000_000:
        raise ValueError("body: too large (send the SM3 digest, not the message)")
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ValueError("body: not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("body: not a JSON object")
    return data


def _hex_digest(data: dict[str, Any]) -> bytes:
    try:
        value = bytes.fromhex(str(data.get("digest", "")))
    except ValueError as exc:
        raise ValueError("digest: not hex") from exc
    if len(value) != 32:
        raise ValueError("digest: must be 32 bytes (SM3 of Z‖M)")
    return value


def application(
    store: KeyStore, *, clock: Callable[[], dt.datetime] | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The signer's WSGI application over ``store``."""
    now = clock or (lambda: dt.datetime.now(dt.UTC))

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        given = environ.get("HTTP_AUTHORIZATION", "")
        expected = "Bearer " + store.token()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _json(
                start, "401 Unauthorized", {"error": "authorization: bad or missing token"}
            )
        route = (environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
        try:
            if route == ("GET", "/v1/health"):
                _, cert = store.current()
                left = (cert.valid_until - now()).days
                return _json(
                    start,
                    "200 OK",
                    {
                        "status": "ok" if left > RENEW_DAYS else "renew" if left > 0 else "expired",
                        "subject": cert.subject,
                        "serial": cert.serial,
                        "not_after": cert.not_after,
                        "days_left": left,
                    },
                )
            if route == ("GET", "/v1/certificate"):
                _, cert = store.current()
                return _json(start, "200 OK", json.loads(cert.to_json()))
            if route == ("POST", "/v1/sign"):
                data = _read_json(environ)
                value, cert = store.sign(
                    _hex_digest(data), purpose=str(data.get("purpose", "")), now=now()
                )
                return _json(
                    start,
                    "200 OK",
                    {
                        "signature": base64.b64encode(value).decode(),
                        "serial": cert.serial,
                        "signer": cert.subject,
                    },
                )
            if route == ("POST", "/v1/verify"):
                data = _read_json(environ)
                cert = sm2.Certificate.from_json(json.dumps(data.get("certificate")))
                try:
                    value = base64.b64decode(str(data.get("signature", "")), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise ValueError("signature: not base64") from exc
                valid = sm2.verify_digest(cert.public, _hex_digest(data), value)
                return _json(start, "200 OK", {"valid": valid})
        except SignerError as exc:
            return _json(start, "409 Conflict", {"error": str(exc)})
        except (ValueError, sm2.SignatureError) as exc:
            return _json(start, "400 Bad Request", {"error": str(exc)})
        return _json(start, "404 Not Found", {"error": "no such call"})

    return app


def _print_cert(cert: sm2.Certificate, out: TextIO) -> None:
    out.write(
        f"certificate {cert.serial} of {cert.subject} ({cert.subject_name})\n"
        f"  valid {cert.not_before} to {cert.not_after}\n"
        f"  SM2 public key {cert.public_key}\n"
        f"  SM3 fingerprint {cert.fingerprint}\n"
    )


def main(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="etcnet signer", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="the signer's folder")
    sub = parser.add_subparsers(dest="action", required=True)
    init = sub.add_parser("init", help="make the key pair and its certificate")
    serve = sub.add_parser("serve", help="serve the local API")
    renew = sub.add_parser("renew", help="a new key pair and certificate")
    cert_cmd = sub.add_parser("certificate", help="print or write the current certificate")
    sub.add_parser("status", help="the certificate and the days left")
    for p in (init, serve):
        p.add_argument(
            "--subject",
            default=os.environ.get("ETCNET_CLEARING_SENDER_ID", DEFAULT_SUBJECT),
            help="the center's 16-digit party id",
        )
        p.add_argument("--name", default=DEFAULT_NAME)
    for p in (init, serve, renew):
        p.add_argument("--years", type=int, default=DEFAULT_YEARS)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get("ETCNET_SIGNER_PORT", DEFAULT_PORT))
    )
    serve.add_argument("--init", action="store_true", help="make the key first if there is none")
    cert_cmd.add_argument("--out", type=Path, default=None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    store = KeyStore(args.dir or default_dir())
    now = dt.datetime.now(dt.UTC)
    try:
        if args.action == "init" or (args.action == "serve" and args.init and not store.exists()):
            cert = store.init(subject=args.subject, name=args.name, years=args.years, now=now)
            out.write(f"signer key made in {store.dir}\n")
            _print_cert(cert, out)
            if args.action == "init":
                return 0
        if args.action == "renew":
            old = store.current()[1]
            cert = store.renew(years=args.years, now=now)
            out.write(f"renewed: certificate {old.serial} is replaced by {cert.serial}\n")
            _print_cert(cert, out)
            out.write("register the new certificate with every counterpart (docs/exchange.md)\n")
            return 0
        _, cert = store.current()
        if args.action == "certificate":
            if args.out:
                args.out.write_text(cert.to_json(), encoding="utf-8")
                out.write(f"certificate {cert.serial} written to {args.out}\n")
            else:
                out.write(cert.to_json())
            return 0
        if args.action == "status":
            _print_cert(cert, out)
            left = (cert.valid_until - now).days
            out.write(f"  {left} days left" + (" — renew now\n" if left <= RENEW_DAYS else "\n"))
            return 0
    except SignerError as exc:
        out.write(f"error: {exc}\n")
        return 1
    from waitress import serve as waitress_serve

    out.write(
        f"etcnet signer on http://{args.host}:{args.port}/ (certificate {cert.serial} of "
        f"{cert.subject}, valid to {cert.not_after})\n"
    )
    out.flush()
    waitress_serve(
        application(store), host=args.host, port=args.port, threads=4, ident="etcnet-signer"
    )
    return 0
