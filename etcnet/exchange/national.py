"""`etcnet exchange national-sim`: a simulated national center (部中心) front server.

It speaks the protocol of etcnet.exchange.protocol over HTTPS with its own SM2
key and TLS certificate, keeps what it takes in a SQLite file of its own, and
behaves as an operator sets it to (`POST /sim/behaviour`):

    accept       take every message whole, answer 1 (the default)
    answer CODE  answer every message with result CODE (2–8) and take nothing
    drop-acks    take messages, then drop the connection before answering
    twice        deliver each of its messages to the center twice
    down         refuse every call for ``down_for_s`` seconds (default an hour)
    delay_s      wait that long before answering (any mode; a message is taken first)

A transaction package it takes is answered later by a 记账 (its issuers'
accounting result: every ``dispute_every``-th record disputed with code 1), and
`POST /sim/summary {"date": …}` makes that day's 清分统计 from the results it
sent. `POST /sim/queue` (an XML message) signs and queues another message for
the center — how the tests and the demo hand it other provinces' 原始交易包 of
our cards. `GET /sim/state` tells what it holds; `POST /sim/clock` moves its
clock (an hour down passes in a test).

Pure of Django: it is the other organisation, not part of the center.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
import sqlite3
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from etcnet.clearing import packages, simulated
from etcnet.clearing.packages import ResponseResult
from etcnet.exchange import protocol, sm2
from etcnet.exchange.signer import KeyStore

__all__ = ["NationalCenter", "SimulatedParty", "main", "tls_certificate"]

NATIONAL_ID = simulated.NATIONAL_CENTER_ID
MODES = ("accept", "answer", "drop-acks", "twice", "down")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    sender TEXT NOT NULL, message_id INTEGER NOT NULL, sha256 TEXT NOT NULL,
    kind TEXT NOT NULL, result INTEGER NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL,
    clear_date TEXT, count INTEGER, amount_fen INTEGER, body BLOB NOT NULL,
    PRIMARY KEY (sender, message_id));
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, reason TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, receiver TEXT NOT NULL, kind TEXT NOT NULL,
    message_id INTEGER NOT NULL, clear_date TEXT, body BLOB NOT NULL, signature TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0, result INTEGER, answered_at TEXT);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS received_files (
    sender TEXT NOT NULL, file_id INTEGER NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL,
    at TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (sender, file_id));
"""


def tls_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """The front server's TLS certificate and key (made once, self-signed): the
    center trusts exactly this certificate (ETCNET_NATIONAL_TLS_CA)."""
    cert_path, key_path = directory / "tls-cert.pem", directory / "tls-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "national-sim")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=5 * 365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class SimulatedParty:
    """What a simulated counterpart (this national center, a bank in
    etcnet.exchange.banksim) keeps alike: its state table and movable clock, its
    own signing key, and its check of the center's signature."""

    _db: sqlite3.Connection
    _lock: threading.RLock
    keys: KeyStore
    peer: sm2.Certificate

    def _get(self, name: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else default

    def _set(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (name, value))

    def now(self) -> dt.datetime:
        skew = float(self._get("skew_s", "0")) if hasattr(self, "_db") else 0.0
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=skew)

    def advance(self, seconds: float) -> None:
        with self._lock, self._db:
            self._set("skew_s", str(float(self._get("skew_s", "0")) + seconds))

    def sign(self, data: bytes, purpose: str) -> sm2.Signature:
        keys, cert = self.keys.current()
        value, cert = self.keys.sign(sm2.digest(keys.public, data), purpose=purpose, now=self.now())
        return sm2.Signature(signer=cert.subject, serial=cert.serial, value=value)

    def check(self, data: bytes, header: str | None) -> str:
        """Why the center's signature on ``data`` does not hold, or ''."""
        try:
            signature = sm2.Signature.from_header(header)
        except sm2.SignatureError as error:
            return str(error)
        if (signature.signer, signature.serial) != (self.peer.subject, self.peer.serial):
            return (
                f"signature: certificate {signature.serial} of {signature.signer} is not registered"
            )
        if not sm2.verify(self.peer.public, data, signature.value):
            return "signature: does not verify"
        return ""


class NationalCenter(SimulatedParty):
    """The simulator's state and rules, apart from HTTP."""

    def __init__(
        self,
        directory: Path,
        *,
        peer: sm2.Certificate,
        dispute_every: int = 0,
        auto_summary: bool = False,
    ) -> None:
        self.dir = directory
        self.peer = peer
        self.dispute_every = dispute_every
        self.auto_summary = auto_summary
        self.keys = KeyStore(directory / "signer")
        if not self.keys.exists():
            self.keys.init(
                subject=NATIONAL_ID, name="national center (simulated)", years=5, now=self.now()
            )
        self._db = sqlite3.connect(directory / "national.sqlite3", check_same_thread=False)
        self._db.executescript(_SCHEMA)
        with contextlib.suppress(sqlite3.OperationalError):  # a folder made before files
            self._db.execute("ALTER TABLE outbox ADD COLUMN name TEXT")
        self._lock = threading.RLock()

    # -- the clock and the behaviour ---------------------------------------------------

    def behaviour(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._get("behaviour", '{"mode": "accept"}'))
        if data["mode"] == "down" and self.now().timestamp() >= data.get("until", 0):
            data = {"mode": "accept"}
        return data

    def set_behaviour(self, data: dict[str, Any]) -> dict[str, Any]:
        mode = data.get("mode", "accept")
        if mode not in MODES:
            raise ValueError(f"mode: one of {', '.join(MODES)}")
        kept: dict[str, Any] = {"mode": mode, "delay_s": float(data.get("delay_s", 0))}
        if mode == "answer":
            code = int(data.get("code", 0))
            if code not in range(1, 9):
                raise ValueError("code: a §6.2 response result, 1–8")
            kept["code"] = code
        if mode == "down":
            kept["until"] = self.now().timestamp() + float(data.get("down_for_s", 3600))
        with self._lock, self._db:
            self._set("behaviour", json.dumps(kept))
        return kept

    # -- signing ---------------------------------------------------------------------

    def _next_message_id(self) -> int:
        row = self._db.execute("SELECT MAX(message_id) FROM outbox").fetchone()
        return int(row[0] or 0) + 1

    def queue(self, data: bytes, *, kind: str, clear_date: str | None = None) -> int:
        """Sign and queue ``data`` for the center; returns its delivery number."""
        signature = self.sign(data, f"{kind} for {self.peer.subject}")
        header = packages.envelope(data).header
        cursor = self._db.execute(
            "INSERT INTO outbox (receiver, kind, message_id, clear_date, body, signature)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (self.peer.subject, kind, header.message_id, clear_date, data, signature.header()),
        )
        return int(cursor.lastrowid or 0)

    def queue_file(self, data: bytes, name: str) -> int:
        """Sign and queue a file (a status-list version) for the center."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT MAX(message_id) FROM outbox WHERE kind = 'file'"
            ).fetchone()
            file_id = int(row[0] or 0) + 1
            signature = self.sign(data, f"file {name} for {self.peer.subject}")
            cursor = self._db.execute(
                "INSERT INTO outbox (receiver, kind, message_id, body, signature, name)"
                " VALUES (?, 'file', ?, ?, ?, ?)",
                (self.peer.subject, file_id, data, signature.header(), name),
            )
            return int(cursor.lastrowid or 0)

    def take_file(
        self, data: bytes, *, name: str, file_id: int, sender: str, signature: str | None
    ) -> tuple[bytes, sm2.Signature, str]:
        """A file from the center → (our signed answer, its signature, reason)."""
        with self._lock:
            reason = self.check(data, signature)
            if reason:
                with self._db:
                    self._db.execute(
                        "INSERT INTO refused (at, reason, body) VALUES (?, ?, ?)",
                        (self.now().isoformat(), reason, data),
                    )
                result = ResponseResult.HEADER_ERROR
            elif self._db.execute(
                "SELECT 1 FROM received_files WHERE sender = ? AND file_id = ?", (sender, file_id)
            ).fetchone():
                result, reason = ResponseResult.DUPLICATE, "消息重复: this file was taken before"
            else:
                with self._db:
                    self._db.execute(
                        "INSERT INTO received_files VALUES (?, ?, ?, ?, ?, ?)",
                        (sender, file_id, name, hashlib.sha256(data).hexdigest(),
                         self.now().isoformat(), data),
                    )  # fmt: skip
                result = ResponseResult.RECEIVED
            body = protocol.FileAnswer(file_id, result, reason).to_bytes()
            return body, self.sign(body, "file answer"), reason

    # -- messages in -------------------------------------------------------------------

    def take(self, data: bytes, signature: str | None) -> tuple[bytes, sm2.Signature, str]:
        """A message from the center → (our Response, its signature, reason)."""
        with self._lock:
            judged = protocol.judge(data)
            if judged.envelope is None:
                raise ValueError(judged.reason)
            reason = self.check(data, signature)
            result = ResponseResult.RECEIVED
            if reason:
                with self._db:
                    self._db.execute(
                        "INSERT INTO refused (at, reason, body) VALUES (?, ?, ?)",
                        (self.now().isoformat(), reason, data),
                    )
                result = ResponseResult.HEADER_ERROR
            else:
                result, reason = self._take(data, judged)
            answer = protocol.response(judged.envelope, responder=NATIONAL_ID, result=result)
            body = packages.write(answer)
            return body, self.sign(body, "response"), reason

    def _take(self, data: bytes, judged: protocol.Judged) -> tuple[ResponseResult, str]:
        assert judged.envelope is not None
        header = judged.envelope.header
        behaviour = self.behaviour()
        seen = self._db.execute(
            "SELECT sha256 FROM received WHERE sender = ? AND message_id = ?",
            (header.sender_id, header.message_id),
        ).fetchone()
        if seen is not None:
            return ResponseResult.DUPLICATE, "消息重复: this message id was taken before"
        if behaviour["mode"] == "answer":
            return ResponseResult(behaviour["code"]), "the simulator was set to answer so"
        message = judged.message
        if message is None:
            result, reason = judged.result, judged.reason
        elif header.receiver_id != NATIONAL_ID:
            result, reason = ResponseResult.HEADER_ERROR, "Header/ReceiverId: not this center"
        else:
            result, reason = ResponseResult.RECEIVED, ""
        kind = type(message).__name__ if message else "unreadable"
        clear_date, count, amount = None, None, None
        if isinstance(message, packages.TransactionPackage | packages.AccountingResult):
            clear_date = message.clear_target_date.isoformat()
            count, amount = message.count, message.amount_fen
        with self._db:
            self._db.execute(
                "INSERT INTO received VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (header.sender_id, header.message_id, hashlib.sha256(data).hexdigest(), kind,
                 int(result), reason, self.now().isoformat(), clear_date, count, amount, data),
            )  # fmt: skip
            if result == ResponseResult.RECEIVED and isinstance(
                message, packages.TransactionPackage
            ):
                self._answer_package(data, message)
        return result, reason

    def _dispute(self, t: packages.Transaction) -> int | None:
        every = self.dispute_every
        return 1 if every and t.trans_id % every == 0 else None

    def _answer_package(self, data: bytes, package: packages.TransactionPackage) -> None:
        answer = simulated.answer(data, message_id=self._next_message_id(), dispute=self._dispute)
        self.queue(answer, kind="accounting", clear_date=package.clear_target_date.isoformat())

    def summary(self, date: str) -> int:
        """Queue the 清分统计 of ``date`` from the 记账 results sent for it."""
        with self._lock, self._db:
            results = [
                bytes(row[0])
                for row in self._db.execute(
                    "SELECT body FROM outbox WHERE kind = 'accounting' AND clear_date = ?"
                    " ORDER BY id",
                    (date,),
                )
            ]
            if not results:
                raise ValueError(f"date: no accounting results were sent for {date}")
            issuer = packages.envelope(results[0]).header.receiver_id
            body = simulated.summary(
                results,
                message_id=self._next_message_id(),
                issuer_id=issuer[-4:] if len(issuer) > 4 else issuer,
                process_time=self.now().replace(microsecond=0),
            )
            return self.queue(body, kind="summary", clear_date=date)

    # -- messages out ------------------------------------------------------------------

    def next_for(self, party: str) -> tuple[int, bytes, str, str | None, int] | None:
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT id, body, signature, name, message_id FROM outbox WHERE receiver = ?"
                " AND (result IS NULL OR (deliveries < 2 AND ? = 'twice')) ORDER BY id LIMIT 1",
                (party, self.behaviour()["mode"]),
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE outbox SET deliveries = deliveries + 1 WHERE id = ?", (row[0],)
            )
            return int(row[0]), bytes(row[1]), str(row[2]), row[3], int(row[4])

    def answered(self, delivery: int, data: bytes, signature: str | None) -> str:
        """The center's Response to a delivery: '' when taken, else why not."""
        reason = self.check(data, signature)
        if reason:
            return reason
        row = self._db.execute("SELECT kind FROM outbox WHERE id = ?", (delivery,)).fetchone()
        if row is not None and row[0] == "file":
            try:
                answer = protocol.FileAnswer.from_bytes(data)
            except ValueError as error:
                return str(error)
            result, answered_id = int(answer.result), answer.file_id
        else:
            try:
                response = packages.read(data)
            except packages.PackageError as error:
                return str(error)
            if not isinstance(response, packages.Response):
                return "body: expected a Response"
            result, answered_id = int(response.result), response.header.message_id
        with self._lock, self._db:
            updated = self._db.execute(
                "UPDATE outbox SET result = ?, answered_at = ? WHERE id = ? AND message_id = ?",
                (result, self.now().isoformat(), delivery, answered_id),
            ).rowcount
        if updated and self.auto_summary:
            self._summary_when_answered(delivery)
        return "" if updated else f"delivery {delivery}: no such message"

    def _summary_when_answered(self, delivery: int) -> None:
        """Once every 记账 of a day is answered, that day's 清分统计 (once)."""
        with self._lock:
            row = self._db.execute(
                "SELECT clear_date FROM outbox WHERE id = ? AND kind = 'accounting'", (delivery,)
            ).fetchone()
            if row is None or row[0] is None:
                return
            date = str(row[0])
            left = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE clear_date = ? AND (kind = 'summary'"
                " OR (kind = 'accounting' AND result IS NULL))",
                (date,),
            ).fetchone()[0]
            if not left:
                self.summary(date)

    def state(self) -> dict[str, Any]:
        with self._lock:
            received = self._db.execute(
                "SELECT kind, result, COUNT(*), COALESCE(SUM(count), 0),"
                " COALESCE(SUM(amount_fen), 0) FROM received GROUP BY kind, result"
            ).fetchall()
            outbox = self._db.execute(
                "SELECT kind, COUNT(*), SUM(result IS NULL), SUM(deliveries) FROM outbox"
                " GROUP BY kind"
            ).fetchall()
            refused = self._db.execute("SELECT COUNT(*) FROM refused").fetchone()[0]
            files = self._db.execute(
                "SELECT sender, file_id, name FROM received_files ORDER BY sender, file_id"
            ).fetchall()
        return {
            "behaviour": self.behaviour(),
            "received": [
                {"kind": k, "result": r, "messages": n, "records": c, "amount_fen": a}
                for k, r, n, c, a in received
            ],
            "outbox": [
                {"kind": k, "messages": n, "waiting": int(w or 0), "deliveries": int(d or 0)}
                for k, n, w, d in outbox
            ],
            "refused_signatures": refused,
            "files": [{"sender": s, "file_id": i, "name": n} for s, i, n in files],
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > packages.MAX_BYTES:
            raise ValueError("body: too large")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(),
                   {"Content-Type": "application/json"})  # fmt: skip

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        if url.path == "/sim/state":
            return self._json(200, sim.state())
        if sim.behaviour()["mode"] == "down":
            return self._drop()
        if url.path == "/v1/messages":
            party = parse_qs(url.query).get("for", [""])[0]
            found = sim.next_for(party)
            if found is None:
                return self._send(204, b"")
            delivery, body, signature, name, message_id = found
            headers = {
                "Content-Type": protocol.CONTENT_TYPE,
                protocol.SIGNATURE_HEADER: signature,
                protocol.DELIVERY_HEADER: str(delivery),
            }
            if name:
                headers["Content-Type"] = "application/octet-stream"
                headers[protocol.FILE_HEADER] = name
                headers[protocol.FILE_ID_HEADER] = str(message_id)
                headers[protocol.SENDER_HEADER] = NATIONAL_ID
            return self._send(200, body, headers)
        return self._json(404, {"error": "no such call"})

    def do_POST(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        try:
            body = self._body()
            if url.path.startswith("/sim/"):
                return self._control(url.path, body)
            behaviour = sim.behaviour()
            if behaviour["mode"] == "down":
                return self._drop()
            delay = float(behaviour.get("delay_s", 0))
            if url.path == "/v1/messages":
                # Taken first, answered after the delay: a sender that dies
                # meanwhile never hears that its message arrived.
                answer, signature, reason = sim.take(
                    body, self.headers.get(protocol.SIGNATURE_HEADER)
                )
                time.sleep(delay)
                if behaviour["mode"] == "drop-acks":
                    return self._drop()
                headers = {"Content-Type": protocol.CONTENT_TYPE,
                           protocol.SIGNATURE_HEADER: signature.header()}  # fmt: skip
                if reason:
                    headers["X-Etcnet-Reason"] = reason.encode("unicode_escape").decode("ascii")
                return self._send(200, answer, headers)
            if url.path == "/v1/files":
                answer, signature, reason = sim.take_file(
                    body,
                    name=parse_qs(url.query).get("name", [""])[0],
                    file_id=int(self.headers.get(protocol.FILE_ID_HEADER) or 0),
                    sender=self.headers.get(protocol.SENDER_HEADER) or "",
                    signature=self.headers.get(protocol.SIGNATURE_HEADER),
                )
                time.sleep(delay)
                if behaviour["mode"] == "drop-acks":
                    return self._drop()
                headers = {"Content-Type": "application/json"}
                headers[protocol.SIGNATURE_HEADER] = signature.header()
                return self._send(200, answer, headers)
            time.sleep(delay)
            parts = url.path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["v1", "deliveries"] and parts[3] == "response":
                reason = sim.answered(
                    int(parts[2]), body, self.headers.get(protocol.SIGNATURE_HEADER)
                )
                return self._json(400 if reason else 200, {"error": reason} if reason else {})
        except ValueError as error:
            return self._json(400, {"error": str(error)})
        return self._json(404, {"error": "no such call"})

    def _control(self, path: str, body: bytes) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        if url.path == "/sim/queue-file":
            name = parse_qs(url.query).get("name", [""])[0]
            return self._json(200, {"delivery": sim.queue_file(body, name or "file")})
        data = json.loads(body or b"{}") if path != "/sim/queue" else {}
        if path == "/sim/behaviour":
            return self._json(200, sim.set_behaviour(data))
        if path == "/sim/clock":
            sim.advance(float(data.get("advance_s", 0)))
            return self._json(200, {"now": sim.now().isoformat()})
        if path == "/sim/summary":
            return self._json(200, {"delivery": sim.summary(str(data.get("date", "")))})
        if path == "/sim/queue":
            # Any message with a header, malformed bodies included (a test's).
            with sim._lock, sim._db:
                delivery = sim.queue(body, kind="queued")
            return self._json(200, {"delivery": delivery})
        return self._json(404, {"error": "no such call"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: NationalCenter
    verbose: bool


def main(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="etcnet exchange national-sim", description="A simulated national center."
    )
    parser.add_argument("--dir", type=Path, required=True, help="the simulator's own folder")
    parser.add_argument(
        "--peer-cert",
        type=Path,
        required=True,
        help="the provincial center's SM2 certificate (etcnet signer certificate)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8720)
    parser.add_argument(
        "--dispute-every",
        type=int,
        default=0,
        help="dispute every N-th record of a package with code 1 (0: none)",
    )
    parser.add_argument(
        "--auto-summary",
        action="store_true",
        help="send a day's 清分统计 once the center has answered all of its 记账",
    )
    parser.add_argument("--verbose", action="store_true")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        peer = sm2.Certificate.from_json(args.peer_cert.read_bytes())
    except (OSError, sm2.SignatureError) as error:
        out.write(f"error: --peer-cert: {error}\n")
        return 2
    sim = NationalCenter(
        args.dir, peer=peer, dispute_every=args.dispute_every, auto_summary=args.auto_summary
    )
    cert_path, key_path = tls_certificate(args.dir, args.host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    server = _Server((args.host, args.port), _Handler)
    server.sim, server.verbose = sim, args.verbose
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _, cert = sim.keys.current()
    out.write(
        f"national-sim on https://{args.host}:{args.port}/ (SM2 certificate "
        f"{args.dir / 'signer' / 'certificate.json'}, TLS certificate {cert_path}; "
        f"party {cert.subject})\n"
    )
    out.flush()
    server.serve_forever()
    return 0
