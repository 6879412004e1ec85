"""Network services: importing a bundle as a new tariff version (all or
nothing), exporting one, and the lanes of a station.

The bundle is read and checked by the pure `bundle` module; only a bundle with
no problem at all touches the network tables, in one transaction. A refused
bundle leaves its report (every problem with file, line and column) and
nothing else.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.errors import FieldIssue, Forbidden, InvalidInput, NotFound
from etcnet.core.roles import Role, has_role
from etcnet.core.validators import gettext_noop
from etcnet.network import bundle, selectors
from etcnet.network.models import (
    BundleImport,
    ImportStatus,
    Interval,
    IntervalFee,
    Lane,
    LaneDirection,
    LaneType,
    Node,
    NodeKind,
    OpenStationFee,
    Owner,
    TariffVersion,
)

PROVINCE = "12"  # the version numbers' province code (Tianjin in the demo)


def _require_operator(actor: Any) -> None:
    # The command line (actor None) is the operator's own console.
    if actor is not None and not has_role(actor, Role.CENTER_OPERATOR):
        raise Forbidden()


def _problem_dicts(problems: list[Any]) -> list[dict[str, Any]]:
    return [
        {"file": p.file, "line": p.line, "column": p.column, "code": p.code, "message": p.message}
        for p in problems
    ]


def _version_number(effective_at: dt.datetime) -> str:
    day = timezone.localtime(effective_at).strftime("%Y%m%d")
    taken = TariffVersion.objects.filter(number__startswith=f"{PROVINCE}{day}").count()
    return f"{PROVINCE}{day}{taken + 1:03d}"


def import_bundle(
    path: Path,
    *,
    effective_at: dt.datetime,
    actor: Any = None,
    source_name: str = "",
    discount_bp: int = 500,
) -> BundleImport:
    """Imports a bundle folder as a new tariff version effective at `effective_at`.

    Returns the import record: `imported` with its version, or `refused` with
    every problem (nothing imported). Owners and nodes are created or updated
    by id; intervals, fees and open-station fees belong to the new version.
    Audits `network.bundle_imported` or `network.bundle_refused`."""
    _require_operator(actor)
    if not 0 <= discount_bp <= 10_000:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "discount_bp",
                    "out_of_range",
                    gettext_noop("Enter a value from {min} to {max}."),
                    {"min": 0, "max": 10_000},
                )
            ]
        )
    user = actor if getattr(actor, "is_authenticated", False) else None
    name = source_name or Path(path).name
    try:
        network = bundle.read_bundle(Path(path))
    except bundle.BundleError as error:
        return _refuse(_problem_dicts(error.problems), name=name, actor=user)
    conflicts = _conflicts_with_stored_nodes(network, Path(path))
    if conflicts:
        return _refuse(conflicts, name=name, actor=user)
    try:
        with transaction.atomic(durable=True):
            version = _store(
                network, effective_at=effective_at, actor=user, name=name, discount_bp=discount_bp
            )
            summary = {
                "owners": len(network.owners),
                "nodes": len(network.nodes),
                "stations": len(network.stations),
                "intervals": len(network.intervals),
                "fees": len(network.fees),
                "open_fees": len(network.open_fees),
                "classes": list(network.classes),
            }
            record = BundleImport.objects.create(
                status=ImportStatus.IMPORTED,
                source_name=name,
                summary=summary,
                version=version,
                created_at=timezone.now(),
                created_by=user,
            )
            audit.record(
                actor=user or "etcnet network import",
                action="network.bundle_imported",
                subject=version,
                after={"number": version.number, "effective_at": effective_at, **summary},
            )
    except (IntegrityError, DataError) as error:
        # Every known conflict is checked above with its line; whatever the
        # database still refuses is reported as such, and nothing is imported.
        return _refuse(
            [
                {
                    "file": "",
                    "line": 0,
                    "column": "",
                    "code": "bundle.database",
                    "message": f"the database refused the bundle: {error}",
                }
            ],
            name=name,
            actor=user,
        )
    selectors.forget_engines()
    return record


def _node_lines(folder: Path) -> dict[str, int]:
    """node_id → its line in nodes.csv (1 is the header)."""
    with (folder / "nodes.csv").open(encoding="utf-8-sig", newline="") as handle:
        return {row.get("node_id", ""): n for n, row in enumerate(csv.DictReader(handle), start=2)}


def _conflicts_with_stored_nodes(network: bundle.Network, folder: Path) -> list[dict[str, Any]]:
    """A node keeps its kind and hex code for good: a later version that changed
    them would reprice trips charged under earlier versions and orphan lanes."""
    stored = {n.node_id: n for n in Node.objects.filter(node_id__in=list(network.nodes))}
    by_hex = dict(
        Node.objects.exclude(hex="")
        .filter(hex__in=[n.hex for n in network.nodes.values() if n.hex])
        .values_list("hex", "node_id")
    )
    lines = _node_lines(folder)
    problems = []
    for node in network.nodes.values():
        old = stored.get(node.node_id)
        line = lines.get(node.node_id, 0)
        if old is not None and old.kind != node.kind:
            problems.append(
                {
                    "file": "nodes.csv",
                    "line": line,
                    "column": "kind",
                    "code": "bundle.conflicts_with_network",
                    "message": f"node {node.node_id!r} is a {old.kind} in the stored network, "
                    f"not a {node.kind}",
                }
            )
        if old is not None and (old.hex or "") != (node.hex or ""):
            problems.append(
                {
                    "file": "nodes.csv",
                    "line": line,
                    "column": "hex",
                    "code": "bundle.conflicts_with_network",
                    "message": f"node {node.node_id!r} has hex {old.hex!r} in the stored network, "
                    f"not {node.hex!r}",
                }
            )
        other = by_hex.get(node.hex) if node.hex else None
        if other is not None and other != node.node_id:
            problems.append(
                {
                    "file": "nodes.csv",
                    "line": line,
                    "column": "hex",
                    "code": "bundle.conflicts_with_network",
                    "message": f"hex {node.hex!r} belongs to node {other!r} in the stored network",
                }
            )
    return problems


def _refuse(problems: list[dict[str, Any]], *, name: str, actor: Any) -> BundleImport:
    with transaction.atomic(durable=True):
        record = BundleImport.objects.create(
            status=ImportStatus.REFUSED,
            source_name=name,
            problems=problems,
            created_at=timezone.now(),
            created_by=actor,
        )
        audit.record(
            actor=actor or "etcnet network import",
            action="network.bundle_refused",
            subject=record,
            after={"problems": len(problems), "source": name},
        )
    return record


def _store(
    network: bundle.Network, *, effective_at: dt.datetime, actor: Any, name: str, discount_bp: int
) -> TariffVersion:
    owners = {}
    for owner in network.owners.values():
        owners[owner.owner_id], _ = Owner.objects.update_or_create(
            owner_id=owner.owner_id, defaults={"name": owner.name}
        )
    nodes = {}
    for node in network.nodes.values():
        nodes[node.node_id], _ = Node.objects.update_or_create(
            node_id=node.node_id,
            defaults={
                "name": node.name,
                "kind": node.kind,
                "hex": node.hex or "",
                "network": node.network,
            },
        )
    version = TariffVersion.objects.create(
        number=_version_number(effective_at),
        effective_at=effective_at,
        discount_bp=discount_bp,
        imported_at=timezone.now(),
        imported_by=actor,
        source_name=name,
        node_ids=sorted(network.nodes),
        owner_ids=sorted(network.owners),
    )
    Interval.objects.bulk_create(
        Interval(
            version=version,
            interval_id=i.interval_id,
            from_node=nodes[i.from_node],
            to_node=nodes[i.to_node],
            length_m=i.length_m,
            owner=owners[i.owner_id],
            gantry_id=i.gantry_id,
        )
        for i in network.intervals.values()
    )
    ids = dict(Interval.objects.filter(version=version).values_list("interval_id", "pk"))
    IntervalFee.objects.bulk_create(
        IntervalFee(interval_id=ids[interval_id], vehicle_class=vehicle_class, fee_fen=fee)
        for (interval_id, vehicle_class), fee in network.fees.items()
    )
    OpenStationFee.objects.bulk_create(
        OpenStationFee(
            version=version, node=nodes[node_id], vehicle_class=vehicle_class, fee_fen=fee
        )
        for (node_id, vehicle_class), fee in network.open_fees.items()
    )
    return version


def export_bundle(path: Path, *, version: TariffVersion | None = None) -> TariffVersion:
    """Writes a version (by default the one in force now) as a bundle folder."""
    version = version or selectors.version_in_force(timezone.now())
    if version is None:
        raise NotFound(gettext_noop("No tariff version is in force."))
    bundle.write_bundle(selectors.network_for(version), Path(path))
    return version


def set_lane_enabled(lane_id: int, *, enabled: bool, actor: Any) -> Lane:
    """Enables or disables a lane. Audits `network.lane_enabled` / `network.lane_disabled`."""
    _require_operator(actor)
    with transaction.atomic(durable=True):
        lane = Lane.objects.select_for_update().filter(pk=lane_id).first()
        if lane is None:
            raise NotFound(gettext_noop("Lane not found."))
        before = lane.enabled
        lane.enabled = enabled
        lane.save(update_fields=["enabled"])
        audit.record(
            actor=actor,
            action="network.lane_enabled" if enabled else "network.lane_disabled",
            subject=lane,
            before={"enabled": before},
            after={"enabled": enabled},
        )
    return lane


def add_lane(
    node_id: str, *, number: int, direction: str, lane_type: str, actor: Any, enabled: bool = True
) -> Lane:
    """A new lane of a station. Audits `network.lane_added`."""
    _require_operator(actor)
    issues = []
    if direction not in LaneDirection.values:
        issues.append(
            FieldIssue(
                "direction", "invalid_choice", gettext_noop("Choose one of the listed values.")
            )
        )
    if lane_type not in LaneType.values:
        issues.append(
            FieldIssue(
                "lane_type", "invalid_choice", gettext_noop("Choose one of the listed values.")
            )
        )
    if not 1 <= number <= 99:
        issues.append(
            FieldIssue(
                "number",
                "out_of_range",
                gettext_noop("Enter a value from {min} to {max}."),
                {"min": 1, "max": 99},
            )
        )
    if issues:
        raise InvalidInput(issues=issues)
    with transaction.atomic(durable=True):
        station = Node.objects.filter(node_id=node_id, kind=NodeKind.STATION).first()
        if station is None:
            raise NotFound(gettext_noop("Station not found."))
        try:
            with transaction.atomic():
                lane = Lane.objects.create(
                    station=station,
                    number=number,
                    direction=direction,
                    lane_type=lane_type,
                    enabled=enabled,
                )
        except IntegrityError:
            raise InvalidInput(
                issues=[
                    FieldIssue(
                        "number", "lane_exists", gettext_noop("This station already has that lane.")
                    )
                ]
            ) from None
        audit.record(
            actor=actor,
            action="network.lane_added",
            subject=lane,
            after={"station": node_id, "number": number, "direction": direction, "type": lane_type},
        )
    return lane
