"""The shared HTTP work of every collector: one careful GET.

``fetch`` does conditional GET (ETag / Last-Modified), follows at most
``max_redirects`` http(s) redirects itself, caps the *decoded* body at
``max_bytes`` while streaming (so a gzip bomb stops at the cap, not in RAM),
enforces a total deadline (a slow-drip server cannot hold a poll forever) and
turns 429/503 ``Retry-After`` into a per-host pause. ``Politeness`` bounds the
requests in flight overall and per host and spaces requests to one host.

Redirects keep credentials with their origin and cannot reach inwards (issue
10, section 4): ``Authorization``, ``Cookie`` and URL userinfo are dropped on
any change of scheme, host or port, and a hop whose connected address is more
private than the first hop's is refused (``beacons.addresses``).
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import ssl
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from beacons.addresses import AddressClass, Classify, address_class, ip_literal, redirect_refusal
from beacons.clock import SYSTEM, Clock
from beacons.errors import (
    BadRedirect,
    BodyTooLarge,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    NotModified,
    TooManyRedirects,
)
from beacons.log import get_logger
from beacons.models import Fetched
from beacons.redact import registered, scrub

log = get_logger("beacons.fetch")

# httpcore runs `import sniffio` each time it builds a lock, several times per
# request; anyio 4 no longer installs sniffio, and a failed import is not cached,
# so every request rescanned sys.path (a fifth of the daemon's CPU in
# bench/scale.py). None in sys.modules is the import system's cached "not found".
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
DEFAULT_RETRY_AFTER = 60.0  # a 429 without Retry-After still means "slow down"
MAX_RETRY_AFTER = 6 * 3600.0
ERROR_BODY_BYTES = 16 * 1024  # how much of an error response is kept for the collector
ERROR_BODY_SECONDS = 5.0
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})  # never sent to another origin
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class FetchLimits:
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = "beacons"
    allow_private_redirects: bool = False  # see beacons.addresses for the rule it lifts

    @classmethod
    def from_config(cls, cfg: object) -> FetchLimits:
        return cls(
            timeout=getattr(cfg, "timeout"),
            connect_timeout=getattr(cfg, "connect_timeout"),
            max_bytes=getattr(cfg, "max_bytes"),
            max_redirects=getattr(cfg, "max_redirects"),
            user_agent=getattr(cfg, "user_agent"),
            allow_private_redirects=getattr(cfg, "allow_private_redirects", False),
        )


@dataclass(slots=True)
class _Host:
    sem: asyncio.Semaphore
    next_at: float = 0.0  # monotonic time before which no request may start
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Politeness:
    """Bounded concurrency overall and per host, with minimum spacing per host."""

    def __init__(
        self,
        concurrency: int = 64,
        per_host: int = 2,
        delay: float = 1.0,
        *,
        clock: Clock = SYSTEM,  # spacing and pauses are read from (and waited on) this clock
    ) -> None:
        self._clock = clock
        self._global = asyncio.Semaphore(concurrency)
        self._per_host = per_host
        self._delay = delay
        self._hosts: dict[str, _Host] = {}

    def _host(self, host: str) -> _Host:
        h = self._hosts.get(host)
        if h is None:
            h = self._hosts[host] = _Host(asyncio.Semaphore(self._per_host))
        return h

    def pause(self, host: str, seconds: float) -> None:
        """Hold every request to ``host`` for ``seconds`` (a Retry-After)."""
        h = self._host(host)
        h.next_at = max(h.next_at, self._clock.monotonic() + seconds)

    def paused_for(self, host: str) -> float:
        h = self._hosts.get(host)
        return max(0.0, h.next_at - self._clock.monotonic()) if h else 0.0

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        h = self._host(host)
        async with h.sem:
            async with h.lock:  # spacing is decided one request at a time per host
                wait = h.next_at - self._clock.monotonic()
                if wait > 0:
                    await self._clock.wait(None, wait)
                h.next_at = self._clock.monotonic() + self._delay
            async with self._global:
                yield


class PerHostTransport(httpx.AsyncBaseTransport):
    """httpx's own connection pool, one per origin (scheme, host, port), created on first use.

    One shared pool for every host cost twice: httpcore scans all its connections on every request
    (counting the idle ones once per idle connection, so a pool of 80 kept connections spent 5 ms a
    request on the scan), and with fewer idle connections kept than hosts polled in turn, the oldest
    idle one, the next host's, was closed before its next request, so none was reused. A pool per host
    holds at most ``per_host`` connections (above fetch.per_host_concurrency, which bounds requests in
    flight to a host), its scan stays tiny, and a host's connection waits for its next poll (httpx
    closes it after 5 s idle). One TLS context serves every pool (building one loads the CA bundle)."""

    def __init__(self, *, per_host: int = 8) -> None:
        self._per_host = max(1, per_host)
        self._ssl: ssl.SSLContext | None = None
        self._pools: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            limits = httpx.Limits(max_connections=self._per_host, max_keepalive_connections=self._per_host)
            pool = self._pools[key] = httpx.AsyncHTTPTransport(verify=self._ssl, limits=limits)
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def make_client(limits: FetchLimits, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The one client the daemon shares between collectors."""
    return httpx.AsyncClient(
        transport=transport or PerHostTransport(),
        follow_redirects=False,  # fetch() follows them itself, checking each hop
        timeout=httpx.Timeout(limits.timeout, connect=limits.connect_timeout),
        headers={"User-Agent": limits.user_agent, "Accept-Encoding": "gzip, deflate"},
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (taken from ``now``, epoch seconds)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    limits: FetchLimits,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    politeness: Politeness | None = None,
    source_id: str | None = None,
    classify: Classify = address_class,
) -> Fetched:
    """GET ``url``; raises ``NotModified`` on 304 and a ``FetchError`` on failure.

    ``classify`` tells the class of a connected IP address (tests pass one that
    calls a loopback server public, to play a public source).
    """
    started = time.monotonic()
    host = urlsplit(url).hostname or ""
    wait = politeness.paused_for(host) if politeness is not None else 0.0
    if wait > limits.timeout:  # sleeping through a long Retry-After/backoff would only end in a timeout
        raise HTTPStatusError(
            f"{host} asked for a pause ({wait:.0f}s left of its Retry-After or backoff); not calling it before then",
            url=url,
            status=429,
            retry_after=wait,
            source_id=source_id,
        )
    try:
        guard = _RedirectGuard(url, limits.allow_private_redirects, classify, source_id)
        return await _fetch(
            client, url, limits, params, headers, etag, last_modified, politeness, source_id, started, guard
        )
    except TimeoutError as exc:
        raise FetchTimeout(
            f"{url} did not finish within fetch.timeout ({limits.timeout:g}s)", url=url, source_id=source_id
        ) from exc


async def _fetch(
    client: httpx.AsyncClient,
    url: str,
    limits: FetchLimits,
    params: Mapping[str, str | int] | None,
    headers: Mapping[str, str] | None,
    etag: str | None,
    last_modified: str | None,
    politeness: Politeness | None,
    source_id: str | None,
    started: float,
    guard: _RedirectGuard,
) -> Fetched:
    request_headers = dict(headers or {})
    if etag:
        request_headers["If-None-Match"] = etag
    if last_modified:
        request_headers["If-Modified-Since"] = last_modified
    seen: list[str] = []
    current = url
    query = params
    # fetch.timeout bounds the time spent on the wire, over every hop. Waiting for a
    # politeness slot does not count: forty sources on one host, one second apart,
    # would otherwise time out in the queue without sending a byte.
    budget = limits.timeout
    for _hop in range(limits.max_redirects + 1):
        try:
            request = client.build_request("GET", current, params=query, headers=request_headers)
        except httpx.InvalidURL as exc:
            if not seen:
                raise FetchError(f"cannot fetch {scrub(url)}: {exc}", url=url, source_id=source_id) from exc
            raise BadRedirect(
                f"{scrub(seen[-1])} redirects to a URL that cannot be parsed ({exc})", url=url, source_id=source_id
            ) from exc
        current = str(request.url)
        if current in seen:
            raise TooManyRedirects(
                f"redirect loop at {current} (after {' -> '.join(seen)})", url=url, source_id=source_id
            )
        seen.append(current)
        host = request.url.host
        guard.before_connect(request)
        send = _send(client, request, limits, politeness, source_id, url, guard.connected)
        if politeness is not None:
            async with politeness.slot(host):
                result, budget = await _timed(send, budget)
        else:
            result, budget = await _timed(send, budget)
        if isinstance(result, str):  # a redirect target
            target = urljoin(current, result)
            scheme = urlsplit(target).scheme.lower()
            if scheme not in ("http", "https"):
                raise BadRedirect(
                    f"{current} redirects to a {scheme or 'relative'}: URL ({target[:200]}); only http(s) is followed",
                    url=url,
                    source_id=source_id,
                )
            if _origin(target) != _origin(current):  # as httpx and requests do, but on any change
                request_headers = {k: v for k, v in request_headers.items() if not _is_credential(k, v)}
                target = _without_userinfo(target)
            current, query = target, None
            continue
        status, resp_headers, body = result
        return Fetched(
            url=current,
            status=status,
            headers=resp_headers,
            body=body,
            etag=resp_headers.get("etag"),
            last_modified=resp_headers.get("last-modified"),
            elapsed_ms=(time.monotonic() - started) * 1000,
        )
    raise TooManyRedirects(
        f"{url} redirected more than fetch.max_redirects ({limits.max_redirects}) times: {' -> '.join(seen)}",
        url=url,
        source_id=source_id,
    )


_Sent = str | tuple[int, dict[str, str], bytes]  # a redirect target, or (status, headers, body)


async def _timed(send: Awaitable[_Sent], budget: float) -> tuple[_Sent, float]:
    """Await one hop within what is left of the budget; TimeoutError when it runs out."""
    began = time.monotonic()
    async with asyncio.timeout(max(budget, 0.0)):
        result = await send
    return result, budget - (time.monotonic() - began)


async def _send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    limits: FetchLimits,
    politeness: Politeness | None,
    source_id: str | None,
    url: str,
    connected: Callable[[httpx.Request, httpx.Response], None],
) -> str | tuple[int, dict[str, str], bytes]:
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise FetchTimeout(f"{request.url} timed out ({type(exc).__name__})", url=url, source_id=source_id) from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{request.url} failed: {type(exc).__name__}: {exc}", url=url, source_id=source_id) from exc
    except httpx.InvalidURL as exc:
        # httpx builds the next request of a redirect even when it will not follow it, and
        # fails on a Location such as "javascript:..." or "mailto:..." (tests/test_hostile.py).
        raise BadRedirect(
            f"{request.url} redirects to a URL that is not a usable http(s) URL ({exc}); only http(s) is followed",
            url=url,
            source_id=source_id,
        ) from exc
    try:
        connected(request, response)  # before a byte of the body is read
        headers = {k.lower(): v for k, v in response.headers.items()}
        status = response.status_code
        if status in REDIRECT_STATUSES and "location" in headers:
            return headers["location"]
        if status == 304:
            # A 304 has no body, but the connection goes back to the pool only once its (empty) body was
            # read: closing it unread closed the connection, so every 304 poll paid a new TCP (and TLS) handshake.
            await response.aread()
            raise NotModified()
        if status >= 400:
            retry_after = parse_retry_after(headers.get("retry-after"))
            if retry_after is None:
                retry_after = rate_limit_wait(headers)
            if status == 429 and retry_after is None:
                retry_after = DEFAULT_RETRY_AFTER
            if retry_after is not None and politeness is not None:
                politeness.pause(request.url.host, retry_after)
            hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            # APIs explain errors in the body (Stack Exchange's throttle_violation comes as a 400):
            # the first bytes ride along for the collector, never into the message or the logs.
            raise HTTPStatusError(
                f"{request.url} answered HTTP {status}{hint}",
                url=url,
                status=status,
                retry_after=retry_after,
                source_id=source_id,
                body=await _error_body(response, headers, url, source_id),
            )
        body = await _read_capped(response, headers, limits.max_bytes, url, source_id)
        return status, headers, body
    except httpx.TimeoutException as exc:
        raise FetchTimeout(f"{request.url} timed out while reading the body", url=url, source_id=source_id) from exc
    except httpx.HTTPError as exc:
        raise FetchError(
            f"{request.url} failed while reading: {type(exc).__name__}: {exc}", url=url, source_id=source_id
        ) from exc
    finally:
        await response.aclose()


def _is_credential(name: str, value: str) -> bool:
    """Authorization, Cookie, or a header carrying a registered secret (an API key in X-Goog-Api-Key, PRIVATE-TOKEN)."""
    return name.lower() in CREDENTIAL_HEADERS or any(secret in value for secret in registered())


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) with the default port filled in; None when the URL cannot be parsed."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").rstrip("."), parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None


def _without_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:  # httpx refuses it next, as a BadRedirect
        return url
    host = parts.netloc.rpartition("@")[2]
    return url if host == parts.netloc else parts._replace(netloc=host).geturl()


def _peer_ip(response: httpx.Response) -> str | None:
    """The IP address the response actually came from (the connected socket's peer)."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        addr = stream.get_extra_info("server_addr")
    except OSError:  # a socket already torn down
        return None
    if isinstance(addr, tuple) and addr and isinstance(addr[0], str):
        return addr[0]
    return None


class _RedirectGuard:
    """The first hop's address class, and the check of every later hop against it (``beacons.addresses``).

    The check reads the address of the connection httpx made (the socket's
    peer), so DNS rebinding gains nothing: whatever a name resolved to, the
    address checked is the one connected to. A redirect to an IP literal is
    checked before connecting, so no request reaches it at all; a redirect to
    a name is checked once the response headers arrive, and a refused one is
    closed without reading its body.
    """

    def __init__(self, url: str, allow_private: bool, classify: Classify, source_id: str | None) -> None:
        self.url = url
        self.allow_private = allow_private
        self.classify = classify
        self.source_id = source_id
        self.source: AddressClass | None = None  # set by the first hop
        self.previous = url

    def before_connect(self, request: httpx.Request) -> None:
        if self.source is not None:
            ip = ip_literal(request.url.host)
            if ip is not None:
                self._check(str(request.url), ip)

    def connected(self, request: httpx.Request, response: httpx.Response) -> None:
        ip = _peer_ip(response) or ip_literal(request.url.host)
        if self.source is None:
            # Unknown (a transport that does not say where it connected) counts as public: the strict case.
            self.source = self.classify(ip) if ip is not None else AddressClass.PUBLIC
        elif ip is not None:
            self._check(str(request.url), ip)
        self.previous = str(request.url)

    def _check(self, target: str, ip: str) -> None:
        assert self.source is not None
        target_class = self.classify(ip)
        reason = redirect_refusal(self.source, target_class, allow_private=self.allow_private)
        if reason is None:
            return
        log.warning(
            "fetch.redirect_refused",
            url=scrub(self.previous),
            target=scrub(target),
            address=ip,
            address_class=target_class.label,
            source_class=self.source.label,
        )
        raise BadRedirect(
            f"refused the redirect from {scrub(self.previous)} to {scrub(target)} "
            f"({ip}, {target_class.label}): {reason}",
            url=self.url,
            source_id=self.source_id,
        )


def rate_limit_wait(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds until an exhausted quota resets, from ``(X-)RateLimit-Remaining/Reset`` headers.

    GitHub and Bluesky send Reset as epoch seconds, Reddit as seconds from now;
    a value above 10**9 is taken as an epoch. None unless Remaining is 0.
    """
    for prefix in ("x-ratelimit-", "ratelimit-"):
        remaining, reset = headers.get(prefix + "remaining"), headers.get(prefix + "reset")
        if remaining is None or reset is None:
            continue
        try:
            if float(remaining) >= 1:
                return None
            value = float(reset)
        except ValueError:
            continue
        seconds = value - (time.time() if now is None else now) if value > 1e9 else value
        return min(max(seconds, 1.0), MAX_RETRY_AFTER)
    return None


async def _error_body(response: httpx.Response, headers: dict[str, str], url: str, source_id: str | None) -> bytes:
    try:
        async with asyncio.timeout(ERROR_BODY_SECONDS):  # a slow error body must not turn the error into a timeout
            return await _read_capped(response, headers, ERROR_BODY_BYTES, url, source_id)
    except (FetchError, httpx.HTTPError, TimeoutError):
        return b""


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{round(n / 1024, 1):g} KiB"
    return f"{round(n / 1024 / 1024, 1):g} MiB"


async def _read_capped(
    response: httpx.Response, headers: dict[str, str], max_bytes: int, url: str, source_id: str | None
) -> bytes:
    if response.is_stream_consumed:
        # httpx.MockTransport responses built from bytes arrive already read (and
        # decoded by httpx); there is nothing left to stream, only the cap to check.
        if len(response.content) > max_bytes:
            raise BodyTooLarge(
                f"body of {source_id or url} is {_human(len(response.content))}, over fetch.max_bytes ({_human(max_bytes)})",
                url=url,
                limit=max_bytes,
                source_id=source_id,
            )
        return response.content
    encoding = headers.get("content-encoding", "identity").strip().lower()
    declared = headers.get("content-length")
    if encoding in ("identity", "") and declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(
            f"body of {source_id or url} declares {_human(int(declared))}, over fetch.max_bytes ({_human(max_bytes)})",
            url=url,
            limit=max_bytes,
            source_id=source_id,
        )
    decoder: zlib._Decompress | None = None
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)
    elif encoding not in ("identity", ""):
        raise FetchError(f"{url} sent an unsupported Content-Encoding {encoding!r}", url=url, source_id=source_id)
    out = bytearray()
    raw_read = 0
    async for chunk in response.aiter_raw():
        raw_read += len(chunk)
        if decoder is None:
            out += chunk
        else:
            data = chunk
            while data:
                try:
                    piece = decoder.decompress(data, max_bytes + 1 - len(out))
                except zlib.error as exc:
                    raise FetchError(
                        f"{url} sent a corrupt {encoding} body: {exc}", url=url, source_id=source_id
                    ) from exc
                out += piece
                data = decoder.unconsumed_tail
                if len(out) > max_bytes:
                    break
        if len(out) > max_bytes:
            how = f" while decompressing {_human(raw_read)} of {encoding}" if decoder else ""
            raise BodyTooLarge(
                f"body of {source_id or url} exceeded fetch.max_bytes ({_human(max_bytes)}){how}",
                url=url,
                limit=max_bytes,
                source_id=source_id,
            )
    return bytes(out)
