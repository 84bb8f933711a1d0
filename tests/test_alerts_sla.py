"""``on: sla_breach`` (issue 13 §2): a channel hears once when an open beacon waits past its routing.sla.

On both backends, with an injected clock: nothing before the limit, one alert after it, none again on the
next look or from a restarted sender, none for a closed beacon or one the channel's filters leave out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
import yaml
from helpers_alerts import Receiver, add_beacon, reset_logging  # noqa: F401
from helpers_clock import FakeClock

from beacons import queue as q
from beacons.alerts.config import AlertChannel
from beacons.alerts.outbox import Outbox
from beacons.alerts.sender import ChannelSender
from beacons.config import parse_config
from beacons.errors import ConfigError
from beacons.storage import Storage
from beacons.storage.types import Sla

SECRET = "sla-secret-0123456789"
SLA = Sla(queues=(("support", 7200.0),), teams=(("billing", 1800.0),))


@pytest.fixture
def store(database: str) -> Iterator[Storage]:
    with Storage(database) as s:
        yield s


def hook(url: str, **kw: object) -> AlertChannel:
    opts: dict[str, object] = {"kind": "webhook", "name": "leads", "secret": SECRET, "rate_limit": 500.0}
    opts.update(beacons=False, on=("sla_breach",))
    opts.update(kw)
    return AlertChannel(url=url, **opts)  # type: ignore[arg-type]


def drain(store: Storage, chan: AlertChannel, clock: FakeClock) -> None:
    """One sender's look and sends, as the daemon's alert task makes them; a new sender each time (a restart)."""

    async def go() -> None:
        sender = ChannelSender(chan, Outbox(store), sla=SLA, clock=clock)
        await sender.drain()
        await sender.aclose()

    asyncio.run(go())


def test_alerts_sla_breach_alerts_once_per_beacon(store: Storage) -> None:
    clock = FakeClock()  # the beacons are stamped with this clock, and only the test moves it
    waiting = add_beacon(store, [], title="RouterX drops wifi", now=clock.now())
    billing = add_beacon(store, [], title="Charged twice", team="billing", now=clock.now())
    closed = add_beacon(store, [], title="Fixed already", now=clock.now())
    advocacy = add_beacon(store, [], title="Love it", queue="advocacy", now=clock.now())
    q.resolve(store, closed, "bob")
    with Receiver(clock=clock) as r:
        chan = hook(r.url)
        drain(store, chan, clock)
        assert r.requests == []  # nobody has waited long yet
        clock.advance(1801)  # past billing's 30 minutes, not support's 2 hours
        drain(store, chan, clock)
        assert [x.json["data"]["beacon"]["id"] for x in r.requests] == [billing]
        clock.advance(7200)
        drain(store, chan, clock)
        drain(store, chan, clock)  # the next look, by a restarted sender: nothing again
        bodies = [x.json for x in r.requests]
    assert [(b["type"], b["data"]["beacon"]["id"]) for b in bodies] == [
        ("sla_breach", billing),
        ("sla_breach", waiting),
    ]
    assert bodies[0]["data"]["team"] == "billing" and bodies[0]["data"]["limit_seconds"] == 1800
    assert bodies[1]["data"]["limit_seconds"] == 7200 and bodies[1]["data"]["waited_seconds"] == 1801 + 7200
    assert bodies[1]["id"] == f"sla-{waiting}-leads" and advocacy not in {b["data"]["beacon"]["id"] for b in bodies}


def test_alerts_sla_breach_follows_the_channels_filters(store: Storage) -> None:
    clock = FakeClock()
    add_beacon(store, [], title="RouterX drops wifi", now=clock.now())
    billing = add_beacon(store, [], title="Charged twice", team="billing", now=clock.now())
    with Receiver(clock=clock) as r:
        clock.advance(8000)
        drain(store, hook(r.url, teams=("billing",)), clock)
        drain(store, hook(r.url, name="ads", queues=("advocacy",)), clock)
        drain(store, hook(r.url, name="plain", on=(), beacons=True), clock)  # not asked for: nothing
        ids = [x.json["data"]["beacon"]["id"] for x in r.requests]
    assert ids == [billing]


@pytest.mark.parametrize("written", ["on: sla_breach", "on: [sla_breach]", "'on': [sla_breach]"])
def test_alerts_sla_config_on_key(written: str) -> None:
    text = f"alerts:\n  - kind: slack\n    url: https://hooks.example/x\n    beacons: false\n    {written}\n"
    config = parse_config(text, env={})
    assert config.alerts[0].on == ("sla_breach",)


def test_alerts_sla_config_names_an_unknown_event() -> None:
    text = yaml.safe_dump({"alerts": [{"kind": "slack", "url": "https://hooks.example/x", "on": ["sla_breech"]}]})
    with pytest.raises(ConfigError, match=r"alerts\[0\]\.on\[0\]: expected one of sla_breach, got 'sla_breech'"):
        parse_config(text, env={})


def test_alerts_sla_breach_waited_is_measured_on_the_injected_clock(store: Storage) -> None:
    clock = FakeClock()
    add_beacon(store, [], now=clock.now())
    with Receiver(clock=clock) as r:
        clock.advance(timedelta(hours=3).total_seconds())
        drain(store, hook(r.url), clock)
        waited = r.requests[0].json["data"]["waited_seconds"]
    assert waited == 3 * 3600
