"""The terminal's downloaded reference data: replaced whole or kept, with its age."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest

from etcnet.terminal.outbox import CenterUnavailable
from etcnet.terminal.reference import ReferenceData

T0 = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)

DOCS: dict[str, dict[str, Any]] = {
    "station": {"lanes": [{"number": 3, "enabled": True, "allowed": True}]},
    "tariff": {"version": 1, "minimum_fees": [{"entry": "S1", "fee_fen": 500}]},
    "verifiers": {"users": [{"username": "carl", "verifier": "argon2$…"}]},
}


class Center:
    def __init__(self, docs: Mapping[str, Any]) -> None:
        self.docs = dict(docs)
        self.down: set[str] = set()

    def download(self, what: str) -> Mapping[str, Any]:
        if what in self.down:
            raise CenterUnavailable("connection refused")
        return self.docs[what]


@pytest.fixture
def data(tmp_path: Any) -> ReferenceData:
    return ReferenceData(tmp_path / "terminal.sqlite3")


def test_a_refresh_stores_every_document_with_its_time(data):
    report = data.refresh(Center(DOCS), now=T0)
    assert set(report.updated) == set(DOCS)
    assert report.failed == {}
    assert data.get("tariff") == DOCS["tariff"]
    assert data.age("verifiers", now=T0 + dt.timedelta(hours=3)) == dt.timedelta(hours=3)


def test_a_failed_download_keeps_the_old_copy_and_says_so(data):
    center = Center(DOCS)
    data.refresh(center, now=T0)
    center.down = {"verifiers"}
    center.docs["tariff"] = {"version": 2}  # no minimum_fees: not a tariff
    center.docs["station"] = {"lanes": []}
    report = data.refresh(center, now=T0 + dt.timedelta(hours=1))
    assert report.updated == ("station",)
    assert report.failed == {
        "tariff": "the center's tariff has no 'minimum_fees' list",
        "verifiers": "connection refused",
    }
    assert data.get("tariff") == DOCS["tariff"]
    assert data.fetched_at("verifiers") == T0
    assert data.get("station") == {"lanes": []}


def test_the_copy_survives_a_restart(tmp_path):
    first = ReferenceData(tmp_path / "t.sqlite3")
    first.refresh(Center(DOCS), now=T0)
    first.close()
    assert ReferenceData(tmp_path / "t.sqlite3").get("verifiers") == DOCS["verifiers"]


def test_never_downloaded_means_no_age(data):
    assert data.age("station", now=T0) is None
    assert data.get("station") is None


def test_the_terminal_keeps_documents_of_its_own(data):
    data.put("list-key", {"key_id": "ab", "public_key": "cd"}, now=T0)
    assert data.get("list-key") == {"key_id": "ab", "public_key": "cd"}
    assert data.fetched_at("list-key") == T0


def test_times_without_an_offset_are_refused(data):
    with pytest.raises(ValueError, match="offset"):
        data.refresh(Center(DOCS), now=dt.datetime(2026, 11, 21, 10, 0))


def test_a_refresh_measures_the_clock_offset_on_the_quickest_download(data):
    """The terminal's clock runs 90 s behind the center's. The station download
    takes 2 s and the center read its clock at the start of it (a skewed
    reading); the others take 40 ms with the reading half-way: they decide."""
    terminal = [T0]

    class TimedCenter(Center):
        def download(self, what: str) -> Mapping[str, Any]:
            slow = what == "station"
            center_time = terminal[0] + dt.timedelta(seconds=90, milliseconds=0 if slow else 20)
            terminal[0] += dt.timedelta(seconds=2 if slow else 0.04)
            return {**self.docs[what], "server_time": center_time.isoformat()}

    def clock() -> dt.datetime:
        return terminal[0]

    report = data.refresh(TimedCenter(DOCS), now=T0, clock=clock)

    assert report.clock_offset_ms == 90_000
    assert data.refresh(Center(DOCS), now=T0).clock_offset_ms is None
