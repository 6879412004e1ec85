"""The audit chain's head anchored by the signature server: an attacker with the
database who edits an event and recomputes every hash and checkpoint after it
passes `etcnet audit verify`, but not the anchors, which only the signer's key
could have made."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from etcnet.core import chain
from etcnet.core.models import AuditEvent
from etcnet.core.tests.test_audit_chain import owner_access, raw, write_events
from etcnet.exchange import anchors, signing

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_certificate(signer):
    signing.register((signer.dir / "certificate.json").read_text(), kind="self", actor="test")


def test_a_chain_rewritten_whole_passes_its_own_proof_but_not_the_anchors(own_certificate):
    events = write_events(4)
    chain.seal()
    made = anchors.anchor()
    assert made is not None
    assert anchors.anchor() is None  # the head is anchored already
    assert anchors.verify().ok

    # The attacker edits event 2, recomputes every hash after it and the checkpoint.
    with owner_access():
        raw("UPDATE core_auditevent SET after = %s WHERE id = %s",
            ['{"amount_fen": 999999}', events[1].pk])  # fmt: skip
        sealed = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
        rows = sealed.values_list("seq", "chain_hash", *chain._FIELDS)
        previous = ""
        for seq, _, *row in rows:
            previous = chain.link(previous, seq, row)
            raw("UPDATE core_auditevent SET chain_hash = %s WHERE seq = %s", [previous, seq])
        raw("UPDATE core_auditcheckpoint SET head_hash = %s", [previous])
    assert chain.verify().ok  # the chain's own proof is fooled …

    proof = anchors.verify()  # … the signed anchor is not
    assert not proof.ok
    assert "rewritten" in proof.failures[0]
    with pytest.raises(CommandError, match="rewritten"):
        call_command("exchange", "anchors", stdout=StringIO())


def test_the_command_anchors_and_proves(own_certificate):
    write_events(2)
    chain.seal()
    out = StringIO()
    call_command("exchange", "anchor", stdout=out)
    assert "anchored seq" in out.getvalue()
    out = StringIO()
    call_command("exchange", "anchors", stdout=out)
    assert "1 anchor(s) proved" in out.getvalue()
