"""``beacons report``: the insights (issue 14) as Markdown, a self-contained HTML file, or JSON.

The figures are ``beacons.insights.build``'s, the same as ``/insights`` and ``GET /api/insights``.
The HTML file needs nothing else: the page's stylesheet, the vendored uPlot (MIT) and the page's
chart script are inlined, the figures ride along as JSON, and the tables are in the HTML, so it
opens from a mail attachment or a file share with no server and no network.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2

from beacons.insights import InsightQuery, build
from beacons.insights_tables import available, table
from beacons.storage import Storage
from beacons.storage.types import Sla

FORMATS = ("md", "html", "json")
TITLES = {
    "volume": "Volume (posts)",
    "sentiment": "Sentiment",
    "problems": "Top problems",
    "incidents": "Incidents",
    "response": "Response (seconds)",
    "backlog": "Backlog (open beacons)",
    "advocates": "Advocates",
    "sources": "Sources (posts)",
}


def make_report(store: Storage, q: InsightQuery, *, sla: Sla, now: datetime) -> dict[str, Any]:
    return build(store, q, sla=sla, now=now)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The few numbers a lead reads first (the Markdown head and the scheduled message)."""
    s, r = report["sentiment"], report["response"]["overall"]
    neg, change = s["period"]["shares"]["negative"], s["change_pp"]["negative"]
    lines = [
        f"{report['volume']['total']} posts; {report['problems']['support_beacons']} support beacons"
        f" ({report['problems']['previous_support_beacons']} in the period before)",
        f"negative: {_pct(neg)}" + (f" ({change:+.1f} pp)" if change is not None else ""),
        f"time to first claim: median {_dur(r['claim_median_s'])}, p90 {_dur(r['claim_p90_s'])};"
        f" SLA breaches: {r['sla_breaches']}",
    ]
    intents = report["problems"]["intents"][:3]
    if intents:
        lines.append("top problems: " + ", ".join(f"{i['intent']} ({i['beacons']})" for i in intents))
    spikes, outages = report["incidents"]["spikes"], report["incidents"]["outages"]
    if spikes or outages:
        lines.append(f"incidents: {len(spikes)} spikes, {len(outages)} source outages")
    if report["advocates"]:
        lines.append("advocates: " + ", ".join(f"{a['author']} ({a['posts']})" for a in report["advocates"][:3]))
    return lines


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f} %"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _cell(value: Any, base: str) -> str:
    text = "" if value is None else str(value)
    if text.startswith("/?"):
        return f"[queue]({base}{text})"
    return text.replace("|", "\\|")


def to_markdown(report: dict[str, Any], *, link: str = "") -> str:
    since, until = report["since"][:16].replace("T", " "), report["until"][:16].replace("T", " ")
    out = [f"# beacons insights: {since} – {until} UTC", ""]
    out += [f"- {line}" for line in summary_lines(report)]
    if link:
        out += [f"- page: {link.rstrip('/')}/insights"]
    for chart in available(report):
        header, rows = table(report, chart)
        out += ["", f"## {TITLES[chart]}", ""]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        out += ["| " + " | ".join(_cell(v, link.rstrip("/")) for v in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _static(name: str) -> str:
    return resources.files("beacons.web").joinpath("static", name).read_text(encoding="utf-8")


def to_html(report: dict[str, Any], *, link: str = "") -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("beacons.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from beacons.web.insights import CHARTED, duration
    from beacons.web.page import safe_url

    env.filters.update(safe_url=safe_url, duration=duration)
    charts = available(report)
    # JSON inside <script>: "</" would end the element early.
    data = json.dumps(report, ensure_ascii=False).replace("</", "<\\/")
    return env.get_template("report.html").render(
        report=report,
        link_base=link.rstrip("/"),
        tables={c: table(report, c) for c in charts},
        csv_links={},
        charted=[c for c in CHARTED if c in charts],
        data=data,
        styles=_static("page.css") + _static("uPlot.min.css") + _static("insights.css"),
        scripts=[_static("uPlot.iife.min.js"), _static("insights.js")],
    )


def render(report: dict[str, Any], fmt: str, *, link: str = "") -> str:
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return to_html(report, link=link)
    return to_markdown(report, link=link)
