"""The ``alerts:`` section of config.yaml: a list of channels, each a frozen dataclass.

A channel is one receiver (a Slack incoming webhook or a signed JSON webhook)
with its filters, its delivery limits and, for ``ops`` channels, the
source-health and incident rules. Defaults live in the fields below; the
README "Alerts" section documents every key. ``url`` and ``secret`` are
``Secret``: they come from the environment and are kept out of reprs, logs,
errors and the outbox.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from beacons.errors import Problem
from beacons.settings import Duration, Secret

KINDS = ("slack", "webhook")
EVENTS = ("sla_breach",)  # what ``on:`` may list, besides the per-beacon alerts
ALERT_QUEUES = ("support", "advocacy")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class HealthRule:
    """When an ``ops`` channel hears that a source is broken, reminded, and recovered."""

    after_errors: int = 3  # failed polls in a row before a source counts as broken
    remind_every: Duration = 6 * 3600.0  # repeat the alert this often while it stays broken
    check_every: Duration = 60.0  # how often the sender looks at the sources table


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """An incident: support beacons for one brand/product well above their recent baseline.

    Spike when, for the last ``window``, count >= min_count and
    count > mean + k * stddev of the per-window counts over the ``baseline``
    before it.
    """

    enabled: bool = True
    window: Duration = 3600.0
    baseline: Duration = 7 * 86400.0
    k: float = 3.0
    min_count: int = 5
    group: bool = True  # while an incident is open, fold its beacons into it instead of one message each


@dataclass(frozen=True, slots=True)
class AlertChannel:
    kind: Literal["slack", "webhook"]
    url: Secret = field(repr=False)  # "${SLACK_WEBHOOK_URL}": never logged, never stored
    name: str = ""  # default "<kind>-<index>"; used in logs, event ids and the CLI
    secret: Secret | None = field(default=None, repr=False)  # webhook: HMAC-SHA256 signing key
    beacons: bool = True  # receive one alert per routed beacon (subject to the filters below)
    queues: tuple[str, ...] = ALERT_QUEUES
    brands: tuple[str, ...] = ()  # brand or product names; empty: all
    teams: tuple[str, ...] = ()  # empty: all
    min_priority: int = 0
    digest: Duration | None = None  # e.g. 30m: one summary per period instead of one message per beacon
    ops: bool = False  # receive source-health and incident alerts
    on: tuple[str, ...] = ()  # more events: sla_breach (an open beacon waited past routing.sla; issue 13)
    rate_limit: float = 1.0  # at most this many requests per second (Slack allows about 1)
    max_attempts: int = 8  # then the alert is dead (see `beacons alerts list --status dead`)
    timeout: Duration = 10.0  # whole request
    retry_base: Duration = 10.0  # first retry after about this long, doubling each time
    retry_max: Duration = 3600.0  # ceiling of the retry delay
    health: HealthRule = field(default_factory=HealthRule)
    spikes: SpikeRule = field(default_factory=SpikeRule)

    @property
    def lease(self) -> float:
        """Seconds a claimed row stays reserved for one sender before another may take it."""
        return self.timeout + 2.0


def named(channels: Sequence[AlertChannel]) -> tuple[AlertChannel, ...]:
    """The channels with their default names filled in (``slack-0``, ``webhook-1``...)."""
    return tuple(c if c.name else dataclasses.replace(c, name=f"{c.kind}-{i}") for i, c in enumerate(channels))


def channel_names(channels: Sequence[AlertChannel]) -> list[str]:
    return [c.name for c in named(channels)]


def check_channels(channels: Sequence[object], problems: list[Problem]) -> None:
    """Cross-field checks ``build`` cannot do; never echo a url or secret."""
    seen: dict[str, int] = {}
    typed = [c for c in channels if isinstance(c, AlertChannel)]
    for i, c in enumerate(named(typed)):
        loc = f"alerts[{i}]"
        if not _NAME_RE.match(c.name):
            problems.append(
                Problem(
                    f"{loc}.name", "use letters, digits, '-', '_' or '.' (at most 64), starting with a letter or digit"
                )
            )
        if c.name in seen:
            problems.append(Problem(f"{loc}.name", f"duplicate channel name {c.name!r} (also alerts[{seen[c.name]}])"))
        seen[c.name] = i
        if not c.url.startswith(("https://", "http://")):
            problems.append(Problem(f"{loc}.url", 'must be an http(s) URL (usually "${ENV_VAR}"); value not shown'))
        if c.kind == "webhook" and len(c.secret or "") < 16:
            problems.append(
                Problem(
                    f"{loc}.secret", 'a webhook needs a signing secret of at least 16 characters (usually "${ENV_VAR}")'
                )
            )
        for j, queue in enumerate(c.queues):
            if queue not in ALERT_QUEUES:
                problems.append(
                    Problem(f"{loc}.queues[{j}]", f"expected one of {', '.join(ALERT_QUEUES)}, got {queue!r}")
                )
        if not 0 <= c.min_priority <= 100:
            problems.append(Problem(f"{loc}.min_priority", f"must be 0..100, got {c.min_priority}"))
        for key, value, low in (
            ("rate_limit", c.rate_limit, 0.0),
            ("timeout", c.timeout, 0.0),
            ("retry_base", c.retry_base, 0.0),
        ):
            if value <= low:
                problems.append(Problem(f"{loc}.{key}", f"must be more than 0, got {value:g}"))
        if c.max_attempts < 1:
            problems.append(Problem(f"{loc}.max_attempts", f"must be at least 1, got {c.max_attempts}"))
        if c.digest is not None and c.digest < 1:
            problems.append(Problem(f"{loc}.digest", f"must be at least 1s, got {c.digest:g}s"))
        for j, name in enumerate(c.on):
            if name not in EVENTS:
                problems.append(Problem(f"{loc}.on[{j}]", f"expected one of {', '.join(EVENTS)}, got {name[:40]!r}"))
        if not c.beacons and not c.ops and not c.on:
            problems.append(Problem(loc, "receives nothing: set beacons: true, ops: true or on: [sla_breach]"))
        if c.health.after_errors < 1:
            problems.append(Problem(f"{loc}.health.after_errors", f"must be at least 1, got {c.health.after_errors}"))
        s = c.spikes
        if s.window <= 0 or s.baseline < s.window:
            problems.append(Problem(f"{loc}.spikes", "window must be more than 0 and baseline at least one window"))
        if s.min_count < 1 or s.k < 0:
            problems.append(Problem(f"{loc}.spikes", "min_count must be at least 1 and k at least 0"))
