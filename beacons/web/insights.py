"""``GET /api/insights``, the ``/insights`` page and ``/insights.csv`` (issue 14), over ``beacons.insights``.

Who sees what: a lead or an admin sees every figure; so does a caller that is no
person (a service token, or the loopback sign-in of a server without users, as
before users existed). An agent gets ``200`` with a reduced body, ``scope: "self"``:
the range and their own response figures only (time to first claim and to resolve
of what they claimed and resolved), never the team's, the other people's, or the posts.

The page draws its charts with uPlot (vendored in ``static/``, MIT, see
``static/uPlot.LICENSE.txt``) from the same JSON the API returns; every chart's
numbers are a table under it and a CSV one click away, and the tables work without JavaScript.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from beacons.insights import InsightQuery, build, for_agent, make_query
from beacons.insights_tables import available, table, to_csv
from beacons.queue import parse_when
from beacons.users import at_least
from beacons.web.messages import HTTPError, Request, Response

if TYPE_CHECKING:
    from beacons.web.app import App

API_PARAMS = ("since", "until", "brand", "product", "team", "source", "bucket", "tz")
PAGE_PARAMS = (*API_PARAMS, "range")
CSV_PARAMS = (*PAGE_PARAMS, "chart")
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_RANGE = "7d"
CHARTED = ("volume", "sentiment", "backlog", "sources")  # time series drawn by static/insights.js


def _check(query: dict[str, str], known: tuple[str, ...]) -> None:
    for key in query:
        if key not in known:
            raise HTTPError(400, "invalid", f"{key[:40]}: unknown parameter; known: {', '.join(known)}")


def parse_query(query: dict[str, str], now: datetime, known: tuple[str, ...] = API_PARAMS) -> InsightQuery:
    """The range and filters of a request; an unknown parameter or a bad value is a 400 naming it."""
    _check(query, known)
    chosen = query.get("range") or ("custom" if query.get("since") else DEFAULT_RANGE)
    if chosen not in (*RANGES, "custom"):
        raise HTTPError(400, "invalid", f"range: expected one of 24h, 7d, 30d, custom; got {chosen[:20]!r}")
    until = parse_when(query["until"], "until", now, end=True) if query.get("until") else now
    custom = chosen == "custom"
    since = parse_when(query.get("since") or "7d", "since", now) if custom else until - RANGES[chosen]
    return make_query(
        since,
        until,
        bucket=query.get("bucket"),
        tz=query.get("tz"),
        brand=query.get("brand"),
        product=query.get("product"),
        team=query.get("team"),
        source=query.get("source"),
    )


def _report(app: App, req: Request, known: tuple[str, ...]) -> dict[str, Any]:
    now = app.now()
    q = parse_query(req.query, now, known)
    with app.store() as store:
        report = build(store, q, sla=app.sla, now=now)
    identity = req.identity
    assert identity is not None
    if identity.is_user and not at_least(identity.role, "lead"):
        return for_agent(report, identity.name or "")
    return report


def get_insights(app: App, req: Request) -> Response:
    """GET /api/insights: every series of the insights page as JSON (an agent's own figures only)."""
    return Response.json(_report(app, req, API_PARAMS))


def get_csv(app: App, req: Request) -> Response:
    """GET /insights.csv?chart=volume&range=7d: one chart's numbers as CSV."""
    chart = req.query.get("chart", "")
    report = _report(app, req, CSV_PARAMS)
    body = to_csv(report, chart)
    day = report["since"][:10]
    headers = [("Content-Disposition", f'attachment; filename="insights-{chart}-{day}.csv"')]
    return Response(200, body.encode("utf-8"), "text/csv; charset=utf-8", headers)


def _options(app: App) -> dict[str, list[str]]:
    """The filters' choices, from the config (the queue's facets scan the beacons; this page must not)."""
    c = app.config
    brands = [b.name for b in c.brands]
    products = [p.name for b in c.brands for p in b.products]
    teams = {t.name for t in c.routing.teams} | {b.team for b in c.brands if b.team}
    teams |= {p.team for b in c.brands for p in b.products if p.team}
    return {
        "brands": sorted(brands, key=str.lower),
        "products": sorted(products, key=str.lower),
        "teams": sorted(teams, key=str.lower),
        "sources": sorted((s.id for s in c.sources), key=str.lower),
    }


def duration(seconds: float | None) -> str:
    """``2464.9`` -> ``41 min``; hours past two hours, days past two days."""
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def insights_page(app: App, req: Request) -> Response:
    """GET /insights: the charts, their tables and CSV links, the range picker and the filters."""
    app.pages.env.filters.setdefault("duration", duration)
    report = _report(app, req, PAGE_PARAMS)
    options = _options(app)
    kept = {k: v for k, v in req.query.items() if k in PAGE_PARAMS and v}
    chosen = kept.get("range") or ("custom" if kept.get("since") else DEFAULT_RANGE)
    charts = available(report)
    tables = {chart: table(report, chart) for chart in charts}
    csv_links = {chart: "/insights.csv?" + urlencode({**kept, "chart": chart}) for chart in charts}
    # The charts fetch the very range the tables show, whatever the clock says by then.
    pinned = {**{k: v for k, v in kept.items() if k in API_PARAMS}, "since": report["since"], "until": report["until"]}
    api_link = "/api/insights?" + urlencode(pinned)
    return app.pages.render(
        req,
        "insights.html",
        report=report,
        link_base="",
        tables=tables,
        csv_links=csv_links,
        api_link=api_link,
        charted=[c for c in CHARTED if c in charts],
        options=options,
        filters={k: kept.get(k, "") for k in ("brand", "product", "team", "source", "bucket", "tz")},
        since_value=report["since"][:16] if chosen == "custom" else kept.get("since", ""),
        until_value=kept.get("until", ""),
        range=chosen,
        ranges=(*RANGES, "custom"),
    )


ROUTES = [
    ("GET", "/api/insights", get_insights, "api"),
    ("GET", "/insights", insights_page, "page"),
    ("GET", "/insights.csv", get_csv, "page"),
]


def _query_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema or {"type": "string"}, "description": description}


_SERIES = {"type": "array", "items": {"type": "integer"}}
_SHARES = {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/insights": {
        "get": {
            "summary": "Insights for team leads: volume, sentiment, top problems, incidents, response, advocates, sources",
            "description": "Leads, admins and service tokens get every series; an agent gets scope=self with only "
            "their own response figures. Any other parameter is a 400 naming it.",
            "operationId": "getInsights",
            "parameters": [
                _query_param("since", "start (inclusive): an ISO date or date-time, or back from now (24h, 7d, 30d)"),
                _query_param("until", "end (exclusive): as since; a date includes that whole day; default now"),
                _query_param("brand", "a brand name"),
                _query_param("product", "a product name"),
                _query_param("team", "a team name"),
                _query_param("source", "a source id"),
                _query_param("bucket", "hour or day; default hour up to 2 days, else day", {"enum": ["hour", "day"]}),
                _query_param("tz", "IANA time zone of day buckets, e.g. Europe/Berlin; default UTC"),
            ],
            "responses": {
                "200": {
                    "description": "the series, one value per bucket",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["since", "until", "bucket", "tz", "scope", "buckets", "response"],
                                "properties": {
                                    "since": {"type": "string"},
                                    "until": {"type": "string"},
                                    "bucket": {"enum": ["hour", "day"]},
                                    "tz": {"type": "string"},
                                    "scope": {"enum": ["all", "self"]},
                                    "buckets": {"type": "array", "items": {"type": "string"}},
                                    "volume": {
                                        "type": "object",
                                        "properties": {
                                            "queues": {
                                                "type": "object",
                                                "properties": {
                                                    "support": _SERIES,
                                                    "advocacy": _SERIES,
                                                    "none": _SERIES,
                                                },
                                            },
                                            "total": {"type": "integer"},
                                            "by_member": {"type": "array", "items": {"type": "object"}},
                                        },
                                    },
                                    "sentiment": {
                                        "type": "object",
                                        "properties": {
                                            "counts": {"type": "object", "additionalProperties": _SERIES},
                                            "shares": {"type": "array", "items": _SHARES},
                                            "change_pp": _SHARES,
                                        },
                                    },
                                    "problems": {"type": "object"},
                                    "incidents": {"type": "object"},
                                    "response": {"type": "object"},
                                    "advocates": {"type": "array", "items": {"type": "object"}},
                                    "sources": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "400": {"description": "an unknown parameter or a bad value, named in the message"},
                "401": {"description": "no valid token or session"},
            },
        }
    }
}
