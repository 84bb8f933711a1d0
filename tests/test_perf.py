"""Issue 16's optimisations keep behaviour: each test guards one of them by its outcome, never by time.

- the classifier's and the matcher's vocabularies stay flat over many distinct posts (spaCy memory
  zones), with results identical to a run that keeps every word;
- ``run --once`` keeps at most ``fetch.concurrency`` polls alive and polls every source exactly once;
- a cycle where every feed answers 304 loads neither spaCy nor the model (a real process);
- feedparser without relative-URI resolution gives the same title, text and URL on every fixture.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import WriteConfig
from helpers_feeds import ACME, SUPPORT_TEXTS, rss_feed, rss_item, rss_source_config, rules_classifier, texts_feed

import collectors._feed as feed
from beacons.config import load_config
from beacons.daemon import run
from beacons.feedserver import FeedServer, Resource
from beacons.match import BrandMatcher
from beacons.nlp.model import SpacyClassifier, find_model
from beacons.workpool import run_pooled

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FEED_KINDS = ("rss", "google_news", "bing_news", "reddit_search", "mastodon_tag")

_SYLLABLES = ("ka", "zu", "mor", "tel", "vix", "dra", "pon", "qui", "sel", "bru", "ny", "lo")


def _new_words(rng: random.Random, n: int) -> list[str]:
    """Words no vocabulary has seen: made of random syllables, seven to ten letters."""
    return ["".join(rng.choice(_SYLLABLES) for _ in range(4)) for _ in range(n)]


def _posts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = _new_words(rng, 8)
        base = SUPPORT_TEXTS[i % len(SUPPORT_TEXTS)]
        out.append(f"{base} {' '.join(words[:4])} from @{words[4]} https://{words[5]}.example/{words[6]} {words[7]}")
    return out


@pytest.fixture(scope="module")
def shipped() -> SpacyClassifier:
    path = find_model(None)
    if path is None:
        pytest.skip("no shipped model")
    return SpacyClassifier(path)


def test_perf_classifier_vocabulary_stays_flat_over_new_words(shipped: SpacyClassifier) -> None:
    matcher = BrandMatcher([ACME])
    vocab = shipped.nlp.vocab
    sizes = []
    for batch in range(4):
        posts = _posts(batch, 60)
        shipped.classify_many([(p, matcher.match_text(p)) for p in posts])
        sizes.append((len(vocab.strings), sum(1 for _ in vocab)))  # len(vocab) counts every lexeme ever made
    assert sizes[1:] == sizes[:-1], sizes  # 480 new words read, not one kept


def test_perf_classifier_results_identical_with_and_without_the_zone(shipped: SpacyClassifier) -> None:
    path = find_model(None)
    assert path is not None
    keeping = SpacyClassifier(path)
    keeping.forget_words = False
    matcher = BrandMatcher([ACME])
    posts = _posts(99, 80)
    items = [(p, matcher.match_text(p)) for p in posts]
    before = len(keeping.nlp.vocab.strings)
    assert keeping.classify_many(items) == shipped.classify_many(items)
    assert len(keeping.nlp.vocab.strings) > before + 100  # without the zone every new word stays


def test_perf_matcher_vocabulary_stays_flat_and_matches_like_a_fresh_matcher() -> None:
    matcher = BrandMatcher([ACME])
    posts = _posts(5, 40) + [f"Acme RouterX {w} acme looney tunes" for w in _new_words(random.Random(6), 20)]
    first = matcher.match_text(posts[0])
    size = len(matcher.nlp.vocab.strings)
    for post in posts:
        assert matcher.match_text(post) == BrandMatcher([ACME]).match_text(post)
    assert first is not None and len(matcher.nlp.vocab.strings) == size


def test_perf_matcher_batch_matches_like_single_texts_and_forgets_its_words() -> None:
    batched, single = BrandMatcher([ACME]), BrandMatcher([ACME])
    posts = [*_posts(7, 30), "no brand here", "", "Acme RouterX acme looney tunes"]
    size = len(batched.nlp.vocab.strings)
    with batched.batch():
        got = [batched.match_text(p) for p in posts]
        assert len(batched.nlp.vocab.strings) > size  # inside the batch its words are known...
    assert got == [single.match_text(p) for p in posts]
    assert len(batched.nlp.vocab.strings) == size  # ...and forgotten at its end


@pytest.mark.parametrize(("workers", "per_key", "keys"), [(3, 2, 5), (8, 1, 3), (4, 2, 40), (1, 3, 2)])
def test_perf_workpool_bounds_workers_and_keys_and_runs_each_item_once(workers: int, per_key: int, keys: int) -> None:
    items = [(f"h{i % keys}", i) for i in range(60)]
    in_flight: Counter[str] = Counter()
    seen: Counter[int] = Counter()
    most = {"all": 0, "key": 0, "tasks": 0}

    async def job(item: tuple[str, int]) -> int:
        key, n = item
        in_flight[key] += 1
        seen[n] += 1
        most["all"] = max(most["all"], sum(in_flight.values()))
        most["key"] = max(most["key"], in_flight[key])
        most["tasks"] = max(most["tasks"], len(asyncio.all_tasks()))
        for _ in range(n % 4):
            await asyncio.sleep(0)
        in_flight[key] -= 1
        return n * 10

    async def go() -> list[int]:
        return await run_pooled(items, job, key=lambda it: it[0], workers=workers, per_key=per_key)

    results = asyncio.run(go())
    assert results == [n * 10 for _, n in items]  # in item order
    assert set(seen.values()) == {1} and len(seen) == len(items)
    assert most["all"] <= workers and most["key"] <= per_key
    assert most["tasks"] <= workers + 1  # the workers and the main task: no task per item
    assert most["all"] == min(workers, keys * per_key)  # and the bound is used, not undershot


def test_perf_run_once_keeps_live_tasks_bounded_and_polls_each_source_once(
    feed_server: FeedServer, write_config: WriteConfig
) -> None:
    sources = {}
    for i in range(120):
        path = f"/f{i}.xml"
        feed_server.add(path, Resource(texts_feed(SUPPORT_TEXTS[:1], start=i)))
        sources[f"s{i}"] = feed_server.url(path)
    raw = rss_source_config(sources, fetch={"per_host_delay": "0s", "timeout": "5s", "concurrency": 6})
    config = load_config(write_config(raw), env={})
    most = 0

    async def go() -> list[Any]:
        nonlocal most
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal most
            while not done.is_set():
                most = max(most, len(asyncio.all_tasks()))
                await asyncio.sleep(0)

        sampler = asyncio.create_task(sample())
        try:
            return await run(config, once=True, install_signals=False, classifier=rules_classifier())
        finally:
            done.set()
            await sampler

    results = asyncio.run(go())
    assert sorted(r.status for r in results) == ["ok"] * 120
    assert [r.source_id for r in results] == list(sources)
    assert all(len(feed_server.hits(f"/f{i}.xml")) == 1 for i in range(120))
    # 6 workers, the main task and the sampler; httpx may add a task or two of its own, never one per source
    assert 6 < most <= 12, most


def _imports(config: Path, cwd: Path) -> tuple[str, set[str]]:
    """Run ``daemon.py --once`` in a fresh process; its log and the modules it imported."""
    env = {k: v for k, v in os.environ.items() if k != "BEACONS_CONFIG"}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "daemon.py"), "--config", str(config), "--once"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return proc.stderr, modules


def test_perf_all_304_cycle_loads_neither_spacy_nor_the_model(
    feed_server: FeedServer, write_config: WriteConfig, tmp_path: Path
) -> None:
    if find_model(None) is None:
        pytest.skip("no shipped model")
    spanish = "Mi Acme RouterX se desconecta cada noche desde la actualización, ¿alguien sabe por qué?"
    feed_server.add("/a.xml", Resource(texts_feed([*SUPPORT_TEXTS, spanish])))
    feed_server.add("/b.xml", Resource(texts_feed(SUPPORT_TEXTS, start=10)))
    # A generous fetch.timeout: on a loaded machine a poll that timed out would be fetched anew next time.
    fetch = {"per_host_delay": "0s", "timeout": "120s"}
    raw = rss_source_config({"a": feed_server.url("/a.xml"), "b": feed_server.url("/b.xml")}, fetch=fetch)
    raw["classifier"] = {"model": "auto"}
    config = write_config(raw)
    log, first = _imports(config, tmp_path)
    assert log.count('"status": "ok"') == 2, log[-3000:]
    assert {"spacy", "py3langid"} <= first  # new posts: the model classified them
    log, second = _imports(config, tmp_path)
    assert log.count('"status": "not_modified"') == 2, log[-3000:]
    assert "spacy" not in second and "py3langid" not in second and "thinc" not in second


def _relative_links_feeds() -> list[bytes]:
    """Entries whose HTML holds relative hrefs and srcs, in RSS and in Atom with xml:base."""
    html = 'See <a href="/help/router">the guide</a> and <img src="img/x.png" alt="a shot"> for Acme RouterX.'
    rss = rss_feed(
        [
            rss_item(1, html, link="http://feeds.example.org/post/1"),
            rss_item(2, "<p>Acme <a href='../a?b=1'>link</a> help</p>", link="/post/2"),
        ]
    )
    atom = (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://blog.example.org/news/">'
        b"<title>t</title><id>urn:t</id><updated>2026-11-23T09:00:00Z</updated>"
        b'<entry><title type="html">Acme &lt;a href="x/y"&gt;RouterX&lt;/a&gt;</title>'
        b'<link href="2026/acme-routerx"/><id>urn:e1</id><updated>2026-11-23T09:00:00Z</updated>'
        b'<content type="html">&lt;p&gt;Read &lt;a href="../more"&gt;more&lt;/a&gt; on Acme&lt;/p&gt;</content>'
        b"</entry></feed>"
    )
    return [rss, atom]


def _feed_cases() -> list[Any]:
    cases: list[Any] = []
    for kind in FEED_KINDS:
        for path in sorted((FIXTURES / kind).glob("*")):
            if path.is_file() and not path.name.endswith(".json"):
                cases.append(pytest.param(path.read_bytes(), id=f"{kind}/{path.name}"))
    cases += [pytest.param(body, id=f"relative-{i}") for i, body in enumerate(_relative_links_feeds())]
    return cases


@pytest.mark.parametrize("body", _feed_cases())
def test_perf_feed_without_relative_uri_resolution_gives_identical_mentions(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse() -> list[tuple[Any, ...]] | str:
        try:
            mentions = feed.parse_feed(body, source_id="t", url="http://feeds.example.org/dir/feed.xml")
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return [(m.title, m.text, m.url, m.guid, m.author, m.published_at) for m in mentions]

    assert feed.FEEDPARSER_OPTIONS["resolve_relative_uris"] is False
    fast = parse()
    monkeypatch.setitem(feed.FEEDPARSER_OPTIONS, "resolve_relative_uris", True)
    assert fast == parse()


def test_perf_lazy_model_that_cannot_load_fails_on_first_use_with_a_logged_reason(tmp_path: Path) -> None:
    path = find_model(None)
    if path is None:
        pytest.skip("no shipped model")
    broken = tmp_path / "model"
    shutil.copytree(path, broken)
    (broken / "textcat_queue" / "model").write_bytes(b"not a model")  # damaged after the daemon started
    clf = SpacyClassifier(broken, lazy=True)  # reads meta.json only: the name is known, nothing loaded
    assert clf.name.startswith("spacy:") and clf._nlp is None
    match = BrandMatcher([ACME]).match_text(SUPPORT_TEXTS[0])
    with structlog.testing.capture_logs() as logs, pytest.raises(ValueError):
        clf.classify(SUPPORT_TEXTS[0], match)  # the pipeline stores the post unclassified and retries it
    assert [e["event"] for e in logs] == ["classifier.load_failed"]
    assert logs[0]["path"] == str(broken) and "unpack" in logs[0]["error"]  # msgpack refusing the bytes
