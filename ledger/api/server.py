"""The HTTP server of `ledger serve`: uvicorn's httptools protocol with the limits it lacks.

uvicorn bounds neither the request head nor the time a client takes to send a request, and it
closes a connection at once after answering even while the client is still sending its body, so
the client may see a reset instead of the answer. `LimitedHttpToolsProtocol` adds:

* at most `max_header_bytes` of request line and headers, and `max_headers` header fields: 431;
* a whole request within `read_timeout` seconds of its first byte: 408 (slow senders);
* a connection with no request in progress closed after `timeout_keep_alive` seconds, from the
  moment it opens (uvicorn arms that timer only after a first response);
* at most `max_connections` open connections; a request beyond them gets 503;
* an answer given before the request is all received (413, 431, …) reaches the client: the
  server half-closes, then reads and discards what the client still sends (up to
  `discard_bytes`, within the read timeout) before it closes.

Every refusal is problem JSON, like the application's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httptools
import uvicorn
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from ledger.api.problems import ProblemResponse
from ledger.settings import Settings

log = logging.getLogger("uvicorn.error")

RETRY_BUSY_SECONDS = "1"


@dataclass(frozen=True)
class HttpLimits:
    """What one connection may cost the server."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    read_timeout: float = 30.0
    max_connections: int = 1000
    # After an early answer, how much of the rest of a request is read and thrown away.
    discard_bytes: int = 8 * 1024 * 1024

    @classmethod
    def of(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            read_timeout=settings.read_timeout_seconds,
            max_connections=settings.max_connections,
        )


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration, carrying the limits to each connection's protocol."""

    def __init__(self, app: str, *, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits


def server_config(settings: Settings, *, host: str, port: int, workers: int) -> ServerConfig:
    """The uvicorn configuration of `ledger serve`."""
    trusted = settings.forwarded_allow_ips.strip()
    return ServerConfig(
        "ledger.api.app:app_from_env",
        limits=HttpLimits.of(settings),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        http=LimitedHttpToolsProtocol,
        ws="none",  # the API has no WebSocket route: an upgrade is an ordinary request
        timeout_keep_alive=settings.keep_alive_seconds,
        # uvicorn trusts X-Forwarded-* from 127.0.0.1 unless told otherwise; trust no one unless
        # the operator names the proxies.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, as uvicorn binds it; OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)  # workers are separate processes that share it
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, calling `on_stop` once it has shut down: uvicorn ends the process by
    the signal it was stopped with as soon as `run` returns, before a caller's own clean-up."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stop = on_stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        await asyncio.to_thread(self.on_stop)


def serve(
    config: ServerConfig, sock: socket.socket, on_stop: Callable[[], None] = lambda: None
) -> bool:
    """Serve on the bound socket until stopped, then call `on_stop`; False if the server did
    not start."""
    shown = f"[{config.host}]" if ":" in config.host else config.host
    log.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, config.port)
    if config.workers > 1:
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            on_stop()
        return True
    server = _Server(config, on_stop)
    try:
        server.run(sockets=[sock])
    finally:
        on_stop()  # when it did not start, or stopped without shutting down
    return server.started


class _HeadTooLargeError(Exception):
    """Raised in a parser callback to stop parsing a request head over the limits."""


def _problem_bytes(
    status: int, slug: str, title: str, detail: str, default_headers: list[tuple[bytes, bytes]]
) -> bytes:
    response = ProblemResponse(status, slug, title, detail, headers={"Connection": "close"})
    head = [STATUS_LINE[status]]
    for name, value in [*default_headers, *response.raw_headers]:
        head += [name, b": ", value, b"\r\n"]
    return b"".join([*head, b"\r\n", response.body])


class _CycleTransport(asyncio.Transport):
    """The transport as a request's handler sees it: closing it while the client is still
    sending that request half-closes and lingers instead, so the client reads the answer."""

    def __init__(self, transport: asyncio.Transport, protocol: LimitedHttpToolsProtocol) -> None:
        super().__init__()
        self._transport = transport
        self._protocol = protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing() or self._protocol.lingering

    def close(self) -> None:
        self._protocol.close_after_request()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounded in head size, time, connections and discards."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = config.limits if isinstance(config, ServerConfig) else HttpLimits()
        self.limit_concurrency = None  # counted in on_headers_complete, answered as a problem
        self.cycle_transport: _CycleTransport | None = None
        self.read_timer: TimerHandle | None = None
        self.receiving = False  # between the first byte of a request and its last
        self.in_head = False  # between the first byte of a request and the end of its headers
        self.head_bytes = 0  # request line and complete headers, counted exactly
        self.head_raw = 0  # bytes received while the head is unfinished (bounds its buffer)
        self.headers_seen = 0
        self.fresh_chunk = False  # the chunk being parsed began with no request in progress
        self.chunk_size = 0
        self.head_refused: str | None = None
        self.lingering = False
        self.discarded = 0

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.cycle_transport = _CycleTransport(transport, self)
        self._arm_keep_alive()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self.discarded += len(data)
            if self.discarded > self.limits.discard_bytes:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        if self.read_timer is None:
            self.read_timer = self.loop.call_later(self.limits.read_timeout, self._read_timed_out)
        self.fresh_chunk, self.chunk_size = not self.receiving, len(data)
        if self.in_head:
            self.head_raw += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError as e:
            if self.head_refused is not None:
                self._refuse_head(self.head_refused)
            else:
                log.warning("Invalid HTTP request received: %s", e)
                self._answer(400, "bad-request", "The request is malformed", f"invalid HTTP: {e}")
            return
        if self.in_head and self.head_raw > self.limits.max_header_bytes:
            self._refuse_head(self._too_many_bytes())

    def on_response_complete(self) -> None:
        if self.lingering:
            self.server_state.total_requests += 1
            return
        super().on_response_complete()
        if self.receiving:  # answered early: the read timer bounds the rest of the request
            self._unset_keepalive_if_required()

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._unset_keepalive_if_required()
        self.receiving = self.in_head = True
        self.head_bytes = self.headers_seen = 0
        # The bytes of a chunk that began between requests are all this head's (or blank lines).
        self.head_raw = self.chunk_size if self.fresh_chunk else 0
        self.fresh_chunk = False
        if self.read_timer is None:
            self.read_timer = self.loop.call_later(self.limits.read_timeout, self._read_timed_out)

    def on_url(self, url: bytes) -> None:
        self.head_bytes += len(url)
        if self.head_bytes > self.limits.max_header_bytes:
            self._stop_head(self._too_many_bytes())
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers_seen += 1
        self.head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self.headers_seen > self.limits.max_headers:
            self._stop_head(f"the request has more than {self.limits.max_headers} header fields")
        if self.head_bytes > self.limits.max_header_bytes:
            self._stop_head(self._too_many_bytes())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head = False
        busy = (
            len(self.connections) > self.limits.max_connections
            or len(self.tasks) >= self.limits.max_connections
        )
        if not busy:
            super().on_headers_complete()
        else:
            log.warning("Exceeded the connection limit (%d).", self.limits.max_connections)
            app, self.app = self.app, self._busy()
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        if self.cycle is not None and self.cycle_transport is not None:
            self.cycle.transport = self.cycle_transport

    def on_body(self, body: bytes) -> None:
        if self.cycle.response_complete:  # answered early: what still comes is thrown away
            self.discarded += len(body)
            if self.discarded > self.limits.discard_bytes:
                self.transport.close()
                return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.receiving = False
        self.discarded = 0
        self._stop_read_timer()
        super().on_message_complete()
        if self.cycle.response_complete and not self.pipeline:
            self._arm_keep_alive()

    # Closing

    def close_after_request(self) -> None:
        """Close now, or once the client has sent the request it is still sending."""
        if self.receiving:
            self._linger()
        else:
            self.transport.close()

    def _linger(self) -> None:
        if self.lingering or self.transport.is_closing():
            return
        self.lingering = True
        self._unset_keepalive_if_required()
        if self.read_timer is None:
            self.read_timer = self.loop.call_later(self.limits.read_timeout, self._read_timed_out)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is whole: the client sees it, then EOF
        self.flow.resume_reading()

    def _answer(self, status: int, slug: str, title: str, detail: str, linger: bool = True) -> None:
        """Answer the request being received with a problem, then close."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started or self.in_head or self.pipeline:
                # Another answer is due or under way on this connection: nothing can follow it.
                self.transport.close()
                return
            cycle.disconnected = True  # the handler waits for a body that will not come
            cycle.message_event.set()
        default_headers = self.server_state.default_headers
        self.transport.write(_problem_bytes(status, slug, title, detail, default_headers))
        if linger:
            self._linger()
        else:
            self.transport.close()

    def _too_many_bytes(self) -> str:
        return f"the request line and headers are larger than {self.limits.max_header_bytes} bytes"

    def _stop_head(self, detail: str) -> None:
        self.head_refused = detail
        raise _HeadTooLargeError(detail)

    def _refuse_head(self, detail: str) -> None:
        log.warning("Refused a request head from %s: %s.", self._peer(), detail)
        self._answer(431, "headers-too-large", "The request headers are too large", detail)

    def _read_timed_out(self) -> None:
        self.read_timer = None
        cycle = self.cycle
        answered = self.lingering or (
            cycle is not None and not self.in_head and cycle.response_started
        )
        if answered or not self.receiving:
            self.transport.close()  # the client has its answer, or never began a request
            return
        log.warning("A request from %s was not received in time.", self._peer())
        detail = f"the request was not received within {self.limits.read_timeout:g} s"
        self._answer(408, "request-timeout", "The request took too long", detail, linger=False)

    def _arm_keep_alive(self) -> None:
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _stop_read_timer(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _busy(self) -> ASGI3Application:
        detail = f"more than {self.limits.max_connections} connections are open; retry shortly"
        response = ProblemResponse(
            503,
            "busy",
            "The server is busy",
            detail,
            headers={"Retry-After": RETRY_BUSY_SECONDS, "Connection": "close"},
        )
        return cast(ASGI3Application, response)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
