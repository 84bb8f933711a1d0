"""GET /api/insights, /insights and /insights.csv (issue 14) over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from helpers_clock import FakeClock
from helpers_insights import NOW, seed
from helpers_queue import ROUTING, TOKEN, make_config

from beacons import users
from beacons.storage import Storage
from beacons.web.server import WebServer

RANGE = {"since": "2026-11-20", "until": "2026-11-22"}  # until a date: that whole day, so three days
SLA_ROUTING = {**ROUTING, "sla": {"support": "2h", "advocacy": "1d"}}


@dataclass
class Served:
    url: str
    tokens: dict[str, str]

    def get(self, path: str, who: str | None = "lena", **params: str) -> httpx.Response:
        token = self.tokens[who] if who else TOKEN
        with httpx.Client(base_url=self.url, timeout=10) as c:
            return c.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def served(database: str) -> Iterator[Served]:
    config = make_config(database, routing=SLA_ROUTING)
    tokens = {}
    with Storage(database) as store:
        seed(store)
        for name, role in (("ada", "admin"), ("lena", "lead"), ("bob", "agent")):
            store.add_user(name, role, now=NOW)
            tokens[name] = users.issue_token(store, name, now=NOW)
    clock = FakeClock(NOW)
    server = WebServer(config, clock=clock.time)
    server.start(poll_interval=0.05)
    try:
        yield Served(server.url, tokens)
    finally:
        server.stop()


def test_insights_api_gives_leads_every_series(served: Served) -> None:
    r = served.get("/api/insights", **RANGE)
    assert r.status_code == 200
    body = r.json()
    assert body["scope"] == "all" and body["bucket"] == "day"
    assert body["volume"]["queues"] == {"support": [2, 1, 1], "advocacy": [1, 2, 0], "none": [1, 1, 0]}
    assert body["response"]["overall"]["claim_median_s"] == 2700.0
    assert body["response"]["overall"]["sla_breaches"] == 3  # routing.sla of the served config
    assert body["response"]["backlog"]["open"] == [2, 3, 4]
    assert [a["author"] for a in body["advocates"]] == ["fan1", "fan2"]
    assert served.get("/api/insights", who="ada", **RANGE).json() == body
    assert served.get("/api/insights", who=None, **RANGE).json() == body  # a service token is no agent


def test_insights_api_gives_an_agent_only_their_own_figures(served: Served) -> None:
    body = served.get("/api/insights", who="bob", **RANGE).json()
    assert body["scope"] == "self"
    assert set(body) == {
        "since",
        "until",
        "previous_since",
        "bucket",
        "tz",
        "filters",
        "generated_at",
        "buckets",
        "scope",
        "response",
    }
    assert body["response"]["people"] == [
        {
            "person": "bob",
            "claimed": 2,
            "claim_median_s": 7200.0,
            "claim_p90_s": 10800.0,
            "resolved": 1,
            "resolve_median_s": 7200.0,
            "resolve_p90_s": 7200.0,
        }
    ]
    assert served.get("/insights.csv", who="bob", chart="volume", **RANGE).status_code == 400


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"queue": "support"}, "queue: unknown parameter"),
        ({"bucket": "week"}, "bucket: expected hour or day"),
        ({"since": "yesterday"}, "since: expected a date"),
        ({"tz": "Nowhere/Land"}, "tz: expected a time zone"),
        ({"since": "2026-11-22", "until": "2026-11-20"}, "until: must be after since"),
    ],
)
def test_insights_api_bad_parameters_answer_400_naming_them(served: Served, params: dict[str, str], named: str) -> None:
    r = served.get("/api/insights", **params)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(named)


def test_insights_api_range_and_filters(served: Served) -> None:
    body = served.get("/api/insights", since="24h").json()  # back from the clock
    assert body["since"] == "2026-11-22T12:00:00+00:00" and body["bucket"] == "hour" and len(body["buckets"]) == 24
    team = served.get("/api/insights", team="networking", **RANGE).json()
    assert team["volume"]["queues"]["support"] == [2, 0, 1]
    assert served.get("/insights", range="1y").status_code == 400
    assert served.get("/api/insights", range="7d").status_code == 400  # the page's picker, not an API parameter


def test_insights_csv_is_the_charts_table(served: Served) -> None:
    r = served.get("/insights.csv", chart="volume", **RANGE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="insights-volume-2026-11-20.csv"' in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows == [
        ["bucket", "support", "advocacy", "not queued", "posts"],
        ["2026-11-20T00:00:00+00:00", "2", "1", "1", "4"],
        ["2026-11-21T00:00:00+00:00", "1", "2", "1", "4"],
        ["2026-11-22T00:00:00+00:00", "1", "0", "0", "1"],
    ]
    response = list(csv.reader(io.StringIO(served.get("/insights.csv", chart="response", **RANGE).text)))
    assert response[1][:6] == ["all", "all", "7", "4", "2700.0", "10800.0"]
    bad = served.get("/insights.csv", chart="pie", **RANGE)
    assert bad.status_code == 400 and "chart: expected one of volume" in bad.json()["error"]["message"]


def test_insights_page_has_every_chart_and_table(served: Served) -> None:
    r = served.get("/insights", **RANGE)
    assert r.status_code == 200
    page = r.text
    for chart in ("volume", "sentiment", "backlog", "sources"):
        assert f'data-chart="{chart}"' in page
    for chart in ("volume", "sentiment", "problems", "incidents", "response", "backlog", "advocates", "sources"):
        assert f'data-table="{chart}"' in page and "/insights.csv?" in page
    assert "<script>" not in page and "uPlot.iife.min.js" in page
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp


def test_insights_openapi_documents_the_endpoint(served: Served) -> None:
    doc = served.get("/openapi.json").json()
    params = [p["name"] for p in doc["paths"]["/api/insights"]["get"]["parameters"]]
    assert params == ["since", "until", "brand", "product", "team", "source", "bucket", "tz"]
