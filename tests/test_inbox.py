"""The inbox that finds what needs a reply (issue 13 §2): views, search, filters, SLA, counts, on both backends.

Storage tests run the one list query on SQLite and PostgreSQL; the API and page
tests talk real HTTP to the Starlette app with a fake clock, so waiting times
and SLA breaches are exact.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_clock import FakeClock
from helpers_db import listed, write
from helpers_queue import (
    OTHER_TOKEN,
    ROUTING,
    TOKEN,
    fresh_logging,  # noqa: F401  (autouse)
    make_config,
    mention,
    seed,
)

from beacons import queue as q
from beacons.config import Config
from beacons.errors import ConfigError
from beacons.storage.types import Sla
from beacons.store import Store
from beacons.web.server import WebServer

AUTH = {"Authorization": f"Bearer {TOKEN}"}
OUTAGE, STUCK, WIFI, BILLING, GUEST, PRAISE, THANKS, SWITCHED = range(1, 9)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SLA_ROUTING = {**ROUTING, "sla": {"support": "2h", "advocacy": "1d", "teams": {"networking": "30m"}}}
NOT_QUEUED = "Acme posts its quarterly results"


def _not_queued() -> Any:
    return mention(
        "news-wire",
        "wire",
        NOT_QUEUED,
        "Acme posts its quarterly results on Tuesday, analysts expect flat revenue.",
        "https://news.example/acme-q3",
        now=NOW - timedelta(minutes=30),
    )


def _seed(config: Config) -> None:
    seed(config)
    seed(config, [_not_queued()])
    with Store(config.database) as store:
        # Arrival times the fake clock can measure: beacon n arrived n hours before NOW.
        for beacon_id in range(1, 10):
            write(
                store, "UPDATE beacons SET created_at = ? WHERE id = ?", [NOW - timedelta(hours=beacon_id), beacon_id]
            )


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inbox") / "inbox.db"
    _seed(make_config(path, routing=SLA_ROUTING))
    return path


@pytest.fixture
def config(tmp_path: Path, template_db: Path, database: str) -> Config:
    if database.startswith("postgresql://"):
        config = make_config(database, routing=SLA_ROUTING)
        _seed(config)
        return config
    shutil.copyfile(template_db, tmp_path / "inbox.db")
    return make_config(tmp_path / "inbox.db", routing=SLA_ROUTING)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    with Store(config.database) as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def client(config: Config, clock: FakeClock) -> Iterator[httpx.Client]:
    server = WebServer(config, clock=clock.time)
    server.start(poll_interval=0.05)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            yield c
    finally:
        server.stop()


def ids(store: Store, **kw: Any) -> set[int]:
    return {b.id for b in listed(store, **{"queue": "all", **kw})}


def api_ids(client: httpx.Client, **params: str) -> list[int]:
    r = client.get("/api/beacons", params={"threads": "false", **params}, headers=AUTH)
    assert r.status_code == 200, r.text
    return [b["id"] for b in r.json()["beacons"]]


def sign_in(client: httpx.Client, name: str = "alice") -> str:
    r = client.post("/login", data={"name": name, "token": TOKEN, "next": "/"})
    assert r.status_code == 303
    found = re.search(r'data-csrf="([0-9a-f]+)"', client.get("/").text)
    assert found
    return found.group(1)


# -- storage: search and filters on both backends ----------------------------------------------------


def test_inbox_search_finds_a_word_in_a_note(store: Store) -> None:
    assert ids(store, q="zebrafish") == set()
    q.add_note(store, GUEST, "alice", "Customer says the Zebrafish firmware fixed it")
    assert ids(store, q="zebrafish") == {GUEST}
    assert ids(store, q="ZEBRAFISH firmware") == {GUEST}  # every word, any case


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("wifi", {WIFI}),  # the title
        ("refund", {BILLING}),  # the text
        ("petra_s", {BILLING}),  # the author (split into words as both indexes do)
        ("guest net", {GUEST}),  # the last word as a prefix
        ("502 dashboard", {OUTAGE, STUCK}),
        ("quarterly", {9}),  # the none queue too, with queue=all
        ("routerx nightmare", set()),
    ],
)
def test_inbox_search_covers_title_text_and_author(store: Store, query: str, expected: set[int]) -> None:
    assert ids(store, q=query) == expected


def test_inbox_search_without_words_is_refused(store: Store) -> None:
    with pytest.raises(q.InvalidInput, match="q: give at least one word"):
        ids(store, q="!!! ???")


def test_inbox_search_migration_indexes_beacons_stored_before_it(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from beacons.storage import postgres, sqlite_migrations

    search = {"0009_beacon_search", "0008_beacon_search"}
    before = [m for m in sqlite_migrations.storage._migrations if m.name not in search]
    monkeypatch.setattr(sqlite_migrations.storage, "_migrations", before)
    monkeypatch.setattr(postgres, "MIGRATIONS", tuple(m for m in postgres.MIGRATIONS if m[0] not in search))
    config = make_config(database, routing=SLA_ROUTING)
    seed(config)
    with Store(config.database) as store:
        q.add_note(store, GUEST, "alice", "Zebrafish firmware")
    monkeypatch.undo()
    with Store(config.database) as store:  # opening it applies the search migration
        assert ids(store, q="zebrafish") == {GUEST}
        assert ids(store, q="refund") == {BILLING}
        q.add_note(store, WIFI, "alice", "zebrafish too")
        assert ids(store, q="zebrafish") == {GUEST, WIFI}


def test_inbox_search_index_follows_an_edited_post(store: Store) -> None:
    write(
        store,
        "UPDATE mentions SET title = 'Kaleidoscope router' WHERE id = (SELECT mention_id FROM beacons WHERE id = ?)",
        [WIFI],
    )
    assert ids(store, q="kaleidoscope") == {WIFI}


def test_inbox_filters_by_sentiment_intent_source_and_assignee(store: Store) -> None:
    q.claim(store, WIFI, "bob")
    assert ids(store, assignee="bob") == {WIFI}
    assert ids(store, source="homenet-forum") == {WIFI, BILLING}
    negative = ids(store, sentiment="negative")
    assert BILLING in negative and PRAISE not in negative
    write(
        store, "UPDATE beacons SET intents_json = ? WHERE id = ?", ['{"account_billing": 0.9, "how_to": 0.2}', BILLING]
    )
    assert ids(store, intent="account_billing") == {BILLING}
    assert ids(store, intent="how_to") == set()  # scored below 0.5
    assert ids(store, unassigned=True, queue="support") == {OUTAGE, STUCK, BILLING, GUEST}


def test_inbox_filters_by_date_range(store: Store) -> None:
    posted = {b.id: b.published_at for b in listed(store, queue="all")}
    write(store, "UPDATE mentions SET published_at = ?", [NOW - timedelta(days=30)])
    write(
        store,
        "UPDATE mentions SET published_at = ? WHERE id = (SELECT mention_id FROM beacons WHERE id = ?)",
        [NOW - timedelta(days=2), GUEST],
    )
    assert posted  # every seeded post has a date
    assert ids(store, since=NOW - timedelta(days=7)) == {GUEST}
    assert GUEST not in ids(store, until=NOW - timedelta(days=7))
    assert ids(store, since=NOW - timedelta(days=3), until=NOW - timedelta(days=1)) == {GUEST}


def test_inbox_keyset_pages_keep_the_filters(store: Store) -> None:
    want = [b.id for b in listed(store, queue="all", status="open", q="acme")]
    got: list[int] = []
    cursor = None
    while True:
        page = q.list_entries(
            store, q.QueueFilter(queue="all", status="open", q="acme", limit=2, cursor=cursor, threads=False)
        )
        got += [e.beacon.id for e in page.entries]
        cursor = page.next_cursor
        if not cursor:
            break
    assert got == want and len(got) > 2


def test_inbox_counts_follow_the_filters(store: Store) -> None:
    everything = store.counts()
    assert everything["support/new"] == 5
    filtered = store.counts(q.QueueFilter(source="homenet-forum"))
    assert filtered == {"support/new": 2}
    assert store.counts(q.QueueFilter(q="zzzz")) == {}


# -- SLA with a fake clock ---------------------------------------------------------------------------


SLA = Sla(queues=(("support", 7200.0), ("advocacy", 86400.0)), teams=(("networking", 1800.0),))


def test_inbox_sla_breaching_beacons_come_first(store: Store) -> None:
    # Support waits 2h, networking (RouterX) 30m; beacon n arrived n hours before NOW.
    page = q.list_entries(store, q.QueueFilter(queue="support", threads=False, sla=SLA, now=NOW))
    breached = [e.beacon.id for e in page.entries if e.sla_breached]
    assert set(breached) == {WIFI, BILLING, GUEST}  # STUCK has waited exactly 2h: not yet past it
    assert [e.beacon.id for e in page.entries][: len(breached)] == breached  # sorted up
    outage = next(e for e in page.entries if e.beacon.id == OUTAGE)
    assert (outage.waited_seconds, outage.sla_breached) == (3600, False)
    # Three hours earlier BILLING (team cloud: the support 2h) had waited 1h, GUEST (networking: 30m) 2h.
    earlier = q.list_entries(
        store, q.QueueFilter(queue="support", threads=False, sla=SLA, now=NOW - timedelta(hours=3))
    )
    assert {e.beacon.id for e in earlier.entries if e.sla_breached} == {GUEST}
    assert (
        q.list_entries(store, q.QueueFilter(queue="support", threads=False, sla=SLA, now=NOW + timedelta(seconds=1)))
        .entries[0]
        .sla_breached
    )


def test_inbox_sla_closed_beacons_never_breach(store: Store) -> None:
    q.resolve(store, GUEST, "alice")
    entry = q.list_entries(store, q.QueueFilter(queue="support", status="resolved", sla=SLA, now=NOW)).entries[0]
    assert entry.beacon.id == GUEST and entry.sla_breached is False


def test_inbox_sla_pages_rank_by_the_first_pages_time(store: Store) -> None:
    want = [
        e.beacon.id for e in q.list_entries(store, q.QueueFilter(queue="all", threads=False, sla=SLA, now=NOW)).entries
    ]
    got: list[int] = []
    cursor, now = None, NOW
    while True:
        page = q.list_entries(
            store, q.QueueFilter(queue="all", threads=False, limit=2, cursor=cursor, sla=SLA, now=now)
        )
        got += [e.beacon.id for e in page.entries]
        cursor, now = page.next_cursor, now + timedelta(hours=5)  # time passes between pages
        if not cursor:
            break
    assert got == want


def test_inbox_sla_config_is_checked_with_key_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(
            tmp_path / "x.db",
            routing={
                **ROUTING,
                "sla": {"support": "soon", "advocacy": 0, "teams": {"billng": "30m", "networking": "x"}},
            },
        )
    text = str(err.value)
    assert 'routing.sla.support: expected a duration like 5m, got "soon"' in text
    assert "routing.sla.advocacy: must be longer than 0s" in text
    assert "routing.sla.teams.billng: unknown team 'billng'" in text
    assert 'routing.sla.teams.networking: expected a duration like 5m, got "x"' in text
    with pytest.raises(ConfigError, match=r"routing\.sla\.queues: unknown key"):
        make_config(tmp_path / "x.db", routing={**ROUTING, "sla": {"queues": {}}})


# -- the API -----------------------------------------------------------------------------------------


def test_inbox_api_shows_waiting_time_and_sla(client: httpx.Client) -> None:
    r = client.get("/api/beacons", params={"queue": "support", "threads": "false"}, headers=AUTH)
    beacons = r.json()["beacons"]
    assert [b["sla_breached"] for b in beacons] == sorted((b["sla_breached"] for b in beacons), reverse=True)
    by_id = {b["id"]: b for b in beacons}
    assert by_id[OUTAGE]["waited_seconds"] == 3600 and by_id[OUTAGE]["sla_breached"] is False
    assert by_id[WIFI]["sla_breached"] is True  # networking: 30m
    detail = client.get(f"/api/beacons/{WIFI}", headers=AUTH).json()
    assert detail["waited_seconds"] == 3 * 3600 and detail["sla_breached"] is True


def test_inbox_api_sla_follows_the_injected_clock(client: httpx.Client, clock: FakeClock) -> None:
    clock._epoch = (NOW - timedelta(hours=10)).timestamp()  # before any beacon arrived: nothing waits long
    beacons = client.get("/api/beacons", params={"queue": "all"}, headers=AUTH).json()["beacons"]
    assert not any(b["sla_breached"] for b in beacons)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "refund"}, [BILLING]),
        ({"source": "homenet-forum"}, [WIFI, BILLING]),
        ({"queue": "none"}, [9]),
        ({"queue": "all", "q": "quarterly"}, [9]),
        ({"sentiment": "positive", "queue": "advocacy"}, [PRAISE, THANKS, SWITCHED]),
        ({"since": "2026-11-20", "until": "2026-11-19"}, []),
    ],
)
def test_inbox_api_filters(client: httpx.Client, params: dict[str, str], expected: list[int]) -> None:
    assert sorted(api_ids(client, **params)) == sorted(expected)


def test_inbox_api_date_filters(client: httpx.Client, config: Config) -> None:
    with Store(config.database) as store:
        write(store, "UPDATE mentions SET published_at = ?", [NOW - timedelta(days=30)])
        write(
            store,
            "UPDATE mentions SET published_at = ? WHERE id = (SELECT mention_id FROM beacons WHERE id = ?)",
            [NOW - timedelta(days=2), GUEST],
        )
    assert api_ids(client, since="7d") == [GUEST]  # relative to the injected clock
    assert api_ids(client, since="2026-11-21", until="2026-11-21") == [GUEST]  # a date: the whole day
    assert api_ids(client, since="2026-11-21T11:59:59Z", until="2026-11-21T12:00:01+00:00") == [GUEST]
    assert GUEST not in api_ids(client, until="7d")


def test_inbox_api_intent_filter(client: httpx.Client, config: Config) -> None:
    with Store(config.database) as store:
        write(store, "UPDATE beacons SET intents_json = ? WHERE id = ?", ['{"how_to": 0.8}', GUEST])
    assert api_ids(client, intent="how_to") == [GUEST]


def test_inbox_api_assignee_me_is_the_caller(client: httpx.Client) -> None:
    csrf = sign_in(client, "carol")  # a name signed in with a service token
    assert client.post(f"/api/beacons/{GUEST}/claim", json={}, headers={"X-CSRF-Token": csrf}).status_code == 200
    mine = client.get("/api/beacons", params={"assignee": "me"}).json()["beacons"]
    assert [b["id"] for b in mine] == [GUEST]
    assert api_ids(client, assignee="carol") == [GUEST]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bogus": "1"}, "bogus"),
        ({"search": "wifi"}, "search"),
        ({"sentiment": "angry"}, "sentiment"),
        ({"intent": "weather"}, "intent"),
        ({"since": "last tuesday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"q": "***"}, "q"),
    ],
)
def test_inbox_api_bad_parameter_is_a_400_naming_it(client: httpx.Client, params: dict[str, str], field: str) -> None:
    r = client.get("/api/beacons", params=params, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith(f"{field}: ")


def test_inbox_api_assignee_me_needs_a_name(client: httpx.Client) -> None:
    r = client.get("/api/beacons", params={"assignee": "me"}, headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("assignee: me needs")


@pytest.mark.parametrize("text", ["1:50:3:99999999999999999999", "2:50:3:0", "1:50:3", "x:1"])
def test_inbox_api_forged_cursor_is_a_400(client: httpx.Client, text: str) -> None:
    import base64

    cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    r = client.get("/api/beacons", params={"cursor": cursor}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("cursor: ")


def test_inbox_api_cursor_keeps_filters(client: httpx.Client) -> None:
    want = api_ids(client, queue="all", q="acme", limit="100")
    got: list[int] = []
    params = {"queue": "all", "q": "acme", "limit": "2", "threads": "false"}
    while True:
        body = client.get("/api/beacons", params=params, headers=AUTH).json()
        got += [b["id"] for b in body["beacons"]]
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert got == want and len(got) > 2


# -- the page ----------------------------------------------------------------------------------------


def _cards(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<article class="card[^"]*" id="b(\d+)"', html)]


def test_inbox_page_not_queued_view_rescues_with_one_click(client: httpx.Client, config: Config) -> None:
    csrf = sign_in(client)
    page = client.get("/", params={"queue": "none"})
    assert page.status_code == 200 and _cards(page.text) == [9] and "quarterly results" in page.text
    assert "This is support" in page.text and "This is advocacy" in page.text
    assert client.get("/", params={"view": "none"}).text.count('id="b9"') == 1
    # The button is a plain form: no JavaScript, the page's CSRF token, back to the view.
    form = re.search(r'<form method="post" action="/api/beacons/9/reroute"[^>]*class="rescue">(.*?)</form>', page.text)
    assert form and 'name="queue" value="support"' in form.group(1) and 'name="csrf"' in form.group(1)
    refused = client.post("/api/beacons/9/reroute", data={"queue": "support"}, headers={"Accept": "text/html"})
    assert refused.status_code == 403
    r = client.post(
        "/api/beacons/9/reroute",
        data={"csrf": csrf, "queue": "support", "next": "/?queue=none"},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/?queue=none"
    assert _cards(client.get("/", params={"queue": "none"}).text) == []
    assert 9 in _cards(client.get("/").text)
    with Store(config.database) as store:
        assert store.get_beacon(9).queue == "support"  # type: ignore[union-attr]


def test_inbox_page_views(client: httpx.Client) -> None:
    csrf = sign_in(client, "dora")
    client.post(f"/api/beacons/{WIFI}/claim", json={}, headers={"X-CSRF-Token": csrf})
    client.post(f"/api/beacons/{PRAISE}/resolve", json={}, headers={"X-CSRF-Token": csrf})
    assert _cards(client.get("/", params={"view": "mine"}).text) == [WIFI]
    unassigned = _cards(client.get("/", params={"view": "unassigned"}).text)
    assert WIFI not in unassigned and PRAISE not in unassigned and OUTAGE in unassigned
    assert _cards(client.get("/", params={"view": "resolved"}).text) == [PRAISE]
    everything = client.get("/").text
    for label in ("Mine", "Unassigned", "All open", "Resolved", "Not queued"):
        assert f">{label}</a>" in everything
    assert client.get("/", params={"view": "later"}).status_code == 400


def test_inbox_page_search_and_counts_follow_filters(client: httpx.Client) -> None:
    sign_in(client)
    page = client.get("/", params={"q": "refund"}).text
    assert _cards(page) == [BILLING]
    assert "1 new · 0 claimed" in page and "0 new · 0 claimed" in page  # support, advocacy
    assert "5 new · 0 claimed" in client.get("/").text


def test_inbox_page_cards_show_wait_and_breach(client: httpx.Client) -> None:
    sign_in(client)
    page = client.get("/", params={"queue": "support"}).text
    assert "waited 1h</span>" in page  # beacon 1, an hour ago by the fake clock
    assert "SLA breached · waited 3h" in page  # WIFI: networking's 30m
    assert 'class="card st-new breached"' in page
