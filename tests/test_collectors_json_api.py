"""json_api (issue 15): any JSON API configured by a URL template and JMESPath expressions.

The contract fixtures (tests/fixtures/json_api/) follow Steam's public store
reviews API, ``/appreviews/{appid}?json=1&filter=recent&cursor=...``: an object
with ``success``, ``query_summary``, ``reviews[]`` (``recommendationid``,
``author.steamid``, ``review``, ``timestamp_created``, ``votes_up``...) and the
opaque ``cursor`` of the next page.
"""

from __future__ import annotations

import asyncio
import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from conftest import running_feed_server
from helpers_feeds import raw_handler
from helpers_search import ACME, JSON_TYPE, poll_kind, respond
from structlog.testing import capture_logs

from beacons.config import parse_config
from beacons.errors import ConfigError, ParseError, SourceError
from beacons.feedserver import FeedServer
from beacons.redact import forget, scrub
from collectors.json_api import parse, render

TOKEN = "glpat-Zx81-fake-token-for-tests"
FIELDS = {"id": "id", "title": "title", "text": "description", "url": "web_url", "author": "author.username"}


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Any:
    yield
    forget()


def _source(url: str, **extra: Any) -> Any:
    entry = {"kind": "json_api", "url": url, "items": "@", "fields": FIELDS, **extra}
    return parse_config(yaml.safe_dump({"sources": [entry]}), env={}).sources[0]


def _issue(n: int, created: str) -> dict[str, Any]:
    return {
        "id": 1000 + n,
        "iid": n,
        "title": f"RouterX issue {n}",
        "description": "Acme RouterX drops clients",
        "web_url": f"/acme/routerx/-/issues/{n}",
        "author": {"username": f"user{n}"},
        "created_at": created,
    }


class Api:
    """An issue list (a top-level JSON array) and a search with a next-page URL in its body."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        server.add("/api/issues", self._issues)
        server.add("/api/search", self._search)

    def _issues(self, req: BaseHTTPRequestHandler) -> None:
        body = json.dumps([_issue(1, "2026-11-23T10:00:00Z"), _issue(2, "2026-11-23T09:00:00Z")]).encode()
        respond(req, 200, body, JSON_TYPE)

    def _search(self, req: BaseHTTPRequestHandler) -> None:
        page = parse_qs(urlsplit(req.path).query).get("page", ["1"])[0]
        if page == "1":
            data = {"data": {"hits": [_issue(3, "2026-11-23T12:00:00Z")], "next": "/api/search?q=x&page=2"}}
        else:
            data = {"data": {"hits": [_issue(4, "2026-11-21T12:00:00Z")], "next": None}}
        respond(req, 200, json.dumps(data).encode(), JSON_TYPE)

    def queries(self, path: str) -> list[dict[str, list[str]]]:
        return [parse_qs(h["query"]) for h in self.server.hits(path)]


def test_json_api_headers_come_from_the_environment_and_are_never_shown(feed_server: FeedServer) -> None:
    api = Api(feed_server)
    source = _source(feed_server.base_url + "/api/issues", headers_env={"PRIVATE-TOKEN": "GITLAB_TOKEN"})
    with capture_logs() as logs:
        poll, _ = asyncio.run(poll_kind(source, env={"GITLAB_TOKEN": TOKEN}))
    assert [h["headers"].get("PRIVATE-TOKEN") for h in feed_server.hits("/api/issues")] == [TOKEN]
    assert [m.url for m in poll.mentions] == [
        f"{feed_server.base_url}/acme/routerx/-/issues/1",  # relative links resolved against the API's URL
        f"{feed_server.base_url}/acme/routerx/-/issues/2",
    ]
    assert [m.guid for m in poll.mentions] == ["127.0.0.1:1001", "127.0.0.1:1002"]
    assert TOKEN not in repr(logs)
    assert TOKEN not in scrub(f"failed with {TOKEN}"), "the header's value is registered as a secret"
    assert api.queries("/api/issues") == [{}]


def test_json_api_missing_header_variable_is_a_clear_error(feed_server: FeedServer) -> None:
    Api(feed_server)
    source = _source(feed_server.base_url + "/api/issues", headers_env={"PRIVATE-TOKEN": "GITLAB_TOKEN"})
    with pytest.raises(SourceError, match=r"headers_env\.PRIVATE-TOKEN names the environment variable GITLAB_TOKEN"):
        asyncio.run(poll_kind(source, env={}))
    assert feed_server.hits("/api/issues") == []


def test_json_api_follows_a_next_page_url_back_to_the_cursor(feed_server: FeedServer) -> None:
    api = Api(feed_server)
    source = _source(
        feed_server.base_url + "/api/search?q={query}&page=1",
        items="data.hits",
        next_page="data.next",
        fields={**FIELDS, "published": "created_at"},
    )
    poll, _ = asyncio.run(poll_kind(source, cursor="2026-11-22T00:00:00Z", brands=(ACME,)))
    assert [m.title for m in poll.mentions] == ["RouterX issue 3"]  # issue 4 is older than the cursor
    queries = api.queries("/api/search")
    assert [q["page"] for q in queries] == [["1"], ["2"]]
    assert queries[0]["q"] == ['Acme OR "Acme Corp" OR acme.com OR RouterX OR "Acme Cloud" -"acme looney tunes"']
    assert poll.cursor == "2026-11-23T12:00:00Z"


def test_json_api_fills_the_template_percent_encoded() -> None:
    url = render(
        "https://api.example.com/s?q={query}&cursor={cursor}", query='"Acme" & co', cursor="Ao+J/=", since=None
    )
    assert url == "https://api.example.com/s?q=%22Acme%22%20%26%20co&cursor=Ao%2BJ%2F%3D"


def test_json_api_items_that_are_not_a_list_fail_the_poll_with_the_expression() -> None:
    options = _source("https://api.example.com/x", items="data.results").options
    with pytest.raises(ParseError, match=r"items expression 'data.results' found nothing, not a list"):
        parse(b'{"data": {"rows": []}}', source_id="s", options=options)


def test_json_api_skips_an_item_whose_field_has_the_wrong_type() -> None:
    options = _source("https://api.example.com/x").options
    skipped: list[tuple[str, str]] = []
    body = json.dumps([_issue(1, "x"), {**_issue(2, "x"), "title": {"nested": True}}]).encode()
    mentions = parse(body, source_id="s", options=options, skip=lambda r, d: skipped.append((r, d)))
    assert [m.title for m in mentions] == ["RouterX issue 1"]
    assert skipped == [("bad_entry", "item 1 (id=1002): field 'title' (title) is a dict, expected text")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"items": "reviews[?"}, r"sources\[0\]\.items: is not a valid JMESPath expression"),
        ({"fields": {**FIELDS, "title": "a..b"}}, r"sources\[0\]\.fields\.title: is not a valid JMESPath expression"),
        ({"fields": {**FIELDS, "score": "votes"}}, r"sources\[0\]\.fields\.score: unknown field"),
        ({"next_page": "cursor[?"}, r"sources\[0\]\.next_page: is not a valid JMESPath expression"),
        ({"url": "https://x.example/?q={qeury}"}, r"sources\[0\]\.url: unknown placeholder \{qeury\}"),
        (
            {"headers_env": {"Authorization": "Bearer abc123"}},
            r"sources\[0\]\.headers_env\.Authorization: expected the NAME",
        ),
        ({"fields": {"author": "a"}}, r"sources\[0\]\.fields: map at least title or text"),
    ],
)
def test_json_api_config_errors_name_the_key(change: dict[str, Any], message: str) -> None:
    url = change.pop("url", "https://api.example.com/search")
    with pytest.raises(ConfigError, match=message) as info:
        _source(url, **change)
    assert "abc123" not in str(info.value), "a value pasted where a variable name belongs is never echoed"


def test_json_api_env_headers_never_follow_a_redirect_to_another_origin(feed_server: FeedServer) -> None:
    """A header from headers_env is a credential: like Authorization, it stays with its origin (issue 10 §4)."""
    with running_feed_server() as other:
        other.add(
            "/moved", lambda req: respond(req, 200, json.dumps([_issue(1, "2026-11-23T10:00:00Z")]).encode(), JSON_TYPE)
        )
        feed_server.add("/api/issues", raw_handler(302, {"Location": other.url("/moved")}))
        source = _source(
            feed_server.base_url + "/api/issues",
            headers_env={"PRIVATE-TOKEN": "GITLAB_TOKEN"},
            fields={**FIELDS, "id": "iid"},
        )
        poll, _ = asyncio.run(poll_kind(source, env={"GITLAB_TOKEN": TOKEN}))
        assert [m.title for m in poll.mentions] == ["RouterX issue 1"]
        assert feed_server.hits("/api/issues")[0]["headers"]["PRIVATE-TOKEN"] == TOKEN
        assert "PRIVATE-TOKEN" not in other.hits("/moved")[0]["headers"]
