"""What handlers take and give: the request read in full, a response, an HTTP error; the headers every answer has.

Handlers in ``api.py`` and ``page.py`` are plain synchronous functions over
these values, so they run in a worker thread and know nothing of ASGI.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response as StarletteResponse

from beacons.web.auth import Identity

SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on our own form posts,
    # which the CSRF check must refuse. Links to posts carry rel="noreferrer" anyway.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
SECURITY_RAW = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS]
# A local path only: one "/" then a path, query or fragment character, then printable ASCII without
# backslashes (browsers read "\" as "/", and skip tabs and newlines: "/\t/evil.com" is "//evil.com").
_LOCAL_PATH = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@%?#][\x21-\x5b\x5d-\x7e]*)?")


@dataclass
class Request:
    """What a handler sees: the request read in full, headers lower-cased, the query without blank values."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client: str
    params: dict[str, str] = field(default_factory=dict)
    identity: Identity | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    scheme: str = "http"  # https when uvicorn trusted a proxy's X-Forwarded-Proto (serve.proxy_headers)

    @property
    def is_form(self) -> bool:
        return self.headers.get("content-type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded"

    def data(self) -> dict[str, Any]:
        """The body as a mapping: a JSON object, or a urlencoded form (from the page without JavaScript)."""
        if not self.body.strip():
            return {}
        if self.is_form:
            return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPError(415, "unsupported_media_type", "send a JSON object with Content-Type: application/json")
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, "bad_json", f"the body is not valid JSON: {exc}") from exc
        except RecursionError as exc:  # "[[[[..." deeper than the interpreter's stack
            raise HTTPError(400, "bad_json", "the body is not valid JSON: nested too deeply") from exc
        if not isinstance(value, dict):
            raise HTTPError(400, "bad_json", "the body must be a JSON object")
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:  # "\ud800": valid JSON, but no text SQLite (or anyone) can store
            raise HTTPError(
                400, "bad_json", "the body holds a lone surrogate (\\ud800-\\udfff), which is not text"
            ) from exc
        return value

    def form_values(self, name: str) -> list[str]:
        """Every value of a repeated urlencoded form field (checkboxes), in order; [] for a JSON body."""
        if not self.is_form or not self.body.strip():
            return []
        return [v for k, v in parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True) if k == name]

    @property
    def wants_html(self) -> bool:
        accept = self.headers.get("accept", "")
        return "text/html" in accept and "application/json" not in accept


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> Response:
        return cls(status, b"", "text/plain", [("Location", location)])

    def to_starlette(self) -> StarletteResponse:
        response = StarletteResponse(self.body, self.status, media_type=self.content_type)
        response.raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        return response


class HTTPError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def error(status: int, code: str, message: str) -> Response:
    return Response.json({"error": {"code": code, "message": message}}, status)


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a local path: never an open redirect to another site (``//evil``, ``/\\evil``, ``/\\t/evil``)."""
    if isinstance(value, str) and _LOCAL_PATH.fullmatch(value):
        return value
    return default
