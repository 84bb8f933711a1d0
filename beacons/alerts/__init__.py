"""Alerts: tell the team at once, in Slack or a signed webhook, that a beacon was routed.

The pipeline writes one outbox row per channel in the same transaction as the
beacon (``beacons.store``); this package drains it. ``config`` holds the
channel dataclasses, ``outbox`` the alert tables and every query on them,
``message`` and ``webhook`` the bodies and the signature, ``sender`` the
per-channel delivery loop (a daemon background task), ``health`` and
``spikes`` the source-health and incident rules, ``cli`` the
``beacons alerts list/retry/test`` commands. See README "Alerts".

Nothing heavy is imported here: ``beacons.config`` imports ``alerts.config``.
"""
