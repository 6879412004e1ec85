"""The center's intake of terminal uploads: every card debit accounted for.

A card's TAC proves that money left its purse. From then on the center may
dispute the transaction, never lose it. So the intake:

- reads each record by a strict schema (`etcnet.tolling.records`); a record that
  cannot be stored as sent is still stored — empty where a field broke its rule,
  with the payload kept in `raw` — and answered `rejected` with code 6 naming
  the field; one bad record never costs the others;
- verifies the TAC of every purchase on one of our own cards, whatever became of
  the card since (lost, cancelled, replaced, a pending top-up), and posts the
  amount the card paid once, by the PSAM's terminal number and sequence;
- records what looks wrong as findings with reference §6.2's codes and their
  evidence (`TollTransaction.findings`) for the disputes queue;
- takes other issuers' cards (another network number) into the store as
  transactions awaiting clearing with their issuer, whose TAC is theirs to verify.

One database transaction per upload: the terminal's row is locked first (one
terminal's uploads to several center processes queue, other terminals do not),
the whole upload is looked up, checked and written in a fixed number of
statements, and the upload's answer is stored with it. A crash loses the whole
upload's work and nothing else; the terminal's retry does it again. Each
terminal posts to its own tolls-payable account, so no row is shared by the
province's uploads.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import FileField
from django.utils import timezone

from etcnet.cards import ledger, vault
from etcnet.cards.models import CardUnit, UnitState
from etcnet.cards.services import purchases
from etcnet.clock.selectors import center_now
from etcnet.core import bulk
from etcnet.core.errors import Conflict
from etcnet.core.models import ActorType, AuditEvent
from etcnet.core.money import MAX_CASH_ROUND_UP_FEN
from etcnet.core.validators import gettext_noop
from etcnet.issuance import images
from etcnet.smartcard.crypto import Alg
from etcnet.tolling import checks, records
from etcnet.tolling.models import (
    Direction,
    DisputeCode,
    Flag,
    RecordKey,
    RecordStatus,
    Terminal,
    TollTransaction,
    Upload,
)

STORED_VALUE, DEBIT, FREE = 22, 23, 0
CARD_PAYMENTS = (STORED_VALUE, DEBIT)
_IN_USE = (UnitState.ACTIVE, UnitState.ISSUED)
_LOCAL = dt.timezone(dt.timedelta(hours=8))  # the card signs Beijing time
_ATTEMPTS = 4
_STORED = ("seq", "payload_hash", "status", "dispute_code", "id")  # what a replay answers from


class UploadConflict(Conflict):
    code = "idempotency_conflict"
    template = gettext_noop("This upload key was already used for a different upload.")


def _hash(value: Any) -> str:
    """The payload's fingerprint: its JSON with sorted keys (orjson), hashed."""
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        # Past 64-bit integers, or a value JSON does not have: the slow way.
        return _legacy_hash(value)
    return hashlib.sha256(data).hexdigest()


def _legacy_hash(value: Any) -> str:
    """The fingerprint as stored before orjson (`json.dumps`): a record stored
    then and sent again still matches."""
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


def _same(stored_hash: str, record_hash: str, record: Any) -> bool:
    return stored_hash == record_hash or stored_hash == _legacy_hash(record)


def _upload_hash(record_hashes: Iterable[str]) -> str:
    return hashlib.sha256("".join(record_hashes).encode()).hexdigest()


def by_card(f: Mapping[str, Any]) -> bool:
    """The record carries a card purchase whose TAC the vault must verify: paid by
    the card, or an exempt exit closed on the card by a zero-amount purchase."""
    return f["payment_type"] in CARD_PAYMENTS or (f["payment_type"] == FREE and bool(f["tac"]))


def own_network(card_no: str) -> bool:
    return card_no[:4] in settings.ETCNET_CARD_NETWORKS


def ingest(terminal: Terminal, *, upload_key: str, records: Sequence[Any]) -> dict[str, Any]:
    """Stores an upload's records once and answers per record: `accepted` (with
    `disputes`, the codes of what the center found, when there are any),
    `duplicate` (the first result), `rejected` (the §6.2 code and the reason),
    `conflict` (the seq was used for another payload; nothing stored) or
    `invalid` (no usable seq). The same upload key with the same payload gets the
    stored answer; with another payload, `UploadConflict` (409)."""
    hashes = [_hash(record) for record in records]
    isolate = False
    for attempt in range(_ATTEMPTS):
        try:
            return _ingest_once(terminal, upload_key, records, hashes, isolate=isolate)
        except _StoreEachAlone:
            # The database refused the upload's rows as one statement: the upload
            # again, each row in a savepoint of its own (the one refused kept as
            # a rejected shell).
            isolate = True
        except (IntegrityError, OperationalError):
            # Another process stored some of these records (or this one's
            # database was busy) between our look-ups and our writes: the
            # whole upload is read again and answered from what is stored.
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _refused(error: DatabaseError) -> bool:
    """A value the database refuses (a check, a range) — not a unique key another
    process stored first, nor a busy database: those make `ingest` answer the
    upload again from what is stored."""
    if isinstance(error, OperationalError):
        return False
    if not isinstance(error, IntegrityError):
        return True
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate != "23505")  # PostgreSQL's unique_violation
    return "UNIQUE constraint failed" not in str(error)  # SQLite


class _StoreEachAlone(Exception):
    """The upload's transactions did not go in as one statement (a value the
    database refuses though the schema let it through)."""


def _ingest_once(
    terminal: Terminal,
    upload_key: str,
    raw_records: Sequence[Any],
    hashes: list[str],
    *,
    isolate: bool = False,
) -> dict[str, Any]:
    payload_hash = _upload_hash(hashes)
    with transaction.atomic(durable=True):
        # The terminal's row is its uploads' lock (one at a time per terminal);
        # taking it by noting that the terminal was seen costs one statement.
        Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=timezone.now())
        existing = Upload.objects.filter(terminal=terminal, upload_key=upload_key).first()
        if existing is not None:
            if existing.payload_hash not in (
                payload_hash,
                _hash(list(raw_records)),
                _upload_hash(_legacy_hash(record) for record in raw_records),
                _legacy_hash(list(raw_records)),
            ):
                raise UploadConflict()
            # The first answer, with the clock read now: the terminal measures its
            # offset from every answer, a replayed one too (the center's clock
            # corrected by its time source, docs/clock.md).
            return {**existing.response, "server_time": center_now().isoformat()}
        batch = _Batch(terminal, upload_key, raw_records, hashes, isolate=isolate)
        results = batch.run()
        if not batch.items and connection.vendor == "postgresql":
            # Nothing new stored (every record a duplicate, a conflict or
            # invalid): only the upload's answer is written, and losing it in a
            # crash loses nothing — sent again, the same answer is worked out
            # from the record keys. So its commit does not wait for the disk.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        response = {
            "upload_key": upload_key,
            "results": results,
            "server_time": center_now().isoformat(),
        }
        now = timezone.now()
        bulk.append_rows(
            Upload,
            ("terminal_id", "upload_key", "payload_hash", "response", "received_at"),
            [(terminal.pk, upload_key, payload_hash, response, now)],
        )
    return response


@dataclass
class _Item:
    """One new record of the upload on its way to the store."""

    index: int
    record: records.Record
    raw: Mapping[str, Any]
    hash: str
    status: str = RecordStatus.ACCEPTED
    code: int | None = None
    reason: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)
    card: CardUnit | None = None
    tac_verified: bool = False
    post_purchase: bool = False
    post_debit_toll: bool = False
    flag: str = ""
    photo: images.PreparedImage | None = None
    pk: int | None = None  # the stored transaction's id

    f: dict[str, Any] = field(init=False, repr=False)  # the record's columns

    def __post_init__(self) -> None:
        self.f = self.record.values

    def reject(self, code: int, reason: str) -> None:
        if self.status != RecordStatus.REJECTED:
            self.status, self.code, self.reason = RecordStatus.REJECTED, code, reason

    def find(self, code: int, kind: str, reason: str, evidence: Mapping[str, Any]) -> None:
        self.findings.append(
            {"code": code, "kind": kind, "reason": reason, "evidence": dict(evidence)}
        )


class _Batch:
    def __init__(
        self,
        terminal: Terminal,
        upload_key: str,
        raw: Sequence[Any],
        hashes: list[str],
        *,
        isolate: bool = False,
    ) -> None:
        self.terminal = terminal
        self.isolate = isolate  # each transaction row in a savepoint of its own
        self.upload_key = upload_key
        self.raw = raw
        self.hashes = hashes
        self.answers: list[dict[str, Any] | None] = [None] * len(raw)
        self.items: list[_Item] = []

    def run(self) -> list[dict[str, Any]]:
        seqs = [records.read_seq(record) for record in self.raw]
        first_index: dict[int, int] = {}
        later: list[int] = []
        for index, seq in enumerate(seqs):
            if seq is None:
                shown = self.raw[index].get("seq") if isinstance(self.raw[index], Mapping) else None
                self.answers[index] = {"seq": shown, "result": "invalid", "code": "bad_seq"}
            elif seq in first_index:
                later.append(index)
            else:
                first_index[seq] = index
        stored = {
            row[0]: dict(zip(_STORED, row, strict=True))
            for row in RecordKey.objects.filter(
                terminal=self.terminal, seq__any=list(first_index)
            ).values_list("seq", "payload_hash", "status", "dispute_code", "transaction_id")
        }
        for seq, index in first_index.items():
            if seq in stored:
                self.answers[index] = _replay(stored[seq], self.hashes[index], self.raw[index])
            else:
                self.items.append(
                    _Item(
                        index=index,
                        record=records.read(self.raw[index], seq),
                        raw=self.raw[index],
                        hash=self.hashes[index],
                    )
                )
        if self.items:
            self._judge()
            self._store()
        for item in self.items:
            self.answers[item.index] = _answer(item)
        for index in later:
            # The same seq twice in one upload: the later one is answered
            # against what the first one left.
            seq = seqs[index]
            assert seq is not None
            first = self.answers[first_index[seq]]
            assert first is not None
            row = {
                "seq": seq,
                "payload_hash": self.hashes[first_index[seq]],
                "status": first.get("first_result", first["result"]),
                "dispute_code": first.get("code"),
                "id": first.get("id"),
            }
            self.answers[index] = _replay(row, self.hashes[index], self.raw[index])
        return [answer for answer in self.answers if answer is not None]

    # -- judging -------------------------------------------------------------

    def _judge(self) -> None:
        lanes = {
            (lane.number, lane.direction)
            for lane in self.terminal.lanes.only("number", "direction")
        }
        own_cards = {
            item.f["card_no"]
            for item in self.items
            if item.f["card_no"] and own_network(item.f["card_no"])
        }
        # Locked in primary-key order, as every service locks a card before its accounts.
        cards = {
            card.card_no: card
            for card in CardUnit.objects.select_for_update()
            .filter(card_no__any=sorted(own_cards))
            .order_by("pk")
        }
        masters = self._masters()
        for item in self.items:
            self._read(item)
            self._rules(item, lanes, masters)
            if by_card(item.f) and item.record.proof_readable:
                self._proof(item, cards)
        self._psam_duplicates()
        self._balances()
        self._center_checks()
        for item in self.items:
            if item.findings and item.code is None:
                item.code = item.findings[0]["code"]

    def _read(self, item: _Item) -> None:
        f = item.f
        if f["exit_time"] is None:
            f["exit_time"] = timezone.now()  # the column cannot be empty
        photo = f.pop("photo")
        if photo:
            prepared = _photo(photo)
            if isinstance(prepared, images.PreparedImage):
                item.photo = prepared
            else:
                item.record.issues.append(
                    records.Issue("photo_jpeg", prepared, f"vehicle photo: {prepared}")
                )
        if item.record.issues:
            first = item.record.issues[0]
            reason = (
                first.message
                if first.field == "photo_jpeg"
                else "; ".join(issue.text() for issue in item.record.issues)
            )
            item.reject(int(DisputeCode.DATA_FIELD), reason)

    def _rules(self, item: _Item, lanes: set[tuple[int, str]], masters: set[str]) -> None:
        f = item.f
        direction = f["direction"]
        if (f["lane_number"], direction) not in lanes:
            item.reject(
                int(DisputeCode.NOT_ALLOWED), f"not an {direction} lane this terminal may work"
            )
        if f["authorised_by"] and f["authorised_by"] not in masters:
            item.flag = str(Flag.FOREIGN_MASTER)
        if direction == Direction.EXIT and f["payable_fen"] > f["fee_fen"] + MAX_CASH_ROUND_UP_FEN:
            item.reject(int(DisputeCode.DATA_FIELD), "fee fields do not add up")
        if f["payment_type"] == FREE and f["amount_fen"]:
            item.reject(int(DisputeCode.DATA_FIELD), "a free passage charged the card")
        if (
            f["payment_type"] in CARD_PAYMENTS
            and direction == Direction.EXIT
            and f["amount_fen"]
            and f["amount_fen"] != f["payable_fen"]
        ):
            item.find(
                int(DisputeCode.DATA_FIELD),
                "debit_differs",
                "the card's debit is not the payable amount",
                {"amount_fen": f["amount_fen"], "payable_fen": f["payable_fen"]},
            )

    def _proof(self, item: _Item, cards: Mapping[str, CardUnit]) -> None:
        """The card's TAC, verified by the vault for our own cards."""
        f = item.f
        card_no = f["card_no"]
        if not card_no or not f["tac"] or f["terminal_trans_seq"] is None:
            item.reject(
                int(DisputeCode.DATA_FIELD), "a card payment without its card, PSAM sequence or TAC"
            )
            return
        if not own_network(card_no):
            # Another issuer's card: its TAC is the issuer's to verify at clearing.
            return
        card = cards.get(card_no)
        if card is None:
            item.reject(int(DisputeCode.NO_CARD), "card number does not exist")
            return
        if card.card_type is None:
            item.reject(int(DisputeCode.CARD_STATE), f"card is {card.state}")
            return
        verified = vault.verify_purchase_tac(
            Alg(card.alg),
            card.internal_no,
            amount=f["amount_fen"],
            trans_type=int(f["trans_type"] or 0),
            terminal_no=bytes.fromhex(self.terminal.psam_terminal_no),
            terminal_seq=int(f["terminal_trans_seq"]).to_bytes(4, "big"),
            when=f["exit_time"].astimezone(_LOCAL).replace(tzinfo=None),
            tac=bytes.fromhex(f["tac"]),
        )
        if not verified:
            item.reject(int(DisputeCode.TAC_FAILED), "the card's TAC does not verify")
            return
        item.card = card
        item.tac_verified = True
        item.post_purchase = True  # posted (a zero amount kept) unless a check below says not
        if f["payment_type"] in CARD_PAYMENTS and f["payment_type"] != card.card_type:
            item.reject(int(DisputeCode.INVALID_TYPE), "payment type is not the card's type")
        if card.state not in _IN_USE:
            item.find(
                int(DisputeCode.CARD_STATE),
                "card_state",
                "the card paid after it left use",
                {"state": card.state, "since": card.updated_at.isoformat()},
            )

    def _psam_duplicates(self) -> None:
        """A PSAM sequence is one purchase: seen again it is a duplicate (code 2),
        never a second debit."""
        proven = [item for item in self.items if item.tac_verified]
        if not proven:
            return
        psam = self.terminal.psam_terminal_no
        seqs = sorted({item.f["terminal_trans_seq"] for item in proven})
        # Every proven purchase is kept once by its PSAM sequence (one index);
        # only for those already kept is the store asked whether a record of
        # this terminal carried it (a duplicate) or it was recorded alone.
        posted = purchases.posted_purchases(psam, seqs)
        taken = (
            set(
                TollTransaction.objects.filter(
                    terminal=self.terminal,
                    terminal_trans_seq__any=sorted(posted),
                    tac_verified=True,
                ).values_list("terminal_trans_seq", flat=True)
            )
            if posted
            else set()
        )
        for item in proven:
            seq = item.f["terminal_trans_seq"]
            if seq in taken:
                item.tac_verified = item.post_purchase = False
                item.status, item.code, item.reason = (
                    RecordStatus.REJECTED,
                    int(DisputeCode.DUPLICATE),
                    "the PSAM sequence was already used",
                )
                continue
            taken.add(seq)
            if seq in posted:
                # Posted already by a purchase recorded alone
                # (`cards.services.record_purchase`): stored, not posted again.
                item.post_purchase = False

    def _balances(self) -> None:
        """A stored-value card's shadow balance meets the debits as the card made
        them; one that would fall below zero is a debit the center did not
        expect (卡帐不符, code 14): posted all the same — the card's log is the truth.
        A card out of use (lost, replaced, cancelled) had its balance moved to a
        hold, which settlement nets the late debits from: its dispute is the
        state (9), not the balance."""
        running: dict[int, int] = {}
        for item in sorted(
            (
                i
                for i in self.items
                if i.post_purchase and i.card and i.card.is_stored_value and i.card.state in _IN_USE
            ),
            key=lambda i: i.f["terminal_trans_seq"],
        ):
            card = item.card
            assert card is not None
            before = running.get(card.pk, card.shadow_balance_fen)
            after = before - item.f["amount_fen"]
            running[card.pk] = after
            if after < 0:
                item.find(
                    int(DisputeCode.BALANCE_MISMATCH),
                    "shadow_below_zero",
                    "the card paid more than the center's shadow balance",
                    {
                        "shadow_before_fen": before,
                        "amount_fen": item.f["amount_fen"],
                        "balance_before_fen": item.f["balance_before_fen"],
                    },
                )

    def _center_checks(self) -> None:
        """The fee recomputed with the tariff in force, and the status list the
        lane held: set-based, a few queries for the whole upload."""
        exits = [
            checks.ExitFacts(
                index=n,
                direction=item.f["direction"],
                station_id=self.terminal.station.node_id,
                entry_station=item.f["entry_station"],
                exit_time=item.f["exit_time"],
                entry_time=item.f["entry_time"],
                vehicle_class=item.f["vehicle_class"],
                vehicle_kind=item.f["vehicle_kind"],
                method=item.f["method"],
                fee_fen=item.f["fee_fen"],
                discount_fen=item.f["discount_fen"],
                payable_fen=item.f["payable_fen"],
                payment_type=item.f["payment_type"],
                intervals=item.f["intervals"],
                special_case=item.f["special_case"],
                authorised_by=item.f["authorised_by"],
                tariff_version=item.f["tariff_version"],
            )
            for n, item in enumerate(self.items)
            if item.f["direction"] == Direction.EXIT and not item.record.issues
        ]
        listed = [
            checks.ListFacts(
                index=n,
                card_no=item.f["card_no"],
                obu_no=item.f["obu_no"],
                list_version=item.f["list_version"],
                exit_time=item.f["exit_time"],
            )
            # Only where the lane let the card through: a lane that refused a
            # listed card and took cash did right.
            for n, item in enumerate(self.items)
            if by_card(item.f) and not item.record.issues
        ]
        found: dict[int, list[checks.Finding]] = defaultdict(list)
        for n, list_ in checks.fee_findings(exits).items():
            found[n].extend(list_)
        for n, list_ in checks.list_findings(listed).items():
            found[n].extend(list_)
        for n, list_ in found.items():
            for finding in list_:
                self.items[n].find(finding.code, finding.kind, finding.reason, finding.evidence)

    def _masters(self) -> set[str]:
        from etcnet.core.roles import Role
        from etcnet.tolling.services import station_staff

        names = {item.f["authorised_by"] for item in self.items} - {""}
        if not names:
            return set()
        return set(
            station_staff(self.terminal.station)
            .filter(username__in=names, groups__name=Role.STATION_MASTER)
            .values_list("username", flat=True)
        )

    # -- storing -------------------------------------------------------------

    def _store(self) -> None:
        now = timezone.now()
        rows = [self._row(item, now) for item in self.items]
        columns = tuple(rows[0])
        if self.isolate:
            # One record the database would not take as read: each in its own
            # savepoint, the one that fails stored as a rejected shell.
            for item, row in zip(self.items, rows, strict=True):
                self._store_alone(item, row, now)
        else:
            try:
                ids = bulk.insert_rows(
                    TollTransaction, columns, [tuple(row.values()) for row in rows]
                )
            except DatabaseError as error:
                if not _refused(error):
                    raise
                # The whole transaction is spoilt: the upload is done again (`ingest`).
                raise _StoreEachAlone() from error
            for item, pk in zip(self.items, ids, strict=True):
                item.pk = pk
        self._keys()
        self._post()
        self._audit(now)

    def _keys(self) -> None:
        """Each stored record's key with its answer (`RecordKey`): a key stored by
        another process since the look-up breaks `record_key_once`, and the
        upload is answered again from what is stored."""
        bulk.append_rows(
            RecordKey,
            (
                "terminal_id",
                "seq",
                "transaction_id",
                "exit_time",
                "payload_hash",
                "status",
                "dispute_code",
            ),
            [
                (
                    self.terminal.pk,
                    item.record.seq,
                    item.pk,
                    item.f["exit_time"],
                    item.hash,
                    item.status,
                    item.code,
                )
                for item in self.items
            ],
        )

    def _row(self, item: _Item, now: dt.datetime) -> dict[str, Any]:
        """The record's columns as stored (attribute names)."""
        row = {
            **self._common(item, now),
            "flag": item.flag,
            "raw": _raw(item) if item.record.issues else None,
            "photo": "",
            **item.f,
        }
        if item.photo is not None:
            field = TollTransaction._meta.get_field("photo")
            assert isinstance(field, FileField)
            name = field.generate_filename(
                None, f"{self.terminal.terminal_id}-{item.record.seq}.{item.photo.extension}"
            )
            row["photo"] = field.storage.save(name, item.photo.content)
        return row

    def _store_alone(self, item: _Item, row: dict[str, Any], now: dt.datetime) -> None:
        try:
            with transaction.atomic():
                item.pk = TollTransaction.objects.create(**row).pk
            return
        except DatabaseError as error:
            if not _refused(error):
                raise
            problem = str(error).splitlines()[0][:120]
        item.status, item.code = RecordStatus.REJECTED, int(DisputeCode.DATA_FIELD)
        item.reason = f"unreadable record: {problem}"
        item.pk = TollTransaction.objects.create(
            **self._common(item, now),
            lane_number=0,
            exit_time=item.f["exit_time"],
            vehicle_class=0,
            method="",
            fee_fen=0,
            payable_fen=0,
            payment_type=item.f["payment_type"] if item.tac_verified else 0,
            card_no=item.f["card_no"],
            card_network=item.f["card_network"],
            amount_fen=item.f["amount_fen"] if item.tac_verified else 0,
            trans_type=item.f["trans_type"] if item.tac_verified else None,
            terminal_trans_seq=item.f["terminal_trans_seq"] if item.tac_verified else None,
            card_trans_no=item.f["card_trans_no"] if item.tac_verified else None,
            tac=item.f["tac"] if item.tac_verified else "",
            raw=_raw(item),
        ).pk
        item.f["payable_fen"] = 0

    def _common(self, item: _Item, now: dt.datetime) -> dict[str, Any]:
        """The columns every stored record has, whatever it says."""
        return {
            "terminal_id": self.terminal.pk,
            "station_id": self.terminal.station_id,
            "seq": item.record.seq,
            "status": item.status,
            "dispute_code": item.code,
            "reason": item.reason[:200],
            "received_at": now,
            "tac_verified": item.tac_verified,
            "findings": item.findings,
        }

    def _post(self) -> None:
        """The debits the TACs prove, and the tolls debit accounts owe: one entry
        for the whole upload (a line per paying account, one for this terminal's
        tolls payable), each purchase kept once beside it."""
        terminal_id = self.terminal.terminal_id
        psam = self.terminal.psam_terminal_no
        paid: list[purchases.Purchase] = []
        owed: list[tuple[str, int]] = []
        for item in self.items:
            card = item.card
            if card is None:
                continue
            f = item.f
            if item.post_purchase:
                paid.append(
                    purchases.Purchase(card, psam, f["terminal_trans_seq"], f["amount_fen"])
                )
            if (
                item.status == RecordStatus.ACCEPTED
                and f["payment_type"] == DEBIT
                and not card.is_stored_value
                and f["payable_fen"] > 0
                and not f["amount_fen"]
            ):
                # A debit card's account owes the toll until its bank settles.
                owed.append((purchases.payer_code(card), f["payable_fen"]))
        purchases.post_purchases(
            paid,
            tolls_code=ledger.tolls_payable_code(terminal_id),
            memo=f"upload {self.upload_key} of {terminal_id}: {len(paid)} purchases,"
            f" {len(owed)} debit tolls",
            idempotency_key=f"upload:{self.terminal.pk}:{_hash(self.upload_key)[:40]}",
            owed=owed,
        )

    def _audit(self, now: dt.datetime) -> None:
        actor = f"terminal {self.terminal.terminal_id}"
        from etcnet.core.middleware import current_request_id

        request_id = current_request_id()
        subject_type = TollTransaction._meta.label_lower
        bulk.append_rows(
            AuditEvent,
            (
                "occurred_at",
                "actor_type",
                "actor_name",
                "action",
                "subject_type",
                "subject_id",
                "after",
                "request_id",
            ),
            [
                (
                    now,
                    ActorType.SYSTEM,
                    actor,
                    f"tolling.transaction_{item.status}",
                    subject_type,
                    str(item.pk),
                    {
                        "seq": item.record.seq,
                        "payable_fen": item.f["payable_fen"],
                        "code": item.code,
                        **({"amount_fen": item.f["amount_fen"]} if item.tac_verified else {}),
                        **(
                            {"disputes": [f["code"] for f in item.findings]}
                            if item.findings
                            else {}
                        ),
                        **({"flag": item.flag} if item.flag else {}),
                    },
                    request_id,
                )
                for item in self.items
                if item.pk is not None
            ],
        )


def _raw(item: _Item) -> dict[str, Any]:
    """The payload as sent, without the photo's bytes (kept as the file, if readable)."""
    raw = {k: v for k, v in item.raw.items() if k != "photo_jpeg"}
    if "photo_jpeg" in item.raw:
        raw["photo_jpeg"] = f"<{len(str(item.raw['photo_jpeg']))} characters>"
    kept: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    return kept


def _photo(encoded: str) -> images.PreparedImage | str:
    """The vehicle photo the collector took (提交图片数据), base64 in the record:
    checked and re-encoded like every uploaded photo; else the problem's code."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "file_not_image"
    prepared = images.prepare(SimpleUploadedFile("vehicle.jpg", raw))
    return prepared if isinstance(prepared, images.PreparedImage) else prepared.code


def _replay(stored: Mapping[str, Any], record_hash: str, record: Any) -> dict[str, Any]:
    if not _same(stored["payload_hash"], record_hash, record):
        return {"seq": stored["seq"], "result": "conflict", "code": "idempotency_conflict"}
    return {
        "seq": stored["seq"],
        "result": "duplicate",
        "first_result": stored["status"],
        "code": stored["dispute_code"],
        "id": stored["id"],
    }


def _answer(item: _Item) -> dict[str, Any]:
    assert item.pk is not None
    accepted = item.status == RecordStatus.ACCEPTED
    answer: dict[str, Any] = {
        "seq": item.record.seq,
        "result": item.status,
        "code": None if accepted else item.code,
        "reason": item.reason,
        "id": item.pk,
    }
    if item.findings:
        answer["disputes"] = sorted(Counter(f["code"] for f in item.findings))
    if item.flag:
        answer["flag"] = item.flag
    return answer
