"""Build frozen dataclasses from plain YAML values, collecting every problem.

The config sections and each collector's ``Options`` are plain dataclasses;
this module turns a mapping into one, checking types and names, and records a
``Problem`` with the key path for anything wrong instead of stopping at the
first one (the way confection gathers ``{loc, msg}`` pairs).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from beacons.errors import Problem

T = TypeVar("T")


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name


DURATION = _Marker("duration")
BYTESIZE = _Marker("bytesize")
SECRET = _Marker("secret")

Duration = Annotated[float, DURATION]
"""Seconds; written in YAML as 90, "30s", "5m", "2h", "1d" or "1h30m"."""
ByteSize = Annotated[int, BYTESIZE]
"""Bytes; written as 1048576, "512KiB", "5MiB", "5MB"."""
Secret = Annotated[str, SECRET]
"""A string that never appears in logs or errors (usually "${ENV_VAR}")."""

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_duration(value: object) -> float:
    """Seconds from 90, "90", "30s", "5m", "1h30m"; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(value)
        return float(value)
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos and text[pos : m.start()].strip():
            raise ValueError(value)
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(value)
    return total


def parse_bytesize(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int) and value >= 0:
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(value)
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])


def env_names(text: str) -> list[str]:
    """The variable names a string refers to with ``${VAR}`` or ``${VAR:-default}``."""
    return [m.group(1) for m in _ENV_RE.finditer(text)]


def interpolate_env(value: Any, loc: str, problems: list[Problem], env: typing.Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string, recursively."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(Problem(loc, f"environment variable {name} is not set"))
            return ""

        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate_env(v, _join(loc, str(k)), problems, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_env(v, f"{loc}[{i}]", problems, env) for i, v in enumerate(value)]
    return value


def _join(loc: str, key: str) -> str:
    return f"{loc}.{key}" if loc else key


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"' if len(value) < 60 else f'"{value[:57]}..."'
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"[:80]


MISSING = object()


def coerce(tp: Any, value: Any, loc: str, problems: list[Problem]) -> Any:
    """Check and convert one value to the annotated type; MISSING on a problem."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        if DURATION in meta:
            try:
                return parse_duration(value)
            except ValueError:
                problems.append(Problem(loc, f"expected a duration like 5m, got {_describe(value)}"))
                return MISSING
        if BYTESIZE in meta:
            try:
                return parse_bytesize(value)
            except ValueError:
                problems.append(Problem(loc, f"expected a size like 5MiB, got {_describe(value)}"))
                return MISSING
        if SECRET in meta:
            if not isinstance(value, str):
                problems.append(Problem(loc, 'expected a string (usually "${ENV_VAR}")'))
                return MISSING
            return value
        return coerce(base, value, loc, problems)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return coerce(args[0], value, loc, problems)
        scratch: list[Problem] = []
        for arg in args:
            scratch.clear()
            result = coerce(arg, value, loc, scratch)
            if not scratch:
                return result
        problems.append(Problem(loc, f"unexpected value {_describe(value)}"))
        return MISSING
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            problems.append(Problem(loc, f"expected one of {', '.join(map(str, choices))}, got {_describe(value)}"))
            return MISSING
        return value
    if origin is tuple:
        item_tp = get_args(tp)[0]
        if isinstance(value, str) or not isinstance(value, list | tuple):
            if isinstance(value, str) and item_tp is str:
                value = [value]  # a lone string where a list is expected is a one-item list
            else:
                problems.append(Problem(loc, f"expected a list, got {_describe(value)}"))
                return MISSING
        items = [coerce(item_tp, v, f"{loc}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(Problem(loc, f"expected a mapping, got {_describe(value)}"))
            return MISSING
        value_tp = get_args(tp)[1] if len(get_args(tp)) == 2 else Any
        if value_tp is Any:
            return dict(value)
        coerced = {k: coerce(value_tp, v, _join(loc, str(k)), problems) for k, v in value.items()}
        return {k: v for k, v in coerced.items() if v is not MISSING}
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, loc, problems)
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(Problem(loc, f"expected true or false, got {_describe(value)}"))
            return MISSING
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(Problem(loc, f"expected a whole number, got {_describe(value)}"))
            return MISSING
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(Problem(loc, f"expected a number, got {_describe(value)}"))
            return MISSING
        return float(value)
    if tp is str:
        if isinstance(value, bool) or value is None or isinstance(value, list | dict):
            problems.append(Problem(loc, f"expected a string, got {_describe(value)}"))
            return MISSING
        return str(value)
    return value


def build(cls: type[T], data: Any, loc: str, problems: list[Problem], *, extra: dict[str, Any] | None = None) -> T:
    """Instantiate dataclass ``cls`` from mapping ``data``; unknown keys are problems."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(loc, f"expected a mapping, got {_describe(data)}"))
        data = {}
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = dict(extra or {})
    known = sorted(n for n in fields if n not in kwargs)
    for key, value in data.items():
        key_loc = _join(loc, str(key))
        if key not in fields or key in (extra or {}):
            hint = close_match(str(key), known)
            problems.append(Problem(key_loc, f"unknown key{hint}; known keys: {', '.join(known)}"))
            continue
        result = coerce(hints[key], value, key_loc, problems)
        if result is not MISSING:
            kwargs[key] = result
    ok = True
    for name, f in fields.items():
        if name in kwargs:
            continue
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if name not in data:
                problems.append(Problem(_join(loc, name), "is required"))
            ok = False
    if not ok:
        return typing.cast(T, None)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        problems.append(Problem(loc, str(exc)))
        return typing.cast(T, None)


def close_match(key: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def environ() -> typing.Mapping[str, str]:
    return os.environ
