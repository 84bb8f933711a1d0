"""Load and validate ``config.yaml`` into frozen dataclasses.

Defaults live in the dataclass fields below, in one place. ``load_config``
collects every problem (unknown keys, wrong types, unset ``${ENV_VARS}``) and
raises one ``ConfigError`` naming each key path, so a user fixes them all in
one go. Where the file is found: ``--config``, then ``$BEACONS_CONFIG``, then
``./config.yaml``, then the default shipped inside the package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from beacons import USER_AGENT
from beacons.alerts.config import AlertChannel, channel_names, check_channels
from beacons.errors import ConfigError, Problem
from beacons.models import Brand, Product, Source
from beacons.redact import is_secret_env_name, is_secret_key, register, register_url, scrub_url
from beacons.report_schedule import ReportConfig, check_report
from beacons.settings import (
    MISSING,
    ByteSize,
    Duration,
    Secret,
    build,
    close_match,
    coerce,
    env_names,
    interpolate_env,
)
from beacons.web.config import ServeConfig


@dataclass(frozen=True, slots=True)
class ProductConfig:
    name: str
    aliases: tuple[str, ...] = ()
    team: str | None = None


@dataclass(frozen=True, slots=True)
class BrandConfig:
    name: str
    aliases: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    products: tuple[ProductConfig, ...] = ()
    exclude: tuple[str, ...] = ()
    team: str | None = None


@dataclass(frozen=True, slots=True)
class FetchConfig:
    timeout: Duration = 30.0  # whole request, headers to last byte
    connect_timeout: Duration = 10.0
    max_bytes: ByteSize = 5 * 1024 * 1024  # cap on the decoded body
    max_redirects: int = 5
    # A redirect may not lead to a more private address than the source's (beacons/addresses.py);
    # true lifts that, never for link-local (cloud metadata). Issue 10, section 4.
    allow_private_redirects: bool = False
    user_agent: str = USER_AGENT
    concurrency: int = 64  # requests in flight overall
    per_host_concurrency: int = 2  # requests in flight to one host
    per_host_delay: Duration = 1.0  # minimum spacing between requests to one host
    max_backoff: Duration = 3600.0  # ceiling of a failing source's backoff
    # Worker processes that parse large feed bodies (beacons/parsepool.py); 0: parse in the daemon's
    # own process (the default: no gain was measured on 2 cores, README "A parse pool"). Capped at the
    # CPUs less one, so a one-core machine never starts one.
    parse_processes: int = 0


@dataclass(frozen=True, slots=True)
class RoutingRuleConfig:
    """An override: when every condition given holds, set the queue, a priority floor and/or a team."""

    name: str
    keywords: tuple[str, ...] = ()  # any of these words or phrases (case-insensitive, whole words)
    sources: tuple[str, ...] = ()  # any of these source ids
    brands: tuple[str, ...] = ()  # any of these brands
    products: tuple[str, ...] = ()  # any of these products
    queues: tuple[Literal["support", "advocacy", "none"], ...] = ()  # only when the classifier chose one of these
    queue: Literal["support", "advocacy", "none"] | None = None
    min_priority: int | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class TeamConfig:
    """The team that works beacons about these products (checked first) or brands."""

    name: str
    brands: tuple[str, ...] = ()
    products: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DropConfig:
    """Posts by these authors or linking to these domains (and their subdomains) go to no queue."""

    authors: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupingConfig:
    """Link posts about the same problem (same brand, product and queue, similar words, close in time)."""

    enabled: bool = True
    window: Duration = 6 * 3600.0
    similarity: float = 0.5  # shared content words / the smaller post's content words
    min_shared: int = 2  # and at least this many shared content words


@dataclass(frozen=True, slots=True)
class SlaConfig:
    """How long an open beacon may wait before it is breaching: per queue, and per team (which wins).

    ``sla: {support: 2h, advocacy: 1d, teams: {billing: 30m}}``; a queue without a limit never breaches.
    """

    support: Duration | None = None
    advocacy: Duration | None = None
    teams: dict[str, Duration] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    # Minimum support score for the support queue: a number, or per brand {default: 0.5, Acme: 0.4}.
    # The shipped model reports 0.5 at the operating point chosen on dev (beacons eval shows the trade-off).
    support_threshold: float | dict[str, Any] = 0.5
    advocacy_threshold: float = 0.5  # minimum advocacy score for the advocacy queue
    relevance_threshold: float = 0.5  # below this the mention is not about the brand
    non_english: Literal["keep", "drop", "none"] = "keep"  # what to do with posts not in English

    def support_threshold_for(self, brand: str | None = None) -> float:
        """The support threshold for ``brand`` (case-insensitive), else the default."""
        value = self.support_threshold
        if not isinstance(value, dict):
            return float(value)
        if brand is not None:
            for name, v in value.items():
                if name.lower() == brand.lower() and name != "default":
                    return float(v)
        return float(value.get("default", 0.5))

    rules: tuple[RoutingRuleConfig, ...] = ()  # overrides, first match wins
    teams: tuple[TeamConfig, ...] = ()
    drop: DropConfig = field(default_factory=DropConfig)
    grouping: GroupingConfig = field(default_factory=GroupingConfig)
    sla: SlaConfig = field(default_factory=SlaConfig)  # issue 13: waiting time marked and sorted up in the inbox


MAX_UNMATCHED_RETENTION = 90 * 86400.0


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long stored data is kept (issue 13 §4)."""

    # Posts that named no brand: kept this long so `beacons rescan` finds them after an alias is
    # added (a 304 means they are never fetched again); 0 keeps none. Older ones are pruned.
    unmatched: Duration = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    """A saved reply (issue 13 §3): ``text`` may use {author}, {brand}, {product} and {link}."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    model: str = "auto"  # "auto": the shipped spaCy model if present, else "rules"; or a path


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Workers sharing one PostgreSQL database (README, "Running several workers")."""

    # How long a worker's lease on a source lasts; a SIGKILLed worker's sources wait this long.
    # None: 2 x (fetch.timeout + 10 s) + 60 s, longer than any poll can take.
    lease: Duration | None = None


@dataclass(frozen=True, slots=True)
class Config:
    database: str = "beacons.db"
    brands: tuple[BrandConfig, ...] = ()
    sources: tuple[Source, ...] = ()
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    alerts: tuple[AlertChannel, ...] = ()
    fetch: FetchConfig = field(default_factory=FetchConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    serve: ServeConfig = field(default_factory=ServeConfig.absent)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    replies: tuple[ReplyTemplate, ...] = ()  # saved replies shown on each card (issue 13 §3)
    report: ReportConfig | None = None  # issue 14: the insights posted to an alert channel on a schedule
    path: str | None = None  # where it was loaded from

    def brand_models(self) -> tuple[Brand, ...]:
        return tuple(to_brand(b) for b in self.brands)

    def source(self, source_id: str) -> Source | None:
        return next((s for s in self.sources if s.id == source_id), None)


def to_brand(b: BrandConfig) -> Brand:
    return Brand(
        name=b.name,
        aliases=b.aliases,
        handles=b.handles,
        products=tuple(Product(p.name, p.aliases, p.team) for p in b.products),
        exclude=b.exclude,
        team=b.team,
    )


def brand_config(brand: Brand) -> dict[str, Any]:
    """The ``brands[]`` entry of config.yaml that loads back as ``brand`` (the inverse of ``to_brand``)."""
    entry: dict[str, Any] = {"name": brand.name}
    for key in ("aliases", "handles", "exclude"):
        if value := getattr(brand, key):
            entry[key] = list(value)
    if brand.products:
        entry["products"] = [
            {
                "name": p.name,
                **({"aliases": list(p.aliases)} if p.aliases else {}),
                **({"team": p.team} if p.team else {}),
            }
            for p in brand.products
        ]
    if brand.team:
        entry["team"] = brand.team
    return entry


# Keys every source has; the rest belong to its collector's Options.
@dataclass(frozen=True, slots=True)
class _SourceCommon:
    kind: str
    id: str | None = None
    interval: Duration = 300.0
    expect_every: Duration | None = None
    implies_brand: str | None = None  # every item is a mention of this brand (an app's reviews, a vendor's forum)
    implies_product: str | None = None  # ... and of this product of it


_SECTIONS = {
    "database": str,
    "brands": tuple[BrandConfig, ...],
    "routing": RoutingConfig,
    "alerts": tuple[AlertChannel, ...],
    "fetch": FetchConfig,
    "classifier": ClassifierConfig,
    "logging": LoggingConfig,
    "serve": ServeConfig,
    "fleet": FleetConfig,
    "retention": RetentionConfig,
    "replies": tuple[ReplyTemplate, ...],
    "report": ReportConfig,
}


def default_config_text() -> str:
    return resources.files("beacons").joinpath("config.yaml").read_text(encoding="utf-8")


def find_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The config file to use, or None for the packaged default."""
    env = os.environ if env is None else env
    if path:
        return str(path)
    if env.get("BEACONS_CONFIG"):
        return env["BEACONS_CONFIG"]
    if Path("config.yaml").is_file():
        return "config.yaml"
    return None


PACKAGED = "<packaged default config.yaml>"


def is_packaged(config: Config) -> bool:
    """True when no config file was found and the sample inside the package was loaded."""
    return config.path == PACKAGED


def config_location(config: Config) -> str:
    """Which config was loaded, for people: the file's absolute path, or the packaged sample."""
    if config.path is None or config.path.startswith("<"):
        return "the packaged sample config (no --config, no $BEACONS_CONFIG, no ./config.yaml)"
    return str(Path(config.path).resolve())


def database_location(database: str) -> str:
    """Where the database is, for people: an SQLite file's absolute path, a PostgreSQL URL without its password."""
    from beacons.storage.postgres import display_url, is_postgres_url

    if is_postgres_url(database):
        return display_url(database)
    if database == ":memory:":
        return database
    return str(Path(database).resolve())


def load_config(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate a config file; ``ConfigError`` lists every problem."""
    env = os.environ if env is None else env
    chosen = find_config(path, env)
    if chosen is None:
        text, where = default_config_text(), PACKAGED
    else:
        try:
            text, where = Path(chosen).read_text(encoding="utf-8"), str(chosen)
        except OSError as exc:
            raise ConfigError(
                [Problem("", f"cannot read config file {chosen}: {exc.strerror or exc}")], str(chosen)
            ) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                [Problem("", f"config file {chosen} is not UTF-8 text: {exc.reason}")], str(chosen)
            ) from exc
    return parse_config(text, env=env, path=where)


_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_config(text: str, *, env: Mapping[str, str] | None = None, path: str | None = None) -> Config:
    env = os.environ if env is None else env
    try:
        # libyaml's loader when PyYAML was built with it (the wheels are): a config with 231 brands took
        # 0.4 s to read in pure Python, a fifth of `beacons classify`'s start-up (issue 16).
        data = yaml.load(text, Loader=_SAFE_LOADER)  # a safe loader, C or Python
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem("", f"not valid YAML: {where}{problem}")], path) from exc
    if data is None:
        data = {}
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise ConfigError([Problem("", f"the top level must be a mapping of keys, got {type(data).__name__}")], path)
    register_secrets(data, env)  # before validation, so even a config error never shows one
    data = interpolate_env(data, "", problems, env)
    _alerts_on(data.get("alerts"))
    kwargs: dict[str, Any] = {}
    known = sorted([*_SECTIONS, "sources"])
    for key, value in data.items():
        if key == "sources":
            continue
        if key not in _SECTIONS:
            problems.append(
                Problem(str(key), f"unknown key{close_match(str(key), known)}; known keys: {', '.join(known)}")
            )
            continue
        result = coerce(_SECTIONS[key], value, key, problems)
        if result is not MISSING:
            kwargs[key] = result
    kwargs["sources"] = _build_sources(data.get("sources"), problems, kwargs.get("brands", ()))
    _check_brands(kwargs.get("brands", ()), problems)
    if "brands" in data and isinstance(data["brands"], list) and not data["brands"]:
        problems.append(
            Problem("brands", "is empty: every post would be dropped for naming no brand; list at least one brand")
        )
    _check_alerts(kwargs.get("alerts", ()), problems)
    _check_fleet(kwargs.get("fleet"), kwargs.get("fetch"), problems)
    _check_routing(kwargs.get("routing"), kwargs.get("brands", ()), kwargs["sources"], problems)
    if isinstance(kwargs.get("serve"), ServeConfig):
        problems += [
            Problem(f"serve.{k}", m) for k, m in kwargs["serve"].validate(require_tokens=kwargs["serve"].enabled)
        ]
    _check_retention(kwargs.get("retention"), problems)
    _check_replies(kwargs.get("replies", ()), problems)
    channels = [c for c in kwargs.get("alerts", ()) if isinstance(c, AlertChannel)]
    check_report(kwargs.get("report"), channel_names(channels), problems)
    if problems:
        raise ConfigError(problems, path)
    return Config(**kwargs, path=path)


def _check_retention(retention: RetentionConfig | None, problems: list[Problem]) -> None:
    if isinstance(retention, RetentionConfig) and retention.unmatched > MAX_UNMATCHED_RETENTION:
        problems.append(
            Problem(
                "retention.unmatched",
                f"must be at most 90d, got {retention.unmatched / 86400:g}d: unmatched posts are most of what is "
                "fetched, and kept longer they outgrow the database (use beacons rescan soon after a brand change)",
            )
        )


def _alerts_on(channels: Any) -> None:
    """``on: sla_breach`` in a channel, as written: YAML 1.1 reads a bare ``on`` key as the boolean true
    (the GitHub Actions surprise), so that key is named back; one event may be given without a list."""
    for channel in channels if isinstance(channels, list) else ():
        if isinstance(channel, dict) and True in channel and "on" not in channel:
            channel["on"] = channel.pop(True)
        if isinstance(channel, dict) and isinstance(channel.get("on"), str):
            channel["on"] = [channel["on"]]


def _check_replies(replies: tuple[ReplyTemplate, ...], problems: list[Problem]) -> None:
    from beacons.queue.replies import template_problems

    seen: set[str] = set()
    for i, reply in enumerate(replies if isinstance(replies, tuple) else ()):
        if not isinstance(reply, ReplyTemplate):
            continue  # its keys are already reported
        for key, message in template_problems(reply):
            problems.append(Problem(f"replies[{i}].{key}", message))
        if reply.name.strip() in seen:
            problems.append(
                Problem(f"replies[{i}].name", f"{reply.name!r} is used twice; give each reply its own name")
            )
        seen.add(reply.name.strip())


def register_secrets(raw: Any, env: Mapping[str, str], path: tuple[str | int, ...] = ()) -> None:
    """Tell ``beacons.redact`` every secret the raw (not yet interpolated) config holds.

    Secrets are: the value of a secret-named key (``secret``, ``tokens``,
    ``*_password``...), an alert channel's ``url`` as a whole (a Slack or
    webhook URL is the credential), ``serve.tokens``, the value of any
    ``${VAR}`` whose name looks secret (``FEED_TOKEN``, ``DB_PASSWORD``) or that
    sits in a secret place, the value of the variable a ``token_env`` names,
    and the credentials inside every URL (``user:pass@``, ``?token=``).
    """
    if isinstance(raw, dict):
        for key, value in raw.items():
            register_secrets(value, env, (*path, str(key)))
        return
    if isinstance(raw, list):
        for i, value in enumerate(raw):
            register_secrets(value, env, (*path, i))
        return
    if not isinstance(raw, str):
        return
    keys = [p for p in path if isinstance(p, str)]
    key = keys[-1] if keys else ""
    is_channel_url = keys[:1] == ["alerts"] and key == "url"
    is_secret_place = is_secret_key(key) or is_channel_url or keys[:2] == ["serve", "tokens"]
    value = interpolate_env(raw, "", [], env)
    for name in env_names(raw):
        if is_secret_place or is_secret_env_name(name):
            register(env.get(name))
    if key.endswith("_env"):  # token_env: the NAME of a variable holding a token
        register(env.get(raw))
    if is_secret_place:
        register(value)
    if "://" in value:
        register_url(value, whole=is_channel_url)


def _build_sources(raw: Any, problems: list[Problem], brands: tuple[BrandConfig, ...] = ()) -> tuple[Source, ...]:
    from collectors import REGISTRY

    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(Problem("sources", "expected a list of sources"))
        return ()
    sources: list[Source] = []
    seen: dict[str, int] = {}
    common_keys = {f.name for f in fields(_SourceCommon)}
    for i, item in enumerate(raw):
        loc = f"sources[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(loc, "expected a mapping with at least kind:"))
            continue
        common = build(_SourceCommon, {k: v for k, v in item.items() if k in common_keys}, loc, problems)
        if common is None:
            continue
        collector = REGISTRY.get(common.kind)
        if collector is None:
            problems.append(
                Problem(
                    f"{loc}.kind", f"unknown source kind {common.kind!r}; known kinds: {', '.join(sorted(REGISTRY))}"
                )
            )
            continue
        if common.interval < 1:
            problems.append(Problem(f"{loc}.interval", f"must be at least 1s, got {common.interval:g}s"))
        before = len(problems)
        # Unknown keys are checked here, against the common keys too, so a typo such
        # as "intervall" is told about "interval" and not only the collector's own keys.
        own = {f.name for f in fields(collector.options)}
        known = sorted(common_keys | own)
        for key in item:
            if key not in common_keys and key not in own:
                problems.append(
                    Problem(
                        f"{loc}.{key}", f"unknown key{close_match(str(key), known)}; known keys: {', '.join(known)}"
                    )
                )
        options: Any = build(collector.options, {k: v for k, v in item.items() if k in own}, loc, problems)
        if len(problems) > before or options is None:
            continue
        check = getattr(options, "validate", None)
        if callable(check):
            for key, msg in check():
                problems.append(Problem(f"{loc}.{key}" if key else loc, msg))
        source_id = common.id or _default_id(common.kind, options)
        if source_id in seen:
            problems.append(
                Problem(
                    f"{loc}.id",
                    f"duplicate source id {source_id!r} (also sources[{seen[source_id]}]); give one an explicit id:",
                )
            )
            continue
        seen[source_id] = i
        implied = _implied(common, brands, loc, problems)
        sources.append(Source(source_id, common.kind, common.interval, options, common.expect_every, *implied))
    return tuple(sources)


def _implied(
    common: _SourceCommon, brands: tuple[BrandConfig, ...], loc: str, problems: list[Problem]
) -> tuple[str | None, str | None]:
    """``implies_brand`` / ``implies_product`` spelled as under ``brands:``; a name not configured there is a problem.

    ``implies_product`` alone is enough when one brand has that product.
    """
    if common.implies_brand is None and common.implies_product is None:
        return None, None
    known = [b for b in brands if isinstance(b, BrandConfig)]
    brand: BrandConfig | None = None
    if common.implies_brand is not None:
        name = common.implies_brand
        brand = next((b for b in known if b.name.lower() == name.strip().lower()), None)
        if brand is None:
            names = [b.name for b in known]
            choices = ", ".join(names) or "none configured"
            problems.append(
                Problem(
                    f"{loc}.implies_brand",
                    f"unknown brand {name!r}{close_match(name, names)}; it must be a name under brands: ({choices})",
                )
            )
            return None, None
    if common.implies_product is None:
        return (brand.name if brand else None), None
    wanted = common.implies_product.strip().lower()
    owners = [(b, p) for b in ([brand] if brand else known) for p in b.products if p.name.lower() == wanted]
    if len(owners) != 1:
        where = f"brand {brand.name!r}" if brand else "any brand"
        products = [p.name for b in ([brand] if brand else known) for p in b.products]
        why = "is a product of several brands; set implies_brand too" if owners else f"is not a product of {where}"
        problems.append(
            Problem(
                f"{loc}.implies_product",
                f"{common.implies_product!r} {why}{close_match(common.implies_product, products)}"
                f" (products: {', '.join(products) or 'none configured'})",
            )
        )
        return None, None
    owner, product = owners[0]
    return owner.name, product.name


def _default_id(kind: str, options: Any) -> str:
    for attr in ("url", "query", "tag", "site", "app_id", "category"):
        value = getattr(options, attr, None)
        if value:
            return f"{kind}:{scrub_url(value)}"  # an id is shown everywhere: no URL credentials in it
    return kind


def _check_brands(brands: tuple[BrandConfig, ...], problems: list[Problem]) -> None:
    names: dict[str, int] = {}
    for i, brand in enumerate(brands):
        if not isinstance(brand, BrandConfig):
            continue
        if not brand.name.strip():
            problems.append(Problem(f"brands[{i}].name", "must not be empty"))
        key = brand.name.strip().lower()
        if key in names:
            problems.append(Problem(f"brands[{i}].name", f"duplicate brand {brand.name!r} (also brands[{names[key]}])"))
        names[key] = i
        for j, term in enumerate([*brand.aliases, *brand.handles, *brand.exclude]):
            if not term.strip():
                problems.append(Problem(f"brands[{i}]", f"empty alias, handle or exclude phrase (item {j})"))


def _check_fleet(fleet: FleetConfig | None, fetch: FetchConfig | None, problems: list[Problem]) -> None:
    """A lease shorter than a poll would let a second worker poll a source the first is still polling."""
    timeout = (fetch or FetchConfig()).timeout
    if fleet is not None and fleet.lease is not None and fleet.lease <= timeout:
        problems.append(
            Problem(
                "fleet.lease",
                f"must be longer than fetch.timeout ({timeout:g} s), got {fleet.lease:g} s:"
                " a poll would outlive its lease and another worker would poll the source again",
            )
        )


def _check_alerts(alerts: tuple[AlertChannel, ...], problems: list[Problem]) -> None:
    check_channels(alerts, problems)  # names, URLs, secrets, ranges: beacons/alerts/config.py


def _check_routing(
    routing: RoutingConfig | None, brands: tuple[BrandConfig, ...], sources: tuple[Source, ...], problems: list[Problem]
) -> None:
    """Ranges, and names in rules and teams that must be a configured brand, product or source."""
    if not isinstance(routing, RoutingConfig):
        return
    known = {
        "brands": {b.name.lower(): b.name for b in brands if isinstance(b, BrandConfig)},
        "products": {p.name.lower(): p.name for b in brands if isinstance(b, BrandConfig) for p in b.products},
        "sources": {s.id.lower(): s.id for s in sources},
    }

    def refs(loc: str, kind: str, names: tuple[str, ...]) -> None:
        for j, name in enumerate(names):
            if name.lower() not in known[kind]:
                choices = ", ".join(sorted(known[kind].values())) or "none configured"
                problems.append(
                    Problem(
                        f"{loc}.{kind}[{j}]",
                        f"unknown {kind[:-1]} {name!r}{close_match(name, list(known[kind].values()))}; known: {choices}",
                    )
                )

    if isinstance(routing.support_threshold, dict):
        for name, v in routing.support_threshold.items():
            loc = f"routing.support_threshold.{name}"
            if name != "default" and str(name).lower() not in known["brands"]:
                choices = ", ".join(sorted(known["brands"].values())) or "none configured"
                problems.append(Problem(loc, f"unknown brand {name!r}; use default or one of: {choices}"))
            if isinstance(v, bool) or not isinstance(v, int | float):
                problems.append(Problem(loc, f"expected a number between 0 and 1, got {v!r}"))
            elif not 0.0 <= v <= 1.0:
                problems.append(Problem(loc, f"must be between 0 and 1, got {v:g}"))
    for key in ("support_threshold", "advocacy_threshold", "relevance_threshold"):
        if isinstance(getattr(routing, key), dict):
            continue
        if not 0.0 <= getattr(routing, key) <= 1.0:
            problems.append(Problem(f"routing.{key}", f"must be between 0 and 1, got {getattr(routing, key):g}"))
    seen: dict[str, int] = {}
    for i, rule in enumerate(routing.rules):
        loc = f"routing.rules[{i}]"
        if not isinstance(rule, RoutingRuleConfig):
            continue
        if not rule.name.strip():
            problems.append(Problem(f"{loc}.name", "must not be empty"))
        elif rule.name in seen:
            problems.append(
                Problem(f"{loc}.name", f"duplicate rule name {rule.name!r} (also routing.rules[{seen[rule.name]}])")
            )
        seen[rule.name] = i
        if not (rule.keywords or rule.sources or rule.brands or rule.products or rule.queues):
            problems.append(Problem(loc, "needs at least one condition: keywords, sources, brands, products or queues"))
        if rule.queue is None and rule.min_priority is None and rule.team is None:
            problems.append(Problem(loc, "needs at least one action: queue, min_priority or team"))
        if rule.min_priority is not None and not 0 <= rule.min_priority <= 100:
            problems.append(Problem(f"{loc}.min_priority", f"must be 0..100, got {rule.min_priority}"))
        for j, word in enumerate(rule.keywords):
            if not word.strip():
                problems.append(Problem(f"{loc}.keywords[{j}]", "must not be empty"))
        for kind in ("brands", "products", "sources"):
            refs(loc, kind, getattr(rule, kind))
    for i, team in enumerate(routing.teams):
        loc = f"routing.teams[{i}]"
        if not isinstance(team, TeamConfig):
            continue
        if not team.name.strip():
            problems.append(Problem(f"{loc}.name", "must not be empty"))
        if not (team.brands or team.products):
            problems.append(Problem(loc, "needs brands or products"))
        refs(loc, "brands", team.brands)
        refs(loc, "products", team.products)
    for j, domain in enumerate(routing.drop.domains):
        if not domain.strip() or "/" in domain or ":" in domain or " " in domain.strip():
            problems.append(
                Problem(f"routing.drop.domains[{j}]", f"expected a host name like spam.example, got {domain!r}")
            )
    g = routing.grouping
    if not 0.0 < g.similarity <= 1.0:
        problems.append(Problem("routing.grouping.similarity", f"must be above 0 and at most 1, got {g.similarity:g}"))
    if g.min_shared < 1:
        problems.append(Problem("routing.grouping.min_shared", f"must be at least 1, got {g.min_shared}"))
    if g.window <= 0:
        problems.append(Problem("routing.grouping.window", "must be longer than 0s"))
    _check_sla(routing, brands, problems)


def _check_sla(routing: RoutingConfig, brands: tuple[BrandConfig, ...], problems: list[Problem]) -> None:
    """Limits longer than 0, and teams that routing can actually give a beacon (typos are the common mistake)."""
    sla = routing.sla
    if not isinstance(sla, SlaConfig):
        return
    for key in ("support", "advocacy"):
        value = getattr(sla, key)
        if value is not None and value <= 0:
            problems.append(Problem(f"routing.sla.{key}", f"must be longer than 0s, like 2h, got {value:g}"))
    teams = {t.name for t in routing.teams if isinstance(t, TeamConfig)}
    teams |= {r.team for r in routing.rules if isinstance(r, RoutingRuleConfig) and r.team}
    for b in brands:
        if isinstance(b, BrandConfig):
            teams |= {b.team} if b.team else set()
            teams |= {p.team for p in b.products if p.team}
    lowered = {t.lower() for t in teams}
    for name, value in sla.teams.items():
        loc = f"routing.sla.teams.{name}"
        if str(name).lower() not in lowered:
            known = ", ".join(sorted(teams)) or "none configured"
            hint = close_match(str(name), sorted(teams))
            problems.append(
                Problem(loc, f"unknown team {name!r}{hint}; known (routing.teams, rules and brands): {known}")
            )
        if isinstance(value, int | float) and value <= 0:
            problems.append(Problem(loc, f"must be longer than 0s, like 30m, got {value:g}"))


__all__ = ["BrandConfig", "Config", "ConfigError", "Secret", "load_config", "parse_config"]
