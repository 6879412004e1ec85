"""The center's ingest rate on PostgreSQL, beside PostgreSQL's own COPY of the same rows.

    python -m benchmarks.ingest [--records N] [--batches 100,1000] [--processes 2]
                                [--cards 20] [--database-url URL]

Works in a scratch database of its own (``etcnet_bench_<pid>``, created on the server
that ``--database-url`` names and dropped at the end; the named database itself is
never touched), migrated from scratch, with a temporary ``ETCNET_DATA_DIR`` for the
key vault, the emulated cards and the PSAM.

Preparation (not timed in the rates): the demo network with an exit lane, an operator
and a clerk, an outlet with emulated stock, ``--cards`` approved applications with a
stored-value card each, issued, activated and topped up, registered terminals with
their provisioned PSAMs (one for the single-process runs, one per process), and real
purchases (1-5 fen each) made in turn by each terminal's own share of the cards
(card n at terminal n mod T: a card does not pay at two lanes at once) with each
terminal's PSAM, each with its own PSAM sequence number and a TAC the card computed:
N per upload size for each terminal.

Then it times, for each upload size B (default 100 and 1,000):

(a) ``etcnet.tolling.services.ingest`` of N new records in uploads of B, each upload
    under a new key, in one process: everything the center does — the strict schema,
    the TAC verified by the key vault, the center's fee and status-list checks, the
    purses debited in the ledger (one entry per upload, a line per card), each
    purchase kept once, the transaction rows, an audit event per record, the upload's
    answer stored — one database transaction per upload; with the statements it sent
    (queries per record: every statement psycopg sends, COPY and key draws included);
(a') with ``--processes`` P > 1 (default 2, one per core of this machine), P
    processes at once, each the center for a terminal of its own uploading N new
    records in uploads of B: every record over the time from the first start to
    the last end — the center as it runs, several processes on one PostgreSQL;

and then
(b) every record of the first terminal sent again in uploads of the largest B under
    new upload keys: each answered as a duplicate from its record key, nothing
    written but the uploads;
    and (b') with P > 1, the other terminals' records sent again, P processes at once;
(c) PostgreSQL's ``COPY ... FROM STDIN`` (binary) of the very rows (a) and (a') stored in
    ``tolling_tolltransaction``, into a table created ``LIKE`` it ``INCLUDING ALL``
    (the same columns, defaults, checks and indexes; no foreign keys), best of three,
    each committed.

Afterwards it checks that every record is accepted with its TAC verified, that each
card's purse and its shadow balance agree with the card, that the tolls payable equal
the purchases and that ``ledger.check() == []``. The issue's targets are printed
beside the figures: >= 10,000 records/s, duplicates >= 50,000/s, <= 0.2 queries per
record.

Exits 2 when PostgreSQL does not answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import multiprocessing
import multiprocessing.queues
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test"
STATION = "S1201005"
EXIT_LANE = 3
EXIT = dt.datetime(2026, 11, 21, 10, 30, 0)  # Asia/Shanghai, as the card signs it
LOCAL = dt.timezone(dt.timedelta(hours=8))
COPY_RUNS = 3
MARGIN_FEN = 1_000  # left on the card after the purchases


@dataclass
class Prepared:
    terminals: list[Any]  # the first uploads alone; each of the others in a process of its own
    records: list[list[dict[str, Any]]]  # per terminal, in PSAM order
    loaded_fen: dict[str, int]  # per card
    spent_fen: dict[str, int]  # per card
    seconds: dict[str, float]

    @property
    def terminal(self) -> Any:
        return self.terminals[0]


@dataclass
class Timed:
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def _database_url(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection to the server's ``postgres`` database."""
    return psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=5)


def _setup_django(url: str, data_dir: str) -> None:
    """Points Django at the scratch database and data directory, then sets it up."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "etcnet.settings"
    os.environ["DATABASE_URL"] = url
    os.environ["ETCNET_DATA_DIR"] = data_dir
    for name in ("ETCNET_KEYS_FILE", "ETCNET_CARD_DIR", "MEDIA_ROOT", "STATIC_ROOT"):
        os.environ.pop(name, None)  # everything under the temporary data directory
    os.environ.pop("ETCNET_KEYS", None)  # the vault reads the generated file only
    os.environ["ETCNET_SMS_SENDER"] = "etcnet.core.sms.MemorySmsSender"
    os.environ["DEBUG"] = "false"  # no query log growing with every statement
    import django

    django.setup()


def card_no(n: int) -> str:
    return f"6101{n + 1:016d}"


def obu_no(n: int) -> str:
    return f"{6101_0000_0000_0000 + n + 1:016d}"


def _prepare(counts: Sequence[int], cards: int) -> Prepared:
    """Everything up to the purchase records with valid TACs, not timed in the
    rates: `counts[t]` records for terminal t, paid in turn by `cards` cards."""
    from django.conf import settings
    from django.core.management import call_command

    from etcnet.cards import devices, vault
    from etcnet.cards import services as cards_
    from etcnet.cards.models import CardUnit, UnitKind
    from etcnet.issuance import samples
    from etcnet.issuance import services as issuance
    from etcnet.issuance.models import Outlet
    from etcnet.network import services as network
    from etcnet.smartcard import ops
    from etcnet.smartcard.transport import open_emulated
    from etcnet.tolling import services as tolling

    # The test helpers of the repository's root conftest.py, loaded by name so that
    # mypy checks this module, not the test helpers.
    helpers: Any = importlib.import_module("conftest")
    complete_application, make_user, photo = (
        helpers.complete_application,
        helpers.make_user,
        helpers.photo,
    )
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    seconds["migrate"] = time.perf_counter() - start

    start = time.perf_counter()
    key_file = os.path.join(str(settings.DATA_DIR), "keys.json")
    vault.generate_key_file(Path(key_file))
    settings.ETCNET_KEYS_FILE = key_file
    vault.reset_cache()

    operator = make_user("olga", "center_operator")
    outlet = Outlet.objects.create(code="610101001", name="西安城南网点")
    clerk = make_user("alice", "issuance_clerk", outlet=outlet)
    network.import_bundle(
        _demo_bundle(), effective_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), actor=operator
    )
    network.add_lane(STATION, number=EXIT_LANE, direction="exit", lane_type="mixed", actor=operator)
    numbers = [card_no(n) for n in range(cards)]
    cards_.receive_batch(
        kind=UnitKind.CARD, reference="C-BENCH", serials=numbers, emulated=True, actor=clerk
    )
    cards_.receive_batch(
        kind=UnitKind.OBU,
        reference="O-BENCH",
        serials=[obu_no(n) for n in range(cards)],
        emulated=True,
        actor=clerk,
    )
    total = sum(counts)
    amounts = [[1 + i % 5 for i in range(count)] for count in counts]
    # Each terminal's lane sees cards of its own (card n at terminal n mod T): a
    # card does not pay at two lanes at once, and the processes do not queue on
    # each other's card locks.
    paying = [numbers[t :: len(counts)] or numbers for t in range(len(counts))]
    spent = dict.fromkeys(numbers, 0)
    for t, per_terminal in enumerate(amounts):
        for i, amount in enumerate(per_terminal):
            spent[paying[t][i % len(paying[t])]] += amount
    loaded: dict[str, int] = {}
    for n, number in enumerate(numbers):
        application = complete_application(
            clerk,
            customer=samples.personal_customer(id_number=samples.resident_id(seq=f"{n + 100:03d}")),
            vehicle=samples.passenger_car(
                plate=f"陕A{10000 + n:05d}", vin=samples.vin(serial=f"{200000 + n:06d}")
            ),
            phone=f"1380013{n:04d}",  # one phone's verification codes are rate-limited
        )
        if not issuance.submit_application(application.pk, actor=clerk).approved:
            raise RuntimeError("a sample application was not approved")
        binding = cards_.issue(
            application.pk, card_no=number, contract_no=obu_no(n), card_type=22, actor=clerk
        )
        cards_.activate(binding.pk, photo=photo("obu"), actor=clerk)
        topped, target = 0, spent[number] + MARGIN_FEN
        while topped < target:
            amount = min(cards_.MAX_TOP_UP_FEN, target - topped)
            cards_.top_up(
                number,
                amount_fen=amount,
                channel="cash",
                idempotency_key=f"bench-{number}-{topped}",
                actor=clerk,
            )
            topped += amount
        loaded[number] = topped
    terminals, psams = [], []
    for t in range(len(counts)):
        terminal, _secret, psam_file = tolling.register_terminal(
            f"HH-BENCH-{t + 1}", station_id=STATION, lanes=[EXIT_LANE], actor=operator
        )
        terminals.append(terminal)
        psams.append(psam_file)
    seconds["setup"] = time.perf_counter() - start

    start = time.perf_counter()
    card_ts = {
        number: devices.open_unit(CardUnit.objects.get(card_no=number)) for number in numbers
    }
    records: list[list[dict[str, Any]]] = []
    for t, per_terminal in enumerate(amounts):
        psam_t = open_emulated(psams[t])
        made = []
        for i, amount in enumerate(per_terminal):
            when = EXIT + dt.timedelta(seconds=7 * i)
            card_t = card_ts[paying[t][i % len(paying[t])]]
            result = ops.purchase(card_t, psam_t, amount=amount, when=when)
            made.append(_record(result, seq=i + 1, when=when))
        records.append(made)
    seconds["purchases"] = time.perf_counter() - start
    assert sum(len(r) for r in records) == total
    return Prepared(terminals, records, loaded, spent, seconds)


def _demo_bundle() -> Path:
    import etcnet.network

    return Path(etcnet.network.__file__).resolve().parent / "demo_bundle"


def _record(result: Any, *, seq: int, when: dt.datetime) -> dict[str, Any]:
    """The upload record a terminal sends for a completed purchase (as in the tests)."""
    return {
        "seq": seq,
        "lane": EXIT_LANE,
        "exit_time": when.replace(tzinfo=LOCAL).isoformat(),
        "entry_station": "S1201001",
        "card_no": result.card_no,
        "plate": "陕A12345",
        "plate_color": 0,
        "vehicle_class": 1,
        "method": "path",
        "fee_fen": result.amount,
        "discount_fen": 0,
        "payable_fen": result.amount,
        "payment_type": 22,
        "amount_fen": result.amount,
        "trans_type": result.trans_type,
        "terminal_trans_seq": int.from_bytes(result.terminal_seq, "big"),
        "tac": result.tac.hex().upper(),
        "collector": "carl",
        "shift": "S1",
    }


def _ingest_all(
    terminal: Any, records: list[dict[str, Any]], batch: int, prefix: str
) -> tuple[Timed, dict[str, int]]:
    """Times ingest of ``records`` in uploads of ``batch``; the answers by result."""
    from etcnet.tolling.services import ingest

    results: dict[str, int] = {}
    start = time.perf_counter()
    for number, first in enumerate(range(0, len(records), batch)):
        answer = ingest(
            terminal, upload_key=f"{prefix}-{number:06d}", records=records[first : first + batch]
        )
        for item in answer["results"]:
            results[item["result"]] = results.get(item["result"], 0) + 1
    return Timed(len(records), time.perf_counter() - start), results


def _counts() -> dict[str, int]:
    from etcnet.cards.models import JournalEntry, Posting
    from etcnet.core.models import AuditEvent
    from etcnet.tolling.models import TollTransaction, Upload

    return {
        "transactions": TollTransaction.objects.count(),
        "audit events": AuditEvent.objects.count(),
        "journal entries": JournalEntry.objects.count(),
        "postings": Posting.objects.count(),
        "uploads": Upload.objects.count(),
    }


def _verify(prepared: Prepared) -> list[str]:
    """What must hold after the ingest; an empty list when it all does."""
    from etcnet.cards import devices, ledger
    from etcnet.cards.models import CardUnit
    from etcnet.tolling.models import TollTransaction

    problems = list(ledger.check())
    n = sum(len(records) for records in prepared.records)
    good = TollTransaction.objects.filter(status="accepted", tac_verified=True).count()
    if good != n or TollTransaction.objects.count() != n:
        problems.append(f"{good} of {n} transactions accepted with a verified TAC")
    for card in CardUnit.objects.filter(card_no__in=list(prepared.loaded_fen)):
        expected = prepared.loaded_fen[card.card_no] - prepared.spent_fen[card.card_no]
        on_card = devices.read_card(card).balance
        if card.shadow_balance_fen != expected or on_card != expected:
            problems.append(
                f"card {card.card_no}: shadow {card.shadow_balance_fen}, card {on_card},"
                f" expected {expected}"
            )
    spent = sum(prepared.spent_fen.values())
    if ledger.tolls_payable_total() != -spent:
        problems.append(f"tolls payable {ledger.tolls_payable_total()}, spent {spent}")
    return problems


def _in_processes(
    prepared: Prepared, batch: int, prefix: str, part: slice
) -> tuple[Timed, dict[str, int], str]:
    """Each terminal but the first uploads the `part` of its records (under new
    upload keys starting `prefix`) from a process of its own, all starting together: the
    rate is every record over the time from the first start to the last end (one
    PostgreSQL, like several center processes)."""
    from django.db import connections

    jobs = list(zip(prepared.terminals[1:], prepared.records[1:], strict=True))
    connections.close_all()  # each process opens its own connection
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(jobs))
    answers: multiprocessing.queues.Queue[Any] = context.Queue()

    def work(terminal: Any, records: list[dict[str, Any]], number: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        _timed, results = _ingest_all(terminal, records[part], batch, f"{prefix}{number}")
        answers.put((start, time.perf_counter(), results))
        connections.close_all()

    workers = [
        context.Process(target=work, args=(terminal, records, n))
        for n, (terminal, records) in enumerate(jobs)
    ]
    for worker in workers:
        worker.start()
    got = [answers.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    results: dict[str, int] = {}
    for _, _, answered in got:
        for key, value in answered.items():
            results[key] = results.get(key, 0) + value
    rows = sum(len(records[part]) for _, records in jobs)
    spans = ", ".join(f"{end - start:.2f}" for start, end, _ in got)
    wall = max(end for _, end, _ in got) - min(start for start, _, _ in got)
    return Timed(rows, wall), results, spans


def _parallel(
    prepared: Prepared,
    batch: int,
    expected: str,
    label: str,
    rows: list[tuple[str, Timed, str]],
    problems: list[str],
    part: slice,
) -> Timed:
    """`_in_processes`, its row added to `rows`; a problem noted unless every
    record is answered `expected`."""
    timed, results, spans = _in_processes(prepared, batch, f"p-{expected}-{batch}-", part)
    if results != {expected: timed.rows}:
        problems.append(f"{label}: answered {results}")
    rows.append((label, timed, f"each process: {spans} s"))
    return timed


def _copy_rate(url: str) -> tuple[Timed, int]:
    """PostgreSQL's COPY FROM STDIN of the stored transaction rows: best of three."""
    with psycopg.connect(url) as conn:
        data = bytearray()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY (SELECT * FROM tolling_tolltransaction ORDER BY id) TO STDOUT (FORMAT binary)"
            ) as copy,
        ):
            for chunk in copy:
                data += chunk
        rows = conn.execute("SELECT count(*) FROM tolling_tolltransaction").fetchone()
        count = int(rows[0]) if rows else 0
        conn.execute("CREATE TABLE bench_copy (LIKE tolling_tolltransaction INCLUDING ALL)")
        conn.commit()
        best = float("inf")
        for _ in range(COPY_RUNS):
            conn.execute("TRUNCATE bench_copy")
            conn.commit()
            start = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy("COPY bench_copy FROM STDIN (FORMAT binary)") as copy,
            ):
                copy.write(bytes(data))
            conn.commit()
            best = min(best, time.perf_counter() - start)
        copied = conn.execute("SELECT count(*) FROM bench_copy").fetchone()
        if not copied or int(copied[0]) != count:
            raise RuntimeError("COPY did not store every row")
    return Timed(count, best), len(data)


def _show(conn: psycopg.Connection[tuple[Any, ...]], setting: str) -> str:
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
    return str(row[0]) if row else "?"


def _drop(admin: psycopg.Connection[tuple[Any, ...]], name: str) -> None:
    from django.db import connections

    connections.close_all()
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class ServerUnreachable(Exception):
    """The PostgreSQL server given to a benchmark does not answer."""


@dataclass(frozen=True)
class Scratch:
    """A benchmark's scratch database and data directory."""

    url: str
    name: str
    version: str  # the server's version and the settings the benchmark names
    data_dir: str


@contextmanager
def scratch_database(server_url: str, settings: Sequence[str]) -> Iterator[Scratch]:
    """Creates ``etcnet_bench_<pid>`` on the server and a temporary data directory,
    and drops and removes both afterwards, whatever happens inside. Raises
    ``ServerUnreachable`` when the server does not answer."""
    try:
        admin = _admin(server_url)
    except psycopg.OperationalError as error:
        raise ServerUnreachable(f"PostgreSQL does not answer at {server_url}: {error}") from None
    name = f"etcnet_bench_{os.getpid()}"
    data_dir = tempfile.mkdtemp(prefix="etcnet-bench-")
    try:
        with admin:
            version = ", ".join(f"{setting} {_show(admin, setting)}" for setting in settings)
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                yield Scratch(_database_url(server_url, name), name, version, data_dir)
            finally:
                _drop(admin, name)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


TARGET_RATE, TARGET_DUPLICATES, TARGET_QUERIES = 10_000, 50_000, 0.2
WARM = 10  # records of a first, untimed upload: accounts made, caches warm


class QueryCounter:
    """Counts the statements sent to PostgreSQL while `counting()`: every execute
    and every COPY of psycopg's cursors — the ORM's and the raw ones of
    `etcnet.core.bulk` (key draws, COPY, set-based updates) alike."""

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        saved = {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany", "copy")}

        def counted(original: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                self.count += 1
                return original(*args, **kwargs)

            return call

        for name, original in saved.items():
            setattr(psycopg.Cursor, name, counted(original))
        try:
            yield
        finally:
            for name, original in saved.items():
                setattr(psycopg.Cursor, name, original)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__)
    parser.add_argument(
        "--records", type=int, default=3000, help="new records per upload size (default 3000)"
    )
    parser.add_argument(
        "--batches",
        default="100,1000",
        help="upload sizes to time, comma-separated (default 100,1000)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="center processes uploading at once, each for a terminal of its own, after the"
        " single-process runs (default 2, one per core here; 1 skips it)",
    )
    parser.add_argument(
        "--cards",
        type=int,
        default=20,
        help="stored-value cards the purchases are spread over, in turn (default 20)",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a PostgreSQL server to create the scratch database on (default {DEFAULT_URL})",
    )
    args = parser.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        parser.error("--batches: whole numbers separated by commas, e.g. 100,1000")
    if args.records < 1 or not batches or min(batches) < 1:
        parser.error("--records and every upload size must be positive")
    if args.processes < 1 or args.cards < 1:
        parser.error("--processes and --cards must be positive")
    try:
        with scratch_database(
            args.database_url, ("server_version", "fsync", "synchronous_commit")
        ) as scratch:
            return _run(args.records, batches, args.processes, args.cards, scratch, out)
    except ServerUnreachable as error:
        out.write(f"{error}\n")
        return 2


def _run(
    count: int, batches: list[int], processes: int, cards: int, scratch: Scratch, out: TextIO
) -> int:
    # Django is set up here, after the environment names the scratch database.
    parts = urlsplit(scratch.url)
    _setup_django(scratch.url, scratch.data_dir)

    from etcnet.core import runtime

    out.write(
        f"etcnet ingest benchmark: PostgreSQL at {parts.hostname}:{parts.port or 5432}"
        f" ({scratch.version}), scratch database {scratch.name}\n"
    )
    out.flush()
    counts = [count * len(batches) + WARM] * (1 + (processes if processes > 1 else 0))
    total = sum(counts)
    prepared = _prepare(counts, cards)
    s = prepared.seconds
    out.write(
        f"preparation (not timed below): {sum(s.values()):.1f} s = migrate {s['migrate']:.1f} s"
        f" + setup of {cards} cards and {len(counts)} terminals {s['setup']:.1f} s"
        f" + {total:,} purchases on the emulated cards and PSAMs {s['purchases']:.1f} s\n"
    )
    # One small upload per terminal first: the accounts made on first use, the caches warm.
    for terminal, records in zip(prepared.terminals, prepared.records, strict=True):
        _ingest_all(terminal, records[:WARM], WARM, "warm")
    # As the center's WSGI module does once Django is up: what start-up (here also the
    # preparation, which no center process holds) loaded stays out of the collector's way.
    runtime.settle()
    rows: list[tuple[str, Timed, str]] = []
    problems: list[str] = []
    fresh_rates: list[float] = []
    before = _counts()
    counter = QueryCounter()
    mine = prepared.records[0]
    for n, batch in enumerate(batches):
        part = mine[WARM + n * count : WARM + (n + 1) * count]
        if not part:
            continue
        counter.count = 0
        with counter.counting():
            fresh, results = _ingest_all(prepared.terminal, part, batch, f"up{batch}")
        if results != {"accepted": len(part)}:
            problems.append(f"uploads of {batch} answered {results}")
        per_record = counter.count / len(part)
        fresh_rates.append(fresh.rate)
        rows.append(
            (
                f"center ingest, 1 process, uploads of {batch:,} (new records)",
                fresh,
                f"{per_record:.3f} queries/record",
            )
        )
        if processes > 1:
            label = f"center ingest, {processes} processes, uploads of {batch:,} (new records)"
            together = _parallel(
                prepared,
                batch,
                "accepted",
                label,
                rows,
                problems,
                slice(WARM + n * count, WARM + (n + 1) * count),
            )
            fresh_rates.append(together.rate)
    after = _counts()
    problems += _verify(prepared)
    resend = mine
    counter.count = 0
    with counter.counting():
        again, again_results = _ingest_all(prepared.terminal, resend, max(batches), "again")
    if _counts()["transactions"] != after["transactions"] or again_results != {
        "duplicate": len(resend)
    }:
        problems.append(f"re-sent records answered {again_results}")
    rows.append(
        (
            f"center ingest, the same records re-sent in uploads of {max(batches):,}",
            again,
            f"{counter.count / len(resend):.3f} queries/record",
        )
    )
    duplicate_rates = [again.rate]
    if processes > 1:
        label = f"center ingest, {processes} processes, the same records re-sent"
        duplicate_rates.append(
            _parallel(
                prepared, max(batches), "duplicate", label, rows, problems, slice(WARM, None)
            ).rate
        )
    copied, size = _copy_rate(scratch.url)
    rows.append((f"PostgreSQL COPY FROM STDIN, binary, best of {COPY_RUNS}", copied, ""))

    out.write(f"\n{'':<60} {'rows':>7} {'seconds':>9} {'rows/s':>10}\n")
    for label, timed, note in rows:
        out.write(
            f"{label:<60} {timed.rows:>7,} {timed.seconds:>9.3f} {timed.rate:>10,.0f}  {note}\n"
        )
    best = max(fresh_rates) if fresh_rates else 0.0
    out.write(
        f"\nCOPY / best ingest: {copied.rate / best:,.0f}x (COPY moved {size:,} bytes)\n"
        if best
        else "\n"
    )
    written = {k: after[k] - before[k] for k in after}
    out.write("ingest wrote: " + ", ".join(f"{v:,} {k}" for k, v in written.items()) + "\n")
    queries = min(
        (
            float(note.split()[0])
            for label, _, note in rows
            if "queries/record" in note and "new" in label
        ),
        default=0.0,
    )

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    out.write(
        f"targets: records/s {best:,.0f} (>= {TARGET_RATE:,}: {verdict(best >= TARGET_RATE)});"
        f" duplicates/s {max(duplicate_rates):,.0f} (>= {TARGET_DUPLICATES:,}:"
        f" {verdict(max(duplicate_rates) >= TARGET_DUPLICATES)}); queries/record {queries:.3f}"
        f" (<= {TARGET_QUERIES}: {verdict(queries <= TARGET_QUERIES)})\n"
    )
    if problems:
        out.write("CHECK FAILED:\n" + "".join(f"  {p}\n" for p in problems))
        return 1
    out.write(
        "checked: every record accepted with the TAC verified, re-sent records all"
        " duplicates, every card's balance = its shadow balance = loaded - spent,"
        " tolls payable = purchases, ledger.check() == []\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
