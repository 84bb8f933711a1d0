"""Run one job per item with a fixed number of workers, politely per key (a source's host).

``run --once`` used to create one asyncio task per source up front: 10,000
sources meant 10,000 tasks, their coroutines and their frames alive at once
(+83 MB, issue 16). Here ``workers`` tasks pull items from per-key queues, and
a key never has more than ``per_key`` jobs in flight, so the workers do not
all queue up behind one slow host while the others' feeds wait: an idle worker
takes the next item of a key with a free slot, or waits until a job ends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def run_pooled(
    items: Sequence[T],
    job: Callable[[T], Awaitable[R]],
    *,
    key: Callable[[T], str],
    workers: int,
    per_key: int,
    order: Sequence[int] | None = None,
) -> list[R]:
    """``job(item)`` for every item, at most ``workers`` at a time and ``per_key`` per key; results in item order.

    ``order`` is the order to start them in (indexes into ``items``; default: as given).
    ``job`` must not raise: a raise ends its worker's run and is re-raised here.
    """
    queues: dict[str, deque[int]] = {}
    for i in range(len(items)) if order is None else order:
        queues.setdefault(key(items[i]), deque()).append(i)
    ready: deque[str] = deque(queues)  # keys with an item queued and a free slot, in order of their first item
    is_ready = set(ready)
    busy = dict.fromkeys(queues, 0)
    results: dict[int, R] = {}
    queued = len(items)
    changed = asyncio.Condition()
    per_key = max(1, per_key)

    def take() -> tuple[str, int] | None:
        nonlocal queued
        while ready:
            k = ready[0]
            q = queues[k]
            if not q or busy[k] >= per_key:
                ready.popleft()
                is_ready.discard(k)
                continue
            busy[k] += 1
            queued -= 1
            i = q.popleft()
            if not q or busy[k] >= per_key:
                ready.popleft()
                is_ready.discard(k)
            return k, i
        return None

    async def worker() -> None:
        while True:
            got = take()
            if got is None:
                if queued == 0:
                    return
                async with changed:  # every queued item waits on a busy key: wait for a job to end
                    await changed.wait()
                continue
            k, i = got
            try:
                results[i] = await job(items[i])
            finally:
                busy[k] -= 1
                if queues[k] and k not in is_ready:
                    ready.append(k)
                    is_ready.add(k)
                async with changed:
                    changed.notify_all()

    count = max(1, min(workers, len(items)))
    if items:
        await asyncio.gather(*(worker() for _ in range(count)))
    return [results[i] for i in range(len(items))]
