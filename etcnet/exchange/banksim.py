"""`etcnet exchange bank-sim`: a simulated bank's front server (docs/banks.md).

Its own SM2 key (``DIR/signer/``), TLS certificate (``DIR/tls-cert.pem``) and
SQLite file; the files of etcnet.exchange.bankfiles over HTTPS, each signed,
each answered with a signed receipt:

    POST /v1/files                    a file from the center → our receipt
    GET  /v1/files?for=PARTY          the oldest file waiting for PARTY (204: none),
                                      its delivery number in X-Etcnet-Delivery
    POST /v1/deliveries/N/receipt     the center's receipt of delivery N

As a card bank it keeps accounts with balances: a DEBIT file's lines are
collected while the balance holds, else refused (51, insufficient funds), and
answered by a RESULT file. As the settlement bank it executes a TRANSFER
file's instructions once each (by reference) and answers a CONFIRM file. Its
behaviour is switched with ``POST /sim/behaviour``:

    accept         deliver its files as they are made (the default)
    late           keep its files back until ``POST /sim/release``
    twice          deliver each of its files twice
    down           refuse every call (``down_for_s``, default an hour)
    hold_confirm   references of instructions it leaves unconfirmed
    confirm_amount {reference: fen}: confirm with another amount
    reject         references it rejects
    delay_s        wait that long before answering

``POST /sim/accounts {"accounts": {"<bank account>": fen}}`` sets balances;
``POST /sim/retry`` collects the refused lines again with today's balances (a
later RESULT file); ``POST /sim/keys`` makes and sends its shared keys wrapped
under the transport key (``--transport-key-file``); ``POST /sim/queue`` signs
and queues any bytes for the center (a test's malformed file; ``?forge=1``: a
signature of other bytes); ``GET
/sim/state`` says what it holds. Control calls are for the loopback address.

Pure of Django: it is the other organisation, not part of the center.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sqlite3
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from etcnet.exchange import bankfiles, national, sm2
from etcnet.exchange.national import tls_certificate
from etcnet.exchange.signer import KeyStore

__all__ = ["Bank", "main"]

MODES = ("accept", "late", "twice", "down")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (bank_account TEXT PRIMARY KEY, balance_fen INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS received (
    name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL,
    result TEXT NOT NULL, reason TEXT NOT NULL, lines INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, reason TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS debits (
    file TEXT NOT NULL, line INTEGER NOT NULL, account TEXT NOT NULL, bank_account TEXT NOT NULL,
    amount_fen INTEGER NOT NULL, status TEXT NOT NULL, PRIMARY KEY (file, line));
CREATE TABLE IF NOT EXISTS executed (
    reference TEXT PRIMARY KEY, amount_fen INTEGER NOT NULL, confirmed_fen INTEGER NOT NULL,
    status TEXT NOT NULL, bank_reference TEXT NOT NULL, at TEXT NOT NULL,
    payer TEXT NOT NULL, payee TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL,
    signature TEXT NOT NULL, held INTEGER NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 0, result TEXT, answered_at TEXT);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

INSUFFICIENT = ("51", "余额不足 insufficient funds")
NO_ACCOUNT = ("14", "无此账户 no such account")


class Bank(national.SimulatedParty):
    """The simulated bank's state and rules, apart from HTTP."""

    def __init__(
        self,
        directory: Path,
        *,
        bank_id: str,
        name: str,
        peer: sm2.Certificate,
        transport_key: bytes | None = None,
    ) -> None:
        self.dir = directory
        self.id = bank_id
        self.peer = peer
        self.transport_key = transport_key
        self.keys = KeyStore(directory / "signer")
        if not self.keys.exists():
            self.keys.init(subject=bank_id, name=f"{name} (simulated)", years=5, now=self.now())
        self._db = sqlite3.connect(directory / "bank.sqlite3", check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    # -- the clock and the behaviour -----------------------------------------------------

    def behaviour(self) -> dict[str, Any]:
        # A bank never set since it started behaves as accept, with every key.
        data: dict[str, Any] = {
            "mode": "accept", "delay_s": 0.0, "hold_confirm": [], "confirm_amount": {},
            "reject": [], **json.loads(self._get("behaviour", "{}")),
        }  # fmt: skip
        if data["mode"] == "down" and self.now().timestamp() >= data.get("until", 0):
            data = {**data, "mode": "accept"}
        return data

    def set_behaviour(self, data: dict[str, Any]) -> dict[str, Any]:
        mode = data.get("mode", "accept")
        if mode not in MODES:
            raise ValueError(f"mode: one of {', '.join(MODES)}")
        kept: dict[str, Any] = {
            "mode": mode,
            "delay_s": float(data.get("delay_s", 0)),
            "hold_confirm": [str(r) for r in data.get("hold_confirm", [])],
            "confirm_amount": {str(k): int(v) for k, v in data.get("confirm_amount", {}).items()},
            "reject": [str(r) for r in data.get("reject", [])],
        }
        if mode == "down":
            kept["until"] = self.now().timestamp() + float(data.get("down_for_s", 3600))
        with self._lock, self._db:
            self._set("behaviour", json.dumps(kept))
        return kept

    def set_accounts(self, accounts: dict[str, int]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO accounts VALUES (?, ?)",
                [(str(k), int(v)) for k, v in accounts.items()],
            )

    # -- signing -------------------------------------------------------------------------

    def _seq(self, kind: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,)).fetchone()
        return int(row[0]) + 1

    def queue(self, data: bytes, *, kind: str, name: str, forge: bool = False) -> int:
        """Sign and queue ``data`` for the center (a file it made is held back while
        ``late``; one a test queues is not); with ``forge`` the signature is of
        other bytes (a test's altered file)."""
        signature = self.sign(data + b"forged" if forge else data, f"{kind} {name}")
        held = 1 if self.behaviour()["mode"] == "late" and kind != "queued" else 0
        cursor = self._db.execute(
            "INSERT INTO outbox (name, kind, body, signature, held) VALUES (?, ?, ?, ?, ?)",
            (name, kind, data, signature.header(), held),
        )
        return int(cursor.lastrowid or 0)

    def _make(self, kind: str, date: dt.date, records: list[tuple[Any, ...]]) -> int:
        name = bankfiles.file_id(kind, self.id, self.peer.subject, date, self._seq(kind))
        body = bankfiles.write(
            kind, file_id=name, sender=self.id, receiver=self.peer.subject, date=date,
            records=records,
        )  # fmt: skip
        return self.queue(body, kind=kind, name=name)

    # -- files in ----------------------------------------------------------------------

    def take(self, data: bytes, signature: str | None) -> tuple[bytes, sm2.Signature]:
        """A file from the center → (our receipt, its signature)."""
        with self._lock:
            digest = hashlib.sha256(data).hexdigest()
            head = data.split(b"\n", 1)[0].decode("utf-8", "replace").split("|")
            name = head[3] if len(head) > 3 else digest
            reason = self.check(data, signature)
            if reason:
                with self._db:
                    self._db.execute(
                        "INSERT INTO refused (at, reason, body) VALUES (?, ?, ?)",
                        (self.now().isoformat(), reason, data),
                    )
                result = bankfiles.REFUSED
            else:
                result, reason = self._take(data, name, digest)
            body = bankfiles.receipt(file=name, sha256=digest, result=result, reason=reason,
                                     by=self.id)  # fmt: skip
            return body, self.sign(body, "receipt")

    def _take(self, data: bytes, name: str, digest: str) -> tuple[str, str]:
        seen = self._db.execute("SELECT sha256 FROM received WHERE name = ?", (name,)).fetchone()
        if seen is not None:
            if seen[0] == digest:
                return bankfiles.DUPLICATE, ""
            return bankfiles.REFUSED, f"file_id: {name} was taken before with other content"
        try:
            parsed = bankfiles.read(data)
            if parsed.header.receiver.upper() != self.id.upper():
                raise bankfiles.BankFileError(1, "receiver", f"not this bank ({self.id})")
        except bankfiles.BankFileError as error:
            with self._db:
                self._db.execute(
                    "INSERT INTO received VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, digest, "unreadable", self.now().isoformat(), bankfiles.REFUSED,
                     str(error), 0, data),
                )  # fmt: skip
            return bankfiles.REFUSED, str(error)
        kind = parsed.header.kind
        with self._db:
            self._db.execute(
                "INSERT INTO received VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, digest, kind, self.now().isoformat(), bankfiles.RECEIVED, "",
                 parsed.header.count, data),
            )  # fmt: skip
            if kind == "DEBIT":
                self._collect(parsed)
            elif kind == "TRANSFER":
                self._execute(parsed)
        return bankfiles.RECEIVED, ""

    def _collect(self, parsed: bankfiles.BankFile) -> None:
        """Each line collected while the balance holds; one RESULT file answers them."""
        records: list[tuple[Any, ...]] = []
        for r in parsed.records:
            row = self._db.execute(
                "SELECT balance_fen FROM accounts WHERE bank_account = ?", (r["bank_account"],)
            ).fetchone()
            status, code, reason = "C", "", ""
            if row is None:
                status, (code, reason) = "R", NO_ACCOUNT
            elif row[0] < r["amount_fen"]:
                status, (code, reason) = "R", INSUFFICIENT
            else:
                self._db.execute(
                    "UPDATE accounts SET balance_fen = balance_fen - ? WHERE bank_account = ?",
                    (r["amount_fen"], r["bank_account"]),
                )
            self._db.execute(
                "INSERT INTO debits VALUES (?, ?, ?, ?, ?, ?)",
                (parsed.header.file_id, r.number, r["account"], r["bank_account"],
                 r["amount_fen"], status),
            )  # fmt: skip
            records.append(("D", parsed.header.file_id, r.number, r["account"], r["amount_fen"],
                            status, code, reason))  # fmt: skip
        self._make("RESULT", parsed.header.date, records)

    def retry(self) -> int:
        """The refused lines collected again where the balance now holds (a later
        RESULT file); returns how many."""
        with self._lock, self._db:
            rows = self._db.execute(
                "SELECT d.file, d.line, d.account, d.bank_account, d.amount_fen FROM debits d"
                " JOIN accounts a ON a.bank_account = d.bank_account"
                " WHERE d.status = 'R' ORDER BY d.file, d.line"
            ).fetchall()
            records = []
            for file, line, account, bank_account, amount in rows:
                balance = self._db.execute(
                    "SELECT balance_fen FROM accounts WHERE bank_account = ?", (bank_account,)
                ).fetchone()[0]
                if balance < amount:
                    continue
                self._db.execute(
                    "UPDATE accounts SET balance_fen = balance_fen - ? WHERE bank_account = ?",
                    (amount, bank_account),
                )
                self._db.execute(
                    "UPDATE debits SET status = 'C' WHERE file = ? AND line = ?", (file, line)
                )
                records.append(("D", file, line, account, amount, "C", "", ""))
            if records:
                self._make("RESULT", self.now().date(), records)
            return len(records)

    def _execute(self, parsed: bankfiles.BankFile) -> None:
        """Each instruction executed once (by reference); a CONFIRM file answers them."""
        behaviour = self.behaviour()
        records: list[tuple[Any, ...]] = []
        for r in parsed.records:
            ref = r["reference"]
            if ref in behaviour["hold_confirm"]:
                continue
            done = self._db.execute(
                "SELECT confirmed_fen, status, bank_reference, at FROM executed"
                " WHERE reference = ?",
                (ref,),
            ).fetchone()
            if done is None:
                status = "REJ" if ref in behaviour["reject"] else "OK"
                amount = behaviour["confirm_amount"].get(ref, r["amount_fen"])
                count = self._db.execute("SELECT COUNT(*) FROM executed").fetchone()[0]
                bank_ref = f"SIM{count + 1:08d}"
                at = self.now().replace(microsecond=0).isoformat()
                self._db.execute(
                    "INSERT INTO executed VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (ref, r["amount_fen"], amount, status, bank_ref, at, r["payer_account"],
                     r["payee_account"]),
                )  # fmt: skip
                done = (amount, status, bank_ref, at)
            amount, status, bank_ref, at = done
            records.append(("D", parsed.header.file_id, r.number, ref, amount, status, bank_ref,
                            at))  # fmt: skip
        if records:
            self._make("CONFIRM", parsed.header.date, records)

    def make_keys(self, data: dict[str, Any]) -> dict[str, Any]:
        """Our card keys, wrapped under the transport key, in a KEYS file for the
        center; ``bad`` spoils one for a test: ``length`` (a 24-byte key) or ``kcv``."""
        if self.transport_key is None:
            raise ValueError("transport key: start the simulator with --transport-key-file")
        issuer = str(data.get("issuer", "6102"))
        version = int(data.get("key_version", 1))
        clear = {name: bankfiles.new_key() for name in ("purchase", "tac")}
        records: list[tuple[Any, ...]] = []
        for name, key in clear.items():
            wrapped = bankfiles.wrap_key(self.transport_key, key)
            check = bankfiles.kcv(key)
            if data.get("bad") == "length" and name == "tac":
                wrapped = bankfiles.wrap_key(self.transport_key, key + bankfiles.new_key())[:24]
            if data.get("bad") == "kcv" and name == "tac":
                check = "000000"
            records.append(("K", issuer, version, "sm4", name, wrapped.hex().upper(), check))
        for card in data.get("cards", []):
            records.append(("C", *[str(v) for v in card]))
        with self._lock, self._db:
            delivery = self._make("KEYS", self.now().date(), records)
        return {"delivery": delivery, "keys": {n: k.hex().upper() for n, k in clear.items()}}

    # -- files out -------------------------------------------------------------------

    def next_for(self, party: str) -> tuple[int, bytes, str, str] | None:
        if party.upper() != self.peer.subject.upper():
            return None
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT id, body, signature, name FROM outbox WHERE held = 0 AND (result IS NULL"
                " OR (deliveries < 2 AND ? = 'twice')) ORDER BY id LIMIT 1",
                (self.behaviour()["mode"],),
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE outbox SET deliveries = deliveries + 1 WHERE id = ?", (row[0],)
            )
            return int(row[0]), bytes(row[1]), str(row[2]), str(row[3])

    def answered(self, delivery: int, data: bytes, signature: str | None) -> str:
        """The center's receipt of a delivery: '' when taken, else why not."""
        reason = self.check(data, signature)
        if reason:
            return reason
        try:
            receipt = bankfiles.read_receipt(data)
        except ValueError as error:
            return str(error)
        with self._lock, self._db:
            updated = self._db.execute(
                "UPDATE outbox SET result = ?, answered_at = ? WHERE id = ? AND name = ?",
                (receipt["result"], self.now().isoformat(), delivery, receipt["file"]),
            ).rowcount
        return "" if updated else f"delivery {delivery}: no such file"

    def release(self) -> int:
        with self._lock, self._db:
            return int(self._db.execute("UPDATE outbox SET held = 0 WHERE held = 1").rowcount)

    def state(self) -> dict[str, Any]:
        with self._lock:
            db = self._db
            return {
                "behaviour": self.behaviour(),
                "accounts": dict(db.execute("SELECT bank_account, balance_fen FROM accounts")),
                "received": [
                    {"name": n, "kind": k, "result": r, "reason": why, "lines": c}
                    for n, k, r, why, c in db.execute(
                        "SELECT name, kind, result, reason, lines FROM received ORDER BY at, name"
                    )
                ],
                "debits": {
                    status: {"lines": n, "amount_fen": a}
                    for status, n, a in db.execute(
                        "SELECT status, COUNT(*), SUM(amount_fen) FROM debits GROUP BY status"
                    )
                },
                "executed": [
                    {
                        "reference": ref,
                        "amount_fen": a,
                        "confirmed_fen": c,
                        "status": s,
                        "payer": payer,
                        "payee": payee,
                    }
                    for ref, a, c, s, payer, payee in db.execute(
                        "SELECT reference, amount_fen, confirmed_fen, status, payer, payee"
                        " FROM executed ORDER BY reference"
                    )
                ],
                "outbox": [
                    {"name": n, "kind": k, "held": bool(h), "deliveries": d, "result": r}
                    for n, k, h, d, r in db.execute(
                        "SELECT name, kind, held, deliveries, result FROM outbox ORDER BY id"
                    )
                ],
                "refused_signatures": db.execute("SELECT COUNT(*) FROM refused").fetchone()[0],
            }


class _Handler(national._Handler):
    """The national simulator's HTTP plumbing (bodies, answers, dropped
    connections), the bank's calls."""

    server: _Server

    def _local(self) -> bool:
        return str(self.client_address[0]) in ("127.0.0.1", "::1")

    def do_GET(self) -> None:
        bank = self.server.bank
        url = urlsplit(self.path)
        if url.path == "/sim/state" and self._local():
            return self._json(200, bank.state())
        if bank.behaviour()["mode"] == "down":
            return self._drop()
        if url.path == "/v1/files":
            found = bank.next_for(parse_qs(url.query).get("for", [""])[0])
            if found is None:
                return self._send(204, b"")
            delivery, body, signature, name = found
            return self._send(200, body, {
                "Content-Type": bankfiles.CONTENT_TYPE,
                bankfiles.SIGNATURE_HEADER: signature,
                bankfiles.FILE_HEADER: name,
                bankfiles.DELIVERY_HEADER: str(delivery),
            })  # fmt: skip
        return self._json(404, {"error": "no such call"})

    def do_POST(self) -> None:
        bank = self.server.bank
        url = urlsplit(self.path)
        try:
            body = self._body()
            if url.path.startswith("/sim/"):
                if not self._local():
                    return self._json(403, {"error": "control calls are local"})
                return self._bank_control(url.path, body, url.query)
            behaviour = bank.behaviour()
            if behaviour["mode"] == "down":
                return self._drop()
            time.sleep(float(behaviour.get("delay_s", 0)))
            if url.path == "/v1/files":
                answer, signature = bank.take(body, self.headers.get(bankfiles.SIGNATURE_HEADER))
                return self._send(200, answer, {
                    "Content-Type": "application/json",
                    bankfiles.SIGNATURE_HEADER: signature.header(),
                })  # fmt: skip
            parts = url.path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["v1", "deliveries"] and parts[3] == "receipt":
                reason = bank.answered(
                    int(parts[2]), body, self.headers.get(bankfiles.SIGNATURE_HEADER)
                )
                return self._json(400 if reason else 200, {"error": reason} if reason else {})
        except ValueError as error:
            return self._json(400, {"error": str(error)})
        return self._json(404, {"error": "no such call"})

    def _bank_control(self, path: str, body: bytes, query: str) -> None:
        bank = self.server.bank
        data = json.loads(body or b"{}") if path != "/sim/queue" else {}
        if path == "/sim/behaviour":
            return self._json(200, bank.set_behaviour(data))
        if path == "/sim/accounts":
            bank.set_accounts(dict(data.get("accounts", {})))
            return self._json(200, {})
        if path == "/sim/release":
            return self._json(200, {"released": bank.release()})
        if path == "/sim/retry":
            return self._json(200, {"collected": bank.retry()})
        if path == "/sim/keys":
            return self._json(200, bank.make_keys(data))
        if path == "/sim/clock":
            bank.advance(float(data.get("advance_s", 0)))
            return self._json(200, {"now": bank.now().isoformat()})
        if path == "/sim/queue":
            # Any bytes, malformed ones included (a test's), signed as they are.
            head = body.split(b"\n", 1)[0].decode("utf-8", "replace").split("|")
            name = head[3] if len(head) > 3 else hashlib.sha256(body).hexdigest()[:32]
            with bank._lock, bank._db:
                forge = parse_qs(query).get("forge") == ["1"]
                delivery = bank.queue(body, kind="queued", name=name, forge=forge)
            return self._json(200, {"delivery": delivery})
        return self._json(404, {"error": "no such call"})


class _Server(national._Server):
    bank: Bank


def main(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="etcnet exchange bank-sim", description="A simulated bank's front server."
    )
    parser.add_argument("--dir", type=Path, required=True, help="the simulator's own folder")
    parser.add_argument(
        "--peer-cert",
        type=Path,
        required=True,
        help="the provincial center's SM2 certificate (etcnet signer certificate)",
    )
    parser.add_argument("--bank-id", default="0000000000000102", help="its party id (16 hex)")
    parser.add_argument("--name", default="simulated bank")
    parser.add_argument(
        "--transport-key-file",
        type=Path,
        help="the transport key agreed with the center (hex), to wrap its shared keys",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8730)
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
    transport_key = None
    if args.transport_key_file:
        try:
            transport_key = bytes.fromhex(args.transport_key_file.read_text().strip())
        except (OSError, ValueError) as error:
            out.write(f"error: --transport-key-file: {error}\n")
            return 2
        if len(transport_key) != 16:
            out.write("error: --transport-key-file: 16 bytes, hex\n")
            return 2
    bank = Bank(args.dir, bank_id=args.bank_id, name=args.name, peer=peer,
                transport_key=transport_key)  # fmt: skip
    cert_path, key_path = tls_certificate(args.dir, args.host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    server = _Server((args.host, args.port), _Handler)
    server.bank, server.verbose = bank, args.verbose
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _, cert = bank.keys.current()
    out.write(
        f"bank-sim {args.name} on https://{args.host}:{args.port}/ (SM2 certificate "
        f"{args.dir / 'signer' / 'certificate.json'}, TLS certificate {cert_path}; "
        f"party {cert.subject})\n"
    )
    out.flush()
    server.serve_forever()
    return 0
