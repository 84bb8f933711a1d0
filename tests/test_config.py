"""beacons.config and beacons.settings: every problem reported at once, with its key path."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import WriteConfig

from beacons.config import Config, brand_config, find_config, load_config, parse_config, to_brand
from beacons.errors import ConfigError, Problem
from beacons.fetch import FetchLimits
from beacons.models import Brand, Product
from beacons.settings import Secret, build, parse_bytesize, parse_duration

REPO = Path(__file__).resolve().parents[1]
GOOD: dict[str, Any] = {
    "brands": [{"name": "Acme", "aliases": ["Acme Corp"], "products": [{"name": "RouterX"}]}],
    "sources": [
        {"id": "a", "kind": "rss", "url": "https://a.example.org/feed"},
        {"id": "b", "kind": "rss", "url": "https://b.example.org/feed", "interval": "1h30m"},
        {"kind": "rss", "url": "https://c.example.org/feed", "interval": "soon"},
    ],
}


def problems_of(text_or_data: str | dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    text = text_or_data if isinstance(text_or_data, str) else yaml.safe_dump(text_or_data)
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return [str(p) for p in info.value.problems]


def test_config_names_the_key_path_of_a_bad_duration() -> None:
    assert problems_of(GOOD) == ['sources[2].interval: expected a duration like 5m, got "soon"']


def test_config_collects_every_problem_at_once() -> None:
    data = {
        "databse": "x.db",
        "brands": [{"name": "Acme", "alias": ["A"]}, {"name": "acme"}],
        "sources": [
            {"kind": "rss", "url": "ftp://a.example.org/feed"},
            {"kind": "nope", "url": "https://b.example.org"},
            {"url": "https://c.example.org"},
            {"id": "d", "kind": "rss", "url": "https://d.example.org", "intervall": "5m"},
            {"id": "d", "kind": "rss", "url": "https://e.example.org", "interval": "0.5s"},
        ],
        "fetch": {
            "timeout": "fast",
            "max_bytes": "lots",
            "max_redirects": "5",
            "concurrency": True,
            "allow_private_redirects": "yes",
        },
        "logging": {"level": "loud"},
    }
    problems = problems_of(data)
    expected_prefixes = [
        'databse: unknown key (did you mean "database"?)',
        'brands[0].alias: unknown key (did you mean "aliases"?)',
        "brands[1].name: duplicate brand 'acme' (also brands[0])",
        "sources[0].url: expected an http(s) URL, got 'ftp://a.example.org/feed'",
        "sources[1].kind: unknown source kind 'nope'; known kinds:",
        "sources[2].kind: is required",
        'sources[3].intervall: unknown key (did you mean "interval"?)',
        "sources[4].interval: must be at least 1s, got 0.5s",
        'fetch.timeout: expected a duration like 5m, got "fast"',
        'fetch.max_bytes: expected a size like 5MiB, got "lots"',
        'fetch.max_redirects: expected a whole number, got "5"',
        "fetch.concurrency: expected a whole number, got bool True",
        'fetch.allow_private_redirects: expected true or false, got "yes"',
        'logging.level: expected one of debug, info, warning, error, got "loud"',
    ]
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)


def test_config_duplicate_source_ids() -> None:
    data = {
        "sources": [
            {"kind": "rss", "url": "https://a.example.org/f"},
            {"kind": "rss", "url": "https://a.example.org/f"},
        ]
    }
    assert problems_of(data) == [
        "sources[1].id: duplicate source id 'rss:https://a.example.org/f' (also sources[0]); give one an explicit id:"
    ]


def test_config_defaults_live_in_the_dataclasses() -> None:
    config = parse_config("sources: []\n", env={})
    assert config == Config(path=None)
    assert config.fetch.max_bytes == 5 * 1024 * 1024 and config.fetch.timeout == 30.0
    assert config.database == "beacons.db"


def test_config_values_are_coerced() -> None:
    fetch = {"timeout": "90s", "max_bytes": "512KiB", "allow_private_redirects": True}
    text = yaml.safe_dump({**GOOD, "sources": GOOD["sources"][:2], "fetch": fetch})
    config = parse_config(text, env={})
    assert [s.interval for s in config.sources] == [300.0, 5400.0]
    assert config.sources[1].options.url == "https://b.example.org/feed"
    assert (config.fetch.timeout, config.fetch.max_bytes) == (90.0, 512 * 1024)
    assert FetchLimits.from_config(config.fetch).allow_private_redirects is True
    assert config.brand_models()[0].products[0].name == "RouterX"
    assert config.source("b") is config.sources[1] and config.source("zzz") is None


def test_config_source_id_defaults_from_kind_and_url() -> None:
    config = parse_config("sources:\n  - kind: rss\n    url: https://a.example.org/feed\n", env={})
    assert config.sources[0].id == "rss:https://a.example.org/feed"


def test_config_env_interpolation() -> None:
    text = "database: ${DATA_DIR}/beacons.db\nlogging:\n  level: ${LEVEL:-warning}\n"
    config = parse_config(text, env={"DATA_DIR": "/var/lib/beacons"})
    assert config.database == "/var/lib/beacons/beacons.db"
    assert config.logging.level == "warning"


def test_config_unset_env_var_names_key_and_variable() -> None:
    text = "sources:\n  - id: a\n    kind: rss\n    url: ${FEED_URL}\n"
    assert problems_of(text)[0] == "sources[0].url: environment variable FEED_URL is not set"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: [\n  - a\n", "not valid YAML: line"),
        ("- just\n- a list\n", "the top level must be a mapping of keys, got list"),
        ("sources: {kind: rss}\n", "sources: expected a list of sources"),
        ("sources:\n  - rss\n", "sources[0]: expected a mapping with at least kind:"),
        ("fetch: 5\n", "fetch: expected a mapping, got int 5"),
    ],
)
def test_config_shape_errors(text: str, message: str) -> None:
    assert any(p.startswith(message) for p in problems_of(text)), problems_of(text)


def test_config_error_message_lists_problems_and_file(write_config: WriteConfig) -> None:
    path = write_config({"sources": GOOD["sources"]})
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in str(info.value)
    assert 'sources[2].interval: expected a duration like 5m, got "soon"' in str(info.value)


def test_config_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml", env={})


def test_config_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("database: caf\u00e9.db\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(path, env={})


def test_config_is_found_by_flag_then_env_then_cwd_then_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(None, env={}) is None
    (tmp_path / "config.yaml").write_text("database: cwd.db\n")
    assert find_config(None, env={}) == "config.yaml"
    assert find_config(None, env={"BEACONS_CONFIG": "/etc/beacons.yaml"}) == "/etc/beacons.yaml"
    assert find_config("given.yaml", env={"BEACONS_CONFIG": "/etc/beacons.yaml"}) == "given.yaml"
    env_file = tmp_path / "env.yaml"
    env_file.write_text("database: env.db\n")
    assert load_config(None, env={"BEACONS_CONFIG": str(env_file)}).database == "env.db"
    assert load_config(None, env={}).database == "cwd.db"


def test_config_packaged_default_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={})
    assert config.path == "<packaged default config.yaml>"
    assert config.brands and config.sources


def test_config_repo_config_yaml_loads() -> None:
    config = load_config(REPO / "config.yaml", env={})
    assert [s.kind for s in config.sources]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        (" 5 m ", 300.0),
    ],
)
def test_config_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "", "5x", "m5", "-5s", -1, True, None, [5], "5m soon"])
def test_config_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1048576, 1048576),
        ("512", 512),
        ("512KiB", 524288),
        ("5MiB", 5242880),
        ("5MB", 5000000),
        ("1 gib", 1073741824),
        ("10b", 10),
    ],
)
def test_config_parse_bytesize(value: object, size: int) -> None:
    assert parse_bytesize(value) == size


@pytest.mark.parametrize("value", ["lots", "5 TB", -1, True, "MiB"])
def test_config_parse_bytesize_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_bytesize(value)


@dataclasses.dataclass(frozen=True)
class _WithSecret:
    token: Secret = ""


def test_config_secret_value_never_appears_in_a_problem() -> None:
    problems: list[Problem] = []
    build(_WithSecret, {"token": 123456789}, "alerts[0]", problems)
    assert [str(p) for p in problems] == ['alerts[0].token: expected a string (usually "${ENV_VAR}")']
    assert "123456789" not in str(problems)


def test_config_lone_string_is_a_one_item_list() -> None:
    config = parse_config(
        textwrap.dedent("""
        brands:
          - name: Acme
            aliases: Acme Corp
    """),
        env={},
    )
    assert config.brands[0].aliases == ("Acme Corp",)


def test_config_an_empty_brands_list_is_an_error() -> None:
    # An empty list used to load, and every fetched post was then dropped for naming no brand.
    problems = problems_of({**GOOD, "sources": GOOD["sources"][:2], "brands": []})
    assert problems == ["brands: is empty: every post would be dropped for naming no brand; list at least one brand"]


@pytest.mark.parametrize(
    ("text", "lease"),
    [("", 140.0), ("fleet: {lease: 2m}\n", 120.0), ("fetch: {timeout: 2s}\nfleet: {lease: 3s}\n", 3.0)],
)
def test_config_fleet_lease_defaults_to_longer_than_any_poll(text: str, lease: float) -> None:
    from beacons.daemon import lease_seconds

    assert lease_seconds(parse_config(text, env={})) == lease


def test_config_fleet_lease_must_outlast_a_poll() -> None:
    [problem] = problems_of("fleet: {lease: 30s}\n")
    assert problem.startswith("fleet.lease: must be longer than fetch.timeout (30 s), got 30 s")


def test_config_brand_config_loads_back_as_the_same_brand() -> None:
    brand = Brand(
        "Acme",
        aliases=("Acme Corp",),
        handles=("@acme",),
        products=(Product("RouterX", ("RX-200",), team="networking"), Product("Acme Cloud")),
        exclude=("acme looney tunes",),
        team="support",
    )
    bare = Brand("Globex")
    text = yaml.safe_dump({"brands": [brand_config(brand), brand_config(bare)]})
    assert tuple(to_brand(b) for b in parse_config(text, env={}).brands) == (brand, bare)
