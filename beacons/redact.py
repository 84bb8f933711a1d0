"""Keep secrets out of every output: ``scrub`` for text, ``redact`` for structured values.

Three rules, applied together, by the one log processor (``beacons.log``) and
wherever error text is stored or shown (``sources.last_error``, the outbox,
``beacons sources``, ``doctor``, alerts):

1. a value under a secret-named key is replaced whole (``authorization=``,
   ``headers=``, ``cookie=``, ``*_token``...);
2. every secret the config registered is replaced wherever it appears in a
   string (``register``; ``beacons.config`` registers ``${ENV}`` values of
   secret keys and secret-named variables, webhook and Slack URLs, HMAC
   secrets, serve tokens, ``token_env`` values, URL passwords);
3. credentials inside URLs: the userinfo (``user:pass@``) and query
   parameters such as ``token=``, ``key=``, ``auth=``, ``sig=``;
4. personal API tokens by their shape (``bcn_`` and 43 URL-safe characters,
   issue 13), which no config registers.

Issue 10 §2: a ``status=bug`` traceback once printed ``os.environ``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4  # shorter values would blank common words; key and URL rules still cover them

SECRET_KEYS = frozenset(
    {
        "token",
        "tokens",
        "secret",
        "secrets",
        "password",
        "passwd",
        "authorization",
        "proxy_authorization",
        "webhook_url",
        "slack_url",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "client_secret",
        "signature",
        "cookie",
        "cookies",
        "set_cookie",
        "headers",
        "dsn",
        "credentials",
        "private_key",
        "session",
    }
)
_SECRET_SUFFIXES = ("_token", "_tokens", "_secret", "_password", "_api_key", "_dsn", "_cookie", "_credentials")
# Names of environment variables whose value is a secret wherever it is substituted (``?auth=${FEED_TOKEN}``).
_SECRET_ENV_WORDS = frozenset(
    [
        "TOKEN",
        "TOKENS",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "KEY",
        "APIKEY",
        "DSN",
        "AUTH",
        "CREDENTIAL",
        "CREDENTIALS",
        "COOKIE",
        "SIG",
        "SIGNATURE",
        "WEBHOOK",
        "HMAC",
    ]
)

# Any scheme's userinfo: https://user:pass@host, https://TOKEN@host, postgresql://u:p@db.
# ``user:***@`` is already masked (beacons.storage shows database URLs so) and is left as it is.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?![^/\s@?#\"'<>]*:\*\*\*@)[^/\s@?#\"'<>]+@")
# Query or form parameters that carry credentials: token=, access_token=, key=, api_key=, auth=, sig=, password=...
_SECRET_PARAM = re.compile(
    r"(?i)\b([a-z0-9_.-]*(?:token|key|secret|passw(?:or)?d|pwd|sig|signature|auth|authorization|credentials?|session))"
    r"=([^&\s\"'<>#;]+)"
)
_PERSONAL_TOKEN = re.compile(r"\bbcn_[A-Za-z0-9_-]{20,}")
# incl. bidi overrides, and lone surrogates (&#xD800; in a feed), which no stream or database can encode
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None


def register(*values: str | None) -> None:
    """Remember secret values so ``scrub`` blanks them anywhere, also percent-encoded."""
    global _secret_re
    added = False
    for value in values:
        if not value or len(value.strip()) < MIN_SECRET_CHARS:
            continue
        for form in {value, value.strip(), quote(value, safe=""), quote_plus(value)}:
            if len(form) >= MIN_SECRET_CHARS and form not in _secrets:
                _secrets.add(form)
                added = True
    if added:
        # Longest first, so a URL is blanked whole before the token inside it.
        _secret_re = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def register_url(url: str | None, *, whole: bool = False) -> None:
    """Register the credentials a URL carries (password, user, secret query values); ``whole`` adds the URL itself.

    A Slack or webhook URL is a secret as a whole: its path is the credential.
    """
    if not url:
        return
    register(*url_secrets(url))
    if whole:
        register(url)
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        if len(parts.path) >= 8:  # e.g. /services/T000/B000/XXXX: too specific to blank anything else
            register(parts.path + (f"?{parts.query}" if parts.query else ""), parts.path)


def url_secrets(url: str) -> list[str]:
    """The credentials inside one URL: the userinfo password (or a token as user name), secret query values."""
    try:
        parts = urlsplit(url)
        # A user name alone is a token when long (https://ghp_...@github.com); a short one is just a name.
        user, password = parts.username or "", parts.password or ""
    except ValueError:
        return []
    found = [password] if password else [user] if len(user) >= 12 else []
    return found + [v for k, v in parse_qsl(parts.query) if v and _SECRET_PARAM.fullmatch(f"{k}=x")]


def is_secret_env_name(name: str) -> bool:
    """True for variable names such as FEED_TOKEN, HOOK_SECRET, DB_PASSWORD, SLACK_WEBHOOK_URL."""
    return any(word in _SECRET_ENV_WORDS for word in name.upper().split("_"))


def forget() -> None:
    """Drop every registered secret (tests, and a config reload that starts over)."""
    global _secret_re
    _secrets.clear()
    _secret_re = None


def registered() -> frozenset[str]:
    return frozenset(_secrets)


def is_secret_key(key: object) -> bool:
    """True for a field or header name whose value is a credential as a whole."""
    if not isinstance(key, str):
        return False
    k = key.lower().replace("-", "_")
    return k in SECRET_KEYS or k.endswith(_SECRET_SUFFIXES)


def scrub(text: str | None, limit: int | None = None) -> str:
    """Text made safe to show or store: secrets and URL credentials blanked, control chars gone, cut to ``limit``."""
    if not text:
        return ""
    if _secret_re is not None:
        text = _secret_re.sub(REDACTED, text)
    if "@" in text:  # the cheap tests first: most log values have no URL and no parameter
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    if "=" in text:
        text = _SECRET_PARAM.sub(rf"\1={REDACTED}", text)
    if "bcn_" in text:
        text = _PERSONAL_TOKEN.sub(REDACTED, text)
    if not text.isprintable():
        text = _CONTROL.sub(" ", text)
    return text if limit is None else cut(text, limit)


def scrub_url(url: str) -> str:
    """A URL fit for an id or a log: the same rules as ``scrub``, never cut."""
    return scrub(url)


def public_url(url: str) -> str:
    """``url`` without its userinfo and secret query parameters: a base for relative links that is safe to store."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return scrub(url)
    kept = [(k, v) for k, v in pairs if not _SECRET_PARAM.fullmatch(f"{k}=x")]
    if host == parts.netloc and len(kept) == len(pairs):
        return url  # nothing to take out: keep the URL byte for byte
    return urlunsplit((parts.scheme, host, parts.path, urlencode(kept), parts.fragment))


def redact(value: Any, key: object = None) -> Any:
    """A copy of ``value`` with the three rules applied through dicts, lists and exceptions."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if is_secret_key(key):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact(v) for v in value]
        return items if isinstance(value, list | set | frozenset) else tuple(items)
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}")
    return scrub(str(value))  # URLs, paths, dataclasses: rendered here so no repr slips past


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending with an ellipsis when cut, on a word boundary if one is near."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit * 0.7:
        head = head[:space]
    return head.rstrip() + "…"
