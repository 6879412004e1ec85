"""Network import/export and lanes through the real database."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from etcnet.core.models import AuditEvent
from etcnet.network import bundle, selectors, services
from etcnet.network.models import (
    BundleImport,
    Interval,
    IntervalFee,
    Lane,
    Node,
    OpenStationFee,
    Owner,
    TariffVersion,
)

pytestmark = pytest.mark.django_db

DEMO = Path(__file__).resolve().parents[1] / "demo_bundle"
NEW_YEAR = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def counts() -> dict[str, int]:
    return {
        "versions": TariffVersion.objects.count(),
        "nodes": Node.objects.count(),
        "owners": Owner.objects.count(),
        "intervals": Interval.objects.count(),
        "fees": IntervalFee.objects.count(),
        "open": OpenStationFee.objects.count(),
    }


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("README.md"))
    return target


def test_the_demo_bundle_imports_as_a_version(operator):
    record = services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)

    assert record.status == "imported"
    assert record.version.number == "1220260101001"
    assert counts() == {
        "versions": 1,
        "nodes": 83,
        "owners": 3,
        "intervals": 188,
        "fees": 3008,
        "open": 64,
    }
    assert AuditEvent.objects.get(action="network.bundle_imported").after["intervals"] == 188


def test_export_then_import_round_trips(operator, tmp_path):
    services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    out = tmp_path / "out"
    out.mkdir()
    services.export_bundle(out)

    again = bundle.read_bundle(out)
    original = bundle.read_bundle(DEMO)
    assert again == original
    assert (out / "intervals.csv").read_bytes() == (DEMO / "intervals.csv").read_bytes()


def _isolate_first_station(rows: list[list[str]]) -> None:
    """Drops every interval that leads into the first station of the bundle."""
    station = next(r[2] for r in rows[1:] if r[2].startswith("S"))
    rows[:] = [rows[0]] + [r for r in rows[1:] if r[2] != station]


@pytest.mark.parametrize(
    ("file", "edit", "code"),
    [
        ("intervals.csv", lambda rows: rows[1].__setitem__(3, "-5"), "bundle.bad_length"),
        ("intervals.csv", lambda rows: rows[2].__setitem__(1, "S9999999"), "bundle.unknown_node"),
        ("intervals.csv", lambda rows: rows[2].__setitem__(4, "O9999"), "bundle.unknown_owner"),
        ("nodes.csv", lambda rows: rows.append(list(rows[5])), "bundle.duplicate_id"),
        ("intervals.csv", lambda rows: rows[1].__setitem__(3, "0"), "bundle.bad_length"),
        ("interval_fees.csv", lambda rows: rows.pop(1), "bundle.missing_fee"),
        ("intervals.csv", _isolate_first_station, "bundle.unreachable"),
    ],
)
def test_a_bad_bundle_is_refused_whole_with_its_report(operator, demo_copy, file, edit, code):
    import csv

    path = demo_copy / file
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    edit(rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    before = counts()

    record = services.import_bundle(demo_copy, effective_at=NEW_YEAR, actor=operator)

    assert record.status == "refused"
    assert code in {p["code"] for p in record.problems}
    problem = next(p for p in record.problems if p["code"] == code)
    assert problem["file"] in (file, "intervals.csv", "nodes.csv")
    assert problem["line"] >= 0
    assert counts() == before


def test_a_bundle_in_another_encoding_is_refused(operator, demo_copy):
    path = demo_copy / "nodes.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("gb18030"))
    before = counts()

    record = services.import_bundle(demo_copy, effective_at=NEW_YEAR, actor=operator)

    assert record.status == "refused"
    assert next(p["code"] for p in record.problems if p["file"] == "nodes.csv") == "bundle.encoding"
    assert counts() == before


def test_the_version_in_force_follows_effective_times(operator):
    services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    later = services.import_bundle(
        DEMO, effective_at=NEW_YEAR + dt.timedelta(days=180), actor=operator
    )

    assert selectors.version_in_force(NEW_YEAR + dt.timedelta(days=1)).number == "1220260101001"
    assert selectors.version_in_force(NEW_YEAR + dt.timedelta(days=200)) == later.version
    assert selectors.version_in_force(NEW_YEAR - dt.timedelta(days=1)) is None


def test_the_engine_of_the_stored_network_computes_a_trip(operator):
    record = services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    engine = selectors.engine_for(record.version)
    network = bundle.read_bundle(DEMO)
    stations = sorted(network.stations)

    result = engine.minimum(stations[0], stations[-1], 1)

    assert result.fee_fen > 0
    assert sum(i.fee_fen for i in result.intervals) == result.fee_fen


def test_lanes_are_added_enabled_and_disabled_with_an_audit(operator):
    services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    station = Node.objects.filter(kind="station").first()
    lane = services.add_lane(
        station.node_id, number=3, direction="exit", lane_type="etc", actor=operator
    )
    assert lane.hex == f"{station.hex}03"

    services.set_lane_enabled(lane.pk, enabled=False, actor=operator)

    assert Lane.objects.get(pk=lane.pk).enabled is False
    assert not selectors.enabled_exit_lanes(station.node_id).exists()
    event = AuditEvent.objects.get(action="network.lane_disabled")
    assert (event.before, event.after) == ({"enabled": True}, {"enabled": False})


def test_only_operators_change_the_network(clerk, collector):
    from etcnet.core.errors import Forbidden

    with pytest.raises(Forbidden):
        services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=collector)
    assert counts()["versions"] == 0


def test_the_import_command_refuses_a_bad_bundle_with_every_problem(demo_copy):
    (demo_copy / "owners.csv").write_text("owner_id,name\n", encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("network", "import", str(demo_copy), stderr=err)
    assert "intervals.csv:" in err.getvalue()
    assert "bundle.unknown_owner" in err.getvalue()
    assert counts()["versions"] == 0


def test_the_import_and_export_commands(tmp_path):
    out = io.StringIO()
    call_command("network", "import", str(DEMO), "--effective", "2026-01-01T00:00", stdout=out)
    assert "imported version 1220260101001" in out.getvalue()
    call_command("network", "export", str(tmp_path / "exported"), stdout=io.StringIO())
    assert bundle.read_bundle(tmp_path / "exported") == bundle.read_bundle(DEMO)


def _zip(folder: Path) -> SimpleUploadedFile:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for path in sorted(folder.glob("*.csv")):
            archive.write(path, f"bundle/{path.name}")
    return SimpleUploadedFile("bundle.zip", data.getvalue(), "application/zip")


def test_operator_pages_import_browse_toggle_and_compute(operator):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(operator)

    response = client.post(
        "/network/import/", {"bundle": _zip(DEMO), "effective": "2026-01-01T00:00"}
    )
    record = BundleImport.objects.get()
    assert response["Location"] == f"/network/imports/{record.pk}/"
    report = client.get(response["Location"]).content.decode()
    assert "1220260101001" in report

    station = Node.objects.filter(kind="station").order_by("node_id").first()
    services.add_lane(station.node_id, number=3, direction="exit", lane_type="etc", actor=operator)
    page = client.get(f"/network/stations/{station.node_id}/").content.decode()
    assert station.hex in page
    assert "1类客车" in page
    lane = Lane.objects.get()
    client.post(f"/network/lanes/{lane.pk}/toggle/", {"enabled": "0"})
    assert Lane.objects.get().enabled is False

    network = bundle.read_bundle(DEMO)
    stations = sorted(network.stations)
    fee_page = client.get(
        "/network/fee/",
        {"entry": stations[0], "exit": stations[-1], "vehicle_class": "1", "payment": "etc"},
    ).content.decode()
    assert 'data-testid="fee-result"' in fee_page


def test_a_refused_upload_shows_its_report(operator, demo_copy):
    (demo_copy / "intervals.csv").write_text(
        (demo_copy / "intervals.csv").read_text(encoding="utf-8").replace(",O1201001,", ",O9,", 1),
        encoding="utf-8",
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(operator)

    response = client.post("/network/import/", {"bundle": _zip(demo_copy)}, follow=True)

    page = response.content.decode()
    assert 'data-code="bundle.unknown_owner"' in page
    assert counts()["versions"] == 0


def test_the_fee_api_and_station_api(operator, collector):
    services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    network = bundle.read_bundle(DEMO)
    stations = sorted(network.stations)
    client = Client()
    client.force_login(collector)

    body = client.post(
        "/api/v1/network/fees",
        {"entry": stations[0], "exit": stations[-1], "vehicle_class": 1, "payment": "cash"},
        content_type="application/json",
    ).json()
    assert body["payable_fen"] % 100 == 0
    assert body["version"] == "1220260101001"
    unknown = client.post(
        "/api/v1/network/fees",
        {"exit": "NOPE", "vehicle_class": 1},
        content_type="application/json",
    )
    assert unknown.status_code == 400
    assert client.get(f"/api/v1/network/stations/{stations[0]}").json()["node_id"] == stations[0]


def test_a_trip_is_charged_by_the_version_in_force_at_its_entry_time(
    operator, collector, demo_copy
):
    import csv

    services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    # The next version doubles every fee from 1 July.
    path = demo_copy / "interval_fees.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    for row in rows[1:]:
        row[2] = str(int(row[2]) * 2)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    july = NEW_YEAR + dt.timedelta(days=181)
    assert services.import_bundle(demo_copy, effective_at=july, actor=operator).status == "imported"
    demo = bundle.read_bundle(DEMO)
    stations = sorted(set(demo.stations) - set(demo.open_stations))
    client = Client()
    client.force_login(collector)

    def fee(entry_time: dt.datetime) -> int:
        body = client.post(
            "/api/v1/network/fees",
            {
                "entry": stations[0],
                "exit": stations[-1],
                "vehicle_class": 1,
                "entry_time": entry_time.isoformat(),
            },
            content_type="application/json",
        ).json()
        return body["fee_fen"]

    assert fee(july + dt.timedelta(days=1)) == 2 * fee(july - dt.timedelta(days=1))


# --- review findings ----------------------------------------------------------------


def _rewrite(path: Path, edit: Any) -> None:
    import csv

    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    edit(rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_a_later_bundle_may_not_change_a_stored_nodes_kind_or_hex(operator, demo_copy):
    services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    station_row = None

    def make_junction(rows):
        nonlocal station_row
        for n, row in enumerate(rows):
            if row[2] == "station":
                row[2], row[3] = "junction", ""
                station_row = n + 1
                return

    _rewrite(demo_copy / "nodes.csv", make_junction)
    before = counts()

    record = services.import_bundle(
        demo_copy, effective_at=NEW_YEAR + dt.timedelta(days=365), actor=operator
    )

    assert record.status == "refused"
    problems = {(p["line"], p["column"], p["code"]) for p in record.problems}
    assert (station_row, "kind", "bundle.conflicts_with_network") in problems
    assert (station_row, "hex", "bundle.conflicts_with_network") in problems
    assert counts() == before


@pytest.mark.parametrize(
    ("file", "column", "value", "code"),
    [
        ("nodes.csv", 3, "1201010299", "bundle.too_long"),
        ("owners.csv", 0, "O" * 27, "bundle.too_long"),
        ("intervals.csv", 3, "3000000000", "bundle.bad_length"),
    ],
)
def test_values_beyond_the_tables_limits_are_reported_with_their_line(
    operator, demo_copy, file, column, value, code
):
    def edit(rows):
        rows[1][column] = value

    _rewrite(demo_copy / file, edit)
    before = counts()

    record = services.import_bundle(demo_copy, effective_at=NEW_YEAR, actor=operator)

    assert record.status == "refused"
    assert any(p["code"] == code and p["file"] == file and p["line"] == 2 for p in record.problems)
    assert counts() == before


def test_a_duplicate_hex_in_the_bundle_has_its_line(operator, demo_copy):
    def edit(rows):
        stations = [r for r in rows[1:] if r[2] == "station"]
        stations[1][3] = stations[0][3]

    _rewrite(demo_copy / "nodes.csv", edit)
    record = services.import_bundle(demo_copy, effective_at=NEW_YEAR, actor=operator)
    [problem] = [p for p in record.problems if p["code"] == "bundle.duplicate_hex"]
    assert problem["line"] > 1
    assert counts()["versions"] == 0


def test_a_discount_outside_0_to_10000_basis_points_is_refused(operator):
    from etcnet.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator, discount_bp=20_000)
    with pytest.raises(CommandError, match="discount"):
        call_command("network", "import", str(DEMO), "--discount-bp", "-1", stdout=io.StringIO())
    assert counts()["versions"] == 0


def test_export_keeps_nodes_and_owners_no_interval_uses(operator, demo_copy, tmp_path):
    (demo_copy / "nodes.csv").write_text(
        (demo_copy / "nodes.csv").read_text(encoding="utf-8") + "JISO,孤立枢纽,junction,,1201\n",
        encoding="utf-8",
    )
    (demo_copy / "owners.csv").write_text(
        (demo_copy / "owners.csv").read_text(encoding="utf-8") + "O9,未使用业主\n", encoding="utf-8"
    )
    record = services.import_bundle(demo_copy, effective_at=NEW_YEAR, actor=operator)
    assert record.status == "imported", record.problems
    out = tmp_path / "out"
    out.mkdir()
    services.export_bundle(out)

    again = bundle.read_bundle(out)
    assert "JISO" in again.nodes
    assert "O9" in again.owners
    assert again == bundle.read_bundle(demo_copy)


def test_fee_api_errors_are_translated_and_safe_with_braces(operator, collector):
    services.import_bundle(DEMO, effective_at=NEW_YEAR, actor=operator)
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(collector)

    braces = client.post(
        "/api/v1/network/fees", {"exit": "{x}", "vehicle_class": 1}, content_type="application/json"
    )
    junction = client.post(
        "/api/v1/network/fees",
        {"exit": "J1201001", "vehicle_class": 1},
        content_type="application/json",
    )

    assert braces.status_code == 400
    assert braces.json()["code"] == "fee.unknown_node"
    assert braces.json()["message"].startswith("入口或出口站不在路网中")
    assert junction.json()["code"] == "fee.not_station"
