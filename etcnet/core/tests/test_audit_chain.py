"""The audit trail's hash chain: sealed events verify; an edit, a deleted row, a
dropped tail or a rewritten chain made with write access to the database (the
append-only triggers dropped, as the database's owner can) makes the proof fail
at that event; appending goes on unsealed and is sealed later, in any id order."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from gmssl_pyx import sm3_hash

from etcnet.core import audit, bulk, chain
from etcnet.core.management.commands.audit import Command as AuditCommand
from etcnet.core.models import ActorType, AuditCheckpoint, AuditEvent

NOW = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)  # 16:00 in Shanghai
TABLES = ("core_auditevent", "core_auditcheckpoint")


def write_event(
    action: str = "cards.lost_reported", *, subject: Any = 7, **data: Any
) -> AuditEvent:
    with transaction.atomic():
        return audit.record(
            actor=None,
            action=action,
            subject=("cards.cardunit", subject),
            before=data.get("before"),
            after=data.get("after", {"state": "lost"}),
        )


def write_events(n: int) -> list[AuditEvent]:
    return [write_event("cards.topped_up", subject=i, after={"amount_fen": i}) for i in range(n)]


def append_with_id(pk: int, action: str) -> AuditEvent:
    [event] = AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                id=pk,
                occurred_at=timezone.now(),
                actor_type=ActorType.SYSTEM,
                action=action,
                subject_type="cards.cardunit",
                subject_id="7",
            )
        ]
    )
    return event


def chain_of() -> list[tuple[int, int | None]]:
    """(id, seq) of every event, in id order."""
    return list(AuditEvent.objects.order_by("id").values_list("id", "seq"))


def raw(statement: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@contextmanager
def owner_access() -> Iterator[None]:
    """Write access as the database's owner has it: the append-only triggers off
    while the block runs, on again afterwards (PostgreSQL: a superuser's session
    that fires no ordinary trigger; SQLite: the triggers dropped and made again)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            saved: list[str] = []
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                f" AND tbl_name IN {TABLES!r}"
            )
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f"DROP TRIGGER {name}")
            saved = [sql for _, sql in triggers]
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("RESET session_replication_role")
            for statement in saved:
                cursor.execute(statement)


def failure_of(proof: chain.Proof) -> tuple[str, int, int | None, str]:
    assert proof.failure is not None
    f = proof.failure
    return f.kind, f.seq, f.event_id, f.action


# -- sealing and verifying ----------------------------------------------------------


@pytest.mark.django_db
def test_an_events_hash_is_sm3_of_the_hash_before_and_its_canonical_bytes():
    # given one event written at a known moment
    with time_machine.travel(NOW, tick=False):
        event = write_event(before={"state": "active"}, after={"state": "lost", "fen": 100})

    # when it is sealed
    sealed = chain.seal()

    # then it is seq 1, hashed after 32 zero bytes over these exact bytes
    expected = (
        f'[{event.pk},1,"2026-12-02T08:00:00.000000+00:00","system",null,"system",'
        '"cards.lost_reported","cards.cardunit","7",{"state":"active"},'
        '{"fen":100,"state":"lost"},""]'
    ).encode()
    digest = bytes(sm3_hash(bytes(32) + expected)).hex()
    assert sealed == chain.Sealed(count=1, head_seq=1, head_hash=digest)
    assert AuditEvent.objects.values_list("seq", "chain_hash").get() == (1, digest)


@pytest.mark.django_db
def test_seal_then_verify_proves_the_chain():
    # given three events, one of them a user's
    events = write_events(3)

    # when they are sealed
    sealed = chain.seal()

    # then they are numbered in id order, each hashed after the one before,
    # one checkpoint holds the head, and verify proves all three
    assert chain_of() == [(e.pk, n) for n, e in enumerate(events, start=1)]
    hashes = list(AuditEvent.objects.order_by("seq").values_list("chain_hash", flat=True))
    assert len(set(hashes)) == 3
    assert all(len(h) == 64 for h in hashes)
    assert sealed == chain.Sealed(count=3, head_seq=3, head_hash=hashes[2])
    assert list(AuditCheckpoint.objects.values_list("first_seq", "last_seq", "head_hash")) == [
        (1, 3, hashes[2])
    ]
    assert chain.verify() == chain.Proof(
        checked=3,
        head_seq=3,
        head_hash=hashes[2],
        checkpoints=1,
        unsealed=0,
        oldest_unsealed=None,
        failure=None,
    )


@pytest.mark.django_db
def test_sealing_twice_changes_nothing():
    write_events(2)
    first = chain.seal()

    again = chain.seal()

    assert again == chain.Sealed(count=0, head_seq=2, head_hash=first.head_hash)
    assert AuditCheckpoint.objects.count() == 1


@pytest.mark.django_db
def test_an_empty_trail_verifies():
    assert chain.seal() == chain.Sealed(count=0, head_seq=0, head_hash="")
    proof = chain.verify()
    assert (proof.ok, proof.checked, proof.checkpoints, proof.unsealed) == (True, 0, 0, 0)


@pytest.mark.django_db
def test_events_appended_after_a_seal_get_the_next_seqs_and_verify_again():
    # given a sealed chain of two
    write_events(2)
    first = chain.seal()

    # when three more are appended, unsealed until the next seal
    later = write_events(3)
    waiting = chain.verify()
    chain.seal()

    # then verify saw them waiting, and now proves all five over two checkpoints
    assert (waiting.ok, waiting.checked, waiting.unsealed) == (True, 2, 3)
    assert waiting.oldest_unsealed == later[0].occurred_at
    assert [seq for _, seq in chain_of()] == [1, 2, 3, 4, 5]
    assert list(AuditCheckpoint.objects.values_list("first_seq", "last_seq")) == [(1, 2), (3, 5)]
    proof = chain.verify()
    assert (proof.ok, proof.checked, proof.checkpoints, proof.unsealed) == (True, 5, 2, 0)
    assert proof.head_hash != first.head_hash


@pytest.mark.django_db
def test_sealing_goes_by_chunks_each_with_its_checkpoint():
    write_events(12)

    sealed = chain.seal(chunk=5)

    assert sealed.count == 12
    assert list(AuditCheckpoint.objects.values_list("first_seq", "last_seq")) == [
        (1, 5),
        (6, 10),
        (11, 12),
    ]
    proof = chain.verify(chunk=4)
    assert (proof.ok, proof.checked, proof.checkpoints) == (True, 12, 3)


@pytest.mark.django_db
def test_a_lower_id_committed_after_a_higher_one_was_sealed_is_sealed_next():
    # given events with ids a and a+100 sealed as seq 1 and 2
    first = write_event("cards.issued")
    high = append_with_id(first.pk + 100, "cards.activated")
    chain.seal()

    # when an event with id a+50 commits only now (a longer transaction, another
    # center process) and the sealer runs again
    append_with_id(first.pk + 50, "cards.lost_reported")
    chain.seal()

    # then it is seq 3, after the higher id, and the chain still verifies
    assert chain_of() == [(first.pk, 1), (first.pk + 50, 3), (high.pk, 2)]
    proof = chain.verify()
    assert (proof.ok, proof.checked) == (True, 3)


@pytest.mark.django_db
def test_events_the_intake_copies_in_are_sealed_like_any_other():
    # given events appended the intake's way (COPY on PostgreSQL, no seq, no hash)
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
        ),
        [
            (NOW, ActorType.SYSTEM, "HH-1", "tolling.transaction_accepted", "t", str(n), {"seq": n})
            for n in range(3)
        ],
    )
    assert list(AuditEvent.objects.values_list("seq", "chain_hash")) == [(None, "")] * 3

    chain.seal()

    assert chain.verify().checked == 3


@pytest.mark.django_db
def test_json_hashes_by_value_so_sqlite_text_and_postgresql_jsonb_agree():
    # given data whose jsonb form differs from the JSON text written: keys of
    # several lengths (jsonb sorts them), 1e23 (jsonb prints 100000000000000000000000,
    # which reads back as an int), 100.0, a tiny float, Chinese, nesting
    after = {
        "zz": [1.5, 100.0, 1e23, 1.5e-07, -0.0, 2**70],
        "a": {"名称": "西安城南", "y": True, "x": None},
        "mm": "line\nbreak",
    }
    write_event(after=after)
    chain.seal()

    # then what the database gives back hashes as sealed
    assert chain.verify().ok


def test_canonical_numbers_are_their_values():
    row = [1, NOW, "system", None, "", "a.b", "t", "1", None]

    def canon(value: Any) -> bytes:
        return chain.canonical(1, [*row, {"n": value}, ""])

    assert canon(100.0) == canon(100) == canon(1e2)
    assert canon(1e23) == canon(10**23)
    assert canon(0.00000015) == canon(1.5e-07)
    assert canon(-0.0) == canon(0)
    assert canon(1.5) != canon(1)
    assert canon("100") != canon(100)
    assert chain.canonical(1, [*row, {"b": 1, "a": 2}, ""]) == chain.canonical(
        1, [*row, {"a": 2, "b": 1}, ""]
    )


# -- what the proof finds ------------------------------------------------------------


@pytest.mark.django_db
def test_an_after_edited_in_the_database_fails_at_that_seq():
    # given a sealed chain of three
    events = write_events(3)
    chain.seal()

    # when someone with write access edits the second event's data in SQL
    with owner_access():
        raw(
            "UPDATE core_auditevent SET after = %s WHERE id = %s",
            ['{"amount_fen": 100000}', events[1].pk],
        )

    # then verify fails at seq 2, naming the event
    proof = chain.verify()
    assert failure_of(proof) == ("hash mismatch", 2, events[1].pk, "cards.topped_up")
    assert proof.checked == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("column", "value"),
    [("action", "cards.unlost"), ("actor_name", "mallory"), ("subject_id", "8")],
)
def test_any_hashed_column_edited_fails(column, value):
    events = write_events(3)
    chain.seal()

    with owner_access():
        raw(f"UPDATE core_auditevent SET {column} = %s WHERE id = %s", [value, events[2].pk])

    assert failure_of(chain.verify())[:3] == ("hash mismatch", 3, events[2].pk)


@pytest.mark.django_db
def test_a_middle_row_deleted_fails_as_a_missing_seq():
    events = write_events(3)
    chain.seal()

    with owner_access():
        raw("DELETE FROM core_auditevent WHERE id = %s", [events[1].pk])

    proof = chain.verify()
    assert failure_of(proof) == ("missing seq", 2, None, "")
    assert proof.failure is not None
    assert f"the chain goes on at seq 3 (event {events[2].pk}, cards.topped_up)" in (
        proof.failure.detail
    )


@pytest.mark.django_db
def test_the_tail_deleted_after_a_checkpoint_fails():
    # given a sealed chain of three
    events = write_events(3)
    chain.seal()
    checkpoint = AuditCheckpoint.objects.get()

    # when its last event is deleted (nothing in the chain itself points past it)
    with owner_access():
        raw("DELETE FROM core_auditevent WHERE id = %s", [events[2].pk])

    # then the checkpoint no longer finds its head
    proof = chain.verify()
    assert failure_of(proof) == ("checkpoint mismatch", 3, None, "")
    assert proof.failure is not None
    assert proof.failure.detail.startswith(f"checkpoint {checkpoint.pk} (sealed 2")
    assert proof.failure.detail.endswith(
        "ends at seq 3, but the chain ends at seq 2 (seq 3 is missing)"
    )


@pytest.mark.django_db
def test_the_sealer_refuses_to_go_on_from_a_dropped_tail():
    # given a chain whose tail was deleted, and a new event
    events = write_events(3)
    chain.seal()
    with owner_access():
        raw("DELETE FROM core_auditevent WHERE id = %s", [events[2].pk])
    write_event()

    # when the sealer runs, it refuses and writes nothing
    with pytest.raises(chain.ChainBroken, match=r"head \(seq 2 .*last checkpoint \(seq 3 "):
        chain.seal()

    assert AuditCheckpoint.objects.count() == 1
    assert AuditEvent.objects.filter(seq__isnull=True).count() == 1


@pytest.mark.django_db
def test_a_chain_rewritten_after_an_edit_fails_at_the_checkpoint():
    # given a sealed chain of four in two seals
    events = write_events(2)
    chain.seal()
    events += write_events(2)
    chain.seal()

    # when the attacker edits event 3 and recomputes its hash and the one after
    with owner_access():
        raw(
            "UPDATE core_auditevent SET after = %s WHERE id = %s",
            ['{"amount_fen": 9}', events[2].pk],
        )
        rows = AuditEvent.objects.order_by("seq").values_list("seq", "chain_hash", *chain._FIELDS)
        previous = ""
        for seq, _, *row in rows:
            previous = chain.link(previous, seq, row)
            raw("UPDATE core_auditevent SET chain_hash = %s WHERE seq = %s", [previous, seq])

    # then every link holds, but the second checkpoint recorded another head
    proof = chain.verify()
    assert failure_of(proof) == ("checkpoint mismatch", 4, events[3].pk, "cards.topped_up")
    assert proof.checked == 3


@pytest.mark.django_db
def test_a_deleted_checkpoint_is_found():
    write_events(2)
    chain.seal()
    write_events(2)
    chain.seal()

    with owner_access():
        raw("DELETE FROM core_auditcheckpoint WHERE first_seq = 1", [])

    kind, seq, _, _ = failure_of(chain.verify())
    assert (kind, seq) == ("checkpoint mismatch", 4)


@pytest.mark.django_db
def test_an_event_sealed_outside_the_sealer_is_found():
    # given a sealed chain of two, and a third event sealed by hand (the UPDATE
    # the triggers let through) with the right hash but no checkpoint
    write_events(2)
    head = chain.seal().head_hash
    third = write_event("cards.unlost")
    row = AuditEvent.objects.values_list(*chain._FIELDS).get(pk=third.pk)
    AuditEvent.objects.filter(pk=third.pk).update(seq=3, chain_hash=chain.link(head, 3, row))

    # then verify finds every link but no checkpoint for it, and the sealer stops
    assert failure_of(chain.verify()) == ("checkpoint mismatch", 3, third.pk, "cards.unlost")
    with pytest.raises(chain.ChainBroken):
        chain.seal()


# -- the database lets the sealer through once, and nothing else --------------------


@contextmanager
def refused() -> Iterator[None]:
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        yield


@pytest.mark.django_db
def test_only_the_seal_itself_is_let_through():
    [sealed] = write_events(1)
    chain.seal()
    unsealed = write_event()
    before = list(AuditEvent.objects.order_by("id").values())

    # a sealed event's seq or hash again
    with refused():
        AuditEvent.objects.filter(pk=sealed.pk).update(seq=99)
    with refused():
        AuditEvent.objects.filter(pk=sealed.pk).update(chain_hash="0" * 64)
    # a seal that changes anything else
    with refused():
        AuditEvent.objects.filter(pk=unsealed.pk).update(seq=99, chain_hash="0" * 64, action="x")
    with refused():
        raw(
            "UPDATE core_auditevent SET seq = 99, chain_hash = %s, after = NULL WHERE id = %s",
            ["0" * 64, unsealed.pk],
        )
    # a seq without a hash
    with refused():
        AuditEvent.objects.filter(pk=unsealed.pk).update(seq=99)

    assert list(AuditEvent.objects.order_by("id").values()) == before


@pytest.mark.django_db
def test_checkpoints_are_append_only():
    write_events(1)
    chain.seal()
    checkpoint = AuditCheckpoint.objects.get()

    with refused():
        AuditCheckpoint.objects.update(head_hash="0" * 64)
    with refused():
        AuditCheckpoint.objects.all().delete()
    with pytest.raises(RuntimeError, match="append-only"):
        checkpoint.save()

    assert AuditCheckpoint.objects.get().head_hash == checkpoint.head_hash


# -- several processes at once ----------------------------------------------------


def _together(*work: Any) -> list[Any]:
    barrier = threading.Barrier(len(work))
    results: list[Any] = [None] * len(work)

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[n] = work[n]()
        except Exception as error:  # the assertion shows it
            results[n] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_sealers_at_once_make_one_chain():
    write_events(30)

    results = _together(lambda: chain.seal(chunk=4), lambda: chain.seal(chunk=4))

    assert sum(r.count for r in results) == 30, results
    assert sorted(seq for _, seq in chain_of()) == list(range(1, 31))
    proof = chain.verify()
    assert (proof.ok, proof.checked, proof.checkpoints) == (True, 30, 8)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer")
@pytest.mark.django_db(transaction=True)
def test_an_event_still_uncommitted_while_a_later_one_is_sealed_is_sealed_next():
    # given a transaction that appended an event and is still open
    appended, go_on = threading.Event(), threading.Event()

    def long_transaction() -> int:
        with transaction.atomic():
            event = write_event("cards.issued")
            appended.set()
            go_on.wait(timeout=10)
        return event.pk

    def meanwhile() -> tuple[int, chain.Sealed]:
        appended.wait(timeout=10)
        later = write_event("cards.activated")
        sealed = chain.seal()
        go_on.set()
        return later.pk, sealed

    early_pk, (later_pk, sealed) = _together(long_transaction, meanwhile)

    # then the sealer saw only the committed one; the earlier id is sealed next
    assert early_pk < later_pk
    assert sealed.count == 1
    chain.seal()
    assert chain_of() == [(early_pk, 2), (later_pk, 1)]
    assert chain.verify().ok


# -- the command ------------------------------------------------------------------


def run_command(*args: str) -> tuple[int, str, str]:
    """`etcnet audit …` as the process runs it: exit status, stdout, stderr."""
    out, err = StringIO(), StringIO()
    command = AuditCommand(stdout=out, stderr=err)
    try:
        command.run_from_argv(["etcnet", "audit", *args])
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_command_seals_verifies_and_exits_1_at_a_break():
    events = write_events(3)

    status, out, _ = run_command("seal")
    head = AuditEvent.objects.get(seq=3).chain_hash
    assert (status, out) == (0, f"sealed 3 event(s): seq 1 to 3, head {head}\n")

    write_event()
    status, out, _ = run_command("verify")
    assert status == 0
    assert out.splitlines()[:2] == [
        "audit chain verified: 3 event(s), seq 1 to 3, 1 checkpoint(s) agree",
        f"head: seq 3 {head}",
    ]
    assert out.splitlines()[2].startswith(
        "unsealed: 1 event(s) waiting for `etcnet audit seal` (the oldest from 20"
    )

    with owner_access():
        raw("UPDATE core_auditevent SET after = NULL WHERE id = %s", [events[1].pk])
    status, out, err = run_command("verify")
    assert status == 1
    assert out == "1 event(s) verified (seq 1 to 1) before the first failure\n"
    assert err.startswith(
        f"CommandError: audit chain broken at seq 2 (event {events[1].pk}, cards.topped_up):"
        " hash mismatch: the event or the hash before it changed after sealing"
    )


@pytest.mark.django_db
def test_the_command_says_when_there_is_nothing_to_do():
    out = StringIO()
    call_command("audit", "seal", stdout=out)
    call_command("audit", "verify", stdout=out)
    assert out.getvalue().splitlines() == [
        "nothing to seal; head empty",
        "audit chain verified: nothing sealed yet",
        "unsealed: none",
    ]


@pytest.mark.django_db
def test_the_command_refuses_a_negative_interval_and_a_broken_head():
    with pytest.raises(CommandError, match="--every must be a number of seconds"):
        call_command("audit", "seal", "--every", "-1")

    events = write_events(2)
    chain.seal()
    with owner_access():
        raw("DELETE FROM core_auditevent WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match="does not match the last checkpoint") as refused_:
        call_command("audit", "seal", stdout=StringIO())
    assert refused_.value.returncode == 1
