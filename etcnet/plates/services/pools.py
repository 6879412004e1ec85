"""Number pools: created as drafts, released with their announcement."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.errors import Conflict, FieldIssue, InvalidInput
from etcnet.core.validators import Issue, gettext_noop
from etcnet.plates import domain
from etcnet.plates.models import NumberPool, NumberStatus, PoolNumber, PoolStatus, VehicleOffice
from etcnet.plates.services.common import REQUIRED, require_operator

POOL_LIMIT = 1_000_000


def create_pool(
    *,
    office_code: str,
    kind: str,
    title: str,
    patterns: list[str],
    reserved: list[str],
    forbidden: list[str],
    announcement: str,
    actor: Any,
) -> NumberPool:
    """A draft pool: the patterns are checked (and the pool's size) now; the
    numbers are made when it is released. Audits ``plates.pool_created``."""
    require_operator(actor)
    issues = []
    office = VehicleOffice.objects.filter(code=office_code, is_active=True).first()
    if office is None:
        issues.append(FieldIssue("office", "unknown", gettext_noop("No such vehicle office.")))
    if kind not in domain.PlateKind.__members__.values():
        issues.append(FieldIssue("kind", "required", gettext_noop("Choose a plate kind.")))
    if not (title or "").strip():
        issues.append(FieldIssue("title", "required", REQUIRED))
    if not issues:
        try:
            if not patterns:
                raise domain.PoolError(
                    "patterns",
                    Issue("pool.no_patterns", gettext_noop("Give at least one pattern.")),
                )
            plate_kind = domain.PlateKind(kind)
            size = sum(domain.pattern_size(domain.parse_pattern(plate_kind, p)) for p in patterns)
            domain.compile_rules("reserved", reserved)
            domain.compile_rules("forbidden", forbidden)
        except domain.PoolError as exc:
            issues.append(FieldIssue.from_issue(exc.field, exc.issue))
        else:
            if size > POOL_LIMIT:
                issues.append(
                    FieldIssue(
                        "patterns",
                        "pool.too_large",
                        gettext_noop("The patterns make {size} numbers; at most {limit} per pool."),
                        {"size": size, "limit": POOL_LIMIT},
                    )
                )
    if issues:
        raise InvalidInput(issues=issues)
    assert office is not None
    with transaction.atomic(durable=True):
        pool = NumberPool.objects.create(
            office=office,
            kind=kind,
            title=title.strip(),
            patterns=list(patterns),
            reserved=list(reserved),
            forbidden=list(forbidden),
            announcement=announcement.strip(),
            created_at=timezone.now(),
        )
        audit.record(
            actor=actor,
            action="plates.pool_created",
            subject=pool,
            after={
                "office": office.code,
                "kind": kind,
                "patterns": patterns,
                "reserved": reserved,
                "forbidden": forbidden,
            },
        )
    return pool


def release_pool(pool_id: int, *, actor: Any, now: dt.datetime | None = None) -> NumberPool:
    """Makes the pool's numbers and publishes its announcement. A serial that an
    earlier pool of the same prefix already holds stays with that pool. Audits
    ``plates.pool_released`` with the counts."""
    require_operator(actor)
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        pool = NumberPool.objects.select_for_update().select_related("office").get(pk=pool_id)
        if pool.status != PoolStatus.DRAFT:
            raise Conflict(gettext_noop("This pool is already released."), code="released")
        made = domain.generate_pool(
            domain.PlateKind(pool.kind),
            pool.patterns,
            reserved=pool.reserved,
            forbidden=pool.forbidden,
            limit=POOL_LIMIT,
        )
        prefix = pool.office.prefix
        taken = set(
            PoolNumber.objects.filter(prefix=prefix).values_list("serial", flat=True).iterator()
        )
        rows = [
            PoolNumber(
                pool=pool, office=pool.office, kind=pool.kind, prefix=prefix, serial=s, status=st
            )
            for serials, st in (
                (made.available, NumberStatus.AVAILABLE),
                (made.reserved, NumberStatus.RESERVED),
            )
            for s in serials
            if s not in taken
        ]
        PoolNumber.objects.bulk_create(rows, batch_size=5000)
        pool.available_count = sum(1 for r in rows if r.status == NumberStatus.AVAILABLE)
        pool.reserved_count = len(rows) - pool.available_count
        pool.forbidden_count = made.forbidden_count
        pool.status = PoolStatus.RELEASED
        pool.released_at = now
        pool.save()
        audit.record(
            actor=actor,
            action="plates.pool_released",
            subject=pool,
            before={"status": PoolStatus.DRAFT},
            after={
                "status": PoolStatus.RELEASED,
                "available": pool.available_count,
                "reserved": pool.reserved_count,
                "forbidden": pool.forbidden_count,
                "already_in_other_pools": len(made.available) + len(made.reserved) - len(rows),
            },
        )
    return pool
