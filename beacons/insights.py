"""Insights for team leads (issue 14): the figures of ``/insights``, ``GET /api/insights`` and ``beacons report``.

``build(store, query, sla=..., now=...)`` reads the grouped rows of ``storage.insights``
for one range ``[since, until)`` and the period of equal length before it, and
returns one JSON-ready dict: volume, sentiment, top problems, incidents,
response, advocates and sources. Pure arithmetic here; every query is in storage.

Definitions (the README "Insights" section says the same):

- a post's time is when it was published (else fetched); a beacon's response
  times count from when it arrived (``created_at``);
- day buckets are days of ``tz`` (an IANA name, default UTC); hour buckets are hours;
- median is the middle value (the mean of the two middle ones for an even count);
  p90 is the nearest-rank 90th percentile (the ``ceil(0.9 n)``-th smallest);
- an SLA breach is a queued beacon whose first answer (claim, resolve or dismiss)
  came later than its ``routing.sla`` limit, or that is still unanswered past it
  at the end of the range (or now, when that is earlier);
- the backlog at a bucket's end is the queued beacons that had arrived and were
  not resolved or dismissed yet (a beacon reopened later counts from its last close).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from beacons.errors import InvalidInput
from beacons.nlp.labels import SENTIMENTS
from beacons.storage import Storage
from beacons.storage.insights import InsightFilter
from beacons.storage.types import Sla

QUEUE_STACK = ("support", "advocacy", "none")
BUCKETS = ("hour", "day")
MAX_BUCKETS = 24 * 62  # an hourly chart of two months; days go back further
MAX_DAYS = 400
TOP = 10
# PostgreSQL: fold the rollup's pending deltas before a read when at least this many piled up (no daemon
# compacting, or a bulk write like `beacons db copy`); fewer cost a read less than folding them does.
COMPACT_BEFORE_READ = 20_000
SECTIONS = ("volume", "sentiment", "problems", "incidents", "response", "advocates", "sources")


@dataclass(frozen=True, slots=True)
class InsightQuery:
    since: datetime
    until: datetime
    bucket: str = "day"
    tz: str = "UTC"
    filter: InsightFilter = field(default_factory=InsightFilter)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


def make_query(
    since: datetime,
    until: datetime,
    *,
    bucket: str | None = None,
    tz: str | None = None,
    brand: str | None = None,
    product: str | None = None,
    team: str | None = None,
    source: str | None = None,
) -> InsightQuery:
    """A checked query: InvalidInput names the parameter that is wrong and what it takes."""
    if until <= since:
        raise InvalidInput("until", f"must be after since ({since.isoformat()}), got {until.isoformat()}")
    if until - since > timedelta(days=MAX_DAYS):
        raise InvalidInput("since", f"a range is at most {MAX_DAYS} days, got {(until - since).days}")
    if bucket is None or bucket == "":
        bucket = "hour" if until - since <= timedelta(days=2) else "day"
    if bucket not in BUCKETS:
        raise InvalidInput("bucket", f"expected hour or day, got {bucket[:20]!r}")
    if bucket == "hour" and (until - since) > timedelta(hours=MAX_BUCKETS):
        raise InvalidInput("bucket", f"hour buckets cover at most {MAX_BUCKETS // 24} days; use bucket=day")
    zone = tz or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("tz", f"expected a time zone name like Europe/Berlin, got {zone[:40]!r}") from None
    return InsightQuery(since, until, bucket, zone, InsightFilter(brand, product, team, source))


# -- buckets ---------------------------------------------------------------------------------------


def bucket_starts(q: InsightQuery) -> list[datetime]:
    """The start of every bucket that overlaps the range, in the query's zone."""
    zone = q.zone
    if q.bucket == "hour":
        first = q.since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        count = math.ceil((q.until - first).total_seconds() / 3600)
        return [(first + timedelta(hours=i)).astimezone(zone) for i in range(count)]
    day = q.since.astimezone(zone).date()
    out: list[datetime] = []
    while True:
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        if start >= q.until:
            return out
        out.append(start)
        day += timedelta(days=1)


class _Buckets:
    """Maps a stored UTC hour (``2026-11-23T10``) to its bucket's index."""

    def __init__(self, q: InsightQuery) -> None:
        self.q = q
        self.starts = bucket_starts(q)
        self.epochs = [s.timestamp() for s in self.starts]
        self._cache: dict[str, int] = {}

    def index(self, hour: str) -> int:
        found = self._cache.get(hour)
        if found is None:
            epoch = datetime.fromisoformat(f"{hour}:00:00+00:00").timestamp()
            found = max(0, bisect_right(self.epochs, epoch) - 1)
            self._cache[hour] = found
        return found

    def ends(self) -> list[datetime]:
        return [*self.starts[1:], self.q.until]

    def labels(self) -> list[str]:
        return [s.isoformat() for s in self.starts]


# -- figures -------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return round(float(statistics.median(values)), 1) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The nearest-rank 90th percentile: the ``ceil(0.9 n)``-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    return round(float(ordered[math.ceil(0.9 * len(ordered)) - 1]), 1)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def queue_link(iq: InsightQuery, since: datetime | None = None, until: datetime | None = None, /, **params: str) -> str:
    """The queue page filtered to these posts (``/?queue=support&intent=...&since=...``)."""
    f = iq.filter
    query = {
        **params,
        **{k: v for k, v in (("brand", f.brand), ("product", f.product), ("team", f.team), ("source", f.source)) if v},
        "since": _stamp(since or iq.since),
        "until": _stamp(until or iq.until),
    }
    return "/?" + urlencode({**query, "status": "all"})  # resolved and dismissed ones too


def _volume(b: _Buckets, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    n = len(b.starts)
    stacked = {queue: [0] * n for queue in QUEUE_STACK}
    members: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for hour, brand, product, _source, _team, queue, _sentiment, count in rows:
        i = b.index(hour)
        brand, product = brand or None, product or None
        stacked[queue][i] += int(count)
        member = members.get((brand, product))
        if member is None:
            member = members[(brand, product)] = {
                "brand": brand,
                "product": product,
                **{k: [0] * n for k in QUEUE_STACK},
            }
        member[queue][i] += int(count)
    series = sorted(members.values(), key=lambda m: (-sum(sum(m[k]) for k in QUEUE_STACK), str(m["brand"])))
    return {
        "unit": "posts",
        "queues": stacked,
        "total": sum(sum(v) for v in stacked.values()),
        "by_member": [{**m, "total": sum(sum(m[k]) for k in QUEUE_STACK)} for m in series],
    }


def _shares(counts: dict[str, int]) -> dict[str, float | None]:
    whole = sum(counts.values())
    return {s: _share(counts.get(s, 0), whole) for s in SENTIMENTS}


def _change(now: dict[str, float | None], before: dict[str, float | None]) -> dict[str, float | None]:
    """Percentage points: this period's share minus the previous one's."""
    out: dict[str, float | None] = {}
    for s in SENTIMENTS:
        a, p = now.get(s), before.get(s)
        out[s] = round((a - p) * 100, 1) if a is not None and p is not None else None
    return out


def _sentiment(b: _Buckets, rows: Sequence[Sequence[Any]], previous: Sequence[Sequence[Any]]) -> dict[str, Any]:
    n = len(b.starts)
    counts: dict[str, list[int]] = {s: [0] * n for s in SENTIMENTS}
    member_now: dict[tuple[str | None, str | None], Counter[str]] = defaultdict(Counter)
    for hour, brand, product, _source, _team, _queue, sentiment, count in rows:
        if sentiment in counts:
            counts[sentiment][b.index(hour)] += int(count)
            member_now[(brand or None, product or None)][sentiment] += int(count)
    member_before: dict[tuple[str | None, str | None], Counter[str]] = defaultdict(Counter)
    for brand, product, sentiment, count in previous:
        if sentiment in counts:
            member_before[(brand, product)][sentiment] += int(count)
    totals: dict[str, int] = {s: sum(v) for s, v in counts.items()}
    before = Counter[str]()
    for c in member_before.values():
        before.update(c)
    shares = [{s: _share(counts[s][i], sum(counts[x][i] for x in SENTIMENTS)) for s in SENTIMENTS} for i in range(n)]
    period, prev = _shares(totals), _shares(dict(before))
    members = []
    for key in sorted(set(member_now) | set(member_before), key=lambda k: (str(k[0]), str(k[1]))):
        now_s, before_s = _shares(dict(member_now[key])), _shares(dict(member_before[key]))
        members.append(
            {
                "brand": key[0],
                "product": key[1],
                "posts": sum(member_now[key].values()),
                "shares": now_s,
                "previous": before_s,
                "change_pp": _change(now_s, before_s),
            }
        )
    return {
        "unit": "share of classified posts",
        "counts": counts,
        "shares": shares,
        "period": {"posts": sum(totals.values()), "shares": period},
        "previous": {"posts": sum(before.values()), "shares": prev},
        "change_pp": _change(period, prev),
        "by_member": members,
    }


def _words(items: Iterable[str]) -> Counter[str]:
    found = Counter[str]()
    for words in items:
        found.update(set(words.split()))
    return found


def _problems(q: InsightQuery, store: Storage, before: datetime) -> dict[str, Any]:
    f = q.filter
    intents_now, intents_before = store.insight_intents(q.since, q.until, f), store.insight_intents(before, q.since, f)
    now_items, before_items = store.insight_words(q.since, q.until, f), store.insight_words(before, q.since, f)
    intents = [
        {
            "intent": k,
            "beacons": v,
            "previous": intents_before.get(k, 0),
            "link": queue_link(q, queue="support", intent=k),
        }
        for k, v in sorted(intents_now.items(), key=lambda kv: (-kv[1], kv[0]))
    ][:TOP]
    words_now, words_before = _words(now_items), _words(before_items)
    rising = [
        (word, count, words_before.get(word, 0))
        for word, count in words_now.items()
        if count >= 2 and count > words_before.get(word, 0)
    ]
    rising.sort(key=lambda t: (-(t[1] - t[2]), -t[1], t[0]))
    phrases = [
        {
            "phrase": word,
            "beacons": count,
            "previous": before,
            "is_new": before == 0,
            "link": queue_link(q, queue="support", q=word),
        }
        for word, count, before in rising[:TOP]
    ]
    return {
        "support_beacons": len(now_items),
        "previous_support_beacons": len(before_items),
        "intents": intents,
        "phrases": phrases,
    }


def _outages(q: InsightQuery, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Episodes of a broken source (one per source and start, whichever channel heard of it)."""
    episodes: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        source = str(e.get("source", ""))
        if q.filter.source and source != q.filter.source:
            continue
        start = str(e.get("since") or e.get("at"))
        key = (source, start)
        episode = episodes.setdefault(
            key, {"source": source, "started_at": start, "ended_at": None, "reason": e.get("reason")}
        )
        if e.get("state") == "recovered":
            episode["ended_at"] = e.get("at")
    out = []
    for episode in episodes.values():
        started = datetime.fromisoformat(str(episode["started_at"]).replace("Z", "+00:00"))
        ended = datetime.fromisoformat(episode["ended_at"]) if episode["ended_at"] else None
        if started < q.until and (ended is None or ended >= q.since):
            episode["link"] = queue_link(q, started, ended or q.until, source=episode["source"])
            out.append(episode)
    return sorted(out, key=lambda e: (e["started_at"], e["source"]))


def _incidents(q: InsightQuery, store: Storage) -> dict[str, Any]:
    spikes = []
    for i in store.insight_incidents(q.since, q.until, q.filter):
        opened = datetime.fromisoformat(i["opened_at"])
        closed = datetime.fromisoformat(i["closed_at"]) if i["closed_at"] else q.until
        params = {"queue": "support", "brand": i["brand"], **({"product": i["product"]} if i["product"] else {})}
        spikes.append({**i, "beacons": len(i["beacon_ids"]), "link": queue_link(q, opened, closed, **params)})
    return {"spikes": spikes, "outages": _outages(q, store.insight_outages(q.until))}


@dataclass
class _Times:
    claim: list[float] = field(default_factory=list)
    resolve: list[float] = field(default_factory=list)
    beacons: int = 0
    breaches: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "beacons": self.beacons,
            "claimed": len(self.claim),
            "claim_median_s": median(self.claim),
            "claim_p90_s": p90(self.claim),
            "resolved": len(self.resolve),
            "resolve_median_s": median(self.resolve),
            "resolve_p90_s": p90(self.resolve),
            "sla_breaches": self.breaches,
        }


def _response(q: InsightQuery, store: Storage, b: _Buckets, sla: Sla, now: datetime) -> dict[str, Any]:
    arrivals = store.insight_arrivals(q.since, q.until, q.filter)
    firsts: dict[int, dict[str, tuple[float, str | None]]] = defaultdict(dict)
    for beacon_id, action, at, assignee, to_status in store.insight_events(q.since, q.until, q.filter):
        mine = firsts[int(beacon_id)]
        when = float(at)
        if action == "claim":
            mine.setdefault("claim", (when, assignee))
        if to_status == "resolved":
            mine.setdefault("resolve", (when, assignee))
        if to_status in ("claimed", "resolved", "dismissed"):
            mine.setdefault("answer", (when, assignee))
    overall = _Times()
    teams: defaultdict[str, _Times] = defaultdict(_Times)
    people: defaultdict[str, _Times] = defaultdict(_Times)
    horizon = min(now, q.until).timestamp()
    for beacon_id, queue, team, created_at, _status in arrivals:
        created = float(created_at)
        mine = firsts.get(int(beacon_id), {})
        team_times = teams[team or "(no team)"]
        for times in (overall, team_times):
            times.beacons += 1
        if "claim" in mine:
            at, who = mine["claim"]
            for times in (overall, team_times, people[who or "(nobody)"]):
                times.claim.append(at - created)
        if "resolve" in mine:
            at, who = mine["resolve"]
            for times in (overall, team_times, people[who or "(nobody)"]):
                times.resolve.append(at - created)
        limit = sla.limit_for(queue, team)
        if limit is not None:
            answered = mine["answer"][0] if "answer" in mine else horizon
            if answered - created > limit:
                overall.breaches += 1
                team_times.breaches += 1
    return {
        "unit": "seconds",
        "overall": overall.to_json(),
        "teams": [{"team": k, **v.to_json()} for k, v in sorted(teams.items())],
        "people": [{"person": k, **_person(v)} for k, v in sorted(people.items())],
        "sla": {"queues": dict(sla.queues), "teams": dict(sla.teams)},
        "backlog": _backlog(q, store, b, now, arrivals),
    }


def _person(t: _Times) -> dict[str, Any]:
    data = t.to_json()
    del data["beacons"], data["sla_breaches"]  # a person's figures count what they claimed and resolved
    return data


def _backlog(
    q: InsightQuery, store: Storage, b: _Buckets, now: datetime, arrivals: Sequence[Sequence[Any]]
) -> dict[str, Any]:
    """Open beacons at each bucket's end: those open now that had arrived, and those closed later than it."""
    open_count, closed = store.insight_backlog(q.since, q.until, q.filter)
    # Open now and arrived in the range: not yet there at a bucket end before their arrival.
    open_arrivals = sorted(float(r[3]) for r in arrivals if r[4] in ("new", "claimed"))
    # Closed since, open at t: arrived before t and not (arrived and closed) before t, two binary searches
    # per bucket end instead of a pass over every closed beacon for each one.
    arrived_at = sorted(arrived for arrived, _ in closed)
    both_by = sorted(max(arrived, closed_at) for arrived, closed_at in closed)
    counts: list[int | None] = []
    for end in b.ends():
        if end > now:
            counts.append(None)  # the future has no backlog yet
            continue
        t = end.timestamp()
        still_open = open_count - (len(open_arrivals) - bisect_left(open_arrivals, t))
        closed_later = bisect_left(arrived_at, t) - bisect_left(both_by, t)
        counts.append(still_open + closed_later)
    return {"at": [e.isoformat() for e in b.ends()], "open": counts}


def _advocates(q: InsightQuery, store: Storage) -> list[dict[str, Any]]:
    return [
        {
            "author": author,
            "posts": int(posts),
            "reach": int(reach),
            "post_url": url,
            "link": queue_link(q, queue="advocacy", q=author),
        }
        for author, posts, reach, url in store.insight_advocates(q.since, q.until, q.filter, TOP)
    ]


def _sources(b: _Buckets, rows: Sequence[Sequence[Any]], configured: Sequence[str]) -> dict[str, Any]:
    n = len(b.starts)
    series: dict[str, list[int]] = {s: [0] * n for s in configured}
    queued: Counter[str] = Counter()
    for hour, _brand, _product, source, _team, queue, _sentiment, count in rows:
        counts = series.get(source)
        if counts is None:
            counts = series[source] = [0] * n
        counts[b.index(hour)] += int(count)
        if queue != "none":
            queued[source] += int(count)
    by_source = [{"source": s, "posts": sum(v), "beacons": queued[s], "counts": v} for s, v in sorted(series.items())]
    return {
        "unit": "posts",
        "series": by_source,
        "idle": [{"source": s["source"], "posts": s["posts"]} for s in by_source if s["beacons"] == 0],
    }


def build(store: Storage, q: InsightQuery, *, sla: Sla | None = None, now: datetime) -> dict[str, Any]:
    """Every figure of the insights for one query, as JSON-ready values."""
    store.insight_compact(min_deltas=COMPACT_BEFORE_READ)
    b = _Buckets(q)
    length = q.until - q.since
    before = q.since - length
    rows = store.insight_post_rows(q.since, q.until, q.filter)
    f = q.filter
    return {
        "since": q.since.astimezone(UTC).isoformat(),
        "until": q.until.astimezone(UTC).isoformat(),
        "previous_since": before.astimezone(UTC).isoformat(),
        "bucket": q.bucket,
        "tz": q.tz,
        "filters": {"brand": f.brand, "product": f.product, "team": f.team, "source": f.source},
        "generated_at": now.astimezone(UTC).isoformat(),
        "scope": "all",
        "buckets": b.labels(),
        "volume": _volume(b, rows),
        "sentiment": _sentiment(b, rows, store.insight_posts(before, q.since, f, ("brand", "product", "sentiment"))),
        "problems": _problems(q, store, before),
        "incidents": _incidents(q, store),
        "response": _response(q, store, b, sla or Sla(), now),
        "advocates": _advocates(q, store),
        "sources": _sources(b, rows, store.insight_source_ids() if not f.source else [f.source]),
    }


def for_agent(report: dict[str, Any], name: str) -> dict[str, Any]:
    """What an agent may see: the range and their own response figures only (issue 14: agents see their own)."""
    response = report["response"]
    mine = [p for p in response["people"] if p["person"] == name]
    keep = ("since", "until", "previous_since", "bucket", "tz", "filters", "generated_at", "buckets")
    return {
        **{k: report[k] for k in keep},
        "scope": "self",
        "response": {"unit": response["unit"], "people": mine},
    }
