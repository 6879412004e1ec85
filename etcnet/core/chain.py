"""The audit trail's hash chain: sealing and verifying (docs/audit.md).

Writers append `AuditEvent` rows without `seq` or `chain_hash` (`audit.record`,
the intake's COPY), so appending never waits on the chain. `seal()` later takes
the unsealed events in id order and gives each the next `seq` and

    chain_hash(n) = SM3(chain_hash(n-1) as 32 bytes ‖ canonical(event n))

with 32 zero bytes before seq 1. One sealer at a time: on PostgreSQL a
transaction-level advisory lock, on SQLite the single writer (`BEGIN IMMEDIATE`,
settings). Each chunk of events is one transaction that also writes its
`AuditCheckpoint`, so the checkpoints tile the chain from seq 1 to its head.

An event committed late with a lower id than one already sealed (a longer
transaction, another center process) is simply sealed by a later seal with a
higher seq: the chain orders by seq, never by id.

`verify()` only reads: it recomputes every hash from seq 1 in seq order, checks
the seqs have no gap and that every checkpoint agrees with the chain, and stops
at the first event that fails. It needs no snapshot: sealing only ever adds
events and checkpoints past the head, each chunk with its checkpoint at once.

`canonical()` defines the bytes hashed; it canonicalizes after reading back, so
an event hashes the same on SQLite (JSON text as written) and on PostgreSQL
(jsonb reorders keys and rewrites numbers: `1e2` comes back as `100`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from gmssl_pyx import sm3_hash

from etcnet.core.models import AuditCheckpoint, AuditEvent

CHUNK = 5_000  # events per seal transaction and per verify read
GENESIS = bytes(32)  # the "hash before" seq 1
# One sealer at a time (pg_advisory_xact_lock key: "auditcha").
_ADVISORY_KEY = 0x61756469_74636861

# What is hashed, in this order (with seq after id). Adding a column to AuditEvent
# changes nothing here: an older event must keep hashing the same.
_FIELDS = (
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "subject_type",
    "subject_id",
    "before",
    "after",
    "request_id",
)
_CHECKPOINT = ("id", "sealed_at", "first_seq", "last_seq", "head_hash")


class ChainBroken(Exception):
    """The chain's head does not match its last checkpoint: sealing stops until
    an operator has looked (`etcnet audit verify` names what differs)."""


@dataclass(frozen=True)
class Sealed:
    count: int  # events sealed by this call
    head_seq: int  # 0: nothing sealed yet
    head_hash: str


@dataclass(frozen=True)
class Failure:
    kind: str  # "hash mismatch" | "missing seq" | "checkpoint mismatch"
    seq: int
    event_id: int | None  # None: no event holds this seq
    action: str
    detail: str

    def __str__(self) -> str:
        event = f" (event {self.event_id}, {self.action})" if self.event_id is not None else ""
        return f"seq {self.seq}{event}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Proof:
    checked: int  # events whose hash was recomputed and found equal
    head_seq: int  # the last good seq (0: none)
    head_hash: str
    checkpoints: int  # checkpoints found to agree
    unsealed: int  # events waiting for the sealer
    oldest_unsealed: dt.datetime | None
    failure: Failure | None

    @property
    def ok(self) -> bool:
        return self.failure is None


def canonical(seq: int, row: Sequence[Any]) -> bytes:
    """The bytes hashed for one event: `row` holds the values of `_FIELDS` as the
    ORM reads them back. A JSON array (UTF-8, non-ASCII escaped as \\uXXXX, no
    whitespace, object keys sorted) of id, seq, occurred_at (UTC, ISO 8601 with
    microseconds), actor_type, actor_id, actor_name, action, subject_type,
    subject_id, before, after, request_id. Numbers inside before/after hash by
    value: an integral one as an integer (100.0 and 1e2 as 100), any other as
    the shortest decimal that reads back as the same double."""
    (
        event_id,
        occurred_at,
        actor_type,
        actor_id,
        actor_name,
        action,
        subject_type,
        subject_id,
        before,
        after,
        request_id,
    ) = row
    fields = [
        event_id,
        seq,
        occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        actor_type,
        actor_id,
        actor_name,
        action,
        subject_type,
        subject_id,
        _by_value(before),
        _by_value(after),
        request_id,
    ]
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _by_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _by_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_by_value(item) for item in value]
    if isinstance(value, float) and math.isfinite(value):
        # jsonb prints an integral numeric without a point (1e+23 -> 100…0), which
        # reads back as an int: take the value the double was written as.
        exact = Decimal(repr(value))
        if exact == exact.to_integral_value():
            return int(exact)
    return value


def link(previous_hash: str, seq: int, row: Sequence[Any]) -> str:
    """The chain hash of the event `row` at `seq` after `previous_hash` (hex; ""
    before seq 1)."""
    before = bytes.fromhex(previous_hash) if previous_hash else GENESIS
    return bytes(sm3_hash(before + canonical(seq, row))).hex()


def seal(*, chunk: int = CHUNK) -> Sealed:
    """Seal every event committed so far, oldest id first.

    Idempotent: with nothing unsealed it writes nothing. Each chunk is its own
    durable transaction (numbers, hashes and the chunk's checkpoint together), so
    a crash loses no sealed work and the next seal goes on from the head. Raises
    `ChainBroken`, writing nothing, if the chain's head does not match the last
    checkpoint (a dropped tail, a forged seal). Writes no audit event: its record
    is the checkpoint, and an event about sealing would never stop needing one.
    """
    count = 0
    while True:
        with transaction.atomic(durable=True):
            _lock()
            head_seq, head_hash = _head()
            rows = list(
                AuditEvent.objects.filter(seq__isnull=True)
                .order_by("id")
                .values_list(*_FIELDS)[:chunk]
            )
            if not rows:
                return Sealed(count, head_seq, head_hash)
            ids, seqs, hashes = [], [], []
            for row in rows:
                head_seq += 1
                head_hash = link(head_hash, head_seq, row)
                ids.append(row[0])
                seqs.append(head_seq)
                hashes.append(head_hash)
            _write(ids, seqs, hashes)
            AuditCheckpoint.objects.create(
                sealed_at=timezone.now(),
                first_seq=seqs[0],
                last_seq=head_seq,
                head_hash=head_hash,
            )
        count += len(rows)
        if len(rows) < chunk:
            return Sealed(count, head_seq, head_hash)


def _lock() -> None:
    # SQLite: the transaction already holds the database's one write lock.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_KEY])


def _head() -> tuple[int, str]:
    """The last sealed event's seq and hash, checked against the last checkpoint."""
    head = (
        AuditEvent.objects.filter(seq__isnull=False)
        .order_by("-seq")
        .values_list("seq", "chain_hash")
        .first()
    )
    last = (
        AuditCheckpoint.objects.order_by("-last_seq").values_list("last_seq", "head_hash").first()
    )
    if head != last:
        said = f"seq {last[0]} {last[1]}" if last else "nothing sealed"
        found = f"seq {head[0]} {head[1]}" if head else "no sealed event"
        raise ChainBroken(
            f"the chain's head ({found}) does not match the last checkpoint ({said});"
            " nothing sealed: run `etcnet audit verify`"
        )
    if head is None:
        return 0, ""
    seq, chain_hash = head
    assert seq is not None
    return seq, chain_hash


def _write(ids: list[int], seqs: list[int], hashes: list[str]) -> None:
    """Sets seq and chain_hash of the events `ids`, touching no other column
    (the database's triggers let nothing else through)."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS e SET seq = d.seq, chain_hash = d.hash"
                " FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS d(id, seq, hash)"
                " WHERE e.id = d.id AND e.seq IS NULL",
                [ids, seqs, hashes],
            )
            written = cursor.rowcount
        else:
            # In-process: one prepared statement run per row costs no round trip.
            cursor.executemany(
                f"UPDATE {table} SET seq = %s, chain_hash = %s WHERE id = %s AND seq IS NULL",
                list(zip(seqs, hashes, ids, strict=True)),
            )
            written = cursor.rowcount
    if written != len(ids):
        # Under the lock nobody else seals: an event vanished or was sealed meanwhile.
        raise ChainBroken(f"sealed {written} of {len(ids)} events; the chunk was rolled back")


def verify(*, chunk: int = CHUNK) -> Proof:
    """Recompute the chain from seq 1 and check it against the checkpoints.

    Read-only. Stops at the first failure: a seq missing from 1, 2, 3, …; an
    event whose recomputed hash differs from the one stored (it or the hash
    before it changed after sealing); a checkpoint that does not agree with the
    chain (a different hash at its seq, a range that does not follow the one
    before, events sealed without one, or a checkpoint past the chain's end).
    """
    # Read before the events: a checkpoint that existed then must find its events.
    last_checkpoint = (
        AuditCheckpoint.objects.order_by("-last_seq").values_list(*_CHECKPOINT, named=True).first()
    )
    checked, head_hash, checkpoints, covered = 0, "", 0, 0
    failure: Failure | None = None
    while failure is None:
        rows = list(
            AuditEvent.objects.filter(seq__gt=checked)
            .order_by("seq")
            .values_list("seq", "chain_hash", *_FIELDS)[:chunk]
        )
        if not rows:
            break
        by_end = {
            c.last_seq: c
            for c in AuditCheckpoint.objects.filter(
                last_seq__gt=checked, last_seq__lte=rows[-1][0]
            ).values_list(*_CHECKPOINT, named=True)
        }
        for seq, stored, *row in rows:
            expected = checked + 1
            if seq != expected:
                failure = Failure(
                    "missing seq",
                    expected,
                    None,
                    "",
                    f"no event holds seq {expected} (deleted, or its seq cleared);"
                    f" the chain goes on at seq {seq} (event {row[0]}, {row[5]})",
                )
                break
            computed = link(head_hash, seq, row)
            if computed != stored:
                failure = Failure(
                    "hash mismatch",
                    seq,
                    row[0],
                    row[5],
                    "the event or the hash before it changed after sealing"
                    f" (stored {stored[:16]}…, recomputed {computed[:16]}…)",
                )
                break
            checkpoint = by_end.get(seq)
            if checkpoint is not None:
                if checkpoint.head_hash != computed:
                    detail = (
                        f"checkpoint {checkpoint.id} (sealed {_local(checkpoint.sealed_at)})"
                        f" recorded {checkpoint.head_hash[:16]}… here, the chain has"
                        f" {computed[:16]}… (the chain was rewritten)"
                    )
                elif checkpoint.first_seq != covered + 1:
                    detail = (
                        f"checkpoint {checkpoint.id} seals seq {checkpoint.first_seq} to"
                        f" {seq}, but the checkpoint before ends at seq {covered}"
                        " (a checkpoint is missing)"
                    )
                else:
                    detail = ""
                if detail:
                    failure = Failure("checkpoint mismatch", seq, row[0], row[5], detail)
                    break
                checkpoints += 1
                covered = seq
            checked, head_hash = seq, computed
    if failure is None and last_checkpoint is not None and last_checkpoint.last_seq > checked:
        failure = Failure(
            "checkpoint mismatch",
            checked + 1,
            None,
            "",
            f"checkpoint {last_checkpoint.id} (sealed {_local(last_checkpoint.sealed_at)})"
            f" ends at seq {last_checkpoint.last_seq}, but the chain ends at seq {checked}"
            f" ({_seqs(checked + 1, last_checkpoint.last_seq)} missing)",
        )
    if failure is None and covered != checked:
        first = AuditEvent.objects.filter(seq=covered + 1).values_list("id", "action").first()
        assert first is not None
        failure = Failure(
            "checkpoint mismatch",
            covered + 1,
            first[0],
            first[1],
            f"{_seqs(covered + 1, checked)} sealed without a checkpoint",
        )
    unsealed = AuditEvent.objects.filter(seq__isnull=True)
    oldest = unsealed.order_by("id").values_list("occurred_at", flat=True).first()
    return Proof(
        checked=checked,
        head_seq=checked,
        head_hash=head_hash,
        checkpoints=checkpoints,
        unsealed=unsealed.count(),
        oldest_unsealed=oldest,
        failure=failure,
    )


def _seqs(first: int, last: int) -> str:
    return f"seq {first} is" if first == last else f"seq {first} to {last} are"


def _local(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S}"
