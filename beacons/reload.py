"""The daemon's tasks, and reloading ``config.yaml`` on SIGHUP without dropping a poll in flight (issue 13 §4).

``Supervisor`` owns every task the daemon runs: the source schedule (on SQLite
one ``LocalScheduler`` task and the polls in flight, at most ``fetch.concurrency``;
on PostgreSQL the fleet loop), the background services (alert sender, web
server) and the periodic jobs. On SIGHUP it reads the config file again:

- a config that does not load (or changes ``database:``) is refused: every
  problem is logged (``config.reload_refused``) and the running config is kept;
- otherwise brands, routing, retention and alert channels apply to the next
  poll (a new ``Pipeline``; polls in flight finish with the one they started
  with), the classifier is loaded again when its settings changed, a removed
  source's task finishes its poll in flight and stops, a changed source is
  restarted once its poll in flight is stored, a new source starts, and the
  alert sender restarts with the new channels. ``serve:`` changes need a restart.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from beacons.config import Config, is_packaged, load_config
from beacons.errors import ConfigError
from beacons.fetch import FetchLimits
from beacons.log import get_logger
from beacons.models import Source
from beacons.pipeline import Pipeline
from beacons.scheduler import LocalScheduler

if TYPE_CHECKING:
    from beacons.daemon import ExtraTask, Service

log = get_logger("beacons.daemon")

# Background services restarted when these config sections change (by qualified name).
RESTART_ON: dict[str, tuple[str, ...]] = {"beacons.alerts.sender.run_sender": ("alerts", "sources", "serve")}


def _name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


class Supervisor:
    def __init__(self, service: Service, stop: asyncio.Event, rng: random.Random) -> None:
        self.service = service
        self.stop = stop
        self.rng = rng
        self.tasks: set[asyncio.Task[None]] = set()  # every task still running (what shutdown waits for)
        self.scheduler: LocalScheduler | None = None
        self.extras: list[tuple[ExtraTask, asyncio.Task[None], asyncio.Event]] = []
        self._reloading: asyncio.Task[None] | None = None
        self._again = False

    def add(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def start_sources(self, sources: Sequence[Source]) -> LocalScheduler:
        """SQLite: every source on one schedule; its polls are tasks of their own (named ``source:ID``) while
        they run, so shutdown waits for them and names the ones it abandons."""
        self.scheduler = LocalScheduler(
            self.service, self.stop, self.rng, limit=self.service.config.fetch.concurrency, spawn=self.add
        )
        for source in sources:
            self.scheduler.add(source)
        self.add(self.scheduler.run(), "schedule")
        return self.scheduler

    def start_extra(self, extra: ExtraTask, index: int) -> None:
        own = asyncio.Event()
        task = self.add(extra(self.service, own), f"extra:{index}")
        if index < len(self.extras):
            self.extras[index] = (extra, task, own)
        else:
            self.extras.append((extra, task, own))

    def stop_all(self) -> None:
        """The daemon is stopping: every task finishes what it has in hand (the schedule watches ``stop``)."""
        for _, _, own in self.extras:
            own.set()

    def request_reload(self) -> None:
        """SIGHUP: reload now, or once more after the reload in progress."""
        if self.stop.is_set():
            return
        if self._reloading is not None and not self._reloading.done():
            self._again = True
            return
        self._reloading = self.add(self._reload_loop(), "reload")

    async def _reload_loop(self) -> None:
        while True:
            self._again = False
            try:
                await self.reload()
            except Exception as exc:  # a task boundary: a failed reload keeps the old config running
                log.exception("config.reload_refused", problems=[f"{type(exc).__name__}: {exc}"])
            if not self._again or self.stop.is_set():
                return

    async def reload(self) -> bool:
        old = self.service.config
        path = None if is_packaged(old) else old.path
        log.info("config.reloading", path=path or "packaged default")
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("config.reload_refused", path=exc.path or path, problems=[str(p) for p in exc.problems])
            return False
        if new.database != old.database:
            log.error(
                "config.reload_refused",
                path=path,
                problems=["database: changed; restart beacons to use another database (the old one is kept)"],
            )
            return False
        try:
            classifier = await self._classifier(old, new)
        except Exception as exc:
            log.error("config.reload_refused", path=path, problems=[f"classifier: {type(exc).__name__}: {exc}"])
            return False
        self._apply(old, new, classifier)
        return True

    async def _classifier(self, old: Config, new: Config) -> Any:
        from beacons.classify import load_classifier

        if (old.classifier, old.routing.support_threshold, old.routing.advocacy_threshold) == (
            new.classifier,
            new.routing.support_threshold,
            new.routing.advocacy_threshold,
        ) and old.routing.relevance_threshold == new.routing.relevance_threshold:
            return self.service.classifier
        return await asyncio.to_thread(
            load_classifier,
            new.classifier.model,
            support_threshold=new.routing.support_threshold_for(None),
            advocacy_threshold=new.routing.advocacy_threshold,
            relevance_threshold=new.routing.relevance_threshold,
        )

    def _apply(self, old: Config, new: Config, classifier: Any) -> None:
        from beacons.daemon import channel_names

        service = self.service
        service.store.sync_sources(new.sources)
        current = service.pipeline
        service.pipeline = Pipeline(
            store=service.store,
            client=service.client,
            classifier=classifier,
            brands=new.brand_models(),
            limits=FetchLimits.from_config(new.fetch),
            politeness=current.politeness,
            channels=channel_names(new),
            env=current.env,
            routing=new.routing,
            clock=service.clock,
            retention=new.retention,
            sources=new.sources,
            parse_pool=current.parse_pool,  # fetch.parse_processes applies from the next start
        )
        service.classifier = classifier
        service.config = new
        added, removed, changed = self._sources(old, new)
        for index, (extra, task, own) in enumerate(list(self.extras)):
            sections = RESTART_ON.get(_name(extra), ())
            if any(getattr(old, s) != getattr(new, s) for s in sections):
                own.set()  # finishes what it has in hand (an alert being sent), then a new one starts
                self.add(self._restart_after(extra, index, task), f"restart:{index}")
        if old.serve != new.serve:
            log.warning("config.restart_needed", keys=["serve"], detail="serve: changes apply at the next start")
        log.info(
            "config.reloaded",
            path=new.path,
            sources=len(new.sources),
            added=added,
            removed=removed,
            changed=changed,
            brands=len(new.brands),
            alerts=len(new.alerts),
            classifier=classifier.name,
        )

    async def _restart_after(self, extra: ExtraTask, index: int, task: asyncio.Task[None]) -> None:
        await asyncio.wait({task})
        if not self.stop.is_set():
            self.start_extra(extra, index)

    def _sources(self, old: Config, new: Config) -> tuple[list[str], list[str], list[str]]:
        """The sources ``new`` adds, removes and changes against ``old``. On SQLite the schedule follows at once
        (a poll in flight always finishes and is stored); a fleet worker leases from service.config.sources at
        its next lease."""
        before = {s.id: s for s in old.sources}
        after = {s.id: s for s in new.sources}
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(i for i in set(before) & set(after) if before[i] != after[i])
        if self.service.worker is None and self.scheduler is not None:
            for source_id in removed:
                self.scheduler.remove(source_id)
            for source_id in changed:
                self.scheduler.change(after[source_id])
            for source_id in added:
                self.scheduler.add(after[source_id])
        return added, removed, changed
