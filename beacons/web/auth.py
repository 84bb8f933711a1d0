"""Who may use the server, and proof that a state change came from our own page.

Authentication, in order:

- ``Authorization: Bearer <token>``: any of ``serve.tokens`` (service tokens:
  programs, curl, Prometheus; they name who acts with ``by``), or a person's
  personal API token (``beacons users token NAME``, issue 13), looked up by its
  SHA-256 with its user, so a revoked token or a disabled user stops at once.
- The ``beacons_session`` cookie of a person signed in with name and password:
  ``u:`` and a random secret whose SHA-256 names a row of ``user_sessions``
  (user, expiry, revocation), checked on every request.
- The ``beacons_session`` cookie set by ``/login`` with a service token: the name typed and a
  random session id, signed and timestamped by itsdangerous with the token they
  signed in with, so it proves the holder knew a token, survives restarts, dies
  when that token is removed from the config, expires after
  ``serve.session_max_age`` and is refused once its id is revoked at sign-out
  (the ``revoked_sessions`` table). HttpOnly, SameSite=Strict.
- ``auth: none-on-loopback``: a request from 127.0.0.1/::1 that did not come
  through a proxy (no Forwarded/X-Forwarded-For/X-Real-IP) and names a loopback
  Host (which stops DNS-rebinding pages, and a reverse proxy that forwards
  ``public_url``'s Host, from reaching the server). The same rule guards every
  path: sign-in and the session cookie too (issue 10).

Anything else is 401. State-changing requests made with a cookie or by loopback
(the ones a hostile page in the same browser could forge) must carry the CSRF
token from the page (``X-CSRF-Token`` header or ``csrf`` form field) or be a
JSON body (which needs a CORS preflight cross-site, never granted here), and
must not come from another site (``Origin``, ``Sec-Fetch-Site``). Bearer
requests need neither: a browser never adds that header on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from beacons.storage.users import Principal
from beacons.users import TOKEN_PREFIX, secret_hash
from beacons.web.config import ServeConfig, is_loopback

SESSION_COOKIE = "beacons_session"
USER_SESSION_PREFIX = "u:"  # never produced by itsdangerous (URL-safe base64 and dots)
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
_SESSION_SALT = "beacons-session-v2"


# ("token", sha256) -> the owner of a personal API token; ("session", sha256) -> the owner of a sign-in session.
People = Callable[[str, str, datetime], Principal | None]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking. ``role`` is set for a person (personal token or password sign-in): agent, lead or admin.

    Without a role (service tokens, a sign-in with a service token, loopback) the caller names the actor
    itself, with ``by`` or at sign-in, as before users existed.
    """

    via: Literal["bearer", "token", "session", "loopback"]  # bearer: a service token; token: a personal one
    name: str | None = None  # the person: a user, or the name typed at a service-token sign-in
    session: str | None = None  # the session id, which the CSRF token is bound to and sign-out revokes
    role: str | None = None

    @property
    def is_user(self) -> bool:
        return self.role is not None


def _hostname(value: str | None) -> str:
    """The host name of a Host or Origin value, lower-cased; "" when it cannot be parsed (``[zzz``)."""
    try:
        return (urlsplit(value if value and "//" in value else f"//{value or ''}").hostname or "").lower()
    except ValueError:
        return ""


def _serializer(key: bytes, clock: Callable[[], float]) -> URLSafeTimedSerializer:
    class _Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return URLSafeTimedSerializer(key, salt=_SESSION_SALT, signer=_Signer)


class Auth:
    """Checks credentials for one server; ``secret`` signs CSRF tokens (and loopback sessions) for this process."""

    def __init__(
        self, serve: ServeConfig, secret: bytes | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.serve = serve
        self.secret = secret or os.urandom(32)
        self.clock = clock
        self.keys = [t.encode() for t in serve.tokens] if serve.auth == "token" else []
        self._serializers = [(key, _serializer(key, clock)) for key in self.keys or [self.secret]]
        self._public_host = _hostname(serve.public_url) if serve.public_url else None

    @property
    def needs_token(self) -> bool:
        return self.serve.auth == "token"

    def check_token(self, token: str) -> bytes | None:
        """The configured token equal to ``token`` (compared in constant time), or None."""
        given = token.encode()
        found = None
        for key in self.keys:
            if hmac.compare_digest(key, given):
                found = key
        return found

    def is_loopback_request(self, headers: Mapping[str, str], client_ip: str) -> bool:
        """From this machine, not through a proxy, to a loopback host name: the none-on-loopback rule."""
        return (
            is_loopback(client_ip)
            and not any(h in headers for h in PROXY_HEADERS)
            and is_loopback(_hostname(headers.get("host")))
        )

    def make_session(self, name: str, token: str | None, *, loopback: bool = False) -> str | None:
        """A cookie value for ``name``; None when the token is wrong (or, without tokens, the caller not loopback)."""
        if self.needs_token:
            key = self.check_token(token or "")
            if key is None:
                return None
        elif loopback:
            key = self.secret
        else:
            return None
        serializer = next(s for k, s in self._serializers if k == key)
        return str(serializer.dumps({"n": name, "s": secrets.token_urlsafe(18)}))

    def read_session(self, value: str) -> tuple[str, str] | None:
        """(name, session id) of a cookie signed with a current key and younger than serve.session_max_age."""
        for _key, serializer in self._serializers:
            try:
                data: Any = serializer.loads(value, max_age=int(self.serve.session_max_age))
            except BadData:
                continue
            if (
                isinstance(data, dict)
                and isinstance(data.get("s"), str)
                and isinstance(data.get("n"), str)
                and data["n"]
            ):
                return data["n"], data["s"]
        return None

    def host_allowed(self, host_header: str | None) -> bool:
        """Without tokens, only a loopback Host name is accepted (or public_url's): DNS rebinding protection."""
        if self.needs_token:
            return True
        host = _hostname(host_header)
        return is_loopback(host) or (self._public_host is not None and host == self._public_host)

    def authenticate(
        self,
        headers: Mapping[str, str],
        client_ip: str,
        cookies: Mapping[str, str],
        revoked: Callable[[str], bool] = lambda _id: False,
        people: People | None = None,
    ) -> Identity | None:
        authorization = headers.get("authorization", "")
        given = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        if given and self.needs_token and self.check_token(given):
            return Identity("bearer")
        loopback = not self.needs_token and self.is_loopback_request(headers, client_ip)
        now = datetime.fromtimestamp(self.clock(), UTC)
        # The loopback rule guards a person's credentials too: without tokens, only this machine gets in.
        if given.startswith(TOKEN_PREFIX) and people is not None and (self.needs_token or loopback):
            owner = people("token", secret_hash(given), now)
            if owner is not None:
                return Identity("token", owner.name, role=owner.role)
        cookie = cookies.get(SESSION_COOKIE)
        if cookie and cookie.startswith(USER_SESSION_PREFIX):
            if people is not None and (self.needs_token or loopback):
                owner = people("session", secret_hash(cookie[len(USER_SESSION_PREFIX) :]), now)
                if owner is not None:
                    return Identity("session", owner.name, owner.session, owner.role)
        elif cookie and (self.needs_token or loopback):
            session = self.read_session(cookie)
            if session is not None and not revoked(session[1]):
                return Identity("session", *session)
        if loopback:
            return Identity("loopback")
        return None

    def csrf_token(self, identity: Identity) -> str:
        return hmac.new(self.secret, b"csrf|" + (identity.session or "loopback").encode(), hashlib.sha256).hexdigest()[
            :40
        ]

    def same_site(self, headers: Mapping[str, str]) -> bool:
        """False when the browser says the request came from another site."""
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = headers.get("origin")
        if origin is not None:
            try:
                netloc = urlsplit(origin).netloc.lower()
            except ValueError:
                return False
            return origin != "null" and netloc == (headers.get("host") or "").lower()
        return True

    def csrf_ok(self, identity: Identity, headers: Mapping[str, str], form_token: str | None) -> bool:
        """Bearer (service or personal token): always. Cookie or loopback: same site, and the page's token or a JSON body.

        A browser cannot send ``Content-Type: application/json`` to another origin
        without a CORS preflight, and this server never answers one, so a JSON body
        is itself proof that no other site's page sent it.
        """
        if identity.via in ("bearer", "token"):
            return True
        if not self.same_site(headers):
            return False
        given = headers.get("x-csrf-token") or form_token or ""
        if given:
            return hmac.compare_digest(given.encode(), self.csrf_token(identity).encode())
        return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"

    def cookie_header(self, value: str, *, clear: bool = False, https: bool = False) -> str:
        """``https``: the request came over TLS (directly, or through a proxy trusted with serve.proxy_headers)."""
        secure = "; Secure" if https or (self.serve.public_url or "").startswith("https://") else ""
        age = "; Max-Age=0" if clear else f"; Max-Age={int(self.serve.session_max_age)}"
        return f"{SESSION_COOKIE}={'' if clear else value}; Path=/; HttpOnly; SameSite=Strict{age}{secure}"
