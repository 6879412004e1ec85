"""The time source's protocol without a database: the SNTP answer of the
simulated receiver byte by byte (RFC 4330 §5), the client's checks, a real
query over UDP on localhost, and what the panel says of the readings."""

from __future__ import annotations

import datetime as dt
import re
import socket
import struct
from types import SimpleNamespace

import pytest

from etcnet.clock import sntp
from etcnet.clock.domain import Good, assess
from etcnet.clock.simulator import SntpSimulator

T = 1_796_000_000.25  # a Unix time with a quarter second


def silent_port() -> int:
    """A UDP port nobody listens on (the system just handed it out and it was closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(*, version: int = 4, mode: int = 3, poll: int = 6, tx: bytes = b"\x01" * 8) -> bytes:
    return bytes([version << 3 | mode, 0, poll, 0]) + bytes(36) + tx


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:12300", ("127.0.0.1", 12300)),
        ("beidou.center.local", ("beidou.center.local", 123)),
        (" 10.1.2.3 ", ("10.1.2.3", 123)),
        ("[::1]:12300", ("::1", 12300)),
        ("[fe80::1]", ("fe80::1", 123)),
        ("::1", ("::1", 123)),
    ],
)
def test_a_source_is_a_host_and_a_port_that_defaults_to_123(text, expected):
    assert sntp.parse_source(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no time source"),
        (":123", "names no host"),
        ("host:0", "1 to 65535"),
        ("host:65536", "1 to 65535"),
        ("host:ntp", "1 to 65535"),
        ("host:１２３", "1 to 65535"),
        ("[::1", "[address]:port"),
        ("[::1]x", "[address]:port"),
        ("bad:host:x", "an IPv6 address goes in"),
        ("::1:12300x", "an IPv6 address goes in"),
    ],
)
def test_a_malformed_source_is_refused_with_its_reason(text, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        sntp.parse_source(text)


def test_the_answer_follows_rfc_4330_and_echoes_the_request_byte_for_byte():
    tx = bytes.fromhex("EBD2A2F3 12345678")
    reply = sntp.answer(request(version=3, poll=10, tx=tx), received=T, transmit=T + 0.001)

    assert reply is not None
    assert len(reply) == 48
    first, stratum, poll, precision = struct.unpack("!BBBb", reply[:4])
    assert (first >> 6, first >> 3 & 7, first & 7) == (0, 3, 4)  # LI 0, version copied, server
    assert (stratum, poll, precision) == (1, 10, -20)
    assert reply[12:16] == b"BDS\x00"  # Beidou
    assert reply[24:32] == tx  # originate = the request's transmit, exactly
    whole, fraction = struct.unpack("!II", reply[32:40])  # receive timestamp
    assert whole == int(T) + sntp.NTP_DELTA
    assert fraction == 2**30  # .25 s
    assert struct.unpack("!I", reply[40:44])[0] == int(T) + sntp.NTP_DELTA


def test_a_receiver_that_lost_the_satellites_says_so():
    reply = sntp.answer(request(), received=T, transmit=T, leap=3)
    assert reply is not None
    assert reply[0] >> 6 == 3


@pytest.mark.parametrize(
    "packet",
    [
        request()[:47],  # too short
        request(mode=4),  # a server's answer, not a request
        request(mode=1),  # symmetric active: not served
        request(version=0),
        request(version=5),
    ],
)
def test_anything_but_a_client_request_is_dropped(packet):
    assert sntp.answer(packet, received=T, transmit=T) is None


def stats(**fields: float) -> SimpleNamespace:
    """An ntplib answer sent at T (NTP time) and received 2 ms later, 5 s ahead."""
    ntp_t = T + sntp.NTP_DELTA
    base = {
        "mode": 4,
        "leap": 0,
        "stratum": 1,
        "ref_id": int.from_bytes(b"BDS\x00", "big"),
        "orig_timestamp": ntp_t,
        "tx_timestamp": ntp_t + 5.001,
        "offset": 5.0,
        "delay": 0.002,
    }
    base.update(fields)
    return SimpleNamespace(**base)


def test_a_good_answer_gives_the_offset_in_ms_and_the_round_trip_in_us():
    measured = sntp.checked(stats(), sent=T - 0.0005, received=T + 0.002)
    assert measured == sntp.Measurement(offset_ms=5000, delay_us=2000, stratum=1)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"mode": 3}, "not a server's answer"),
        ({"stratum": 0, "ref_id": int.from_bytes(b"RATE", "big")}, "kiss-o'-death 'RATE'"),
        ({"leap": 3}, "not synchronised"),
        ({"stratum": 16}, "not synchronised"),
        ({"tx_timestamp": 0}, "no transmit time"),
        ({"orig_timestamp": T + sntp.NTP_DELTA - 60}, "does not echo this request"),
    ],
)
def test_an_unusable_answer_is_refused_with_its_reason(fields, says):
    with pytest.raises(sntp.SourceError, match=says):
        sntp.checked(stats(**fields), sent=T - 0.0005, received=T + 0.002)


def test_the_simulated_receiver_is_read_over_udp_with_its_offset():
    with SntpSimulator(offset_ms=90_000) as sim:
        measured = sntp.query(sim.source)
        sim.set_offset(-1_500)
        later = sntp.query(sim.source)
        assert sim.answered == 2
    # NTP's error is at most half the round trip
    assert abs(measured.offset_ms - 90_000) <= measured.delay_us / 2000 + 2
    assert abs(later.offset_ms + 1_500) <= later.delay_us / 2000 + 2
    assert measured.stratum == 1
    assert 0 <= measured.delay_us < 1_000_000


def test_a_silent_or_unsynchronised_source_gives_no_reading():
    with pytest.raises(sntp.SourceError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.3 s"):
        sntp.query(f"127.0.0.1:{silent_port()}", timeout_s=0.3)
    with SntpSimulator(synchronised=False) as sim, pytest.raises(sntp.SourceError, match="not "):
        sntp.query(sim.source)
    with pytest.raises(sntp.SourceError, match="1 to 65535"):
        sntp.query("127.0.0.1:0")


# -- what the panel says -------------------------------------------------------------

NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


def good(offset_ms: int, seconds_ago: int) -> Good:
    return Good(NOW - dt.timedelta(seconds=seconds_ago), offset_ms, 400, 1)


def flags(**kwargs: object) -> tuple[bool, bool, bool, bool, int]:
    status = assess(now=NOW, max_ms=1000, stale_s=300, **kwargs)  # type: ignore[arg-type]
    return (status.unconfigured, status.never_read, status.beyond, status.stale, status.applied_ms)


def test_the_panel_warns_unconfigured_never_read_beyond_and_stale():
    assert flags(source="", good=None) == (True, False, False, False, 0)
    assert flags(source="rx:123", good=None, last_error="no answer") == (
        False,
        True,
        False,
        False,
        0,
    )
    assert flags(source="rx:123", good=good(-1000, 60)) == (False, False, False, False, -1000)
    assert flags(source="rx:123", good=good(1001, 60)) == (False, False, True, False, 1001)
    assert flags(source="rx:123", good=good(12, 301)) == (False, False, False, True, 12)
    assert flags(source="rx:123", good=good(12, 300)) == (False, False, False, False, 12)


def test_an_error_older_than_the_last_good_reading_is_not_shown():
    old = assess(
        source="rx:123",
        good=good(12, 60),
        last_error="no answer",
        last_error_at=NOW - dt.timedelta(seconds=120),
        now=NOW,
        max_ms=1000,
        stale_s=300,
    )
    new = assess(
        source="rx:123",
        good=good(12, 60),
        last_error="no answer",
        last_error_at=NOW - dt.timedelta(seconds=30),
        now=NOW,
        max_ms=1000,
        stale_s=300,
    )
    assert (old.last_error, old.warn) == ("", False)
    assert (new.last_error, new.silent_s, new.warn) == ("no answer", 60, False)
