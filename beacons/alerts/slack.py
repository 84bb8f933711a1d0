"""Slack incoming-webhook messages in Block Kit, with untrusted text made inert.

Slack parses ``&``, ``<`` and ``>`` as control characters in mrkdwn text
(api.slack.com/reference/surfaces/formatting#escaping): ``<!channel>``,
``<!here>``, ``<@U123>`` and ``<https://evil|click>`` in a post would ping
people or disguise a link. Every piece of post text goes through ``escape``;
links we build ourselves go through ``link``, which accepts only http(s) URLs
and percent-encodes the characters that could end or split the link.
Block Kit limits respected: header 150 chars, section text 3000, 10 fields,
50 blocks.
"""

from __future__ import annotations

import re
from typing import Any

from beacons.alerts.health import human
from beacons.alerts.message import BeaconCard, Event, Segment, plain
from beacons.redact import cut, scrub

MAX_LISTED = 10  # beacons shown in a digest or incident message; the rest are counted
_LINK_UNSAFE = re.compile(r"[<>|\s\"'`]")
_EMOJI = {"support": ":sos:", "advocacy": ":star2:"}


_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
WORD_JOINER = "\u2060"  # invisible: "@\u2060channel" reads as @channel but is no mention


def escape(text: str | None) -> str:
    """Post text as inert mrkdwn: &, < and > escaped, as Slack asks, and @channel/@here/@everyone neutralised.

    Every mrkdwn object is also sent with ``verbatim: true`` so Slack does not auto-parse mentions; the word
    joiner covers the top-level ``text`` fallback (used for notifications), which takes no ``verbatim``.
    """
    out = (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: f"@{WORD_JOINER}{m.group(1)}", out)


def link(url: str | None, label: str) -> str:
    """``<url|label>`` for an http(s) URL, else the escaped label alone."""
    if not url or not re.match(r"(?i)^https?://[^\s/]", url):
        return escape(label)
    safe = _LINK_UNSAFE.sub(lambda m: f"%{ord(m.group(0)):02X}", url).replace("&", "&amp;")
    return f"<{safe}|{escape(label).replace('|', '¦')}>"


def highlighted(segments: tuple[Segment, ...]) -> str:
    """Escaped excerpt with the matched brand/product in bold."""
    out = []
    for seg in segments:
        if seg.highlight and seg.text.strip():
            word = escape(seg.text.strip().replace("*", ""))
            lead = " " if seg.text[:1].isspace() else ""
            trail = " " if seg.text[-1:].isspace() else ""
            out.append(f"{lead}*{word}*{trail}")
        else:
            out.append(escape(seg.text))
    return "".join(out)


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": cut(text, 150), "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, 3000), "verbatim": True}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, 3000), "verbatim": True}]}


def _links(b: BeaconCard) -> str:
    parts = [link(b.url, "Original post")] if b.url else []
    parts.append(link(b.link, f"Beacon #{b.id} in beacons") if b.link else f"beacon #{b.id}")
    return " · ".join(parts)


def _beacon_blocks(b: BeaconCard) -> list[dict[str, Any]]:
    fields = [
        ("Queue", b.queue + (f" (team {b.team})" if b.team else "")),
        ("Priority", str(b.priority)),
        ("Brand / product", b.what),
        ("Sentiment", f"{b.sentiment} ({b.sentiment_score:+.2f})"),
        ("Author", b.author or "unknown"),
        ("Source", b.source),
    ]
    return [
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": cut(f"*{k}*\n{escape(v)}", 2000), "verbatim": True} for k, v in fields
            ],
        },
        _section("> " + highlighted(b.excerpt)),
        *([_section("*Why:* _" + escape(b.evidence["text"]).replace("_", " ") + "_")] if b.evidence else []),
        _context(_links(b)),
    ]


def _listed(b: BeaconCard) -> dict[str, Any]:
    head = (
        f"*{escape(b.queue)} · {b.priority}* · {escape(b.what)} · {escape(b.author or 'unknown')} on {escape(b.source)}"
    )
    return _section(f"{head}\n> {highlighted(b.excerpt)}\n{_links(b)}")


def _more(event: Event, total: int, public_url: str | None) -> list[dict[str, Any]]:
    rest = total - min(len(event.beacons), MAX_LISTED)
    if rest <= 0:
        return []
    where = " in " + link(public_url.rstrip("/") + "/", "the queue") if public_url else " (`beacons queue list`)"
    return [_context(f"…and {rest} more{where}")]


def render(event: Event, public_url: str | None = None) -> dict[str, Any]:
    """The JSON body to POST to the channel's incoming-webhook URL."""
    blocks: list[dict[str, Any]]
    if event.type == "beacon":
        b = event.beacons[0]
        title = f"{_EMOJI.get(b.queue, '')} {b.queue.capitalize()} beacon: {b.what}".strip()
        fallback = f"{title} (priority {b.priority}): {plain(b.excerpt)}"
        blocks = [_header(title), *_beacon_blocks(b)]
    elif event.type == "digest":
        total = len(event.data.get("beacon_ids", []))
        by_queue: dict[str, int] = {}
        for b in event.beacons:
            by_queue[b.queue] = by_queue.get(b.queue, 0) + 1
        title = f":newspaper: Digest: {total} beacon{'s' * (total != 1)}"
        counts = ", ".join(f"{q} {n}" for q, n in sorted(by_queue.items()))
        fallback = f"{title} ({counts})"
        since = event.data.get("window_start") or "the start"
        blocks = [_header(title), _context(escape(f"{counts} · from {since} to {event.data.get('window_end')}"))]
        blocks += [_listed(b) for b in event.beacons[:MAX_LISTED]]
        blocks += _more(event, total, public_url)
    elif event.type == "report":
        title, fallback, blocks = _report(event)
    elif event.type == "source_health":
        title, fallback, blocks = _health(event)
    elif event.type == "incident":
        title, fallback, blocks = _incident(event, public_url)
    elif event.type == "sla_breach":
        title, fallback, blocks = _sla_breach(event)
    else:
        title = ":wave: beacons test alert"
        fallback = f"{title} for channel {event.channel}"
        blocks = [
            _header(title),
            _section(
                escape(
                    f"This is a test from beacons to channel {event.channel} ({event.id}). If you can read it, alerts will arrive here."
                )
            ),
        ]
    return {"text": escape(cut(fallback, 300)), "blocks": blocks[:50], "unfurl_links": False, "unfurl_media": False}


def _sla_breach(event: Event) -> tuple[str, str, list[dict[str, Any]]]:
    d = event.data
    who = f"team {d.get('team')}" if d.get("team") else f"the {d.get('queue')} queue"
    held = f", held by {d.get('assignee')}" if d.get("status") == "claimed" and d.get("assignee") else ", unclaimed"
    title = f":alarm_clock: Past its SLA: waited {human(float(d.get('waited_seconds') or 0))}"
    text = f"Over the {human(float(d.get('limit_seconds') or 0))} SLA of {who}{held}."
    blocks = [_header(title), _section(escape(text))]
    if event.beacons:
        blocks += _beacon_blocks(event.beacons[0])
    return title, f"{title}: {text}", blocks


def _report(event: Event) -> tuple[str, str, list[dict[str, Any]]]:
    """The scheduled insights summary (issue 14): its lines, and the page for the charts."""
    d = event.data
    title = f":bar_chart: {d.get('title') or 'beacons report'}"
    lines = "\n".join(f"• {escape(str(line))}" for line in d.get("lines", []))
    blocks = [_header(title), _section(lines or "No posts in this period.")]
    if d.get("link"):
        blocks.append(_context(link(str(d["link"]), "Open the insights page")))
    return title, title, blocks


def _health(event: Event) -> tuple[str, str, list[dict[str, Any]]]:
    d = event.data
    state = d.get("state")
    icon = {"failing": ":rotating_light:", "still_failing": ":rotating_light:", "recovered": ":white_check_mark:"}.get(
        str(state), ":grey_question:"
    )
    verb = {"failing": "is failing", "still_failing": "is still failing", "recovered": "recovered"}.get(
        str(state), str(state)
    )
    title = f"{icon} Source {d.get('source')} {verb}"
    lines = [f"*Why*: {escape(d.get('reason'))}"] if d.get("reason") else []
    lines.append(
        f"*Failed polls in a row*: {d.get('consecutive_errors', 0)} · *last ok*: {escape(d.get('last_ok_at') or 'never')} · *last new item*: {escape(d.get('last_new_at') or 'never')}"
    )
    if d.get("last_error") and state != "recovered":
        lines.append(f"*Last error*: {escape(scrub(d.get('last_error'), 400))}")
    if d.get("since"):
        lines.append(
            f"Broken since {escape(d.get('since'))}" + (f" (reminder {d.get('reminder')})" if d.get("reminder") else "")
        )
    return (
        title,
        title,
        [
            _header(title),
            _section("\n".join(lines)),
            _context("A silent broken feed looks like a quiet day: `beacons sources` shows every source."),
        ],
    )


def _incident(event: Event, public_url: str | None) -> tuple[str, str, list[dict[str, Any]]]:
    d = event.data
    what = " / ".join(x for x in (d.get("brand"), d.get("product")) if x)
    window = float(d.get("window", 3600))
    span = f"{window / 3600:g}h" if window >= 3600 else f"{window / 60:g}m"
    if d.get("state") == "ended":
        title = f":white_check_mark: Incident over: {what}"
        text = f"Support beacons for *{escape(what)}* are back under {d.get('threshold', 0):g} per {span}. {d.get('grouped', 0)} beacon(s) were grouped into this incident instead of one alert each."
        blocks = [_header(title), _section(text)]
    else:
        title = f":fire: Incident: spike of support beacons for {what}"
        text = (
            f"*{d.get('count')}* support beacons in the last {span}, against a baseline of {d.get('mean', 0):.1f} ± {d.get('stddev', 0):.1f} "
            f"(threshold {d.get('threshold', 0):g}). Further beacons for {escape(what)} are grouped here until it calms down."
        )
        blocks = [_header(title), _section(text)]
    listed = len(d.get("beacon_ids", []))
    total = max(listed, int(d.get("grouped" if d.get("state") == "ended" else "count") or 0))
    blocks += [_listed(b) for b in event.beacons[:MAX_LISTED]]
    blocks += _more(event, total, public_url)
    return title, title, blocks
