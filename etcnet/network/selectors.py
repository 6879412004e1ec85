"""Reads: the version in force, the network of a version as the pure engine's
`Network`, and a fee engine per version (built once, set-based)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from django.db.models import QuerySet

from etcnet.network import bundle
from etcnet.network.engine import FeeEngine
from etcnet.network.models import (
    Interval,
    IntervalFee,
    Lane,
    LaneDirection,
    Node,
    NodeKind,
    OpenStationFee,
    Owner,
    TariffVersion,
)


def version_in_force(at: dt.datetime) -> TariffVersion | None:
    """The version whose effective time is the latest not after `at`."""
    return (
        TariffVersion.objects.filter(effective_at__lte=at)
        .order_by("-effective_at", "-number")
        .first()
    )


def network_for(version: TariffVersion) -> bundle.Network:
    """The version's network in four queries, whatever its size."""
    intervals = list(
        Interval.objects.filter(version=version).values_list(
            "interval_id",
            "from_node__node_id",
            "to_node__node_id",
            "length_m",
            "owner__owner_id",
            "gantry_id",
        )
    )
    node_ids = set(version.node_ids) | {row[1] for row in intervals} | {row[2] for row in intervals}
    open_rows = list(
        OpenStationFee.objects.filter(version=version).values_list(
            "node__node_id", "vehicle_class", "fee_fen"
        )
    )
    node_ids |= {row[0] for row in open_rows}
    nodes = {
        n.node_id: bundle.Node(n.node_id, n.name, n.kind, n.hex, n.network)
        for n in Node.objects.filter(node_id__in=node_ids)
    }
    owner_ids = set(version.owner_ids) | {row[4] for row in intervals}
    owners = {
        o.owner_id: bundle.Owner(o.owner_id, o.name)
        for o in Owner.objects.filter(owner_id__in=owner_ids)
    }
    fees = {
        (interval_id, vehicle_class): fee
        for interval_id, vehicle_class, fee in IntervalFee.objects.filter(
            interval__version=version
        ).values_list("interval__interval_id", "vehicle_class", "fee_fen")
    }
    return bundle.Network(
        owners=owners,
        nodes=nodes,
        intervals={row[0]: bundle.Interval(*row) for row in intervals},
        fees=fees,
        open_fees={(node_id, vehicle_class): fee for node_id, vehicle_class, fee in open_rows},
    )


@lru_cache(maxsize=4)
def _engine(version_id: int, discount_bp: int) -> FeeEngine:
    return FeeEngine(network_for(TariffVersion.objects.get(pk=version_id)), discount_bp=discount_bp)


def engine_for(version: TariffVersion) -> FeeEngine:
    return _engine(version.pk, version.discount_bp)


def forget_engines() -> None:
    _engine.cache_clear()


def stations(q: str = "") -> QuerySet[Node]:
    qs = Node.objects.filter(kind=NodeKind.STATION).prefetch_related("lanes")
    q = q.strip()
    if q:
        qs = qs.filter(name__icontains=q) | qs.filter(hex__iexact=q) | qs.filter(node_id__iexact=q)
    return qs.order_by("node_id")


def enabled_exit_lanes(node_id: str) -> QuerySet[Lane]:
    return Lane.objects.filter(station__node_id=node_id, direction=LaneDirection.EXIT, enabled=True)
