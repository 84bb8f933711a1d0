"""google_alerts: Google's redirect links unwrapped to the article, <b> markup gone, Talkwalker's RSS read alike."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers_search import SPECS, open_pipeline

from beacons.dedupe import dedupe_keys
from beacons.models import Source
from collectors.google_alerts import parse, real_link

SPEC = SPECS["google_alerts"]
TALKWALKER = SPEC.dir / "talkwalker.rss"


@pytest.mark.parametrize(
    ("link", "real"),
    [
        (
            "https://www.google.com/url?rct=j&sa=t&url=https://www.example-news.com/a%3Fid%3D7&ct=ga&cd=CAI&usg=AOv",
            "https://www.example-news.com/a?id=7",
        ),
        ("https://www.google.co.uk/url?q=https://blog.example.com/post&sa=U", "https://blog.example.com/post"),
        ("https://google.com/url?url=http://plain.example.org/", "http://plain.example.org/"),
        ("https://www.google.com/url?rct=j&sa=t&ct=ga", None),  # no target: the link stays as it is
        ("https://www.google.com/url?url=javascript:alert(1)", None),
        ("https://www.example-news.com/url?url=https://elsewhere.example/", None),  # not Google's redirect
        ("https://www.example-news.com/2026/story", None),
    ],
)
def test_google_alerts_real_link_unwraps_googles_redirect(link: str, real: str | None) -> None:
    assert real_link(link) == real


def test_google_alerts_titles_and_text_lose_the_bold_markup() -> None:
    first = parse(SPEC.body("page1"), source_id="g")[0]
    assert first.title == "RouterX firmware 2.4.1 drops 5 GHz clients, users say"
    assert "<b>" not in first.text and "Acme's RouterX report" in first.text
    assert SPEC.body("page1").count(b"&lt;b&gt;RouterX&lt;/b&gt;") >= 2  # the fixture holds the markup Google sends


def test_google_alerts_tracking_parameters_leave_the_unwrapped_link() -> None:
    second = parse(SPEC.body("page1"), source_id="g")[1]
    assert second.url == "https://reviews.example.org/routerx-mesh-hands-on"


def test_google_alerts_reads_talkwalkers_rss() -> None:
    mentions = parse(TALKWALKER.read_bytes(), source_id="t")
    assert [m.url for m in mentions] == [
        "https://www.example-news.com/2026/11/23/routerx-firmware-241-wifi",
        "https://blog.example.com/back-to-my-old-router",
    ]
    assert mentions[0].text.startswith("Owners of Acme's RouterX report") and mentions[0].guid == "tw-5d1c0a7e93b2"


def test_google_alerts_the_same_article_from_google_and_talkwalker_is_one_mention(tmp_path: Path) -> None:
    google = parse(SPEC.body("page1"), source_id="google")[0]
    talkwalker = parse(TALKWALKER.read_bytes(), source_id="talkwalker")[0]
    assert set(dedupe_keys(google)) & set(dedupe_keys(talkwalker)), "the unwrapped link is the shared key"
    sources = [Source("google", "google_alerts", 300.0, None), Source("talkwalker", "google_alerts", 300.0, None)]

    async def scenario() -> None:
        async with open_pipeline(tmp_path / "b.db", sources) as (pipeline, store, _):
            assert pipeline.ingest("google", [google])["new"] == 1
            counts = pipeline.ingest("talkwalker", [talkwalker])
            assert counts["new"] == 0 and counts["duplicate"] == 1
            assert store.mention_count() == 1

    asyncio.run(scenario())
