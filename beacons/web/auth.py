"""Who may use the server, and proof that a state change came from our own page.

Authentication, in order:

- ``Authorization: Bearer <token>``: any of ``serve.tokens`` (programs, curl, Prometheus).
- The ``beacons_session`` cookie set by ``/login``: ``<name>.<HMAC(token, name)>``, so
  it proves the holder knew a token when they signed in, survives restarts, and
  dies when that token is removed from the config. HttpOnly, SameSite=Strict.
- ``auth: none-on-loopback``: a request from 127.0.0.1/::1 that did not come
  through a proxy (no Forwarded/X-Forwarded-For) and names a loopback Host
  (which stops DNS-rebinding pages from reaching the server).

Anything else is 401. State-changing requests made with a cookie or by loopback
(the ones a hostile page in the same browser could forge) must carry the CSRF
token from the page (``X-CSRF-Token`` header or ``csrf`` form field) or be a
JSON body (which needs a CORS preflight cross-site, never granted here), and
must not come from another site (``Origin``, ``Sec-Fetch-Site``). Bearer
requests need neither: a browser never adds that header on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from beacons.web.config import ServeConfig, is_loopback

SESSION_COOKIE = "beacons_session"
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


@dataclass(frozen=True, slots=True)
class Identity:
    via: Literal["bearer", "session", "loopback"]
    name: str | None = None  # the signed-in person (session); bearer and loopback callers name themselves with "by"
    session: str | None = None  # the cookie value, which the CSRF token is bound to


def _sign(key: bytes, name: str) -> str:
    return hmac.new(key, b"beacons-session-v1|" + name.encode(), hashlib.sha256).hexdigest()


class Auth:
    """Checks credentials for one server; ``secret`` signs CSRF tokens (and loopback sessions) for this process."""

    def __init__(self, serve: ServeConfig, secret: bytes | None = None) -> None:
        self.serve = serve
        self.secret = secret or os.urandom(32)
        self.keys = [t.encode() for t in serve.tokens] if serve.auth == "token" else []

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

    def make_session(self, name: str, token: str | None) -> str | None:
        """A cookie value for ``name``, or None when the token is wrong."""
        if self.needs_token:
            key = self.check_token(token or "")
            if key is None:
                return None
        else:
            key = self.secret
        encoded = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
        return f"{encoded}.{_sign(key, name)}"

    def _session(self, value: str) -> str | None:
        """The name a cookie was issued to, if its signature checks out with a current key."""
        encoded, _, signature = value.partition(".")
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        ok = False
        for key in self.keys or [self.secret]:
            if hmac.compare_digest(_sign(key, name), signature):
                ok = True
        return name if ok and name else None

    def host_allowed(self, host_header: str | None) -> bool:
        """Without tokens, only a loopback Host name is accepted (or public_url's): DNS rebinding protection."""
        if self.needs_token:
            return True
        host = urlsplit(f"//{host_header or ''}").hostname or ""
        public = urlsplit(self.serve.public_url).hostname if self.serve.public_url else None
        return is_loopback(host) or (public is not None and host == public.lower())

    def authenticate(self, headers: Mapping[str, str], client_ip: str, cookies: Mapping[str, str]) -> Identity | None:
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer " and self.needs_token and self.check_token(authorization[7:].strip()):
            return Identity("bearer")
        cookie = cookies.get(SESSION_COOKIE)
        name = self._session(cookie) if cookie else None
        if name is not None:
            return Identity("session", name, cookie)
        if not self.needs_token and is_loopback(client_ip) and not any(h in headers for h in PROXY_HEADERS):
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
            return origin != "null" and urlsplit(origin).netloc.lower() == (headers.get("host") or "").lower()
        return True

    def csrf_ok(self, identity: Identity, headers: Mapping[str, str], form_token: str | None) -> bool:
        """Bearer: always. Cookie or loopback: same site, and the page's token or a JSON body.

        A browser cannot send ``Content-Type: application/json`` to another origin
        without a CORS preflight, and this server never answers one, so a JSON body
        is itself proof that no other site's page sent it.
        """
        if identity.via == "bearer":
            return True
        if not self.same_site(headers):
            return False
        given = headers.get("x-csrf-token") or form_token or ""
        if given:
            return hmac.compare_digest(given, self.csrf_token(identity))
        return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"

    def cookie_header(self, value: str, *, clear: bool = False) -> str:
        secure = "; Secure" if (self.serve.public_url or "").startswith("https://") else ""
        age = "; Max-Age=0" if clear else "; Max-Age=2592000"
        return f"{SESSION_COOKIE}={'' if clear else value}; Path=/; HttpOnly; SameSite=Strict{age}{secure}"
