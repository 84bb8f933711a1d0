"""Property-based tests (hypothesis): URL canonicalization, dedupe keys, the config loader, Slack escaping.

Examples are kept modest (``max_examples``) so the file runs in a few seconds;
hypothesis keeps the failing examples it finds in ``.hypothesis/`` and replays
them first.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacons.alerts.message import excerpt
from beacons.alerts.slack import escape, highlighted, link
from beacons.config import parse_config
from beacons.dedupe import canonical_url, dedupe_key, dedupe_keys
from beacons.errors import ConfigError
from beacons.models import Match, MatchSpan, Mention

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# -- URLs ----------------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hosts = st.lists(_label, min_size=1, max_size=3).map(".".join).map(lambda h: h + ".example")
_piece = st.text(alphabet=st.sampled_from("abcXYZ019-._~%+=/?:@!$'()*,;"), max_size=8)  # no space: a URL is stripped
params = st.lists(
    st.tuples(
        st.sampled_from(["q", "id", "page", "utm_source", "utm_medium", "UTM_Campaign", "fbclid", "ref", "gclid"]),
        _piece,
    ),
    max_size=5,
)


@st.composite
def http_urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "HtTpS"]))
    host = draw(hosts)
    if draw(st.booleans()):
        host = host.upper()
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = draw(st.lists(_label, max_size=3).map(lambda p: "/" + "/".join(p) if p else ""))
    query = "&".join(f"{k}={v}" for k, v in draw(params))
    fragment = draw(st.sampled_from(["", "#top", "#reply-3"]))
    return f"{scheme}://{host}{port}{path}" + (f"?{query}" if query else "") + fragment


@FAST
@given(st.one_of(st.text(max_size=80), http_urls(), st.none()))
def test_properties_canonical_url_never_raises_and_is_idempotent(url: str | None) -> None:
    once = canonical_url(url)
    assert once is None or isinstance(once, str)
    if once is not None:
        assert canonical_url(once) == once


@FAST
@given(http_urls())
def test_properties_canonical_url_strips_tracking_and_fragment(url: str) -> None:
    out = canonical_url(url)
    assert out is not None
    parts = urlsplit(out)
    assert parts.scheme in ("http", "https") and parts.fragment == ""
    assert parts.hostname == parts.hostname.lower() if parts.hostname else True
    keys = [k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
    assert not any(k.startswith("utm_") or k in ("fbclid", "gclid") for k in keys)
    assert parts.port not in (80, 443) or (parts.scheme, parts.port) not in (("http", 80), ("https", 443))


@FAST
@given(http_urls(), st.sampled_from(["utm_source=x", "utm_medium=email&utm_campaign=y", "fbclid=abc"]))
def test_properties_tracking_params_do_not_change_the_canonical_url(url: str, tracking: str) -> None:
    base, _, fragment = url.partition("#")
    tracked = base + ("&" if "?" in base else "?") + tracking + (f"#{fragment}" if fragment else "")
    assert canonical_url(tracked) == canonical_url(url)


# -- dedupe keys ----------------------------------------------------------------------

mentions = st.builds(
    Mention,
    source_id=st.sampled_from(["blog", "news"]),
    url=st.one_of(st.none(), http_urls(), st.text(max_size=40)),
    guid=st.one_of(st.none(), st.text(max_size=30)),
    title=st.text(max_size=60),
    text=st.text(max_size=200),
    author=st.one_of(st.none(), st.text(max_size=20)),
    published_at=st.none(),
    fetched_at=st.just(NOW),
    raw=st.just("{}"),
)


@FAST
@given(mentions)
def test_properties_dedupe_keys_never_raise_and_always_include_a_content_hash(m: Mention) -> None:
    keys = dedupe_keys(m)
    assert keys == dedupe_keys(m)  # deterministic
    assert len(keys) == len(set(keys)) and 1 <= len(keys) <= 3
    assert sum(k.startswith("hash:") for k in keys) == 1
    assert dedupe_key(m) == keys[0]
    assert all(k.startswith(("url:", "guid:", "hash:")) for k in keys)


@FAST
@given(mentions)
def test_properties_dedupe_hash_ignores_spacing(m: Mention) -> None:
    spaced = Mention(
        m.source_id, m.url, m.guid, f"  {m.title}\n", m.text.replace(" ", "  \n"), m.author, None, NOW, "{}"
    )
    assert dedupe_keys(spaced)[-1] == dedupe_keys(m)[-1]


@FAST
@given(http_urls(), st.text(min_size=1, max_size=60))
def test_properties_same_post_with_tracking_params_shares_the_url_key(url: str, text: str) -> None:
    a = Mention("a", url, "1", "t", text, None, None, NOW, "{}")
    b = Mention(
        "b",
        url + ("&" if "?" in url.partition("#")[0] else "?") + "utm_source=feed",
        "2",
        "t",
        text + "!",
        None,
        None,
        NOW,
        "{}",
    )
    if url.partition("#")[0].endswith(("?", "&")) or "#" in url:
        return  # a fragment would swallow the appended parameter
    url_keys_a = [k for k in dedupe_keys(a) if k.startswith("url:")]
    url_keys_b = [k for k in dedupe_keys(b) if k.startswith("url:")]
    assert url_keys_a == url_keys_b


# -- config loader ---------------------------------------------------------------------

SECTION_KEYS = [
    "database",
    "brands",
    "sources",
    "fetch",
    "classifier",
    "routing",
    "alerts",
    "logging",
    "serve",
    "bogus",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)
known_fields = st.sampled_from(
    [
        "id",
        "kind",
        "url",
        "interval",
        "name",
        "aliases",
        "products",
        "timeout",
        "max_bytes",
        "level",
        "format",
        "model",
        "query",
        "secret",
        "rules",
        "queue",
    ]
)
nested = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(known_fields, st.text(max_size=8)), inner, max_size=4)
    ),
    max_leaves=25,
)
configs = st.dictionaries(st.sampled_from(SECTION_KEYS), st.one_of(values, nested), max_size=6)


def _load(data: Any) -> None:
    try:
        parse_config(yaml.safe_dump(data), env={})
    except ConfigError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_properties_config_loader_raises_only_config_error(data: dict[str, Any]) -> None:
    _load(data)


@FAST
@given(st.one_of(values, st.text(max_size=200)))
def test_properties_config_loader_survives_any_top_level(data: Any) -> None:
    if isinstance(data, str):
        try:
            parse_config(data, env={})
        except ConfigError as exc:
            assert exc.problems
    else:
        _load(data)


@FAST
@given(st.text(alphabet=st.sampled_from("${}_ABCxyz:-"), max_size=30))
def test_properties_env_interpolation_never_leaks_a_crash(value: str) -> None:
    _load({"database": value, "logging": {"level": value}})


# -- Slack escaping ---------------------------------------------------------------------

CONTROL = re.compile(r"<[!@#]|<https?:|<mailto:", re.IGNORECASE)
_chunks = st.one_of(
    st.text(alphabet=st.sampled_from(list("<>&!@#|*_~`: hertpsHTPS/.\n")), max_size=10),
    st.sampled_from(["<!channel>", "<!here>", "<@U123>", "<https://evil|x>", "&lt;", "<#C1>", "&amp;lt;!here&gt;"]),
)
hostile_text = st.lists(_chunks, max_size=6).map("".join)


@FAST
@given(hostile_text)
def test_properties_slack_escape_leaves_no_control_sequence(text: str) -> None:
    out = escape(text)
    assert "<" not in out and ">" not in out
    assert not CONTROL.search(out)


@FAST
@given(hostile_text, st.one_of(http_urls(), hostile_text))
def test_properties_slack_link_label_and_url_cannot_break_out(label: str, url: str) -> None:
    out = link(url, label)
    if out.startswith("<"):
        assert out.endswith(">") and out.count("<") == 1 and out.count(">") == 1
        target, _, shown = out[1:-1].partition("|")
        assert re.match(r"(?i)^https?://", target) and "|" not in target and " " not in target
        assert "<" not in shown and ">" not in shown
    else:
        assert "<" not in out and ">" not in out


@FAST
@given(hostile_text, hostile_text)
def test_properties_slack_highlighted_excerpt_is_inert(before: str, after: str) -> None:
    text = f"{before} Acme {after}"
    start = len(before) + 1
    match = Match("Acme", None, (MatchSpan(start, start + 4, "Acme", "Acme", None, "name"),))
    out = highlighted(excerpt(text, match, brand="Acme"))
    assert not CONTROL.search(out) and "<" not in out
