"""github_issues: tokens from the environment (never logged), rate limits, the query GitHub accepts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from helpers_search import CURSOR_MID, JSON_TYPE, SPECS, FixtureSite, make_source, open_pipeline, poll_kind
from structlog.testing import capture_logs

from beacons.feedserver import FeedServer
from beacons.fetch import rate_limit_wait
from beacons.models import Brand, Product, SourceState
from collectors import PollContext
from collectors._json import cursor_time
from collectors.github_issues import build_query

SPEC = SPECS["github_issues"]
TOKEN = "ghp_beaconsTestToken0123456789abcdef"


@pytest.fixture
def site(feed_server: FeedServer) -> FixtureSite:
    return FixtureSite(feed_server, SPEC)


def test_github_issues_token_is_sent_as_a_header_and_never_logged(site: FixtureSite, tmp_path: Path) -> None:
    source = make_source(SPEC, site.base_url, token_env="GH_TOKEN_FOR_TEST")

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "t.db", [source], env={"GH_TOKEN_FOR_TEST": TOKEN}) as (pipeline, store, _):
            with capture_logs() as logs:
                ok = await pipeline.poll_source(source)
                site.fail(500, b"oops")
                failed = await pipeline.poll_source(source)
            assert ok.status == "ok" and failed.status == "error"
            assert TOKEN not in repr(logs) and TOKEN not in (failed.error or "")
            assert all(TOKEN not in str(row) for row in store.sources())

    asyncio.run(scenario())
    sent = site.requests[0]["headers"]
    assert sent["Authorization"] == f"Bearer {TOKEN}"
    assert sent["Accept"] == "application/vnd.github+json" and sent["X-GitHub-Api-Version"] == "2022-11-28"
    assert TOKEN not in site.requests[0]["query"]


def test_github_issues_spent_quota_on_a_200_stops_paging_until_the_reset(site: FixtureSite) -> None:
    body = SPEC.body("page1")
    reset = int(time.time()) + 3000  # epoch seconds: read against the real clock, so allow for a busy machine
    site.fail(
        200,
        body,
        JSON_TYPE,
        {
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
            "Link": '<http://x/search/issues?page=2>; rel="next"',
        },
    )
    poll, ctx = asyncio.run(poll_kind(make_source(SPEC, site.base_url), cursor=CURSOR_MID))
    assert len(site.requests) == 1 and len(poll.mentions) == 3
    assert ctx.retry_after is not None and 3000 - 60 < ctx.retry_after <= 3000


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (403, {"Retry-After": "60"}, 60),  # a secondary rate limit
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "{reset}"}, 6000),  # the primary limit
        (429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "{reset}"}, 6000),
    ],
)
def test_github_issues_rate_limit_errors_become_a_wait(
    site: FixtureSite, tmp_path: Path, status: int, headers: dict[str, str], wait: int
) -> None:
    reset = str(int(time.time()) + 6000)
    slack = 60 if "X-RateLimit-Reset" in headers else 0  # an epoch is read against the real clock: a busy machine
    site.fail(status, SPEC.body("secondary"), JSON_TYPE, {k: v.format(reset=reset) for k, v in headers.items()})
    source = make_source(SPEC, site.base_url)

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "r.db", [source]) as (pipeline, _, _politeness):
            result = await pipeline.poll_source(source)
            assert result.status == "error" and result.retry_after is not None
            assert wait - slack - 1 < result.retry_after <= wait

    asyncio.run(scenario())


def test_github_issues_query_has_at_most_five_operators_and_the_cursor() -> None:
    brand = Brand(
        "Acme",
        aliases=("Acme Corp", "acme.com", "Acme Inc", "ACME Labs"),
        products=(Product("RouterX"), Product("Acme Cloud")),
        exclude=("looney",),
    )
    source = make_source(SPEC, "http://127.0.0.1:1", query=None, pull_requests=False)
    ctx = PollContext(source=source, state=SourceState(), fetch=None, brands=(brand,))  # type: ignore[arg-type]
    query = build_query(source.options, ctx, cursor_time("2026-11-22T12:00:00.500Z"))
    assert (
        query
        == 'Acme OR "Acme Corp" OR acme.com OR "Acme Inc" OR "ACME Labs" OR RouterX is:issue created:>2026-11-22T12:00:00Z'
    )
    assert query.count(" OR ") == 5


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "{epoch}"}, 120),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "{epoch}"}, 120),  # Bluesky: no X- prefix
        ({"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "45"}, 45),  # Reddit: seconds from now
        ({"x-ratelimit-remaining": "12", "x-ratelimit-reset": "45"}, None),
        ({"x-ratelimit-remaining": "0"}, None),
        ({}, None),
    ],
)
def test_github_issues_rate_limit_headers_give_the_wait(headers: dict[str, str], expected: int | None) -> None:
    now = 1_795_000_000.0
    epoch = str(int(now) + 120)
    wait = rate_limit_wait({k: v.format(epoch=epoch) for k, v in headers.items()}, now=now)
    assert wait == expected
