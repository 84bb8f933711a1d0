"""beacons.fetch over real HTTP on 127.0.0.1: conditional GET, caps, redirects, deadlines, Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from helpers_clock import FakeClock
from helpers_feeds import gzip_bomb, raw_handler, stream_handler, texts_feed

from beacons.errors import (
    BadRedirect,
    BodyTooLarge,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    NotModified,
    TooManyRedirects,
)
from beacons.feedserver import LAST_MODIFIED, FeedServer, Resource
from beacons.fetch import FetchLimits, Politeness, fetch, make_client, parse_retry_after
from beacons.models import Fetched

FEED = texts_feed(["Acme RouterX keeps dropping wifi", "Thank you Acme"])


def get(url: str, limits: FetchLimits | None = None, **kw: Any) -> Fetched:
    limits = limits or FetchLimits(timeout=30.0, user_agent="beacons-test/1")

    async def go() -> Fetched:
        async with make_client(limits) as client:
            return await fetch(client, url, limits=limits, source_id="src", **kw)

    return asyncio.run(go())


def test_fetch_returns_body_and_validators(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", Resource(FEED, gzip=False))
    fetched = get(feed_server.url("/feed.xml"))
    assert fetched.status == 200
    assert fetched.body == FEED
    assert fetched.etag == Resource(FEED).etag
    assert fetched.last_modified == LAST_MODIFIED
    assert feed_server.hits("/feed.xml")[0]["headers"]["User-Agent"] == "beacons-test/1"


def test_fetch_decodes_gzip(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", Resource(FEED, gzip=True))
    fetched = get(feed_server.url("/feed.xml"))
    assert fetched.headers["content-encoding"] == "gzip"
    assert fetched.body == FEED


def test_fetch_decodes_deflate(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", raw_handler(200, {"Content-Encoding": "deflate"}, zlib.compress(FEED)))
    assert get(feed_server.url("/feed.xml")).body == FEED


@pytest.mark.parametrize(
    ("validators", "sent_header"),
    [
        ({"etag": Resource(FEED).etag}, "If-None-Match"),
        ({"last_modified": LAST_MODIFIED}, "If-Modified-Since"),
    ],
)
def test_fetch_conditional_get_raises_not_modified(
    feed_server: FeedServer, validators: dict[str, str], sent_header: str
) -> None:
    feed_server.add("/feed.xml", Resource(FEED))
    with pytest.raises(NotModified):
        get(feed_server.url("/feed.xml"), etag=validators.get("etag"), last_modified=validators.get("last_modified"))
    assert feed_server.hits("/feed.xml")[0]["headers"][sent_header] == next(iter(validators.values()))


def test_fetch_a_304_keeps_the_connection_for_the_next_poll(feed_server: FeedServer) -> None:
    """Polls of one host reuse one keep-alive connection, 304s included (a 304 closed unread used to close it:
    a new TCP and TLS handshake for every poll that found nothing new)."""
    feed_server.add("/a.xml", Resource(FEED))
    feed_server.add("/b.xml", Resource(FEED))
    limits = FetchLimits(timeout=30.0, user_agent="beacons-test/1")

    async def go() -> None:
        async with make_client(limits) as client:
            first = await fetch(client, feed_server.url("/a.xml"), limits=limits)
            for path in ("/a.xml", "/a.xml", "/b.xml"):
                etag = first.etag if path == "/a.xml" else None
                with contextlib.suppress(NotModified):
                    await fetch(client, feed_server.url(path), limits=limits, etag=etag)

    asyncio.run(go())
    hits = [*feed_server.hits("/a.xml"), *feed_server.hits("/b.xml")]
    assert len(hits) == 4
    assert len({h["peer"] for h in hits}) == 1  # one connection for all four


def test_fetch_keeps_a_connection_per_host_across_many_hosts() -> None:
    """A cycle visits its hosts in turn: with 60 hosts and idle connections capped at 50, the oldest idle
    connection (the next host's) was always the one closed, so no connection was ever reused. Every host's
    connection must survive until the next round."""
    servers = [FeedServer() for _ in range(60)]
    limits = FetchLimits(timeout=30.0, user_agent="beacons-test/1")
    try:
        for server in servers:
            server.add("/feed.xml", Resource(FEED))
            server.start()

        async def go() -> None:
            async with make_client(limits) as client:
                for _round in range(2):
                    for server in servers:
                        await fetch(client, server.url("/feed.xml"), limits=limits)

        asyncio.run(go())
        for server in servers:
            first, second = server.hits("/feed.xml")
            assert first["peer"] == second["peer"]  # the second round came over the first round's connection
    finally:
        for server in servers:
            server.stop()


def test_fetch_changed_feed_is_fetched_despite_old_etag(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", Resource(FEED))
    fetched = get(feed_server.url("/feed.xml"), etag='"an-old-etag"')
    assert fetched.body == FEED


def test_fetch_gzip_bomb_stops_at_max_bytes(feed_server: FeedServer) -> None:
    bomb = gzip_bomb(64 * 1024 * 1024)
    assert len(bomb) < 200_000
    feed_server.add(
        "/bomb.xml", raw_handler(200, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}, bomb)
    )
    limits = FetchLimits(timeout=5.0, max_bytes=1024 * 1024)
    with pytest.raises(BodyTooLarge, match=r"exceeded fetch.max_bytes \(1 MiB\) while decompressing") as info:
        get(feed_server.url("/bomb.xml"), limits)
    assert info.value.limit == 1024 * 1024
    assert info.value.source_id == "src"


def test_fetch_50mb_streamed_body_stops_at_default_cap(feed_server: FeedServer) -> None:
    feed_server.add("/huge.xml", stream_handler(50 * 1024 * 1024))
    with pytest.raises(BodyTooLarge, match=r"exceeded fetch.max_bytes \(5 MiB\)"):
        get(feed_server.url("/huge.xml"), FetchLimits(timeout=60.0))  # the error, not a timeout: it stopped at the cap


def test_fetch_declared_content_length_over_cap_is_refused_before_reading(feed_server: FeedServer) -> None:
    feed_server.add("/huge.xml", stream_handler(50 * 1024 * 1024, content_length=True))
    with pytest.raises(BodyTooLarge, match=r"declares 50 MiB"):
        get(feed_server.url("/huge.xml"))


def test_fetch_corrupt_gzip_is_a_fetch_error(feed_server: FeedServer) -> None:
    feed_server.add("/bad.xml", raw_handler(200, {"Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00not gzip at all"))
    with pytest.raises(FetchError, match="corrupt gzip"):
        get(feed_server.url("/bad.xml"))


def test_fetch_unknown_content_encoding_is_a_fetch_error(feed_server: FeedServer) -> None:
    feed_server.add("/br.xml", raw_handler(200, {"Content-Encoding": "br"}, b"\x00\x01"))
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
        get(feed_server.url("/br.xml"))


def test_fetch_follows_relative_redirect(feed_server: FeedServer) -> None:
    feed_server.add("/old", raw_handler(301, {"Location": "/new.xml"}))
    feed_server.add("/new.xml", Resource(FEED))
    fetched = get(feed_server.url("/old"))
    assert fetched.url == feed_server.url("/new.xml")
    assert fetched.body == FEED


def test_fetch_redirect_loop(feed_server: FeedServer) -> None:
    feed_server.add("/a", raw_handler(302, {"Location": "/b"}))
    feed_server.add("/b", raw_handler(302, {"Location": "/a"}))
    with pytest.raises(TooManyRedirects, match="redirect loop"):
        get(feed_server.url("/a"))
    assert len(feed_server.hits("/a")) == 1


def test_fetch_redirect_chain_longer_than_max_redirects(feed_server: FeedServer) -> None:
    for i in range(6):
        feed_server.add(f"/r{i}", raw_handler(307, {"Location": f"/r{i + 1}"}))
    feed_server.add("/r6", Resource(FEED))
    with pytest.raises(TooManyRedirects, match=r"more than fetch.max_redirects \(3\)"):
        get(feed_server.url("/r0"), FetchLimits(timeout=5.0, max_redirects=3))
    assert get(feed_server.url("/r0"), FetchLimits(timeout=5.0, max_redirects=6)).body == FEED


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml", "gopher://127.0.0.1/1"])
def test_fetch_refuses_redirect_to_other_schemes(feed_server: FeedServer, target: str) -> None:
    feed_server.add("/feed.xml", raw_handler(302, {"Location": target}))
    with pytest.raises(BadRedirect, match="only http\\(s\\) is followed"):
        get(feed_server.url("/feed.xml"))


def test_fetch_slow_drip_hits_the_total_deadline(feed_server: FeedServer) -> None:
    # Each byte comes well within the timeout, so only a deadline on the whole fetch can end it.
    feed_server.add("/drip.xml", Resource(FEED, gzip=False, drip=0.02))  # ~10 s for the whole body
    with pytest.raises(FetchTimeout, match=r"within fetch.timeout \(0.5s\)"):
        get(feed_server.url("/drip.xml"), FetchLimits(timeout=0.5))


def test_fetch_slow_headers_time_out(feed_server: FeedServer) -> None:
    feed_server.add("/slow.xml", Resource(FEED, delay=3))
    with pytest.raises(FetchTimeout):
        get(feed_server.url("/slow.xml"), FetchLimits(timeout=0.3))


def test_fetch_connection_refused_is_a_fetch_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/gone.xml"
    with pytest.raises(FetchError, match="ConnectError") as info:
        get(url)
    assert info.value.url == url


def test_fetch_http_error_status(feed_server: FeedServer) -> None:
    with pytest.raises(HTTPStatusError, match="answered HTTP 404") as info:
        get(feed_server.url("/missing.xml"))
    assert info.value.status == 404
    assert info.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "120"}, 120.0),
        (429, {}, 60.0),  # a 429 without Retry-After still means "slow down"
        (503, {"Retry-After": "30"}, 30.0),
    ],
)
def test_fetch_retry_after_pauses_the_host(
    feed_server: FeedServer, status: int, headers: dict[str, str], expected: float
) -> None:
    feed_server.add("/limited", raw_handler(status, headers))
    politeness = Politeness(per_host=2, delay=0)

    async def go() -> None:
        limits = FetchLimits(timeout=5.0)
        async with make_client(limits) as client:
            with pytest.raises(HTTPStatusError) as info:
                await fetch(client, feed_server.url("/limited"), limits=limits, politeness=politeness)
        assert info.value.status == status
        assert info.value.retry_after == expected
        assert politeness.paused_for("127.0.0.1") == pytest.approx(expected, abs=2)

    asyncio.run(go())


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("5", 5.0), (" 7 ", 7.0), ("-3", 0.0), ("soon", None), ("99999999", 6 * 3600.0)],
)
def test_fetch_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_fetch_parse_retry_after_http_date() -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    when = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(when, now=now.timestamp()) == 90


def test_fetch_politeness_spaces_requests_to_one_host(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", Resource(FEED, conditional=False))
    clock = FakeClock()  # the spacing is politeness's own decision, in its own (fake) time
    politeness = Politeness(per_host=2, delay=0.3, clock=clock)
    sent: list[float] = []

    async def on_request(request: httpx.Request) -> None:
        sent.append(clock.monotonic())

    async def go() -> None:
        limits = FetchLimits(timeout=5.0)
        async with make_client(limits) as client:
            client.event_hooks = {"request": [on_request], "response": []}
            await asyncio.gather(
                *(fetch(client, feed_server.url("/feed.xml"), limits=limits, politeness=politeness) for _ in range(3))
            )

    asyncio.run(go())
    assert len(sent) == 3 and len(feed_server.hits("/feed.xml")) == 3
    assert [round(b - a, 6) for a, b in itertools.pairwise(sent)] == [0.3, 0.3]


def test_fetch_waiting_for_a_politeness_slot_is_not_timed(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", Resource(FEED, conditional=False))
    politeness = Politeness(per_host=1, delay=0.4)
    limits = FetchLimits(timeout=1.5)  # each fetch has 1.5 s of its own; the last one queues 2 s first

    async def go() -> list[Fetched]:
        async with make_client(limits) as client:
            return await asyncio.gather(
                *(fetch(client, feed_server.url("/feed.xml"), limits=limits, politeness=politeness) for _ in range(6))
            )

    assert [f.status for f in asyncio.run(go())] == [200] * 6  # the last one queued 2 s, longer than the timeout


def test_fetch_timeout_spans_every_redirect_hop(feed_server: FeedServer) -> None:
    feed_server.add("/hop", Resource(b"", status=302, headers={"Location": "/slow.xml"}, conditional=False, delay=0.3))
    feed_server.add("/slow.xml", Resource(FEED, delay=0.3))
    with pytest.raises(FetchTimeout):
        get(feed_server.url("/hop"), FetchLimits(timeout=0.5))
    assert get(feed_server.url("/hop"), FetchLimits(timeout=30)).body == FEED


def test_fetch_sends_query_params(feed_server: FeedServer) -> None:
    feed_server.add("/search", Resource(FEED))
    get(feed_server.url("/search"), params={"q": "acme router", "n": 5})
    assert feed_server.hits("/search")[0]["query"] == "q=acme+router&n=5"


def test_fetch_mock_transport_needs_no_network() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"ETag": '"v1"'}, content=FEED)

    async def go() -> Fetched:
        limits = FetchLimits(timeout=5.0)
        async with make_client(limits, httpx.MockTransport(handler)) as client:
            return await fetch(client, "https://feeds.example.org/feed.xml", limits=limits, etag='"v0"')

    fetched = asyncio.run(go())
    assert fetched.etag == '"v1"'
    assert seen[0].headers["If-None-Match"] == '"v0"'
