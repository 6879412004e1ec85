"""A simulated Beidou time receiver: an SNTP server (RFC 4330) on UDP that answers
with this machine's clock plus a set offset, for ``make demo`` and the tests
(``etcnet clock ntp-sim``). A real deployment points ETCNET_TIME_SOURCE at the
receiver itself.

Pure: the standard library only, no Django.
"""

from __future__ import annotations

import socketserver
import threading
import time
from typing import Any

from etcnet.clock.sntp import answer

__all__ = ["SntpSimulator"]


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        received = time.time() + self.server.offset_s
        data, sock = self.request
        reply = answer(
            data,
            received=received,
            transmit=time.time() + self.server.offset_s,
            stratum=self.server.stratum,
            leap=self.server.leap,
        )
        if reply is not None:
            self.server.answered += 1  # before sending: the client may ask at once
            sock.sendto(reply, self.client_address)


class _Server(socketserver.UDPServer):
    allow_reuse_address = True
    offset_s: float
    stratum: int
    leap: int
    answered: int


class SntpSimulator:
    """Answers on ``host:port`` (0: a port the system picks; ``.port`` says which)
    with the system time plus ``offset_ms``. ``stratum`` 1 is a receiver locked to
    the satellites; ``synchronised=False`` answers leap indicator 3 (a receiver
    that has lost them), which a client must refuse."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        offset_ms: int = 0,
        stratum: int = 1,
        synchronised: bool = True,
    ) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.offset_s = offset_ms / 1000
        self._server.stratum = stratum
        self._server.leap = 0 if synchronised else 3
        self._server.answered = 0
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def source(self) -> str:
        """What ETCNET_TIME_SOURCE says to read this simulator."""
        return f"{self.host}:{self.port}"

    @property
    def answered(self) -> int:
        return self._server.answered

    def set_offset(self, offset_ms: int) -> None:
        self._server.offset_s = offset_ms / 1000

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> SntpSimulator:
        """Serves in a background thread (tests)."""
        self._thread = threading.Thread(target=self.serve_forever, name="ntp-sim", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> SntpSimulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
