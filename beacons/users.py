"""People, not shared tokens (issue 13 section 1): roles, names, passwords, personal tokens, the sign-in limit.

- Roles: an ``agent`` works the queue; a ``lead`` also acts for others (claims for
  someone through ``assignee``); an ``admin`` also manages users.
- Passwords are hashed with scrypt from the standard library (``hashlib.scrypt``,
  memory-hard: n=2**15, r=8, p=1, 32 MiB per hash) with a random 16-byte salt.
- Personal API tokens and session secrets are 32 random bytes; only their
  SHA-256 is stored, so a copy of the database grants nothing.
- Sign-in is limited per user and per address over a sliding window, counted
  in the database (every server of a fleet sees the same failures) and decided
  by the injected clock.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from beacons.errors import InvalidInput
from beacons.storage import Storage

ROLES = ("agent", "lead", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
TOKEN_PREFIX = "bcn_"
MAX_PASSWORD_CHARS = 1024
MIN_PASSWORD_CHARS = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_MAXMEM = 64 * 1024 * 1024

# Sign-in limits: this many failures within WINDOW stop further tries for that user / from that address.
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20


def clean_user_name(value: object, field: str = "name") -> str:
    """A user name: 1-64 letters, digits, ``.``, ``_``, ``@`` or ``-``, starting with a letter or digit."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            field, "expected 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return value


def clean_role(value: object) -> str:
    if value not in ROLES:
        raise InvalidInput("role", f"expected one of {', '.join(ROLES)}, got {value!r}")
    return str(value)


def at_least(role: str | None, needed: str) -> bool:
    return role is not None and RANK.get(role, -1) >= RANK[needed]


# -- passwords --------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def check_password_text(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput("password", f"must be at most {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64 without padding)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, maxmem=_MAXMEM, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


@functools.cache
def _dummy() -> str:
    """A hash to check against when the user does not exist, so the answer takes as long either way."""
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches ``stored``; with no stored hash, the same work is done and False returned."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        scheme, n, r, p, salt, digest = (stored or _dummy()).split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM, dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return stored is not None and hmac.compare_digest(got, expected)


# -- tokens and session secrets ---------------------------------------------------------------------


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(store: Storage, name: str, *, now: datetime) -> str:
    """A new personal API token for ``name``; only its SHA-256 is stored."""
    token_id = secrets.token_hex(4)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_token(name, token_id, secret_hash(token), now=now)
    return token


# -- the sign-in limit ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    message: str
    retry_after: int  # seconds


def _wait(failures: list[str], limit: int, now: datetime) -> int | None:
    """Seconds until fewer than ``limit`` of ``failures`` are inside the window; None when under the limit now."""
    if len(failures) < limit:
        return None
    oldest_that_counts = datetime.fromisoformat(failures[len(failures) - limit])
    return max(1, math.ceil((oldest_that_counts + WINDOW - now).total_seconds()))


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def login_refusal(store: Storage, name: str, address: str, *, now: datetime) -> Refusal | None:
    """Why a sign-in as ``name`` from ``address`` is not tried now, or None when it may be."""
    by_user, by_address = store.login_failures(name, address, since=now - WINDOW)
    user_wait = _wait(by_user, MAX_FAILURES_PER_USER, now)
    if user_wait is not None:
        return Refusal(
            f"Too many failed sign-ins for {name}: try again in {_minutes(user_wait)}"
            " (or ask an admin to set a new password with `beacons users password`).",
            user_wait,
        )
    address_wait = _wait(by_address, MAX_FAILURES_PER_ADDRESS, now)
    if address_wait is not None:
        return Refusal(
            f"Too many failed sign-ins from your address: try again in {_minutes(address_wait)}.", address_wait
        )
    return None


def record_failure(store: Storage, name: str, address: str, *, now: datetime) -> None:
    store.record_login_failure(name, address, now=now, forget_before=now - WINDOW)
