"""The ``serve:`` section of config.yaml: where the HTTP server listens and who may use it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from beacons.settings import ByteSize, Duration, Secret

MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = ("localhost",)
MIN_SESSION_AGE, MAX_SESSION_AGE = 300.0, 30 * 86400.0


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (the only hosts allowed without a token)."""
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """``beacons serve`` and the daemon's built-in server.

    The daemon starts the server when the ``serve:`` section is present (and
    ``enabled`` is not false); without the section the defaults below still
    apply to ``beacons serve``.
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    auth: Literal["token", "none-on-loopback"] = "token"
    tokens: tuple[Secret, ...] = field(default=(), repr=False)  # any one of them grants access
    public_url: str | None = None  # how people reach the page, e.g. https://beacons.example.com
    refresh: Duration = 15.0  # how often the page checks for new beacons
    page_size: int = 50  # beacons per queue column
    max_body: ByteSize = 64 * 1024  # largest request body accepted
    session_max_age: Duration = 12 * 3600.0  # a sign-in lasts this long; sign-out ends it at once
    client_timeout: Duration = 30.0  # a client must send its request head, and then its body, within this
    proxy_headers: bool = False  # trust X-Forwarded-For/-Proto from forwarded_allow_ips (behind a reverse proxy)
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")  # proxies whose X-Forwarded-* headers count

    @classmethod
    def absent(cls) -> ServeConfig:
        """The value when config.yaml has no ``serve:`` section: the daemon does not serve."""
        return cls(enabled=False)

    def link(self, beacon_id: int) -> str | None:
        """The page of one beacon, for alert messages: ``{public_url}/beacons/{id}``."""
        return f"{self.public_url.rstrip('/')}/beacons/{beacon_id}" if self.public_url else None

    def validate(self, *, require_tokens: bool = False) -> list[tuple[str, str]]:
        """(key, message) for every problem; tokens are only required once the server is used."""
        problems: list[tuple[str, str]] = []
        if not 0 <= self.port <= 65535:
            problems.append(("port", f"must be 0..65535, got {self.port}"))
        if self.auth == "none-on-loopback" and not is_loopback(self.host):
            problems.append(
                ("auth", f"none-on-loopback needs a loopback host: (127.0.0.1, ::1 or localhost), got {self.host!r}")
            )
        if self.auth == "token":
            if require_tokens and not self.tokens:
                problems.append(
                    (
                        "tokens",
                        'at least one token is required when auth is token, e.g. tokens: ["${BEACONS_TOKEN}"] '
                        "(or auth: none-on-loopback for a personal install on 127.0.0.1)",
                    )
                )
            for i, token in enumerate(self.tokens):
                if len(token.strip()) < MIN_TOKEN_CHARS:
                    problems.append(
                        (
                            f"tokens[{i}]",
                            f"is shorter than {MIN_TOKEN_CHARS} characters; make one with "
                            "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                        )
                    )
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(
                    ("public_url", f"expected an http(s) URL like https://beacons.example.com, got {self.public_url!r}")
                )
        if self.refresh < 1:
            problems.append(("refresh", f"must be at least 1s, got {self.refresh:g}s"))
        if not 1 <= self.page_size <= 500:
            problems.append(("page_size", f"must be 1..500, got {self.page_size}"))
        if not MIN_SESSION_AGE <= self.session_max_age <= MAX_SESSION_AGE:
            problems.append(("session_max_age", f"must be 5m..30d, got {self.session_max_age:g}s"))
        if not 0.1 <= self.client_timeout <= 600:
            problems.append(("client_timeout", f"must be 100ms..10m, got {self.client_timeout:g}s"))
        for i, value in enumerate(self.forwarded_allow_ips):
            if value.strip() == "*":
                continue
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                problems.append(
                    (
                        f"forwarded_allow_ips[{i}]",
                        f'expected an IP address, a network like 10.0.0.0/8 or "*", got {value!r}',
                    )
                )
        return problems
