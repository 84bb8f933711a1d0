"""Identity of a mention: canonical URL, guid and content hash.

A post can come back on every poll, through two sources (a news search and a
feed), with tracking parameters, or with a new URL but the same guid. Each
mention gets up to three keys; the store refuses a mention whose any key it
has seen, so re-polls and restarts add nothing.
"""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from beacons.models import Mention

_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_", "_hs")
_TRACKING = {
    "fbclid",
    "gclid",
    "dclid",
    "gclsrc",
    "msclkid",
    "yclid",
    "igshid",
    "mkt_tok",
    "ref_src",
    "ref_url",
    "spm",
    "_ga",
    "_gl",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "wickedid",
    "cmpid",
    "s_cid",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WS = re.compile(r"\s+")


@functools.lru_cache(maxsize=8192)  # pure, and each link is seen on every poll of its feed
def canonical_url(url: str | None) -> str | None:
    """Lower-case scheme and host, default port, tracking params and fragment removed.

    Returns None for an empty or non-http(s) URL, and the input unchanged when
    it cannot be parsed, so a strange link never drops a mention.
    """
    if not url or not url.strip():
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return None
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return None
        port = parts.port
    except ValueError:
        return url
    netloc = host if ":" not in host else f"[{host}]"
    if port and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING and not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def link_problem(url: str | None) -> str | None:
    """Why ``url`` cannot be a mention's link, or None: urlsplit refuses it (``http://[::1/evil``).

    Such a link would fail every later step that reads it (dedupe, routing by
    domain, the page), so its entry is skipped instead (issue 10, section 5).
    """
    if not url:
        return None
    try:
        urlsplit(url.strip())
    except ValueError as exc:
        return f"link {url[:100]!r} is not a URL ({exc})"
    return None


def content_hash(mention: Mention) -> str:
    """Hash of who said what: the author and the folded title and text."""
    basis = "\x1f".join(
        [
            (mention.author or "").strip().lower(),
            _WS.sub(" ", mention.title).strip().lower(),
            _WS.sub(" ", mention.text).strip().lower(),
        ]
    )
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def dedupe_keys(mention: Mention) -> list[str]:
    """Every key that identifies this mention; any one seen before makes it a duplicate."""
    keys = []
    url = canonical_url(mention.url)
    # A bare home page is not an identity: some feeds link every entry to it.
    if url and link_problem(url) is None and urlsplit(url).path not in ("", "/"):
        keys.append(f"url:{url}")
    if mention.guid:
        keys.append(f"guid:{mention.source_id}:{mention.guid.strip()}")
    keys.append(f"hash:{content_hash(mention)}")
    return keys


def dedupe_key(mention: Mention) -> str:
    """The primary key of a mention: its canonical URL, else guid, else content hash."""
    return dedupe_keys(mention)[0]
