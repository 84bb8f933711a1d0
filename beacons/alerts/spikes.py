"""Incident spikes: many support beacons for one brand/product at once become one alert.

The rule (README "Incident spikes"): count the support beacons for a
brand/product created in the last ``window``; split the ``baseline`` before
that window into windows of the same length and take the mean and the
population standard deviation of their counts. It is a spike when

    count >= min_count  and  count > mean + k * stddev

(defaults: window 1h, baseline 7d, k 3, min_count 5). A new database has a
baseline of zeros, so ``min_count`` alone decides until history builds up.

When a channel's sender meets a support beacon, it checks the rule for that
beacon's brand/product. On a spike it opens an incident (one
``alert_incidents`` row and one alert listing the posts of the window,
written in one transaction). While the incident is open, later beacons for
the same brand/product are *grouped* into it instead of each sending its own
message. It ends once the window's count falls below the threshold it opened
with; an "incident over" alert then says how many were grouped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beacons.alerts.config import AlertChannel, SpikeRule
from beacons.alerts.outbox import Outbox, ts
from beacons.log import get_logger
from beacons.models import Beacon

log = get_logger("beacons.alerts")


@dataclass(frozen=True, slots=True)
class SpikeStats:
    count: int
    mean: float
    stddev: float
    threshold: float  # the smallest count that is a spike

    @property
    def is_spike(self) -> bool:
        return self.count >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": round(self.mean, 3),
            "stddev": round(self.stddev, 3),
            "threshold": self.threshold,
        }


def spike_stats(times: Sequence[float], rule: SpikeRule, *, now: float) -> SpikeStats:
    """Apply the rule to creation times (epoch seconds). Pure."""
    window_start = now - rule.window
    count = sum(1 for t in times if window_start < t <= now + 1)
    n = max(1, int(rule.baseline // rule.window))
    buckets = [0] * n
    for t in times:
        if t <= window_start:
            i = int((window_start - t) // rule.window)
            if i < n:
                buckets[i] += 1
    mean = sum(buckets) / n
    stddev = math.sqrt(sum((c - mean) ** 2 for c in buckets) / n)
    above = math.floor(mean + rule.k * stddev) + 1  # strictly more than mean + k*sd
    return SpikeStats(count, mean, stddev, float(max(rule.min_count, above)))


def stats_for(outbox: Outbox, brand: str, product: str | None, rule: SpikeRule, *, now: float) -> SpikeStats:
    times = outbox.support_times(brand, product, since=now - rule.window - rule.baseline)
    return spike_stats(times, rule, now=now)


def incident_for(outbox: Outbox, channel: AlertChannel, beacon: Beacon, *, now: float) -> dict[str, Any] | None:
    """The open incident this support beacon belongs to, opening one when the rule fires; else None."""
    if not channel.spikes.enabled or beacon.queue != "support" or not beacon.brand:
        return None
    incident = outbox.open_incident(channel.name, beacon.brand, beacon.product)
    if incident is not None:
        return incident
    rule = channel.spikes
    stats = stats_for(outbox, beacon.brand, beacon.product, rule, now=now)
    if not stats.is_spike:
        return None
    ids = outbox.support_ids(beacon.brand, beacon.product, since=now - rule.window)
    payload = {
        "brand": beacon.brand,
        "product": beacon.product,
        "window": rule.window,
        **stats.to_json(),
        "opened_at": ts(now),
        "beacon_ids": ids,
    }
    event_id = outbox.create_incident(
        channel.name, beacon.brand, beacon.product, threshold=stats.threshold, payload=payload, now=now
    )
    log.warning(
        "alert.incident",
        channel=channel.name,
        brand=beacon.brand,
        product=beacon.product,
        count=stats.count,
        threshold=stats.threshold,
        event_id=event_id,
    )
    return outbox.open_incident(channel.name, beacon.brand, beacon.product)


def close_calm(outbox: Outbox, channel: AlertChannel, *, now: float) -> list[str]:
    """End the open incidents whose window count fell below their threshold; the event ids written."""
    ended = []
    for incident in outbox.open_incidents(channel.name):
        stats = stats_for(outbox, incident["brand"], incident["product"], channel.spikes, now=now)
        if stats.count >= incident["threshold"]:
            continue
        payload = {
            "brand": incident["brand"],
            "product": incident["product"],
            "window": channel.spikes.window,
            "threshold": incident["threshold"],
            "opened_at": incident["opened_at"],
            "grouped": incident["grouped"],
            "count": stats.count,
            "beacon_ids": outbox.grouped_ids(incident["event_id"]),
        }
        ended.append(outbox.close_incident(incident, channel.name, payload, now=now))
        log.info(
            "alert.incident_over",
            channel=channel.name,
            brand=incident["brand"],
            product=incident["product"],
            grouped=incident["grouped"],
        )
    return ended
