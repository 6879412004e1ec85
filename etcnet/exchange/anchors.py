"""The audit chain's head anchored by the signature server (防篡改).

The hash chain (etcnet.core.chain, docs/audit.md) proves that no sealed event
was edited, dropped or reordered — unless whoever edits the database also
recomputes every hash after the edit and the checkpoints. An anchor closes
that: each new checkpoint's head (its last seq and the chain's hash there) is
signed by the signature server, whose key no database user has. `verify` then
proves every anchor's signature against our registered certificates and that
the chain still has that hash at that seq: a chain rewritten after an anchor
fails here, whatever its own hashes say."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from etcnet.core import audit
from etcnet.core.models import AuditCheckpoint, AuditEvent
from etcnet.exchange import signing, sm2
from etcnet.exchange.models import AuditAnchor

__all__ = ["Proof", "anchor", "statement", "verify"]


def statement(last_seq: int, head_hash: str) -> bytes:
    """The bytes an anchor signs."""
    return f"etcnet-audit-anchor/1|{last_seq}|{head_hash}".encode()


def anchor(*, actor: Any = "etcnet exchange") -> AuditAnchor | None:
    """Sign the latest checkpoint's head if it is not anchored yet."""
    head = AuditCheckpoint.objects.order_by("-last_seq").first()
    if head is None or AuditAnchor.objects.filter(last_seq=head.last_seq).exists():
        return None
    signature = signing.sign(
        statement(head.last_seq, head.head_hash), purpose=f"audit head {head.last_seq}"
    )
    with transaction.atomic():
        row, created = AuditAnchor.objects.get_or_create(
            last_seq=head.last_seq,
            defaults={
                "head_hash": head.head_hash,
                "signature": signature.header(),
                "signed_at": timezone.now(),
            },
        )
        if created:
            audit.record(
                actor=actor, action="exchange.audit_anchored", subject=row,
                after={"last_seq": row.last_seq, "head_hash": row.head_hash},
            )  # fmt: skip
    return row


@dataclass
class Proof:
    anchors: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def verify() -> Proof:
    proof = Proof()
    hashes = dict(
        AuditEvent.objects.filter(seq__in=AuditAnchor.objects.values("last_seq")).values_list(
            "seq", "chain_hash"
        )
    )
    for row in AuditAnchor.objects.order_by("last_seq"):
        proof.anchors += 1
        try:
            signing.verify(
                statement(row.last_seq, row.head_hash), sm2.Signature.from_header(row.signature)
            )
        except sm2.SignatureError as error:
            proof.failures.append(f"anchor at seq {row.last_seq}: {error}")
            continue
        found = hashes.get(row.last_seq)
        if found != row.head_hash:
            proof.failures.append(
                f"seq {row.last_seq}: the chain's hash is {found or 'missing'}, the signed"
                f" anchor says {row.head_hash}: the chain was rewritten"
            )
    return proof
