"""The alert outbox as the alerts package uses it; every query is in ``beacons.storage.outbox``.

``Outbox(storage)`` is the storage's outbox repository: claims, marks, retries,
incidents, source health and digests, each one guarded statement or one
transaction (see that module for the row states and the claim).
"""

from __future__ import annotations

from beacons.storage.outbox import OPEN_STATES, STATES, BeaconView, Row, epoch, ts
from beacons.storage.outbox import OutboxStore as Outbox

__all__ = ["OPEN_STATES", "STATES", "BeaconView", "Outbox", "Row", "epoch", "ts"]
