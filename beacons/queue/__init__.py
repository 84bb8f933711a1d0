"""The queue: what the team works through, as the CLI, the API and the page see it.

States: ``new -> claimed (by whom) -> resolved | dismissed``; resolve and dismiss
also work straight from ``new``; reopen takes a resolved or dismissed beacon back
to ``new``, and reassign gives a claimed one to someone else. One module per concern:

- ``inputs.py``: names and notes checked before anything is written;
- ``inbox.py``: the inbox's dates, SLA policy and waiting times (issue 13 §2);
- ``queries.py``: the one list (threads folded, keyset paging), a beacon's detail, facets, feedback labels;
- ``lifecycle.py``: claim, resolve, dismiss, re-route, reopen, reassign and notes (each one guarded transaction in storage);
- ``bulk.py``: one action on several beacons, a result per beacon (one failure undoes nothing else);
- ``why.py``: why a beacon is in its queue, in one plain sentence;
- ``threads.py``: which stored beacons are posts about the same problem (linked when stored, never on read).
"""

from __future__ import annotations

from beacons.errors import BeaconNotFound, InvalidInput, QueueError, TransitionConflict
from beacons.queue.bulk import BULK_ACTIONS, MAX_BULK, Outcome, bulk, clean_ids
from beacons.queue.inbox import check_intent, check_sentiment, parse_when, sla_policy, waited_seconds, waited_text
from beacons.queue.inputs import MAX_NAME_CHARS, MAX_NOTE_CHARS, clean_name, clean_note
from beacons.queue.lifecycle import (
    ACTIONS,
    OPEN,
    add_note,
    claim,
    dismiss,
    reassign,
    reopen,
    reroute,
    reroute_options,
    resolve,
    undo,
)
from beacons.queue.queries import (
    Detail,
    Entry,
    Event,
    Page,
    facets,
    feedback_examples,
    get_detail,
    get_entry,
    history,
    iter_entries,
    list_entries,
    metric_counts,
    routing_input,
    version,
)
from beacons.queue.threads import link_pending, link_threads
from beacons.queue.why import why_routed
from beacons.storage.beacons import decode_cursor, encode_cursor
from beacons.storage.types import QueueFilter, Sla

__all__ = [
    "ACTIONS",
    "BULK_ACTIONS",
    "MAX_BULK",
    "MAX_NAME_CHARS",
    "MAX_NOTE_CHARS",
    "OPEN",
    "BeaconNotFound",
    "Detail",
    "Entry",
    "Event",
    "InvalidInput",
    "Outcome",
    "Page",
    "QueueError",
    "QueueFilter",
    "Sla",
    "TransitionConflict",
    "add_note",
    "bulk",
    "check_intent",
    "check_sentiment",
    "claim",
    "clean_ids",
    "clean_name",
    "clean_note",
    "decode_cursor",
    "dismiss",
    "encode_cursor",
    "facets",
    "feedback_examples",
    "get_detail",
    "get_entry",
    "history",
    "iter_entries",
    "link_pending",
    "link_threads",
    "list_entries",
    "metric_counts",
    "parse_when",
    "reassign",
    "reopen",
    "reroute",
    "reroute_options",
    "resolve",
    "routing_input",
    "sla_policy",
    "undo",
    "version",
    "waited_seconds",
    "waited_text",
    "why_routed",
]
