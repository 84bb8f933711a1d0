"""``beacons serve``: the JSON API and the team's web page."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from beacons.cli import EXIT_OK, command, load, parser_hook


@parser_hook
def _add_parsers(groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]]) -> None:
    p = groups[""].add_parser(
        "serve",
        help="serve the queue page and the JSON API",
        description="Serve the support and advocacy queues as a web page (/) and a JSON API (/api/beacons, /openapi.json). "
        "Needs serve.tokens, or serve.auth: none-on-loopback for a personal install.",
    )
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="config file (default: $BEACONS_CONFIG, ./config.yaml, then the packaged default)",
    )
    p.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: serve.port, 8080)")
    p.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="behind a reverse proxy: take the client address and scheme from X-Forwarded-For/-Proto "
        "sent by --forwarded-allow-ips (default: serve.proxy_headers, off)",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help='comma-separated proxy addresses or networks trusted with --proxy-headers, or "*" '
        "(default: serve.forwarded_allow_ips, 127.0.0.1,::1)",
    )


@command("serve")
def cmd_serve(args: argparse.Namespace) -> int:
    from beacons.web.server import WebServer

    config = load(args)
    serve = config.serve
    flags = (
        ("host", args.host),
        ("port", args.port),
        ("proxy_headers", args.proxy_headers),
        (
            "forwarded_allow_ips",
            tuple(ip.strip() for ip in args.forwarded_allow_ips.split(",") if ip.strip())
            if args.forwarded_allow_ips is not None
            else None,
        ),
    )
    overrides: dict[str, Any] = {k: v for k, v in flags if v is not None}
    server = WebServer(config, replace(serve, **overrides) if overrides else serve)
    print(
        f"beacons: serving the queue on {server.url}/ (API: {server.url}/api/beacons) with uvicorn; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()
    return EXIT_OK
