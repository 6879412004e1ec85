"""Internet plate pre-selection (``etcnet.plates``) on PostgreSQL at a realistic pool size.

    python -m benchmarks.plates [--quick] [--reps N] [--users N] [--threads N]
                                [--expire N] [--seed N] [--database-url URL]

Works like ``benchmarks.ingest`` (whose scratch-database helpers it imports): in a
scratch database of its own (``etcnet_bench_<pid>``, created on the server that
``--database-url`` names and dropped at the end; the named database itself is never
touched), migrated from scratch, with a temporary ``ETCNET_DATA_DIR`` and the
in-memory SMS sender.

Preparation (not timed): a center operator (group ``center_operator``), the Zhanjiang
vehicle offices of ``etcnet.plates.samples`` (粤G), the settings row (pk 1) made open all
day (00:00 to 23:59:59, written into the row) and the daily verifications and the per-
vehicle random draws raised to 30,000 through ``services.update_settings`` so that one
user can be timed many times (the other limits keep their defaults). Internet accounts
are made directly (``User`` and ``PlateAccount`` rows by ``bulk_create``, new-vehicle
owners, unusable passwords), not through ``services.register_account``, whose password
hashing is not what is measured. Every flow call is given ``now=``: the steps at the
wall-clock moment, the window's submission and the SMS code ``window_seconds`` later, so
nothing sleeps through the 90-second window.

It prints:

1. release: ``services.release_pool`` of an ordinary pool ``@####`` (240,000 numbers)
   and then of a new-energy pool ``[DF]*####`` (680,000) of the same office (the
   second reads the first's serials of the prefix, as a release does): seconds and
   numbers per second; the table's size after. Then ``VACUUM ANALYZE`` of the number
   table (what autovacuum does soon after a release of that size; not timed);
2. the keyboard on the ordinary pool: ``selectors.next_characters(session, prefix)``
   alone and ``flow.keys`` (the whole step: the account row locked, the session
   checked and touched, the window, the shuffled keys, the commit) for prefixes of 0
   to 4 characters of random available numbers, ``--reps`` calls each after an
   untimed one: median and p95 ms, with the plan PostgreSQL chose (EXPLAIN ANALYZE
   of the captured query: the scan, whether the serial's prefix bounds the index
   range or is only a filter, the index entries read). Then again after a random
   half of the ordinary pool is marked registered (one UPDATE, then VACUUM ANALYZE);
3. ``flow.verify`` of one random number, and a random draw ``flow.draw`` (ORDER BY
   random() over every available number of the kind, LIMIT numbers_per_draw) on the
   ordinary pool (full, then half taken) and on the new-energy pool: median and p95
   ms, and the draw's plan;
4. a whole selection per user, ``--users`` users one after another: start,
   accept_notice, enter_vehicle, enter_contact, open_window, keys for the prefixes
   0-4 of the number the user composes, verify, submit (window_seconds later),
   confirm_code with the code of the last text in ``MemorySmsSender.outbox``:
   selections per second and each step's median ms; checks every number pre-selected;
5. the lock under contention: ``--threads`` threads, each with its own user, its own
   database connection (opened before the start) and a window due, released
   together by a barrier to ``flow.submit`` the same number: wall time from the first
   start to the last answer, and exactly one winner (the others answered
   "unavailable"); then the same with as many different numbers (all must win);
6. ``services.expire()`` with ``--expire`` pre-selected numbers past their deadline
   (default 10,000): the rows are made by ``bulk_create`` on the model of one real
   selection of (4) (accounts half new-vehicle owners, whose accounts the expiry also
   cancels, half vehicle owners; sessions finished; selections pre-selected with the
   deadline yesterday; their pool numbers marked pre-selected): seconds, items per
   second; checks every one expired, its number back in the pool, its user
   blacklisted.

``--quick`` shrinks it all (pools of 40,000 and 80,000 numbers, fewer repetitions,
users, threads and expiries). Figures are printed, never asserted; the results are
checked (exit 1 when a check fails). Exits 2 when PostgreSQL does not answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import re
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

from benchmarks.ingest import DEFAULT_URL, ServerUnreachable, _setup_django, scratch_database

T = TypeVar("T")

OFFICE = "440800"  # 湛江 (粤G), etcnet.plates.samples
ADDRESS = "湛江市赤坎区南桥路 1 号"
LIMIT_RAISED = 30_000  # verifications per day, draws per vehicle (PositiveSmallIntegerField)
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")


@dataclass(frozen=True)
class Sizes:
    ordinary: str  # pool patterns
    new_energy: str
    reps: int
    draws: int
    users: int
    threads: int
    expire: int


FULL = Sizes("@####", "[DF]*####", reps=50, draws=20, users=200, threads=50, expire=10_000)
QUICK = Sizes("[A-D]####", "[DF][A-D]####", reps=20, draws=10, users=40, threads=20, expire=1_000)


@dataclass
class Driver:
    """One internet user at one browser."""

    user: Any
    account: Any
    token: str
    vin: str
    phone: str


@dataclass
class Steps:
    """Seconds per named step."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def run(self, name: str, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        result = call()
        self.samples.setdefault(name, []).append(time.perf_counter() - start)
        return result


def _ms(samples: Sequence[float]) -> tuple[float, float]:
    """Median and p95 (nearest rank) of ``samples`` seconds, in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# --- Preparation ------------------------------------------------------------------------


def _operator() -> Any:
    from django.contrib.auth.models import Group, User

    from etcnet.core.roles import Role

    user = User.objects.create_user(username="olga", password=None, first_name="olga")
    user.groups.add(Group.objects.get(name=Role.CENTER_OPERATOR))
    return user


def _id_number(n: int) -> str:
    from etcnet.issuance import samples

    birth = dt.date(1950, 1, 1) + dt.timedelta(days=n)
    return samples.resident_id("440802", birth.strftime("%Y%m%d"), "501")


def _vin(n: int) -> str:
    """A valid VIN of its own for each ``n`` (its last six characters)."""
    from etcnet.issuance import samples

    return samples.vin("LSVAM4187C", f"{n:06d}")


def _accounts(
    numbers: Sequence[int], *, registered_at: dt.datetime, owners_every: int = 0
) -> list[Driver]:
    """Internet users made directly: new-vehicle owners, or every ``owners_every``-th
    a vehicle owner (0: none)."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    from etcnet.plates import selectors
    from etcnet.plates.models import PlateAccount, UserType

    version = selectors.plate_settings().agreement_version
    users = User.objects.bulk_create(
        [
            User(username=f"bench-{n:06d}", password=make_password(None), first_name=f"用户{n}")
            for n in numbers
        ],
        batch_size=2000,
    )
    accounts = PlateAccount.objects.bulk_create(
        [
            PlateAccount(
                user=user,
                user_type=(
                    UserType.VEHICLE_OWNER
                    if owners_every and n % owners_every == 0
                    else UserType.NEW_VEHICLE_OWNER
                ),
                id_type=101,
                id_number=_id_number(n),
                name=f"用户{n}",
                phone=f"139{n:08d}",
                city="湛江市",
                registered_at=registered_at,
                agreement_version=version,
            )
            for n, user in zip(numbers, users, strict=True)
        ],
        batch_size=2000,
    )
    return [
        Driver(user, account, f"pc-{n}", _vin(n), account.phone)
        for n, user, account in zip(numbers, users, accounts, strict=True)
    ]


def _to_choose(
    driver: Driver, office: Any, district: Any, kind: str, now: dt.datetime, steps: Steps
) -> Any:
    """Steps 1 to 3 and the window opened; the session at step 4."""
    from etcnet.plates import flow

    user, token = driver.user, driver.token
    steps.run(
        "start",
        lambda: flow.start(
            actor=user, token=token, office_id=office.pk, district_id=district.pk, now=now
        ),
    )
    steps.run("accept_notice", lambda: flow.accept_notice(actor=user, token=token, now=now))
    steps.run(
        "enter_vehicle",
        lambda: flow.enter_vehicle(actor=user, token=token, vin=driver.vin, kind=kind, now=now),
    )
    steps.run(
        "enter_contact",
        lambda: flow.enter_contact(
            actor=user, token=token, address=ADDRESS, postal_code="524000", now=now
        ),
    )
    return steps.run("open_window", lambda: flow.open_window(actor=user, token=token, now=now))


def _sql(statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))
        return list(cursor.fetchall()) if cursor.description else []


def _rowcount(statement: str, params: Sequence[Any] = ()) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))
        return int(cursor.rowcount)


def _vacuum() -> float:
    return _timed(lambda: _sql("VACUUM ANALYZE plates_poolnumber"))


def _available(pool: Any) -> list[str]:
    from etcnet.plates.models import NumberStatus, PoolNumber

    return list(
        PoolNumber.objects.filter(pool=pool, status=NumberStatus.AVAILABLE)
        .order_by("serial")
        .values_list("serial", flat=True)
    )


# --- Plans ------------------------------------------------------------------------------


def _captured(call: Callable[[], T], *markers: str) -> tuple[T, str]:
    """What ``call`` returns, and the SQL of its first query that contains every one
    of ``markers``."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        result = call()
    queries = [q["sql"] for q in captured.captured_queries]
    return result, next(q for q in queries if all(m in q for m in markers))


def _condition(text: str) -> str:
    """A plan's condition without casts and parentheses (they hold only ANDs here)."""
    return re.sub(r"::[a-z_]+( varying)?|[()]", "", text)


def _plan(statement: str) -> str:
    """What PostgreSQL does for ``statement``, in a line: each scan with its index
    condition and filter, the rows it read and kept and the pages it touched; a
    sort's method; the execution time."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement)
        row = cursor.fetchone()
    document = json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]
    top = document[0]
    parts: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        loops = int(node.get("Actual Loops", 1))
        if "Relation Name" in node or "Index Name" in node:
            kept = int(node.get("Actual Rows", 0)) * loops
            removed = int(node.get("Rows Removed by Filter", 0)) * loops
            pages = int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))
            text = str(node["Node Type"])
            if "Index Name" in node:
                text += f" using {node['Index Name']}"
            if "Index Cond" in node:
                text += f" [{_condition(str(node['Index Cond']))}]"
            if "Filter" in node:
                text += f", filter {_condition(str(node['Filter']))}"
            text += f": {kept + removed:,} rows read, {kept:,} kept, {pages:,} pages"
            if "Heap Fetches" in node:
                text += f", {int(node['Heap Fetches']) * loops:,} heap fetches"
            parts.append(text)
        elif node.get("Node Type") == "Sort" and "Sort Method" in node:
            parts.append(f"sort {node['Sort Method']}")
        for child in node.get("Plans", []):
            walk(child)

    walk(top["Plan"])
    jit = " (JIT)" if top.get("JIT") else ""
    return "; ".join(parts) + f"; {float(top['Execution Time']):.1f} ms{jit}"


# --- The measurements -------------------------------------------------------------------


@dataclass
class Row:
    label: str
    median: float
    p95: float
    note: str = ""


def _release(pattern: str, kind: str, actor: Any) -> tuple[Any, float]:
    from etcnet.plates import services

    pool = services.create_pool(
        office_code=OFFICE,
        kind=kind,
        title=f"bench {kind} {pattern}",
        patterns=[pattern],
        reserved=[],
        forbidden=[],
        announcement="bench",
        actor=actor,
    )
    start = time.perf_counter()
    released = services.release_pool(pool.pk, actor=actor)
    return released, time.perf_counter() - start


def _keyboard(
    driver: Driver,
    session: Any,
    available: list[str],
    rng: random.Random,
    reps: int,
    now: dt.datetime,
    problems: list[str],
) -> list[Row]:
    from etcnet.plates import domain, flow, selectors

    rows = []
    length = domain.serial_length(domain.PlateKind(session.kind))
    for k in range(length):
        prefixes = [rng.choice(available)[:k] for _ in range(reps)]
        first = prefixes[0]
        found = selectors.next_characters(session, first)  # untimed; checked
        if found != domain.next_characters(available, first):
            problems.append(f"next_characters({first!r}) = {sorted(found)}")
        times = [_timed(partial(selectors.next_characters, session, p)) for p in prefixes]
        plan = _plan(
            _captured(partial(selectors.next_characters, session, first), "plates_poolnumber")[1]
        )
        rows.append(Row(f"next_characters, prefix of {k}", *_ms(times), plan))
    for k in range(length):
        prefixes = [rng.choice(available)[:k] for _ in range(reps)]
        flow.keys(actor=driver.user, token=driver.token, prefix=prefixes[0], now=now)
        times = [
            _timed(partial(flow.keys, actor=driver.user, token=driver.token, prefix=p, now=now))
            for p in prefixes
        ]
        rows.append(Row(f"flow.keys, prefix of {k}", *_ms(times)))
    return rows


def _verify(
    driver: Driver,
    available: list[str],
    rng: random.Random,
    reps: int,
    now: dt.datetime,
    problems: list[str],
) -> Row:
    from etcnet.plates import flow

    times = []
    for _ in range(reps + 1):
        serial = rng.choice(available)
        start = time.perf_counter()
        verified = flow.verify(actor=driver.user, token=driver.token, serial=serial, now=now)
        times.append(time.perf_counter() - start)
        if not verified.available:
            problems.append(f"verify({serial}) answered unavailable")
    return Row("flow.verify, one number", *_ms(times[1:]))


def _draws(
    driver: Driver,
    pool: Any,
    label: str,
    reps: int,
    now: dt.datetime,
    problems: list[str],
) -> Row:
    from etcnet.plates import flow, selectors
    from etcnet.plates.models import NumberStatus, PoolNumber

    offered: list[str] = []

    def draw() -> None:
        offered[:] = flow.draw(actor=driver.user, token=driver.token, now=now)

    plan = _plan(_captured(draw, "RANDOM()")[1])  # the untimed first call
    times = [_timed(draw) for _ in range(reps)]
    still = PoolNumber.objects.filter(
        pool=pool, serial__in=offered, status=NumberStatus.AVAILABLE
    ).count()
    if len(offered) != selectors.plate_settings().numbers_per_draw or still != len(offered):
        problems.append(f"a draw offered {offered} ({still} available)")
    return Row(f"flow.draw, {label}", *_ms(times), plan)


def _select_one(
    driver: Driver,
    serial: str,
    office: Any,
    district: Any,
    window: int,
    steps: Steps,
    problems: list[str],
    plans: list[str] | None = None,
) -> Any:
    """One whole selection of ``serial``, start to confirm_code; with ``plans``, the
    submission's look-up of the number is added to it."""
    from django.utils import timezone

    from etcnet.core.sms import MemorySmsSender
    from etcnet.plates import flow

    user, token = driver.user, driver.token
    now = timezone.now()
    later = now + dt.timedelta(seconds=window)
    _to_choose(driver, office, district, "ordinary", now, steps)
    for k in range(len(serial)):
        steps.run("keys", partial(flow.keys, actor=user, token=token, prefix=serial[:k], now=now))
    verified = steps.run(
        "verify", lambda: flow.verify(actor=user, token=token, serial=serial, now=now)
    )
    if not verified.available:
        problems.append(f"{serial} unavailable at verify")
    submit = partial(flow.submit, actor=user, token=token, serial=serial, now=later)
    if plans is None:
        steps.run("submit", submit)
    else:
        _, lookup = steps.run("submit", partial(_captured, submit, 'FROM "plates_poolnumber"'))
        plans.append(lookup)
    sms = MemorySmsSender.outbox[-1]
    if sms.phone != driver.phone:
        problems.append(f"the last text went to {sms.phone}, not {driver.phone}")
    code = CODE.findall(sms.text)[-1]
    return steps.run(
        "confirm_code", lambda: flow.confirm_code(actor=user, token=token, code=code, now=later)
    )


def _select_all(
    drivers: list[Driver],
    serials: list[str],
    office: Any,
    district: Any,
    window: int,
    problems: list[str],
) -> tuple[float, Steps, list[Any], str]:
    """Every driver selects its serial, one after another; the total seconds, the
    steps' times, the selections and the SQL of the last submission's number look-up."""
    steps = Steps()
    lookups: list[str] = []
    start = time.perf_counter()
    selections = [
        _select_one(
            driver,
            serial,
            office,
            district,
            window,
            steps,
            problems,
            lookups if i == len(drivers) - 1 else None,
        )
        for i, (driver, serial) in enumerate(zip(drivers, serials, strict=True))
    ]
    return time.perf_counter() - start, steps, selections, lookups[0]


@dataclass
class Contention:
    wall: float
    outcomes: dict[str, str]
    latencies: list[float]


def _contend(drivers: list[Driver], serials: list[str], when: dt.datetime) -> Contention:
    """Each driver in its own thread and connection submits its serial at once."""
    from django.db import connection, connections

    from etcnet.core.errors import DomainError, InvalidInput
    from etcnet.plates import flow

    barrier = threading.Barrier(len(drivers))
    guard = threading.Lock()
    outcomes: dict[str, str] = {}
    spans: list[tuple[float, float]] = []

    def attempt(driver: Driver, serial: str) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=120)
            start = time.perf_counter()
            try:
                flow.submit(actor=driver.user, token=driver.token, serial=serial, now=when)
                outcome = "won"
            except InvalidInput as refused:
                outcome = refused.issues[0].code if refused.issues else refused.code
            except DomainError as refused:
                outcome = refused.code
            end = time.perf_counter()
            with guard:
                outcomes[driver.token] = outcome
                spans.append((start, end))
        except Exception as exc:  # reported by the caller's check
            with guard:
                outcomes[driver.token] = repr(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=attempt, args=(d, s)) for d, s in zip(drivers, serials, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = max(e for _, e in spans) - min(s for s, _ in spans) if spans else float("nan")
    return Contention(wall, outcomes, [e - s for s, e in spans])


def _prepare_contenders(
    numbers: Sequence[int], office: Any, district: Any, now: dt.datetime
) -> list[Driver]:
    drivers = _accounts(numbers, registered_at=now)
    steps = Steps()
    for driver in drivers:
        _to_choose(driver, office, district, "ordinary", now, steps)
    return drivers


def _expired(
    numbers: Sequence[int],
    template: Any,
    serials: list[str],
    pool: Any,
    now: dt.datetime,
) -> None:
    """Pre-selected numbers whose deadline was yesterday, made by bulk_create on the
    model of the real selection ``template``."""
    from etcnet.plates import selectors
    from etcnet.plates.models import (
        NumberStatus,
        PoolNumber,
        Selection,
        SelectionSession,
        SelectionStatus,
        SessionStatus,
        Step,
    )

    locked_at = now - dt.timedelta(days=20)
    drivers = _accounts(numbers, registered_at=locked_at - dt.timedelta(hours=1), owners_every=2)
    sessions = SelectionSession.objects.bulk_create(
        [
            SelectionSession(
                account=d.account,
                token=d.token,
                office_id=template.office_id,
                district_id=template.district_id,
                status=SessionStatus.FINISHED,
                step=Step.DONE,
                started_at=locked_at,
                last_seen_at=locked_at,
                ended_at=locked_at,
                end_reason="preselected",
                kind=template.kind,
                vin=d.vin,
                owner_name=d.account.name,
                owner_phone=d.phone,
                owner_address=template.owner_address,
                postal_code=template.postal_code,
                keyboard_seed=secrets.token_hex(16),
            )
            for d in drivers
        ],
        batch_size=2000,
    )
    ids = dict(PoolNumber.objects.filter(pool=pool, serial__in=serials).values_list("serial", "pk"))
    PoolNumber.objects.filter(pk__in=ids.values()).update(status=NumberStatus.PRESELECTED)
    yesterday = selectors.local_now(now).date() - dt.timedelta(days=1)
    prefix = template.plate[: -len(template.pool_number.serial)]
    Selection.objects.bulk_create(
        [
            Selection(
                number=f"YB{n:016d}",
                account=d.account,
                session=session,
                office_id=template.office_id,
                district_id=template.district_id,
                pool_number_id=ids[serial],
                plate=prefix + serial,
                kind=template.kind,
                mode=template.mode,
                vin=d.vin,
                owner_name=d.account.name,
                owner_phone=d.phone,
                owner_address=template.owner_address,
                postal_code=template.postal_code,
                status=SelectionStatus.PRESELECTED,
                locked_at=locked_at,
                hold_until=locked_at + dt.timedelta(minutes=5),
                confirmed_at=locked_at,
                deadline=yesterday,
            )
            for n, d, session, serial in zip(numbers, drivers, sessions, serials, strict=True)
        ],
        batch_size=2000,
    )


# --- Running ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plates", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small pools and counts")
    parser.add_argument("--reps", type=int, help="timed calls per keyboard prefix (50)")
    parser.add_argument("--users", type=int, help="whole selections, one after another (200)")
    parser.add_argument("--threads", type=int, help="concurrent submissions (50)")
    parser.add_argument("--expire", type=int, help="overdue pre-selections to expire (10000)")
    parser.add_argument("--seed", type=int, default=2026, help="random prefixes and numbers")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a PostgreSQL server to create the scratch database on (default {DEFAULT_URL})",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name in ("reps", "users", "threads", "expire"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                parser.error(f"--{name} must be positive")
            sizes = replace(sizes, **{name: value})
    try:
        with scratch_database(
            args.database_url, ("server_version", "fsync", "synchronous_commit")
        ) as scratch:
            return _run(
                sizes, args.seed, scratch.url, scratch.name, scratch.version, scratch.data_dir, out
            )
    except ServerUnreachable as error:
        out.write(f"{error}\n")
        return 2


def _table(out: TextIO, title: str, rows: Sequence[Row]) -> None:
    out.write(f"\n{title:<56} {'median ms':>10} {'p95 ms':>8}\n")
    for row in rows:
        out.write(f"  {row.label:<54} {row.median:>10.2f} {row.p95:>8.2f}\n")
        if row.note:
            out.write(f"      plan: {row.note}\n")


def _run(
    sizes: Sizes, seed: int, url: str, name: str, version: str, data_dir: str, out: TextIO
) -> int:
    # Django is set up here, after the environment names the scratch database.
    parts = urlsplit(url)
    _setup_django(url, data_dir)
    from django.core.management import call_command
    from django.utils import timezone

    from etcnet.plates import samples, selectors, services
    from etcnet.plates.models import (
        HOLDING,
        Blacklist,
        NumberStatus,
        PlateSettings,
        PoolNumber,
        Selection,
        SelectionStatus,
    )

    rng = random.Random(seed)
    problems: list[str] = []
    begun = time.perf_counter()
    start = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    migrate = time.perf_counter() - start
    collation = _sql("SELECT datcollate FROM pg_database WHERE datname = current_database()")
    out.write(
        f"etcnet plates benchmark: PostgreSQL at {parts.hostname}:{parts.port or 5432}"
        f" ({version}, collation {collation[0][0]}), scratch database {name}"
        f"{' (--quick)' if sizes is QUICK else ''}\n"
        f"preparation: migrate {migrate:.1f} s\n"
    )
    out.flush()

    operator = _operator()
    office = samples.create_offices()[0]
    district = office.districts.first()
    services.update_settings(
        changes={"verifications_per_day": LIMIT_RAISED, "draws_per_vehicle": LIMIT_RAISED},
        actor=operator,
    )
    # The hours go straight into the row: update_settings cannot audit a time value
    # (etcnet.core.audit._jsonable turns datetimes and dates into text, not times).
    PlateSettings.objects.filter(pk=1).update(opens=dt.time(0, 0), closes=dt.time(23, 59, 59))
    config = selectors.plate_settings()
    window = config.window_seconds

    # 1. Releasing the pools.
    ordinary, ordinary_s = _release(sizes.ordinary, "ordinary", operator)
    energy, energy_s = _release(sizes.new_energy, "new_energy", operator)
    total, table, indexes = _sql(
        "SELECT pg_total_relation_size('plates_poolnumber'), pg_relation_size('plates_poolnumber'),"
        " pg_indexes_size('plates_poolnumber')"
    )[0]
    vacuum_s = _vacuum()
    out.write(f"\n{'1. release_pool':<56} {'numbers':>9} {'seconds':>8} {'numbers/s':>10}\n")
    for label, pool, seconds in (
        (f"ordinary pool {sizes.ordinary}", ordinary, ordinary_s),
        (f"new-energy pool {sizes.new_energy}", energy, energy_s),
    ):
        out.write(
            f"  {label:<54} {pool.available_count:>9,} {seconds:>8.2f}"
            f" {pool.available_count / seconds:>10,.0f}\n"
        )
    out.write(
        f"  plates_poolnumber after both: {total / 2**20:,.0f} MiB ({table / 2**20:,.0f} MiB"
        f" rows, {indexes / 2**20:,.0f} MiB indexes); VACUUM ANALYZE {vacuum_s:.1f} s (untimed)\n"
    )
    out.flush()

    # 2-3. The keyboard, verify and draws on the full pools.
    now = timezone.now()
    keyboard_user, energy_user = _accounts([1, 2], registered_at=now)
    steps = Steps()
    session = _to_choose(keyboard_user, office, district, "ordinary", now, steps)
    _to_choose(energy_user, office, district, "new_energy", now, steps)
    inside = now + dt.timedelta(seconds=1)  # within the open window
    available = _available(ordinary)
    full_rows = _keyboard(keyboard_user, session, available, rng, sizes.reps, inside, problems)
    _table(out, f"2. keyboard, ordinary pool, {len(available):,} available", full_rows)
    if any("filter serial" in row.note for row in full_rows):
        out.write(
            "   the prefix does not bound the index range: LIKE 'prefix%' on a varchar uses a"
            " B-tree only under the C collation or with varchar_pattern_ops, so every"
            " available number of the kind is read for every key\n"
        )
    out.flush()
    other_rows = [
        _verify(keyboard_user, available, rng, sizes.reps, inside, problems),
        _draws(keyboard_user, ordinary, "ordinary pool", sizes.draws, inside, problems),
        _draws(energy_user, energy, "new-energy pool", sizes.draws, inside, problems),
    ]

    # Half the ordinary pool taken.
    _sql("SELECT setseed(%s)", [0.5])
    taken = _rowcount(
        "UPDATE plates_poolnumber SET status = %s WHERE pool_id = %s AND random() < 0.5",
        [NumberStatus.REGISTERED.value, ordinary.pk],
    )
    vacuum_s = _vacuum()
    available = _available(ordinary)
    half_rows = _keyboard(keyboard_user, session, available, rng, sizes.reps, inside, problems)
    _table(
        out,
        f"2. keyboard, {taken:,} marked registered, {len(available):,} available",
        half_rows,
    )
    other_rows.append(
        _draws(keyboard_user, ordinary, "ordinary pool, half taken", sizes.draws, inside, problems)
    )
    _table(out, f"3. verify and random draws ({config.numbers_per_draw} a draw)", other_rows)
    out.write(
        f"   (VACUUM ANALYZE after the UPDATE {vacuum_s:.1f} s, untimed; draws over"
        f" {sizes.draws} calls after an untimed one)\n"
    )
    out.flush()

    # 4. Whole selections, one user after another.
    picks = rng.sample(available, sizes.users + 2 * sizes.threads + sizes.expire)
    chosen, picks = picks[: sizes.users], picks[sizes.users :]
    drivers = _accounts(range(1000, 1000 + sizes.users), registered_at=timezone.now())
    seconds, e2e, selections, lookup = _select_all(
        drivers, chosen, office, district, window, problems
    )
    done = Selection.objects.filter(
        pk__in=[s.pk for s in selections], status=SelectionStatus.PRESELECTED
    )
    if sorted(done.values_list("plate", flat=True)) != sorted(office.prefix + s for s in chosen):
        problems.append("not every selection is pre-selected with its number")
    out.write(
        f"\n4. whole selections, {sizes.users} users one after another: {seconds:.2f} s,"
        f" {sizes.users / seconds:.1f} selections/s ({seconds / sizes.users * 1000:.0f} ms each)\n"
        f"   {'step':<20} {'calls':>6} {'median ms':>10} {'p95 ms':>8} {'share':>6}\n"
    )
    for step, samples_s in e2e.samples.items():
        median, p95 = _ms(samples_s)
        out.write(
            f"   {step:<20} {len(samples_s):>6} {median:>10.2f} {p95:>8.2f}"
            f" {sum(samples_s) / seconds:>6.0%}\n"
        )
    out.write(f"   submit's look-up of the number before the lock, plan: {_plan(lookup)}\n")
    out.flush()

    # 5. The lock under contention.
    n = sizes.threads
    now = timezone.now()
    same_drivers = _prepare_contenders(range(2000, 2000 + n), office, district, now)
    apart_drivers = _prepare_contenders(range(3000, 3000 + n), office, district, now)
    due = now + dt.timedelta(seconds=window)
    target, apart, picks = picks[0], picks[1 : n + 1], picks[n + 1 :]
    same = _contend(same_drivers, [target] * n, due)
    values = sorted(same.outcomes.values())
    winners = [d.account.pk for d in same_drivers if same.outcomes.get(d.token) == "won"]
    held = Selection.objects.filter(
        pool_number__pool=ordinary, pool_number__serial=target, status__in=HOLDING
    )
    number_status = PoolNumber.objects.get(pool=ordinary, serial=target).status
    if (
        len(values) != n
        or values.count("won") != 1
        or set(values) - {"won", "unavailable"}
        or held.count() != 1
        or [held.get().account_id] != winners
        or number_status != NumberStatus.LOCKED
    ):
        problems.append(f"same number: {sorted(set(values))}, {held.count()} held, {number_status}")
    spread = _contend(apart_drivers, apart, due)
    spread_values = list(spread.outcomes.values())
    locked = Selection.objects.filter(
        pool_number__pool=ordinary, pool_number__serial__in=apart, status=SelectionStatus.LOCKED
    ).count()
    if spread_values.count("won") != n or locked != n:
        problems.append(f"different numbers: {sorted(set(spread_values))}, {locked} locked")
    out.write(
        f"\n5. the lock, {n} threads submitting at once{'':<14} {'wall s':>8}"
        f" {'median ms':>10} {'max ms':>8}\n"
    )
    for label, result, verdict in (
        (
            "the same number",
            same,
            f"{values.count('won')} won, {values.count('unavailable')} unavailable",
        ),
        (f"{n} different numbers", spread, f"{spread_values.count('won')} won"),
    ):
        median = statistics.median(result.latencies) * 1000 if result.latencies else float("nan")
        worst = max(result.latencies, default=float("nan")) * 1000
        out.write(
            f"   {label + ': ' + verdict:<54} {result.wall:>8.3f} {median:>10.1f} {worst:>8.1f}\n"
        )
    out.flush()

    # 6. The expiry job.
    count = sizes.expire
    start = time.perf_counter()
    _expired(range(10_000, 10_000 + count), selections[0], picks[:count], ordinary, timezone.now())
    made_s = time.perf_counter() - start
    start = time.perf_counter()
    report = services.expire()
    expire_s = time.perf_counter() - start
    expired_numbers = Selection.objects.filter(
        number__startswith="YB", status=SelectionStatus.EXPIRED
    )
    back = PoolNumber.objects.filter(
        pool=ordinary, serial__in=picks[:count], status=NumberStatus.AVAILABLE
    ).count()
    listed = Blacklist.objects.filter(reason="registration_overdue").count()
    owners = count // 2 + (1 if count % 2 else 0)  # even numbers from 10,000: vehicle owners
    if (
        report.expired != count
        or expired_numbers.count() != count
        or back != count
        or listed != count
        or report.cancelled_accounts != count - owners
    ):
        problems.append(f"expire: {report.as_dict()}, {back} back in the pool, {listed} listed")
    out.write(
        f"\n6. services.expire(), {count:,} pre-selections past their deadline"
        f" (made by bulk_create in {made_s:.1f} s, untimed): {expire_s:.2f} s,"
        f" {count / expire_s:,.0f} per second ({expire_s / count * 1000:.2f} ms each)\n"
        f"   report {report.as_dict()}\n"
    )
    out.write(f"\nwhole run {time.perf_counter() - begun:.0f} s\n")
    if problems:
        out.write("CHECK FAILED:\n" + "".join(f"  {p}\n" for p in problems))
        return 1
    out.write(
        "checked: the keyboard's characters equal the pool's, verified numbers available,"
        " draws of 10 available numbers, every selection pre-selected, one winner of the"
        f" same number and {n} of {n} different ones, every overdue number expired, back in"
        " the pool and its user blacklisted\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
