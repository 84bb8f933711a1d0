"""beacons.dedupe: canonical URLs and the identity keys of a mention."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacons.dedupe import canonical_url, content_hash, dedupe_key, dedupe_keys, link_problem
from beacons.models import Mention

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def mention(
    url: str | None = None,
    guid: str | None = None,
    *,
    source: str = "s",
    title: str = "Acme down",
    text: str = "It is down.",
    author: str | None = "ann",
) -> Mention:
    return Mention(source, url, guid, title, text, author, None, NOW, "{}")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://WWW.Example.COM:80/Path?b=2&a=1#frag", "http://www.example.com/Path?b=2&a=1"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com/a?utm_source=rss&utm_medium=feed&id=7", "https://example.com/a?id=7"),
        ("https://example.com/a?UTM_Campaign=x&fbclid=abc&gclid=1", "https://example.com/a"),
        ("https://example.com/a?q=a%20b", "https://example.com/a?q=a+b"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://[::1]:8080/x", "https://[::1]:8080/x"),
    ],
)
def test_dedupe_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "url", [None, "", "   ", "mailto:acme@example.com", "ftp://example.com/a", "/relative/path", "https://"]
)
def test_dedupe_canonical_url_of_non_http_is_none(url: str | None) -> None:
    assert canonical_url(url) is None


def test_dedupe_canonical_url_keeps_an_unparseable_url() -> None:
    assert canonical_url("https://example.com:99999/x") == "https://example.com:99999/x"


_hosts = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}(\.[A-Za-z]{2,5}){1,2}", fullmatch=True)
_segments = st.lists(st.from_regex(r"[A-Za-z0-9._~%-]{1,8}", fullmatch=True), max_size=3)
_params = st.lists(
    st.tuples(
        st.sampled_from(["id", "p", "utm_source", "fbclid", "q", "UTM_medium", "page"]),
        st.from_regex(r"[A-Za-z0-9 +%=]{0,6}", fullmatch=True),
    ),
    max_size=4,
)


@given(
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    host=_hosts,
    segments=_segments,
    params=_params,
    fragment=st.text(max_size=5),
)
def test_dedupe_canonical_url_is_idempotent_and_drops_tracking(
    scheme: str, host: str, segments: list[str], params: list[tuple[str, str]], fragment: str
) -> None:
    query = "&".join(f"{k}={v}" for k, v in params)
    url = f"{scheme}://{host}/{'/'.join(segments)}?{query}#{fragment}"
    once = canonical_url(url)
    assert once is not None
    assert canonical_url(once) == once
    assert "utm_" not in once.lower() and "fbclid" not in once and "#" not in once
    assert once.startswith(f"{scheme.lower()}://{host.lower()}/")


def test_dedupe_keys_of_a_full_mention() -> None:
    m = mention("https://Example.com/p/1?utm_source=x", "g-1")
    keys = dedupe_keys(m)
    assert keys == ["url:https://example.com/p/1", "guid:s:g-1", f"hash:{content_hash(m)}"]
    assert dedupe_key(m) == "url:https://example.com/p/1"


def test_dedupe_home_page_link_is_not_an_identity() -> None:
    keys = dedupe_keys(mention("https://example.com/?utm_source=x", None))
    assert [k.split(":")[0] for k in keys] == ["hash"]


def test_dedupe_guid_is_scoped_to_its_source() -> None:
    assert dedupe_keys(mention(guid="42", source="a"))[0] != dedupe_keys(mention(guid="42", source="b"))[0]


def test_dedupe_tracking_variants_share_the_url_key() -> None:
    a = mention("https://example.com/p/1?utm_source=rss#top", title="one")
    b = mention("https://EXAMPLE.com/p/1?fbclid=zz", title="two")
    assert dedupe_key(a) == dedupe_key(b)


def test_dedupe_content_hash_ignores_case_and_whitespace() -> None:
    a = mention(title="Acme  is DOWN", text="It is\n down.", author="Ann ")
    b = mention(title="acme is down", text="it is down.", author="ann")
    assert content_hash(a) == content_hash(b)


@pytest.mark.parametrize("change", [{"author": "bob"}, {"text": "It is up."}, {"title": "Acme up"}])
def test_dedupe_content_hash_changes_with_who_said_what(change: dict[str, str]) -> None:
    assert content_hash(mention()) != content_hash(mention(**change))


def test_dedupe_mention_without_url_or_guid_still_has_a_key() -> None:
    assert dedupe_key(mention(None, None)).startswith("hash:")


@pytest.mark.parametrize("url", ["http://[::1/evil", "https://[zzz]/q/1"])
def test_dedupe_keys_of_an_unparsable_link_are_guid_and_hash(url: str) -> None:
    """Issue 10 §5: such a link made dedupe_keys raise and cost the whole poll."""
    assert link_problem(url) is not None
    keys = dedupe_keys(mention(url, "42"))
    assert [k.split(":")[0] for k in keys] == ["guid", "hash"]


@pytest.mark.parametrize("url", [None, "", "https://example.com/a", "https://example.com:99999/x"])
def test_dedupe_link_problem_none_for_a_parsable_link(url: str | None) -> None:
    assert link_problem(url) is None
