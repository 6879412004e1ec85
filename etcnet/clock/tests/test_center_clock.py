"""The center's clock through its edges: `etcnet clock check` reads the simulated
Beidou receiver on a free port and stores the offset; the terminal API's
`server_time` is the system clock corrected by it; the operators' panel shows it
(and warns); `etcnet clock ntp-sim` runs as its own process."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from conftest import make_user
from etcnet.clock import selectors, services
from etcnet.clock.management.commands import clock as clock_command
from etcnet.clock.models import KEEP_DAYS, TimeReading
from etcnet.clock.simulator import SntpSimulator
from etcnet.clock.sntp import Measurement
from etcnet.clock.tests.test_sntp import silent_port
from etcnet.core.roles import Role
from tests.terminal_process import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_offset() -> Iterator[None]:
    """The offset is kept per process for a few seconds: never across tests."""
    selectors.forget()
    yield
    selectors.forget()


@pytest.fixture
def receiver(settings: Any) -> Iterator[SntpSimulator]:
    """A simulated Beidou receiver 90 s ahead of this machine, configured as the
    center's time source."""
    with SntpSimulator(offset_ms=90_000) as sim:
        settings.ETCNET_TIME_SOURCE = sim.source
        yield sim


def within(reading: TimeReading) -> float:
    """How far a reading may be off what the simulator was set to: NTP's error
    is at most half the round trip (plus a little for rounding)."""
    return (reading.delay_us or 0) / 2000 + 2


def check(*args: str) -> str:
    out = StringIO()
    call_command("clock", "check", *args, stdout=out)
    return out.getvalue()


def test_a_check_reads_the_source_and_stores_its_offset(receiver):
    said = check()

    reading = TimeReading.objects.get()
    assert (reading.source, reading.error, reading.stratum) == (receiver.source, "", 1)
    assert reading.offset_ms is not None
    assert reading.delay_us is not None
    assert 0 <= reading.delay_us < 1_000_000
    assert abs(reading.offset_ms - 90_000) <= within(reading)
    assert said == (
        f"{receiver.source}: offset {reading.offset_ms:+d} ms, "
        f"delay {reading.delay_us / 1000:.1f} ms, stratum 1\n"
    )


def test_a_silent_source_is_recorded_and_the_check_fails(settings):
    settings.ETCNET_TIME_SOURCE = f"127.0.0.1:{silent_port()}"
    out = StringIO()

    with pytest.raises(CommandError, match="the time source gave no reading"):
        call_command("clock", "check", "--timeout", "0.3", stdout=out)

    reading = TimeReading.objects.get()
    assert (reading.offset_ms, reading.delay_us, reading.stratum) == (None, None, None)
    assert reading.error == f"no answer from {settings.ETCNET_TIME_SOURCE} within 0.3 s"
    assert "no reading: no answer" in out.getvalue()
    assert selectors.center_offset_ms() == 0  # nothing good to apply


def test_without_a_source_the_check_is_refused_and_nothing_is_stored(settings):
    settings.ETCNET_TIME_SOURCE = ""
    with pytest.raises(CommandError, match="ETCNET_TIME_SOURCE is not set"):
        check()
    with pytest.raises(CommandError, match="--every must be"):
        check("--every", "-1")
    assert TimeReading.objects.count() == 0
    assert selectors.center_offset_ms() == 0


def test_checking_every_n_seconds_retries_a_failed_reading_sooner(settings, monkeypatch):
    with SntpSimulator(offset_ms=-2_000) as sim:
        settings.ETCNET_TIME_SOURCE = sim.source
        slept: list[float] = []
        stopped = RuntimeError("stop")

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            if len(slept) == 1:
                sim.set_offset(-2_100)
            if len(slept) == 3:
                raise stopped

        monkeypatch.setattr(clock_command.time, "sleep", sleep)
        answered = iter([True, False, True])
        real = clock_command.services.check_source

        def flaky(**kwargs: Any) -> TimeReading:
            if next(answered):
                return real(**kwargs)
            return services.record_reading(
                source=sim.source, at=timezone.now(), error="no answer (simulated)"
            )

        monkeypatch.setattr(clock_command.services, "check_source", flaky)
        with pytest.raises(RuntimeError):
            check("--every", "60")

    assert slept == [60, clock_command.RETRY_SECONDS, 60]
    offsets = [r.offset_ms for r in TimeReading.objects.order_by("pk")]
    assert offsets[1] is None
    first, _, third = TimeReading.objects.order_by("pk")
    assert first.offset_ms is not None
    assert third.offset_ms is not None
    assert abs(first.offset_ms + 2_000) <= within(first)
    assert abs(third.offset_ms + 2_100) <= within(third)


def test_only_the_configured_sources_readings_count(settings):
    now = timezone.now()
    services.record_reading(
        source="old-receiver:123", at=now, measurement=Measurement(7_000, 300, 1)
    )
    settings.ETCNET_TIME_SOURCE = "new-receiver:123"
    assert selectors.center_offset_ms() == 0
    services.record_reading(source="new-receiver:123", at=now, measurement=Measurement(-40, 300, 2))
    assert selectors.center_offset_ms() == -40
    settings.ETCNET_TIME_SOURCE = ""
    assert selectors.center_offset_ms() == 0
    assert abs(selectors.center_now() - timezone.now()) < dt.timedelta(seconds=1)


def test_a_reading_is_an_offset_or_an_error_never_both_and_old_ones_go():
    now = timezone.now()
    with pytest.raises(ValueError, match="either a measurement or an error"):
        services.record_reading(source="rx:123", at=now)
    with pytest.raises(ValueError, match="either a measurement or an error"):
        services.record_reading(
            source="rx:123", at=now, measurement=Measurement(1, 1, 1), error="x"
        )
    services.record_reading(
        source="rx:123",
        at=now - dt.timedelta(days=KEEP_DAYS, seconds=1),
        measurement=Measurement(5, 100, 1),
    )
    services.record_reading(source="other:123", at=now - dt.timedelta(days=90), error="gone")
    assert TimeReading.objects.count() == 2

    services.record_reading(source="rx:123", at=now, measurement=Measurement(6, 100, 1))

    assert sorted(TimeReading.objects.values_list("source", "offset_ms")) == [
        ("other:123", None),
        ("rx:123", 6),
    ]


def panel(user: Any, path: str = "/tolling/") -> str:
    """The panel's text, in English (the translations are the catalog's business)."""
    page = Client(HTTP_ACCEPT_LANGUAGE="en")
    page.force_login(user)
    response = page.get(path)
    assert response.status_code == 200
    found = re.search(
        r'<section class="card" data-testid="clock-panel".*?</section>',
        response.content.decode(),
        re.S,
    )
    assert found, "no clock panel"
    return re.sub(r"\s+", " ", found.group(0))


def test_the_operators_see_the_offset_and_its_warnings(settings, operator):
    settings.ETCNET_TIME_SOURCE = ""
    assert "No time source is configured (ETCNET_TIME_SOURCE)" in panel(operator)
    settings.ETCNET_TIME_SOURCE = "beidou:123"
    services.record_reading(source="beidou:123", at=timezone.now(), error="no answer from beidou")
    never = panel(operator)
    assert 'data-state="warn"' in never
    assert "No reading from beidou:123 yet" in never
    assert "no answer from beidou" in never

    at = timezone.now() - dt.timedelta(seconds=30)
    services.record_reading(source="beidou:123", at=at, measurement=Measurement(-12, 450, 1))
    ok = panel(operator)
    local = timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S")
    assert 'data-state="ok"' in ok
    assert f"Offset -12 ms from beidou:123 at {local}" in ok
    assert 'data-offset-ms="-12"' in ok
    assert "stratum 1 · round trip 450 µs" in ok
    assert "OK: the lanes get the corrected time" in ok

    services.record_reading(
        source="beidou:123", at=timezone.now(), measurement=Measurement(1_500, 450, 1)
    )
    beyond = panel(operator, "/clock/")
    assert 'data-state="warn"' in beyond
    assert "Offset +1500 ms from beidou:123" in beyond
    assert "Beyond the maximum of 1000 ms" in beyond

    settings.ETCNET_TIME_SOURCE_STALE_S = 1
    TimeReading.objects.update(at=timezone.now() - dt.timedelta(seconds=5))
    stale = panel(operator)
    assert "No answer for 5 s (more than 1 s)" in stale


def test_the_readings_page_is_for_operators_and_auditors(settings, operator, auditor):
    settings.ETCNET_TIME_SOURCE = "beidou:123"
    services.record_reading(
        source="beidou:123", at=timezone.now(), measurement=Measurement(3, 210, 1)
    )
    services.record_reading(source="beidou:123", at=timezone.now(), error="no answer")
    page = Client(HTTP_ACCEPT_LANGUAGE="en")
    page.force_login(auditor)
    body = page.get("/clock/").content.decode()
    assert body.count("<tr><td") == 2
    assert "+3" in body
    assert "no answer" in body
    collector = make_user("carl", Role.TOLL_COLLECTOR)
    page.force_login(collector)
    assert page.get("/clock/").status_code == 403


def test_show_says_what_the_panel_says(settings):
    settings.ETCNET_TIME_SOURCE = ""
    out = StringIO()
    call_command("clock", "show", stdout=out)
    assert out.getvalue().startswith("no time source configured")
    settings.ETCNET_TIME_SOURCE = "beidou:123"
    services.record_reading(
        source="beidou:123", at=timezone.now(), measurement=Measurement(2_000, 300, 1)
    )
    out = StringIO()
    call_command("clock", "show", stdout=out)
    assert out.getvalue().startswith("beidou:123: offset +2000 ms at ")
    assert "(applied to server_time); beyond the maximum of 1000 ms" in out.getvalue()


def test_the_simulator_runs_as_its_own_process_on_a_free_port(settings):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etcnet.cli",
            "clock",
            "ntp-sim",
            "--port",
            "0",
            "--offset-ms",
            "-7000",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.match(
            r"ntp-sim on (127\.0\.0\.1:\d+) \(UDP\), answering the system time -7000 ms", line
        )
        assert found, line
        settings.ETCNET_TIME_SOURCE = found.group(1)
        check()
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    reading = TimeReading.objects.get()
    assert reading.offset_ms is not None
    assert abs(reading.offset_ms + 7_000) <= within(reading)
