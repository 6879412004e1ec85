"""Two users never hold one number: 50 users submit the same number at the same
moment, each in its own thread and database connection, with real commits.
Run on PostgreSQL by CI (`.ci/run`), and on SQLite too."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import time_machine
from django.db import connection, connections

from etcnet.core.errors import InvalidInput
from etcnet.plates import flow
from etcnet.plates.models import Attempt, NumberStatus, PoolNumber, Selection
from etcnet.plates.tests.factories import MONDAY_10, office_with_pool, register, to_choose

USERS = 50


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_attempts_on_one_number_exactly_one_wins() -> None:
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        office, _ = office_with_pool()
        accounts = [register(n) for n in range(1, USERS + 1)]
        for account in accounts:
            to_choose(account, office, token=f"pc-{account.pk}", vin=_vin(account.pk))
            flow.open_window(actor=account.user, token=f"pc-{account.pk}")
        clock.shift(90)

        barrier = threading.Barrier(USERS)
        outcomes: dict[int, str] = {}

        def attempt(account: Any) -> None:
            try:
                barrier.wait()
                flow.submit(actor=account.user, token=f"pc-{account.pk}", serial="A0042")
                outcomes[account.pk] = "won"
            except InvalidInput as refused:
                outcomes[account.pk] = refused.issues[0].code
            except Exception as exc:  # reported in the assertion below
                outcomes[account.pk] = repr(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=attempt, args=(a,)) for a in accounts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(outcomes.values()).count("won") == 1, (connection.vendor, outcomes)
    assert sorted(set(outcomes.values())) == ["unavailable", "won"]
    winner = next(pk for pk, outcome in outcomes.items() if outcome == "won")
    held = Selection.objects.get()
    assert (held.account_id, held.plate, held.status) == (winner, "粤GA0042", "locked")
    assert PoolNumber.objects.get(serial="A0042").status == NumberStatus.LOCKED
    assert Attempt.objects.filter(kind="lock", outcome="locked").count() == 1
    assert Attempt.objects.filter(kind="lock", outcome="unavailable").count() == USERS - 1


def _vin(n: int) -> str:
    from etcnet.issuance import samples

    return samples.vin(serial=f"{n:06d}")
