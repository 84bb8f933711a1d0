"""The ``alerts:`` config section: defaults, names, and every problem reported with its key path, secrets unshown."""

from __future__ import annotations

import pytest

from beacons.alerts.config import AlertChannel, named
from beacons.config import parse_config
from beacons.daemon import channel_names
from beacons.errors import ConfigError

HOOK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
ENV = {"SLACK_URL": HOOK, "HOOK_SECRET": "0123456789abcdef-secret"}


def test_alerts_config_builds_channels_with_defaults_and_names() -> None:
    config = parse_config(
        """
alerts:
  - kind: slack
    url: ${SLACK_URL}
    queues: support
    min_priority: 60
  - name: ops
    kind: webhook
    url: https://ops.example/hook
    secret: ${HOOK_SECRET}
    beacons: false
    ops: true
    digest: 30m
    health: {after_errors: 5, remind_every: 2h}
    spikes: {k: 2.5, min_count: 8}
""",
        env=ENV,
    )
    slack, ops = config.alerts
    assert (
        isinstance(slack, AlertChannel)
        and slack.url == HOOK
        and slack.queues == ("support",)
        and slack.min_priority == 60
    )
    assert (ops.digest, ops.health.after_errors, ops.health.remind_every, ops.spikes.k, ops.spikes.min_count) == (
        1800.0,
        5,
        7200.0,
        2.5,
        8,
    )
    assert channel_names(config) == ["slack-0", "ops"]
    assert [c.name for c in named(config.alerts)] == ["slack-0", "ops"]


def test_alerts_config_repr_hides_url_and_secret() -> None:
    config = parse_config(f"alerts:\n  - kind: webhook\n    url: {HOOK}\n    secret: ${{HOOK_SECRET}}\n", env=ENV)
    text = repr(config)
    assert HOOK not in text and ENV["HOOK_SECRET"] not in text and "XXXXsecret" not in text


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("  - kind: slack\n    url: ${SLACK_URL}\n    urll: x\n", 'alerts[0].urll: unknown key (did you mean "url"?)'),
        ("  - kind: email\n    url: ${SLACK_URL}\n", "alerts[0].kind: expected one of slack, webhook"),
        ("  - kind: slack\n", "alerts[0].url: is required"),
        ("  - kind: webhook\n    url: https://x.example/h\n", "alerts[0].secret: a webhook needs a signing secret"),
        (
            "  - kind: webhook\n    url: https://x.example/h\n    secret: short\n",
            "alerts[0].secret: a webhook needs a signing secret of at least 16",
        ),
        (
            "  - kind: slack\n    url: ${SLACK_URL}\n    queues: [support, none]\n",
            "alerts[0].queues[1]: expected one of support, advocacy, got 'none'",
        ),
        (
            "  - kind: slack\n    url: ${SLACK_URL}\n    min_priority: 120\n",
            "alerts[0].min_priority: must be 0..100, got 120",
        ),
        (
            "  - kind: slack\n    url: ${SLACK_URL}\n    digest: soon\n",
            'alerts[0].digest: expected a duration like 5m, got "soon"',
        ),
        ("  - kind: slack\n    url: ${SLACK_URL}\n    spikes: {kk: 2}\n", "alerts[0].spikes.kk: unknown key"),
        ("  - kind: slack\n    url: ${SLACK_URL}\n    beacons: false\n", "alerts[0]: receives nothing"),
        ("  - kind: slack\n    url: ${SLACK_URL}\n    rate_limit: 0\n", "alerts[0].rate_limit: must be more than 0"),
        (
            "  - {kind: slack, url: '${SLACK_URL}', name: a}\n  - {kind: slack, url: '${SLACK_URL}', name: a}\n",
            "alerts[1].name: duplicate channel name 'a' (also alerts[0])",
        ),
        ("  - kind: slack\n    url: ${SLACK_URL}\n    name: 'has space'\n", "alerts[0].name: use letters, digits"),
        ("  - kind: slack\n    url: ${MISSING_URL}\n", "alerts[0].url: environment variable MISSING_URL is not set"),
    ],
)
def test_alerts_config_problems_name_the_key_path(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("alerts:\n" + yaml_text, env=ENV)
    message = str(info.value)
    assert expected in message
    assert HOOK not in message and "XXXXsecret" not in message


def test_alerts_config_url_problem_does_not_echo_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("alerts:\n  - kind: slack\n    url: ftp://user:hunter2@files.example/x\n", env=ENV)
    assert "alerts[0].url: must be an http(s) URL" in str(info.value) and "hunter2" not in str(info.value)


def test_alerts_config_default_file_has_no_channels() -> None:
    assert parse_config("alerts: []\n").alerts == ()
