"""Issue 10, section 4: credentials stay with their origin, and a redirect cannot reach inwards.

Real loopback servers show what the second server received; ``httpx.MockTransport``
plays public and internal hosts, each response carrying the peer address a real
connection would report (``network_stream``'s ``server_addr``). A "public"
loopback source is played by the ``classify`` function fetch takes, never by
patching the network stack.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import running_feed_server
from helpers_feeds import raw_handler, texts_feed
from structlog.testing import capture_logs

from beacons.addresses import AddressClass, address_class
from beacons.errors import BadRedirect, FetchError
from beacons.feedserver import FeedServer, Resource
from beacons.fetch import FetchLimits, fetch, make_client
from beacons.models import Fetched

FEED = texts_feed(["Acme RouterX keeps dropping wifi"])
TOKEN = "Bearer ghp_s3cretTOKENvalue"
LIMITS = FetchLimits(timeout=5.0)


def get(
    url: str, limits: FetchLimits = LIMITS, transport: httpx.AsyncBaseTransport | None = None, **kw: Any
) -> Fetched:
    async def go() -> Fetched:
        async with make_client(limits, transport) as client:
            return await fetch(client, url, limits=limits, source_id="src", **kw)

    return asyncio.run(go())


@pytest.fixture
def second_server() -> Iterator[FeedServer]:
    """Another loopback server: another port, so another origin."""
    with running_feed_server() as server:
        yield server


# -- credentials -------------------------------------------------------------


@pytest.mark.parametrize("how", ["token_env header", "cookie header", "url userinfo"])
def test_fetch_redirect_to_another_origin_drops_credentials(
    feed_server: FeedServer, second_server: FeedServer, how: str
) -> None:
    feed_server.add("/feed", raw_handler(302, {"Location": second_server.url("/feed.xml")}))
    second_server.add("/feed.xml", Resource(FEED))
    url, headers = feed_server.url("/feed"), {}
    if how == "token_env header":
        headers = {"Authorization": TOKEN}
    elif how == "cookie header":
        headers = {"Cookie": "session=s3cret"}
    else:
        url = url.replace("http://", "http://alice:pa55word@")
    assert get(url, headers=headers).body == FEED
    sent = feed_server.hits("/feed")[0]["headers"]
    received = second_server.hits("/feed.xml")[0]["headers"]
    assert "Authorization" in sent or "Cookie" in sent  # the origin got them
    assert "Authorization" not in received and "Cookie" not in received


def test_fetch_redirect_within_the_origin_keeps_authorization(feed_server: FeedServer) -> None:
    feed_server.add("/feed", raw_handler(301, {"Location": "/new.xml"}))
    feed_server.add("/new.xml", Resource(FEED))
    assert get(feed_server.url("/feed"), headers={"Authorization": TOKEN}).body == FEED
    assert feed_server.hits("/new.xml")[0]["headers"]["Authorization"] == TOKEN


def test_fetch_credentials_dropped_on_leaving_the_origin_stay_dropped_on_coming_back(
    feed_server: FeedServer, second_server: FeedServer
) -> None:
    back = feed_server.url("/back.xml")
    feed_server.add("/feed", raw_handler(302, {"Location": second_server.url("/hop")}))
    second_server.add("/hop", raw_handler(302, {"Location": back}))
    feed_server.add("/back.xml", Resource(FEED))
    get(feed_server.url("/feed"), headers={"Authorization": TOKEN})
    assert "Authorization" not in feed_server.hits("/back.xml")[0]["headers"]


# -- the same over MockTransport: scheme, host and port each count -------------


class _Peer:
    """What httpcore's network stream reports: the connected socket's peer address."""

    def __init__(self, ip: str) -> None:
        self.ip = ip

    def get_extra_info(self, info: str) -> Any:
        return (self.ip, 443) if info == "server_addr" else None


ADDRESSES = {
    "feed.example": "93.184.216.34",
    "cdn.example": "151.101.1.1",
    "intranet.example": "10.0.0.5",
    "rebound.example": "127.0.0.1",  # a name that resolved public at check time and loopback at connect time
    "metadata.example": "169.254.169.254",
}


class Web:
    """One handler for every mock test: ``/go?to=URL`` redirects, anything else serves FEED."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        host = request.url.host
        peer = _Peer(ADDRESSES.get(host, host))
        to = request.url.params.get("to")
        if to:
            return httpx.Response(302, headers={"Location": to}, extensions={"network_stream": peer})
        return httpx.Response(200, content=FEED, extensions={"network_stream": peer})

    def received(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("https://feed.example/feed.xml", False),  # scheme
        ("http://cdn.example/feed.xml", False),  # host
        ("http://feed.example:8080/feed.xml", False),  # port
        ("http://feed.example:80/feed.xml", True),  # the default port spelled out: the same origin
    ],
)
def test_fetch_redirect_credentials_follow_the_origin_mock(target: str, kept: bool) -> None:
    web = Web()
    get(
        "http://feed.example/go?to=" + target,
        transport=httpx.MockTransport(web),
        headers={"Authorization": TOKEN, "Cookie": "session=s3cret"},
    )
    last = web.requests[-1]
    assert str(last.url) == target.replace(":80/", "/")
    assert ("authorization" in last.headers, "cookie" in last.headers) == (kept, kept)


# -- where a redirect may lead -------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[::ffff:169.254.169.254]/"],
)
@pytest.mark.parametrize("allow", [False, True])
def test_fetch_redirect_to_link_local_is_refused_before_connecting(target: str, allow: bool) -> None:
    web = Web()
    with pytest.raises(BadRedirect, match="link-local"):
        get(
            "http://feed.example/go?to=" + target,
            FetchLimits(timeout=5.0, allow_private_redirects=allow),
            transport=httpx.MockTransport(web),
        )
    assert [r.url.host for r in web.requests] == ["feed.example"]  # nothing was sent to the metadata address


def test_fetch_redirect_to_a_name_on_link_local_is_refused_by_connected_address() -> None:
    web = Web()
    with pytest.raises(BadRedirect, match=r"169\.254\.169\.254, link-local"):
        get("http://feed.example/go?to=http://metadata.example/latest/", transport=httpx.MockTransport(web))


@pytest.mark.parametrize(
    ("target", "address_class"),
    [
        ("http://intranet.example/feed.xml", "private"),
        ("http://rebound.example/healthz", "loopback"),
        ("http://127.0.0.1:8080/healthz", "loopback"),
        ("http://10.1.2.3/feed.xml", "private"),
        ("http://[::1]:8080/healthz", "loopback"),
        ("http://0.0.0.0:8080/healthz", "loopback"),
    ],
)
def test_fetch_redirect_from_public_to_private_is_refused(target: str, address_class: str) -> None:
    web = Web()
    with pytest.raises(BadRedirect, match=rf"{address_class}\): a redirect may not lead to a more private address"):
        get("http://feed.example/go?to=" + target, transport=httpx.MockTransport(web))


@pytest.mark.parametrize(
    "target", ["http://intranet.example/feed.xml", "http://127.0.0.1:8080/healthz", "http://rebound.example/"]
)
def test_fetch_allow_private_redirects_lets_public_to_private_through(target: str) -> None:
    web = Web()
    fetched = get(
        "http://feed.example/go?to=" + target,
        FetchLimits(timeout=5.0, allow_private_redirects=True),
        transport=httpx.MockTransport(web),
    )
    assert fetched.body == FEED


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("http://feed.example/", "http://cdn.example/feed.xml"),  # public -> public
        ("http://intranet.example/", "http://feed.example/feed.xml"),  # private -> public
        ("http://intranet.example/", "http://10.9.9.9/feed.xml"),  # private -> private
        ("http://127.0.0.1:9000/", "http://10.9.9.9/feed.xml"),  # loopback -> private
    ],
)
def test_fetch_redirect_to_the_same_or_a_more_public_class_is_followed(source: str, target: str) -> None:
    assert get(source + "go?to=" + target, transport=httpx.MockTransport(Web())).body == FEED


def test_fetch_redirect_from_private_to_loopback_is_refused() -> None:
    with pytest.raises(BadRedirect, match=r"source's own \(private\)"):
        get("http://intranet.example/go?to=http://127.0.0.1:8080/healthz", transport=httpx.MockTransport(Web()))


# -- the same over real sockets ------------------------------------------------


def _public_127_0_0_1(ip: str) -> AddressClass:
    """A classifier that plays the server on 127.0.0.1 as a public host."""
    return AddressClass.PUBLIC if ip == "127.0.0.1" else address_class(ip)


def test_fetch_loopback_source_may_redirect_to_another_loopback_port(
    feed_server: FeedServer, second_server: FeedServer
) -> None:
    feed_server.add("/feed", raw_handler(302, {"Location": second_server.url("/feed.xml")}))
    second_server.add("/feed.xml", Resource(FEED))
    assert get(feed_server.url("/feed")).body == FEED


def test_fetch_public_source_redirect_to_loopback_literal_never_connects(feed_server: FeedServer) -> None:
    with FeedServer(host="127.0.0.2") as inner:
        inner.add("/healthz", Resource(b"ok"))
        feed_server.add("/feed", raw_handler(302, {"Location": inner.url("/healthz")}))
        with pytest.raises(BadRedirect, match=r"127\.0\.0\.2, loopback"):
            get(feed_server.url("/feed"), classify=_public_127_0_0_1)
        assert inner.hits("/healthz") == []
        # the flag lets it through
        allow = FetchLimits(timeout=5.0, allow_private_redirects=True)
        fetched = get(feed_server.url("/feed"), allow, classify=_public_127_0_0_1)
        assert fetched.body == b"ok"


def test_fetch_public_source_redirect_to_a_loopback_name_is_refused_by_peer_address(
    feed_server: FeedServer,
) -> None:
    """The name is resolved by httpx; the check reads the socket it connected (DNS rebinding gains nothing)."""

    def source_on_127_0_0_2(ip: str) -> AddressClass:
        return AddressClass.PUBLIC if ip == "127.0.0.2" else address_class(ip)

    with FeedServer(host="127.0.0.2") as outer:
        outer.add(
            "/feed", raw_handler(302, {"Location": feed_server.url("/healthz").replace("127.0.0.1", "localhost")})
        )
        feed_server.add("/healthz", Resource(b"internal status"))
        with pytest.raises(BadRedirect, match=r"127\.0\.0\.1, loopback"):
            get(outer.url("/feed"), classify=source_on_127_0_0_2)
        # A name is checked once connected: the request went out, its answer was refused unread.
        assert len(feed_server.hits("/healthz")) == 1


def test_fetch_refused_redirect_is_logged_and_worded_without_secrets(feed_server: FeedServer) -> None:
    secret_target = "http://bob:hunter2pw@169.254.169.254/latest/?access_token=tok3nLEAK"
    feed_server.add("/feed", raw_handler(302, {"Location": secret_target}))
    url = feed_server.url("/feed?api_key=k3yLEAK").replace("http://", "http://alice:pa55word@")
    with capture_logs() as logs, pytest.raises(BadRedirect) as info:
        get(url)
    message = str(info.value)
    assert "refused the redirect from" in message and "169.254.169.254, link-local" in message
    [event] = [e for e in logs if e["event"] == "fetch.redirect_refused"]
    assert (event["address"], event["address_class"], event["source_class"]) == (
        "169.254.169.254",
        "link-local",
        "loopback",
    )
    for text in (message, repr(event)):
        for secret in ("pa55word", "k3yLEAK", "hunter2pw", "tok3nLEAK"):
            assert secret not in text


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("93.184.216.34", AddressClass.PUBLIC),
        ("2606:4700::1111", AddressClass.PUBLIC),
        ("10.0.0.1", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("172.16.0.1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.PRIVATE),
        ("fd00::1", AddressClass.PRIVATE),
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.9.9.9", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("0.0.0.0", AddressClass.LOOPBACK),
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("169.254.169.254", AddressClass.LINK_LOCAL),
        ("fe80::1%eth0", AddressClass.LINK_LOCAL),
        ("64:ff9b::a9fe:a9fe", AddressClass.LINK_LOCAL),  # NAT64 of 169.254.169.254
    ],
)
def test_addresses_class_of_an_address(ip: str, expected: AddressClass) -> None:
    assert address_class(ip) is expected


def test_fetch_basic_auth_from_userinfo_reaches_the_origin(feed_server: FeedServer) -> None:
    feed_server.add("/feed.xml", Resource(FEED))
    get(feed_server.url("/feed.xml").replace("http://", "http://alice:pa55word@"))
    expected = "Basic " + base64.b64encode(b"alice:pa55word").decode()
    assert feed_server.hits("/feed.xml")[0]["headers"]["Authorization"] == expected


@pytest.mark.parametrize("location", ["http://[::1/evil", "https://[zzz]/q/1"])
def test_fetch_redirect_to_an_unparsable_url_is_a_fetch_error(feed_server: FeedServer, location: str) -> None:
    """A source error for the pipeline to count, never an exception from outside the error tree."""
    feed_server.add("/feed", raw_handler(302, {"Location": location}))
    with pytest.raises(FetchError, match="Invalid URL in location header"):
        get(feed_server.url("/feed"))
