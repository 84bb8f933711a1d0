"""beacons.match.BrandMatcher: names, aliases, handles, hashtags, products, exclusions, case, token boundaries."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from helpers_feeds import ACME
from hypothesis import given, settings
from hypothesis import strategies as st

from beacons.match import MAX_MATCH_CHARS, BrandMatcher
from beacons.models import Brand, Mention, Product

GLOBEX = Brand(name="Globex", aliases=("Globex Corporation",), handles=("@globex",), products=(Product("HammerPhone"),))


@pytest.fixture(scope="module")
def matcher() -> BrandMatcher:
    return BrandMatcher([ACME, GLOBEX])


@pytest.mark.parametrize(
    ("text", "product", "spans"),
    [
        ("acme rocks", None, [("acme", "name")]),
        ("ACME is down again", None, [("ACME", "name")]),
        ("Acme's router is fine", None, [("Acme", "name")]),
        ("ACME CORP is down", None, [("ACME CORP", "alias")]),
        ("visit acme.com today", None, [("acme.com", "alias")]),
        ("@acme help please", None, [("@acme", "handle")]),
        ("@AcmeSupport: my order?", None, [("@AcmeSupport", "handle")]),
        ("hey @acmesupport!", None, [("@acmesupport", "handle")]),
        ("#Acme all the way", None, [("#Acme", "hashtag")]),
        ("#AcmeCorp fans", None, [("#AcmeCorp", "hashtag")]),
        ("love my #routerx", "RouterX", [("#routerx", "product")]),
        ("the Router X and the rx-200", "RouterX", [("Router X", "product"), ("rx-200", "product")]),
        ("Acme Cloud billing is wrong", "Acme Cloud", [("Acme Cloud", "product")]),
        ("#AcmeCloud is down", "Acme Cloud", [("#AcmeCloud", "product")]),
    ],
)
def test_match_finds_terms_case_insensitively(
    matcher: BrandMatcher, text: str, product: str | None, spans: list[tuple[str, str]]
) -> None:
    match = matcher.match_text(text)
    assert match is not None
    assert match.brand == "Acme"
    assert match.product == product
    assert [(s.text, s.kind) for s in match.spans] == spans
    for span in match.spans:
        assert text[span.start : span.end] == span.text


@pytest.mark.parametrize(
    "text",
    [
        "Acmeville county fair",  # a longer word is not the brand
        "support@acme.com wrote back",  # an e-mail address is one token
        "ping @acme_fan about it",  # another handle
        "RouterX2 is a different thing",
        "nothing to see here",
        "",
    ],
)
def test_match_respects_token_boundaries(matcher: BrandMatcher, text: str) -> None:
    assert matcher.match_text(text) is None


@pytest.mark.parametrize(
    "text",
    ["Acme Looney Tunes marathon with Acme anvils", "ACME LOONEY TUNES: the Acme Corp rocket"],
)
def test_match_exclusion_vetoes_the_brand(matcher: BrandMatcher, text: str) -> None:
    assert matcher.match_text(text) is None


def test_match_exclusion_vetoes_only_its_own_brand(matcher: BrandMatcher) -> None:
    match = matcher.match_text("acme looney tunes night, streamed on my Globex HammerPhone")
    assert match is not None
    assert (match.brand, match.product, match.other_brands) == ("Globex", "HammerPhone", ())


def test_match_longest_span_wins(matcher: BrandMatcher) -> None:
    match = matcher.match_text("Acme Corp and Acme Cloud")
    assert match is not None
    assert [s.text for s in match.spans] == ["Acme Corp", "Acme Cloud"]


def test_match_most_mentioned_brand_wins_and_others_are_listed(matcher: BrandMatcher) -> None:
    match = matcher.match_text("Switched from Acme to Globex: the Globex HammerPhone beats anything @globex ever made")
    assert match is not None
    assert match.brand == "Globex"
    assert match.other_brands == ("Acme",)
    assert all(s.brand == "Globex" for s in match.spans)


def test_match_tie_goes_to_the_first_configured_brand(matcher: BrandMatcher) -> None:
    match = matcher.match_text("Globex or Acme?")
    assert match is not None
    assert (match.brand, match.other_brands) == ("Acme", ("Globex",))


def test_match_uses_title_and_text_of_a_mention(matcher: BrandMatcher) -> None:
    now = datetime.now(UTC)
    mention = Mention("s", None, None, "RouterX woes", "It drops wifi at night.", None, None, now, "{}")
    match = matcher.match(mention)
    assert match is not None
    assert (match.product, match.spans[0].start) == ("RouterX", 0)
    assert mention.full_text[match.spans[0].start : match.spans[0].end] == "RouterX"


def test_match_reads_only_the_first_max_match_chars(matcher: BrandMatcher) -> None:
    assert matcher.match_text("x " * (MAX_MATCH_CHARS // 2) + "Acme") is None
    assert matcher.match_text("Acme " + "x " * MAX_MATCH_CHARS) is not None


def test_match_without_brands_matches_nothing() -> None:
    assert BrandMatcher([]).match_text("Acme RouterX") is None


_WORDS = st.sampled_from(
    [
        "Acme",
        "acme",
        "ACME Corp",
        "RouterX",
        "#routerx",
        "Router",
        "X",
        "rx-200",
        "@AcmeSupport",
        "@acme_fan",
        "Globex",
        "HammerPhone",
        "looney",
        "tunes",
        "Acmeville",
        "the",
        "is",
        "down",
        "!",
        "?",
        "'s",
        "\n",
        "ΣΊΣΥΦΟΣ",
        "İstanbul",
        "café",
        "acme.com",
    ]
)


@settings(deadline=None, max_examples=300)
@given(st.lists(_WORDS, max_size=12), st.sampled_from([" ", "", "  ", "-"]))
def test_match_substring_prefilter_never_changes_the_result(words: list[str], sep: str) -> None:
    fast, exact = _PAIR
    text = sep.join(words)
    assert fast.match_text(text) == exact.match_text(text)


def _pair() -> tuple[BrandMatcher, BrandMatcher]:
    fast = BrandMatcher([ACME, GLOBEX])
    exact = BrandMatcher([ACME, GLOBEX], nlp=fast.nlp)
    # No prefilter and no pieces: the empty pattern is found in every text, and the whole text is tokenized.
    # (Setting _needles, the old prefilter's set, stopped bypassing anything once the prefilter became _seeds.)
    exact._seeds = re.compile("")
    exact._windows = False
    return fast, exact


_PAIR = _pair()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("「RouterX」で注文したら届かない", "RouterX"),  # Japanese brackets touch the name
        ("【Acme】セール開始、RouterXも対象", "Acme"),
        ("RouterX、昨日から繋がらない", "RouterX"),  # an ideographic comma right after it
        ("RouterX는 어제부터 연결이 안 돼요", "RouterX"),  # a Korean particle attached to a Latin name
        ("라우터는 Acme가 제일 좋아요", "Acme"),
        ("RouterX'den beri internet yok", "RouterX"),  # Turkish case ending after an apostrophe
        ("Acme’nin destek ekibi cevap vermiyor", "Acme"),
        ("the acme's router is fine", "acme"),
        ("RouterXден нет интернета, Acmeу писал", "RouterX"),  # a Cyrillic ending glued to a Latin name
        ("Написал в Acme-у, тишина", "Acme"),
        ("Η Acmeς δεν απαντά", "Acme"),  # a Greek ending
        ("acmeye yazdim cevap yok", "acme"),  # a Turkish ending without the apostrophe
        ("Acmeden para iadesi gelmedi", "Acme"),
        ("ROUTERXNIN ayarları bozuldu", "ROUTERX"),
    ],
)
def test_match_names_touching_cjk_punctuation_hangul_particles_and_suffixes(
    matcher: BrandMatcher, text: str, found: str
) -> None:
    m = matcher.match_text(text)
    assert m is not None and m.brand == "Acme"
    assert any(s.text == found for s in m.spans)


@pytest.mark.parametrize(
    "text",
    [
        "we were told to stare at the screen",  # "Star" + e: one-letter endings are not Turkish endings here
        "a robin on the fence",  # "Robi" + n
        "the pinta sailed",  # a 3-letter stem never takes an ending
        "Starlight and Starling",  # endings outside the list
    ],
)
def test_match_turkish_endings_do_not_turn_english_words_into_names(text: str) -> None:
    brands = [Brand(name=n, aliases=(), handles=(), products=()) for n in ("Star", "Robi", "Pin", "Starl")]
    assert BrandMatcher(brands).match_text(text) is None


def test_match_a_name_with_a_glued_ending_is_masked_as_the_name_alone(matcher: BrandMatcher) -> None:
    """The span is the name, so the classifier reads "zzbrand den", not one unknown word."""
    from beacons.nlp.mask import mask_text

    m = matcher.match_text("Acmeden para iadesi gelmedi, RouterXом тоже беда")
    assert m is not None
    assert [s.text for s in m.spans] == ["Acme", "RouterX"]
    assert mask_text("Acmeden para iadesi gelmedi, RouterXом тоже беда", m).split()[:2] == ["zzbrandst", "den"]


def test_match_hangul_and_kana_names_match_inside_running_text() -> None:
    brand = Brand(name="Okkulo", aliases=("오쿨로", "オクロ"), handles=(), products=())
    matcher = BrandMatcher([brand])
    for text in ("오쿨로가 또 안 열려요", "오쿨로 앱 업데이트 후 문제", "オクロのカメラが壊れた"):
        m = matcher.match_text(text)
        assert m is not None and m.brand == "Okkulo", text
    assert matcher.match_text("오늘은 날씨가 좋아요") is None
