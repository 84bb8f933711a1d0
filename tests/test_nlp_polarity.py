"""Character trigrams and the non-English polarity word (beacons/nlp/features.py, beacons/nlp/polarity.py)."""

from __future__ import annotations

import pytest

from beacons.match import BrandMatcher
from beacons.models import Brand
from beacons.nlp.features import NONE, Features, chargrams, extra_words, post_lang
from beacons.nlp.mask import model_input
from beacons.nlp.polarity import polarity, polarity_token

GRAMS = Features(chargrams=True)
POLARITY = Features(polarity=True)


def test_nlp_chargrams_let_a_typo_share_most_of_its_word() -> None:
    typo = set(chargrams("the app keeps crashign"))
    right = set(chargrams("the app keeps crashing"))
    assert {"zc_cra", "zc_ras", "zc_ash", "zc_shi"} <= typo & right
    assert "zc_ign" in typo and "zc_ing" in right and "zc_ign" not in right


def test_nlp_chargrams_skip_short_words_placeholders_and_repeats() -> None:
    grams = chargrams("zzbrand app is down down down again")
    assert grams == ["zc_aga", "zc_gai", "zc_ain"]  # "again" only: shorter words and zzbrand give none
    assert chargrams("zzbrandが壊れた") == []  # Han and kana are tokens already


def test_nlp_chargrams_are_for_every_post_english_too() -> None:
    assert extra_words("crashign", "en", GRAMS).split()[0] == "zc_cra"
    assert extra_words("crashign", "en", NONE) == ""
    assert extra_words("crashign", "en", POLARITY) == ""  # the polarity word is for posts VADER cannot read


@pytest.mark.parametrize(
    ("text", "lang", "token"),
    [
        ("zzbrand приложение не работает, верните деньги", "ru", "zzpneg2"),
        ("Дякую zzbrand, все чудово", "uk", "zzppos2"),
        ("zzbrand uygulaması çalışmıyor", "tr", "zzpneg1"),
        ("zzbrand uygulamasi calismiyor", "tr", "zzpneg1"),  # typed without Turkish letters
        ("Dziękuję zzbrand, polecam", "pl", "zzppos2"),
        ("zzbrand funktioniert nicht, Geld zurück bitte", "de", "zzpneg2"),
        ("zzbrandのアプリが動かない。最悪", "ja", "zzpneg2"),
        ("zzbrand 太棒了，谢谢", "zh", "zzppos2"),
        ("zzbrand 앱이 안돼요", "ko", "zzpneg1"),
        ("zzbrand a publié ses résultats", "fr", "zzpneu"),
        ("zzbrand ist kaputt, aber danke", "de", "zzpneu"),
    ],
)
def test_nlp_polarity_word_reads_cues_of_the_post_language(text: str, lang: str, token: str) -> None:
    assert polarity_token(text, lang) == token


def test_nlp_polarity_cues_match_at_word_starts_or_whole_words() -> None:
    assert polarity("det var bra", "sv") == (0, 1)
    assert polarity("brasiliansk kaffe", "sv") == (0, 0)  # "bra$" is a whole word only
    assert polarity("ein Problemchen", "de") == (1, 0)  # a cue matches the start of a longer word
    assert polarity("unproblematisch", "de") == (0, 0)  # ... not its middle
    assert polarity("no list for this one", "xx") is None and polarity_token("no list", "xx") == ""


def test_nlp_model_input_carries_the_polarity_word_for_non_english_posts() -> None:
    brand = Brand(name="Acme")
    text = "Acme: приложение не работает после обновления, ужас"
    match = BrandMatcher([brand]).match_text(text)
    lang = post_lang(text)
    assert lang == "ru"
    words = model_input(text, match, 0.0, lang=lang, features=POLARITY).split()
    assert "zzpneg2" in words and not any(w.startswith("zc_") for w in words)
    english = "Acme the app crashes after the update, awful"
    words = model_input(english, BrandMatcher([brand]).match_text(english), -0.5, lang="en", features=POLARITY).split()
    assert not any(w.startswith("zzp") for w in words)


def test_nlp_new_features_round_trip_through_meta() -> None:
    both = Features(chargrams=True, polarity=True)
    assert Features.from_meta(both.to_meta()) == both
    assert Features.from_meta({"stems": True}) == Features(stems=True)  # a model from before reads none of them


def test_nlp_a_non_english_support_post_with_a_negative_cue_is_negative_toward_the_brand() -> None:
    from dataclasses import replace

    from beacons.nlp.model import Combined, Reading, SpacyClassifier, find_model

    path = find_model()
    assert path is not None
    clf = SpacyClassifier(path, lazy=True)  # decide() needs no pipeline
    brand = Brand(name="Acme")
    text = "Acme: приложение не работает с утра"
    match = BrandMatcher([brand]).match_text(text)
    calm = {
        "q:support": 0.9,
        "q:advocacy": 0.05,
        "q:none": 0.05,
        "s:negative": 0.3,
        "s:neutral": 0.6,
        "s:positive": 0.1,
    }
    reading = Reading(0, len(text), dict(calm))

    def sentiment(features: Features) -> str:
        clf.features = features
        return clf.decide(text, match, reading, [], 0.0, Combined(), 0.5).sentiment

    assert sentiment(NONE) == "neutral"  # reports_harm reads English only
    assert sentiment(POLARITY) == "negative"  # "не работ": something is broken
    assert sentiment(replace(POLARITY, polarity=False, stems=True)) == "neutral"
