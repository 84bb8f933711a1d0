"""``beacons serve``: the JSON API and the team's web page."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
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


@command("serve")
def cmd_serve(args: argparse.Namespace) -> int:
    from beacons.web.server import WebServer

    config = load(args)
    serve = config.serve
    overrides: dict[str, Any] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    server = WebServer(config, replace(serve, **overrides) if overrides else serve)
    print(
        f"beacons: serving the queue on {server.url}/ (API: {server.url}/api/beacons); Ctrl-C to stop", file=sys.stderr
    )

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return EXIT_OK
