"""The time source over NTP: the client's query and checks, and the server's answer.

Seed 003 puts a Beidou time receiver (北斗授时设备) at the center; a real one is an
NTP server on the center's network. ``query`` reads it with ntplib (RFC 4330 SNTP
client: one request, the offset and round-trip delay from its four timestamps)
and adds the checks RFC 4330 §5 asks of a client that ntplib leaves out: a server
answer (mode 4), a synchronised server (leap indicator not 3, stratum 1–15: a
stratum of 0 is a kiss-o'-death), a transmit time, and an originate time that
echoes this request. ``answer`` is the server's side of RFC 4330 §5, for the
simulated receiver (``etcnet.clock.simulator``).

Pure: the standard library and ntplib, no Django.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ntplib

__all__ = [
    "DEFAULT_PORT",
    "Measurement",
    "SourceError",
    "answer",
    "parse_source",
    "query",
    "to_ntp",
]

DEFAULT_PORT = 123
#: Seconds from the NTP era's start (1900-01-01) to the Unix epoch.
NTP_DELTA = 2_208_988_800
#: The reference identifier of a stratum-1 server fed by Beidou (BDS); four ASCII
#: characters, padded with zeros, as RFC 4330 §4 has for GPS ("GPS").
BEIDOU_REF_ID = b"BDS\x00"
#: The simulated receiver's precision: 2**-20 s, about a microsecond.
PRECISION = -20
_PACKET = 48


class SourceError(Exception):
    """The time source gave no usable reading; the message says why (for operators)."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One reading: ``offset_ms`` is the source's time minus this machine's clock
    (positive: this clock is behind), ``delay_us`` the round trip."""

    offset_ms: int
    delay_us: int
    stratum: int


def parse_source(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6 address]:port`` → (host, port); the port
    defaults to 123. ValueError names what is wrong."""
    text = text.strip()
    if not text:
        raise ValueError("no time source given")
    port_text = ""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not [address]:port")
        port_text = rest[1:]
    elif ":" not in text:
        host = text
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        try:  # several colons: an IPv6 address alone
            host = str(ipaddress.IPv6Address(text))
        except ValueError:
            raise ValueError(f"{text!r} is not host:port (an IPv6 address goes in [ ])") from None
    if not host:
        raise ValueError(f"{text!r} names no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def query(
    source: str,
    *,
    timeout_s: float = 2.0,
    client: Any = None,
    wall: Callable[[], float] = time.time,
) -> Measurement:
    """Reads the source once (NTP version 4 request). Raises ``SourceError`` when
    it does not answer in ``timeout_s`` or answers something unusable."""
    try:
        host, port = parse_source(source)
    except ValueError as error:
        raise SourceError(str(error)) from None
    ntp = client if client is not None else ntplib.NTPClient()
    sent = wall()
    try:
        stats = ntp.request(host, version=4, port=port, timeout=timeout_s)
    except ntplib.NTPException as error:
        raise SourceError(f"no answer from {source} within {timeout_s:g} s") from error
    except OSError as error:  # the name does not resolve, the network is down
        raise SourceError(f"{source}: {error}") from error
    received = wall()
    return checked(stats, sent=sent, received=received)


def checked(stats: Any, *, sent: float, received: float) -> Measurement:
    """The checks of RFC 4330 §5 on an answer received between ``sent`` and
    ``received`` (this machine's clock, Unix seconds)."""
    mode, leap, stratum = int(stats.mode), int(stats.leap), int(stats.stratum)
    if mode != 4:
        raise SourceError(f"not a server's answer (mode {mode})")
    if stratum == 0:
        code = struct.pack("!I", int(stats.ref_id)).decode("ascii", "replace").strip("\x00")
        raise SourceError(f"the source refuses to answer (kiss-o'-death {code!r})")
    if leap == 3 or stratum > 15:
        raise SourceError("the source is not synchronised (leap indicator 3 or stratum 16)")
    if float(stats.tx_timestamp) == 0:
        raise SourceError("the answer carries no transmit time")
    # ntplib does not compare the echoed originate time with its request's
    # transmit time; the request went out between `sent` and `received`, so an
    # answer to this request echoes a time inside that window (a stale or forged
    # answer does not). A little slack for the float conversion.
    origin = float(stats.orig_timestamp) - NTP_DELTA
    if not sent - 0.001 <= origin <= received + 0.001:
        raise SourceError("the answer does not echo this request (originate time)")
    offset_s, delay_s = float(stats.offset), float(stats.delay)
    return Measurement(
        offset_ms=round(offset_s * 1000), delay_us=max(0, round(delay_s * 1e6)), stratum=stratum
    )


def to_ntp(unix_s: float) -> bytes:
    """An NTP timestamp (64-bit, seconds since 1900 and the fraction) of a Unix time."""
    seconds = unix_s + NTP_DELTA
    whole = int(seconds)
    fraction = min(int((seconds - whole) * 2**32), 2**32 - 1)
    return struct.pack("!II", whole & 0xFFFFFFFF, fraction)


def answer(
    request: bytes,
    *,
    received: float,
    transmit: float,
    stratum: int = 1,
    leap: int = 0,
    ref_id: bytes = BEIDOU_REF_ID,
) -> bytes | None:
    """The server's reply to a client request (RFC 4330 §5), or None for
    anything else (too short, not mode 3 client, an unknown version), which a
    server drops. ``received`` and ``transmit`` are the server's times (Unix
    seconds) when the request came in and as the reply goes out. The version and
    poll are copied from the request, the request's transmit timestamp becomes
    the originate timestamp byte for byte (a client compares them exactly)."""
    if len(request) < _PACKET:
        return None
    version, mode = request[0] >> 3 & 0x7, request[0] & 0x7
    if mode != 3 or not 1 <= version <= 4:
        return None
    header = struct.pack(
        "!BBBbII4s",
        (leap & 0x3) << 6 | version << 3 | 4,
        stratum,
        request[2],  # poll, copied
        PRECISION,
        0,  # root delay: the receiver is the reference
        0x10,  # root dispersion: 2**-12 s
        ref_id,
    )
    reference = to_ntp(int(transmit) - 16)  # last set from the satellites: a moment ago
    return header + reference + request[40:48] + to_ntp(received) + to_ntp(transmit)
