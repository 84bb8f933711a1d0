"""Feed parsing in a small pool of worker processes, on a core the daemon's own process is not using (issue 16).

feedparser is pure Python and was about half of a cold cycle's CPU: in one
process it cannot overlap with matching, classifying and storing. A body of
``min_bytes`` or more is parsed by ``collectors._feed.parse_feed`` in a worker
process and comes back as the same ``Mention`` values (and skip reasons) it
would give in the daemon's process; a smaller body (most polls of a running
daemon) is parsed in place, where a round trip would cost more than the parse.

The pool starts on the first large body, so a cycle of 304s never starts it.
A worker that crashes or takes longer than ``timeout`` costs the feed it was
parsing a ``ParseError`` (a logged error for that source, which backs off),
never the daemon: the pool is replaced, and the other feeds that were in it
are parsed again, one at a time, so the culprit is the only feed that fails.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from beacons.errors import ParseError
from beacons.log import get_logger
from beacons.models import Mention

if TYPE_CHECKING:  # multiprocessing is imported when the pool starts: a cycle of 304s never pays for it
    from concurrent.futures import ProcessPoolExecutor

log = get_logger("beacons.parsepool")

PARSE_TIMEOUT = 60.0  # seconds a worker may spend on one body (the in-process parse has no such bound)
MIN_BYTES = 32 * 1024  # smaller bodies parse in place: the round trip to a worker costs more than it saves

# What a worker sends back: ("ok", mentions, skipped, (pid, CPU seconds so far)) or ("error", reason, ...).
Outcome = tuple[str, Any, list[tuple[str, str]], tuple[int, float]]
Job = Callable[[bytes, str, dict[str, str], str | None], Outcome]


def parse_job(body: bytes, source_id: str, headers: dict[str, str], url: str | None) -> Outcome:
    """Runs in a worker: ``parse_feed`` with its skip reasons collected, its ParseError returned as a value.

    The worker's CPU time so far comes back too (its imports included): the workers' CPU is not
    in the daemon's own, so ``parsepool.stopped`` reports it.
    """
    from collectors._feed import parse_feed

    skipped: list[tuple[str, str]] = []
    try:
        mentions = parse_feed(
            body, source_id=source_id, headers=headers, url=url, skip=lambda r, d: skipped.append((r, d))
        )
    except ParseError as exc:  # its keyword-only constructor does not survive pickling; the reason does
        return "error", exc.reason, skipped, (os.getpid(), time.process_time())
    return "ok", mentions, skipped, (os.getpid(), time.process_time())


def spare_core(cpus: int | None = None, load: float | None = None) -> bool:
    """Whether a worker can expect CPU time of its own: the 1-minute load average (every runnable process
    on the machine) is below the number of CPUs, so the machine is not already saturated.

    At load 2 on 2 cores a cold cycle took 0.71x its in-process wall time with one worker (README, issue 16);
    on a saturated machine a worker would mostly compete with the daemon for the same share.
    """
    cpus = (os.cpu_count() or 1) if cpus is None else cpus
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform: assume the CPUs are there
            load = 0.0
    return load < cpus


def default_processes(configured: int) -> int:
    """``fetch.parse_processes``, but none on a one-core machine, where a worker could only slow the daemon."""
    return max(0, min(configured, (os.cpu_count() or 1) - 1))


def _context() -> Any:
    import multiprocessing

    # Not fork: the daemon has threads (asyncio's resolver pool), and a forked child may inherit a held
    # lock. Not forkserver: with one or two workers its server is one more interpreter (~30 MB) to no gain.
    return multiprocessing.get_context("spawn")


class ParsePool:
    def __init__(
        self,
        processes: int,
        *,
        timeout: float = PARSE_TIMEOUT,
        min_bytes: int = MIN_BYTES,
        job: Job = parse_job,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self.processes = max(0, processes)
        self.timeout = timeout
        self.min_bytes = min_bytes
        self.job = job
        # Asked before a pool starts (not while one runs): is there a core for it? Default: spare_core().
        self.gate = gate if gate is not None else spare_core
        self.declined = 0  # large bodies parsed in place because the gate said no
        self._pool: ProcessPoolExecutor | None = None
        self._alone: asyncio.Lock | None = None  # feeds parsed again after a crash go one at a time
        self._free: asyncio.Semaphore | None = None  # a worker with no body in hand
        self.started = 0  # executors started, for tests and logs
        self.parsed = 0  # bodies parsed in workers
        self._cpu: dict[int, float] = {}  # each worker's CPU seconds, as of its last body

    def wants(self, body: bytes) -> bool:
        """Whether ``body`` goes to a worker (else the caller parses it in place).

        A pool that is not running starts only when ``gate()`` says a core is free for it; once
        started it stays until ``close()``.
        """
        if self.processes <= 0 or len(body) < self.min_bytes:
            return False
        if self._pool is None and not self.gate():
            self.declined += 1
            return False
        return True

    async def parse(
        self,
        body: bytes,
        *,
        source_id: str,
        headers: Mapping[str, str] | None,
        url: str | None,
        skip: Callable[[str, str], None] | None,
    ) -> list[Mention]:
        """``parse_feed``'s mentions for ``body``, parsed in a worker; ``ParseError`` as in place, or on a crash or timeout."""
        from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor

        args = (body, source_id, dict(headers or {}), url)
        if self._free is None:
            # Two bodies per worker: one parsing, the next already waiting in its queue. With one, the worker
            # sat idle from each answer until the daemon's event loop came round to send the next body, and a
            # cold cycle took as long as parsing in place; with two it took 0.71x (README, issue 16).
            self._free = asyncio.Semaphore(2 * self.processes)
        try:
            async with self._free:
                pool = self._executor(self.processes)
                outcome = await self._run(pool, args)
        except BrokenProcessPool:
            # A worker died, maybe on another feed: this one is parsed again alone, so only the culprit fails.
            self._discard(pool)
            if self._alone is None:
                self._alone = asyncio.Lock()
            async with self._alone:
                alone = ProcessPoolExecutor(1, mp_context=_context())
                self.started += 1
                try:
                    outcome = await self._run(alone, args)
                except BrokenProcessPool as exc:
                    raise ParseError(
                        "the feed parser's worker process died on this feed (a crash or out of memory)",
                        source_id=source_id,
                    ) from exc
                finally:
                    self._discard(alone)
        status, value, skipped, (pid, cpu) = outcome
        self.parsed += 1
        self._cpu[pid] = cpu
        for reason, detail in skipped:
            if skip is not None:
                skip(reason, detail)
        if status != "ok":
            raise ParseError(str(value), source_id=source_id)
        mentions: list[Mention] = value
        return mentions

    async def _run(self, pool: ProcessPoolExecutor, args: tuple[bytes, str, dict[str, str], str | None]) -> Outcome:
        future = asyncio.get_running_loop().run_in_executor(pool, self.job, *args)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError as exc:
            self._discard(pool)  # the worker is still busy with it: stop it, the next body gets a new pool
            raise ParseError(
                f"parsing took longer than {self.timeout:g} s in a parse worker (a hostile or huge feed?)",
                source_id=args[1],
            ) from exc

    def _executor(self, processes: int) -> ProcessPoolExecutor:
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            self._pool = ProcessPoolExecutor(processes, mp_context=_context())
            self.started += 1
            log.debug("parsepool.started", processes=processes)
        return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        """Stop ``pool``'s workers now (a stuck one never returns by itself) and forget it."""
        if pool is self._pool:
            self._pool = None
        # ProcessPoolExecutor has no public way to stop a busy worker before Python 3.14 (terminate_workers).
        processes = list(getattr(pool, "_processes", None) or {})
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.kill()
        # Not cancel_futures: the bodies queued behind the stuck one must fail with BrokenProcessPool,
        # so each is parsed again alone, rather than be cancelled with their polls.
        pool.shutdown(wait=True)
        if processes:
            log.debug("parsepool.discarded", processes=len(processes))

    @property
    def cpu(self) -> float:
        """CPU seconds the workers used, start-up included (up to each one's last body)."""
        return sum(self._cpu.values())

    def close(self) -> None:
        """Shut the workers down (their queued jobs are cancelled); the pool starts again if used."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)
        if self.declined:
            log.info("parsepool.declined", bodies=self.declined, reason="no spare core (load average >= CPUs - 1)")
            self.declined = 0
        if self.started:
            log.info(
                "parsepool.stopped",
                started=self.started,
                parsed=self.parsed,
                workers=len(self._cpu),
                cpu_s=round(self.cpu, 3),
            )
