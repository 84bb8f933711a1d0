"""The numbers behind each insights chart as plain tables: the page's tables, ``/insights.csv`` and the reports.

``table(report, chart)`` gives ``(header, rows)`` for one of ``CHARTS``; every cell is a
string, a number or empty, the same values the JSON holds (shares as fractions, times in seconds).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from beacons.errors import InvalidInput

CHARTS = ("volume", "sentiment", "problems", "incidents", "response", "backlog", "advocates", "sources")
Table = tuple[list[str], list[list[Any]]]


def _volume(r: dict[str, Any]) -> Table:
    q = r["volume"]["queues"]
    rows = [
        [b, q["support"][i], q["advocacy"][i], q["none"][i], q["support"][i] + q["advocacy"][i] + q["none"][i]]
        for i, b in enumerate(r["buckets"])
    ]
    return ["bucket", "support", "advocacy", "not queued", "posts"], rows


def _sentiment(r: dict[str, Any]) -> Table:
    s = r["sentiment"]
    rows = []
    for i, b in enumerate(r["buckets"]):
        shares = s["shares"][i]
        rows.append(
            [b, *(s["counts"][k][i] for k in ("negative", "neutral", "positive"))]
            + [_blank(shares[k]) for k in ("negative", "neutral", "positive")]
        )
    header = ["bucket", "negative", "neutral", "positive", "negative share", "neutral share", "positive share"]
    return header, rows


def _problems(r: dict[str, Any]) -> Table:
    p = r["problems"]
    rows = [["intent", i["intent"], i["beacons"], i["previous"], i["link"]] for i in p["intents"]]
    rows += [["phrase", w["phrase"], w["beacons"], w["previous"], w["link"]] for w in p["phrases"]]
    return ["kind", "name", "support beacons", "previous period", "queue link"], rows


def _incidents(r: dict[str, Any]) -> Table:
    rows: list[list[Any]] = []
    for s in r["incidents"]["spikes"]:
        what = s["brand"] + (f" / {s['product']}" if s["product"] else "")
        ids = " ".join(str(i) for i in s["beacon_ids"])
        rows.append(["spike", what, s["opened_at"], _blank(s["closed_at"]), ids, s["link"]])
    for o in r["incidents"]["outages"]:
        rows.append(["source outage", o["source"], o["started_at"], _blank(o["ended_at"]), "", o["link"]])
    return ["kind", "what", "started", "ended", "beacon ids", "queue link"], rows


_TIMES = ("claimed", "claim_median_s", "claim_p90_s", "resolved", "resolve_median_s", "resolve_p90_s")


def _response(r: dict[str, Any]) -> Table:
    resp = r["response"]
    rows: list[list[Any]] = []
    if "overall" in resp:
        o = resp["overall"]
        rows.append(["all", "all", o["beacons"], *(_blank(o[k]) for k in _TIMES), o["sla_breaches"]])
    for t in resp.get("teams", []):
        rows.append(["team", t["team"], t["beacons"], *(_blank(t[k]) for k in _TIMES), t["sla_breaches"]])
    for p in resp.get("people", []):
        rows.append(["person", p["person"], "", *(_blank(p[k]) for k in _TIMES), ""])
    header = ["scope", "name", "beacons", "claimed", "claim median (s)", "claim p90 (s)", "resolved"]
    return [*header, "resolve median (s)", "resolve p90 (s)", "SLA breaches"], rows


def _backlog(r: dict[str, Any]) -> Table:
    b = r["response"]["backlog"]
    return ["at", "open beacons"], [[at, _blank(n)] for at, n in zip(b["at"], b["open"], strict=True)]


def _advocates(r: dict[str, Any]) -> Table:
    rows = [[a["author"], a["posts"], a["reach"], _blank(a["post_url"]), a["link"]] for a in r["advocates"]]
    return ["author", "advocacy posts", "reach", "a post", "queue link"], rows


def _sources(r: dict[str, Any]) -> Table:
    series = r["sources"]["series"]
    rows = [[b, *(s["counts"][i] for s in series)] for i, b in enumerate(r["buckets"])]
    rows.append(["beacons", *(s["beacons"] for s in series)])
    return ["bucket", *(s["source"] for s in series)], rows


def _blank(value: Any) -> Any:
    return "" if value is None else value


_TABLES = {
    "volume": _volume,
    "sentiment": _sentiment,
    "problems": _problems,
    "incidents": _incidents,
    "response": _response,
    "backlog": _backlog,
    "advocates": _advocates,
    "sources": _sources,
}


def available(report: dict[str, Any]) -> tuple[str, ...]:
    """The charts this report has (an agent's holds the response figures only)."""
    if report.get("scope") == "self":
        return ("response",)
    return CHARTS


def table(report: dict[str, Any], chart: str) -> Table:
    if chart not in available(report):
        raise InvalidInput("chart", f"expected one of {', '.join(available(report))}; got {chart[:40]!r}")
    return _TABLES[chart](report)


def to_csv(report: dict[str, Any], chart: str) -> str:
    header, rows = table(report, chart)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
