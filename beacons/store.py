"""The name older code and tests import: ``Store`` is ``beacons.storage.Storage`` (every query lives there)."""

from __future__ import annotations

from beacons.storage import Item, QueueFilter, SaveResult
from beacons.storage import Storage as Store
from beacons.storage.sqlite import fault_hint

__all__ = ["Item", "QueueFilter", "SaveResult", "Store", "fault_hint"]
