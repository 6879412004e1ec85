"""The demo's clearing days: the last two days of a generated demo province
(`etcnet.clearing.generate`, its own network beside the Tianjin demo network),
cleared as a center clears them — the first day run, its late records arriving
after it closed, its other-issuer records sent to the simulated national center
and answered (a few disputed), then the second day run, taking the late records
and the accepted ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from etcnet.clearing import exchange, generate, packages, run, simulated
from etcnet.clearing.models import ClearingDay

__all__ = ["load"]

TRIPS = 3_000
CARDS = 300
ACTOR = "etcnet center demo"


def _dispute(t: packages.Transaction) -> int | None:
    """The simulated issuers dispute one record in fifty (TAC, 1)."""
    return 1 if t.trans_id % 50 == 0 else None


def load() -> str | None:
    """Makes and clears the two days before today, once; says what it did."""
    if ClearingDay.objects.exists():
        return None
    today = timezone.localdate()
    first, second = today - dt.timedelta(days=2), today - dt.timedelta(days=1)
    made = generate.generate_day(first, trips=TRIPS, seed=1, cards=CARDS, late=40, defer_late=True)
    run.run_day(first, actor=ACTOR)
    generate.deliver_late(made)
    folder = Path(settings.DATA_DIR) / "clearing" / "demo-national-center"
    sent = exchange.export_day(first, folder / "from-us")
    for number, path in enumerate(sent, 1):
        answer = folder / "to-us" / f"accounting-{number:04d}.xml"
        answer.parent.mkdir(parents=True, exist_ok=True)
        answer.write_bytes(simulated.answer(path.read_bytes(), message_id=number, dispute=_dispute))
        exchange.import_file(answer, actor=ACTOR)
    generate.generate_day(second, trips=TRIPS, seed=2, cards=CARDS)
    run.run_day(second, actor=ACTOR)
    return (
        f"{first} and {second} cleared ({TRIPS:,} generated trips a day, {len(sent)}"
        f" package(s) answered by the simulated national center)"
    )
