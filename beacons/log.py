"""structlog setup: key=value events, readable on a TTY, JSON lines otherwise, secrets blanked.

Every event, ours and the standard library's (httpx, asyncio, uvicorn), passes
the same chain: tracebacks are rendered without local variables (issue 10 §2:
``show_locals`` once printed ``os.environ``), then ``redact_secrets`` runs last
before the renderer, over every value, the rendered traceback included.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from beacons.redact import REDACTED, SECRET_KEYS, redact

__all__ = ["REDACTED", "SECRET_KEYS", "configure", "get_logger", "redact_secrets"]

_QUIET_LIBRARIES = ("httpx", "httpcore")  # one line per request: our source.polled says it better


def redact_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Blank secret-named keys, registered secret values and URL credentials anywhere in the event."""
    for key in list(event):
        event[key] = redact(event[key], key)
    return event


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (pytest and redirections swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _processors(as_json: bool, tty: bool) -> tuple[list[Any], Any]:
    """The shared chain ending in redaction, and the renderer."""
    if as_json:
        tracebacks: Any = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        renderer: Any = structlog.processors.JSONRenderer()
    else:
        # Plain text tracebacks rendered before redaction, so ConsoleRenderer never
        # formats exc_info itself (its rich formatter shows locals by default).
        tracebacks = structlog.processors.format_exc_info
        renderer = structlog.dev.ConsoleRenderer(colors=tty, exception_formatter=structlog.dev.plain_traceback)
    return [structlog.processors.StackInfoRenderer(), tracebacks, redact_secrets], renderer


def configure(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    tty = (stream or sys.stderr).isatty()
    tail, renderer = _processors(fmt == "json" or (fmt == "auto" and not tty), tty)
    head: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*head, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(numeric, [*head, *tail], renderer, stream)
    sys.excepthook = _log_crash
    threading.excepthook = _log_thread_crash


def _log_crash(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    """An uncaught exception is logged through the same chain: no locals, no secret in its message."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    structlog.get_logger("beacons").critical("beacons.crashed", exc_info=(kind, exc, tb))


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    thread = args.thread.name if args.thread is not None else None
    structlog.get_logger("beacons").error(
        "thread.crashed", thread=thread, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def _route_stdlib(level: int, chain: list[Any], renderer: Any, stream: Any) -> None:
    """Send the standard library's log records (httpx, asyncio, uvicorn) through the same chain."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder(), *chain[:-1]],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact_secrets, renderer],
    )
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(formatter)
    handler.set_name("beacons")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "beacons"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
