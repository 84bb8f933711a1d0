"""uvicorn serving the ASGI app of ``app.py``: in the daemon's event loop, in ``beacons serve``, or in a test thread.

uvicorn (h11) parses HTTP (a malformed request, such as a Content-Length that
is not ASCII digits, is answered 400 by h11) and caps an unfinished head at
``MAX_HEAD_BYTES``; ``app.py`` answers 414 and 431 above its own, smaller
limits. On top of it, a slow client is cut off: the request head must arrive within
``serve.client_timeout`` of the connection (or of the previous response), and
``app.py`` gives the body the same time. uvicorn's access log is off and its
own messages go through structlog without request data; ``X-Forwarded-*``
headers count only with ``serve.proxy_headers`` and from
``serve.forwarded_allow_ips``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from beacons.config import Config
from beacons.log import get_logger
from beacons.storage import Storage
from beacons.web.app import App
from beacons.web.config import ServeConfig
from beacons.web.messages import SECURITY_RAW

log = get_logger("beacons.web")

MAX_HEAD_BYTES = 64 * 1024  # h11 drops a head that grows past this unfinished; app.py answers 414/431 sooner
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
BACKLOG = 128
GRACEFUL_S = 5  # requests in flight get this long at shutdown


class _TimedH11(H11Protocol):
    """h11 with a deadline for the request head: a client dripping its headers (slowloris) is disconnected."""

    head_timeout: float = 30.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # h11 writes the head and the body separately; with Nagle on, a keep-alive client's delayed ACK
            # holds the body back 40 ms. asyncio only sets TCP_NODELAY when the listening socket's proto is TCP.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        try:
            super().handle_events()
        except UnicodeDecodeError:  # a request target with bytes above 0x7f: uvicorn decodes it as ASCII
            self.send_400_response("Invalid HTTP request received.")
            return
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()

    def send_400_response(self, msg: str) -> None:
        """h11 could not parse the request (e.g. ``Content-Length: ²``): our JSON error and headers, then close."""
        body = json.dumps({"error": {"code": "bad_request", "message": "malformed HTTP request"}}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            *SECURITY_RAW,
            (b"connection", b"close"),
        ]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body)):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("http.client_timeout", stage="head", timeout_s=self.head_timeout)
            self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the daemon and ``beacons serve`` own SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _ToStructlog(logging.Handler):
    """uvicorn's own warnings and errors (a malformed request, a shutdown timeout) as structlog events.

    uvicorn's messages carry no headers or bodies; tracebacks are dropped (the app logs its bugs itself).
    """

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            log.error("http.uvicorn", message=record.getMessage())
        elif record.levelno >= logging.WARNING:
            log.warning("http.uvicorn", message=record.getMessage())


def _route_uvicorn_logs() -> None:
    logger = logging.getLogger("uvicorn")
    if not any(isinstance(h, _ToStructlog) for h in logger.handlers):
        logger.addHandler(_ToStructlog())
    logger.propagate = False
    logger.setLevel(logging.WARNING)


def _bind(serve: ServeConfig) -> socket.socket:
    host = serve.host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, serve.port))
        sock.listen(BACKLOG)  # connections made before the loop serves wait in the backlog
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_config(app: App) -> uvicorn.Config:
    """The uvicorn settings every beacons server runs with."""
    serve = app.serve
    _route_uvicorn_logs()
    return uvicorn.Config(
        app.asgi,
        http=type("TimedH11", (_TimedH11,), {"head_timeout": serve.client_timeout}),
        lifespan="off",
        log_config=None,
        access_log=False,  # http.request lines come from the app, without headers or query strings
        proxy_headers=serve.proxy_headers,
        forwarded_allow_ips=list(serve.forwarded_allow_ips),
        server_header=False,
        headers=[("Server", "beacons")],
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_S,
    )


class WebServer:
    """``with WebServer(config) as server: server.url`` (tests), ``await serve()`` (daemon), ``serve_forever()``."""

    def __init__(
        self,
        config: Config,
        serve: ServeConfig | None = None,
        *,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = App(config, serve, secret=secret, clock=clock)
        # Migrations once, before requests open connections; kept open for the server's life so a
        # PostgreSQL pool outlives each request's Storage (one per request, as SQLite wants one per thread).
        self._storage = Storage(config.database)
        try:
            self.socket = _bind(self.app.serve)
        except BaseException:
            self._storage.close()
            raise
        self.server = _Server(uvicorn_config(self.app))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def serve(self) -> None:
        """Serve in the running event loop until ``should_exit`` is set (see ``stop`` and ``serve_forever``)."""
        url = self.url
        log.info("serve.started", url=url, auth=self.app.serve.auth, database=self.app.config.database)
        try:
            await self.server.serve(sockets=[self.socket])
        finally:
            self.close()
            log.info("serve.stopped", url=url)

    def request_stop(self, *, force: bool = False) -> None:
        self.server.should_exit = True
        self.server.force_exit = self.server.force_exit or force

    def start(self, *, poll_interval: float = 0.5) -> None:
        """Serve from a background thread with its own event loop; returns once the server accepts connections.

        ``poll_interval`` is kept for callers of the old server; uvicorn checks for a stop every 0.1 s.
        """
        ready = threading.Event()
        failure: list[BaseException] = []

        async def run() -> None:
            task = asyncio.create_task(self.serve())
            while not self.server.started and not task.done():
                await asyncio.sleep(0.005)
            ready.set()
            await task

        def target() -> None:
            try:
                asyncio.run(run())
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=target, name="beacons-web", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    def serve_forever(self) -> None:
        """``beacons serve``: the first SIGINT or SIGTERM finishes requests in flight, a second one stops at once."""

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda: self.request_stop(force=self.server.should_exit))
            await self.serve()

        asyncio.run(run())

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.close()

    def close(self) -> None:
        """Close the socket and the database (``serve`` does it when it returns)."""
        self.socket.close()
        self._storage.close()

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
