"""Drain the outbox: one asyncio task per channel, so a slow or dead receiver blocks nobody.

Each channel has its own ``httpx.AsyncClient`` (short timeouts, no
redirects), its own rate limit (``rate_limit`` requests per second) and its
own pause after a 429 or 503 with ``Retry-After``. A row is claimed (leased)
in one transaction, sent, and marked ``sent`` only after a 2xx, in its own
transaction; a failure is retried with exponential backoff and jitter
(``retry_base * 2**(attempt-1)``, capped by ``retry_max``, drawn from the
upper half: "equal jitter"), never sooner than ``Retry-After``; after
``max_attempts`` or a permanent 4xx the row is ``dead``. A crash between the
2xx and the commit can repeat a send, so webhooks carry ``Idempotency-Key``
(the event id) for the receiver to de-duplicate on; nothing is ever lost.

The daemon runs ``run_sender`` as an ``EXTRA_TASKS`` background task (this
module registers it when imported); with ``--once`` it drains what is due,
within a bounded time, and returns.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from beacons import USER_AGENT
from beacons.alerts import health, sla, slack, spikes, webhook
from beacons.alerts.config import AlertChannel, named
from beacons.alerts.message import GoneError, build_event
from beacons.alerts.outbox import Outbox, Row, ts
from beacons.clock import SYSTEM, Clock
from beacons.errors import BeaconsError
from beacons.fetch import parse_retry_after
from beacons.log import get_logger
from beacons.models import Beacon, Source
from beacons.redact import scrub
from beacons.report_schedule import run_due
from beacons.storage.base import from_epoch
from beacons.storage.types import Sla

if TYPE_CHECKING:
    from beacons.daemon import Service
    from beacons.report_schedule import ReportConfig

log = get_logger("beacons.alerts")

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
DEFAULT_429_PAUSE = 1.0  # a 429 without Retry-After still pauses the channel this long
STOP_GRACE = 1.0  # seconds a send in flight may finish after the stop signal


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # sent | retry | dead | skipped | grouped | queued | released
    http_status: int | None = None
    error: str | None = None
    ms: float = 0.0
    retry_after: float | None = None


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt`` (1-based): exponential, capped, equal jitter."""
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    jitter: float = (rng or random.Random()).uniform(0, delay / 2)
    return delay / 2 + jitter


def public_url(config: Any) -> str | None:
    """``serve.public_url``, whether ``serve`` is a dataclass or still a plain mapping."""
    serve = getattr(config, "serve", None)
    value = serve.get("public_url") if isinstance(serve, dict) else getattr(serve, "public_url", None)
    return str(value) if value else None


LEAD_RENEW, LEAD_TTL = 10.0, 30.0  # seconds


class ChannelSender:
    """Delivers one channel's rows, in order of due time, at its own pace."""

    def __init__(
        self,
        channel: AlertChannel,
        outbox: Outbox,
        *,
        sources: Sequence[Source] = (),
        sla: Sla | None = None,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        tick: float = 0.1,
        clock: Clock = SYSTEM,
        report: ReportConfig | None = None,
    ) -> None:
        self.channel = channel
        self.report = report if report is not None and report.channel == channel.name else None
        self.clock = clock  # leases, retries, pauses, the rate limit, digests and spikes read this clock
        self.outbox = outbox
        self.sources = tuple(sources)
        self.sla = sla or Sla()  # routing.sla, for on: [sla_breach]
        self._next_sla = 0.0
        self.public_url = public_url
        self.rng = rng or random.Random()
        self.tick = tick
        self.stop_grace = STOP_GRACE
        self.client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(channel.timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self.paused_until = 0.0  # wall clock: no request before this (Retry-After)
        self._next_send = 0.0  # monotonic: the rate limit
        self._next_health = 0.0
        self.worker: str | None = None  # set in a fleet: housekeeping runs on the job's leader only
        self._leader_checked = (float("-inf"), False)

    def _is_leader(self, now: float) -> bool:
        """Lead ``alerts:<channel>``, renewed every LEAD_RENEW s; a leader that dies is replaced within LEAD_TTL s."""
        checked, leading = self._leader_checked
        if now - checked >= LEAD_RENEW:
            assert self.worker is not None
            leading = self.outbox.store.lead(
                f"alerts:{self.channel.name}", self.worker, now=from_epoch(now), ttl=LEAD_TTL
            )
            self._leader_checked = (now, leading)
        return leading

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- loops --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set. A bug here is logged and the loop goes on: alerts must keep flowing."""
        failures = 0
        while not stop.is_set():
            try:
                worked = await self.step(stop)
                failures = 0
            except Exception as exc:  # the task boundary of one channel
                failures += 1
                log.exception(
                    "alert.sender_bug", channel=self.channel.name, error=f"{type(exc).__name__}: {scrub(str(exc), 300)}"
                )
                worked = False
                await self.clock.wait(stop, min(60.0, self.tick * 2**failures))
            if not worked:
                await self.clock.wait(stop, self.tick)
            else:
                await asyncio.sleep(0)  # a run of rows settled without I/O must not starve the pollers

    async def drain(self, *, budget: float | None = None) -> int:
        """``--once``: housekeeping, then every row due now, within ``budget`` seconds; rows handled."""
        deadline = self.clock.monotonic() + (budget if budget is not None else max(5.0, 2 * self.channel.timeout + 2))
        self.housekeeping(self.clock.time())
        done = 0
        while self.clock.monotonic() < deadline:
            now = self.clock.time()
            if self.paused_until > now + max(0.0, deadline - self.clock.monotonic()):
                break
            if self.paused_until > now:
                await self.clock.wait(None, self.paused_until - now)
                continue
            row = self.outbox.claim_next(self.channel.name, now=self.clock.time(), lease=self.channel.lease)
            if row is None:
                break
            await self.process(row, None)
            await asyncio.sleep(0)
            done += 1
        return done

    async def step(self, stop: asyncio.Event | None) -> bool:
        """Housekeeping, then at most one row; True when a row was handled."""
        now = self.clock.time()
        self.housekeeping(now)
        if now < self.paused_until:
            return False
        row = self.outbox.claim_next(self.channel.name, now=now, lease=self.channel.lease)
        if row is None:
            return False
        await self.process(row, stop)
        return True

    def housekeeping(self, now: float) -> None:
        """Source health (ops channels), incidents that calmed down, and a due digest.

        In a fleet only the leader of ``alerts:<channel>`` does this, so a digest,
        a health alert or an incident's end is produced once for the whole fleet.
        """
        if self.worker is not None and not self._is_leader(now):
            return
        if self.channel.ops and now >= self._next_health:
            self._next_health = now + self.channel.health.check_every
            health.check(self.outbox, self.channel, self.sources, now=now)
        if self.sla and sla.EVENT in self.channel.on and now >= self._next_sla:
            self._next_sla = now + sla.CHECK_EVERY
            sla.check(self.outbox, self.channel, self.sla, now=now)
        if self.channel.spikes.enabled:
            spikes.close_calm(self.outbox, self.channel, now=now)
        if self.channel.digest:
            oldest = self.outbox.oldest_queued(self.channel.name)
            if oldest is not None and now >= oldest + self.channel.digest:
                since = self.outbox.last_digest_at(self.channel.name) or oldest
                event_id = self.outbox.make_digest(self.channel.name, now=now, since=since)
                log.info("alert.digest", channel=self.channel.name, event_id=event_id)
        if self.report is not None:  # issue 14: the scheduled insights report, once per slot
            try:
                run_due(self.outbox.store, self.report, now=now, sla=self.sla, link=self.public_url)
            except BeaconsError as exc:  # the database is busy: the next housekeeping tries again
                log.error("alert.report_failed", channel=self.channel.name, error=scrub(str(exc), 300))

    # -- one row ------------------------------------------------------------

    def wants(self, b: Beacon) -> bool:
        """The channel's beacon filters: queues, brands (or products), teams, minimum priority."""
        c = self.channel
        if not c.beacons or b.queue not in c.queues or b.priority < c.min_priority:
            return False
        if c.brands and not {x.casefold() for x in c.brands} & {x.casefold() for x in (b.brand, b.product) if x}:
            return False
        return not c.teams or (b.team or "") in c.teams

    def triage(self, row: Row, now: float) -> str:
        """What a beacon row becomes in this channel: send, skipped, grouped, queued or dead."""
        view = self.outbox.beacon_view(row.beacon_id) if row.beacon_id is not None else None
        if view is None:
            self.outbox.settle(row.id, "dead", error=f"beacon {row.beacon_id} no longer exists")
            return "dead"
        b = view.beacon
        wanted = self.wants(b)
        incident = spikes.incident_for(self.outbox, self.channel, b, now=now) if (wanted or self.channel.ops) else None
        if incident is not None and wanted and self.channel.spikes.group:
            self.outbox.group_into(row.id, incident)
            return "grouped"
        if not wanted:
            self.outbox.settle(
                row.id, "skipped", error="not for this channel (beacons/queues/brands/teams/min_priority)"
            )
            return "skipped"
        if self.channel.digest:
            self.outbox.settle(row.id, "queued")
            return "queued"
        return "send"

    async def process(
        self, row: Row, stop: asyncio.Event | None, *, rate_limited: bool = True, final: bool = False
    ) -> Outcome:
        """Triage, build, send and record one claimed row (``final``: no retry, a failure is dead at once)."""
        now = self.clock.time()
        if row.kind == "beacon":
            decision = self.triage(row, now)
            if decision != "send":
                return Outcome(decision)
        try:
            body, headers = self.encode(row)
        except GoneError as exc:
            error = scrub(str(exc), 300)
            self.outbox.mark_failed(row.id, error, retry_at=None)
            log.error("alert.dead", channel=self.channel.name, event_id=row.event_id, error=error)
            return Outcome("dead", error=error)
        if rate_limited and await self._rate_limit(stop):
            self.outbox.release(row.id, now=self.clock.time())
            return Outcome("released")
        outcome = await self._post(body, headers, stop)
        self.record(row, outcome, final=final)
        return outcome

    def encode(self, row: Row) -> tuple[bytes, dict[str, str]]:
        event = build_event(row, self.outbox, self.public_url)
        if self.channel.kind == "webhook":
            return webhook.request(event, self.channel.secret or "")
        raw = json.dumps(slack.render(event, self.public_url), ensure_ascii=False).encode("utf-8")
        return raw, {"Content-Type": "application/json; charset=utf-8"}

    async def _rate_limit(self, stop: asyncio.Event | None) -> bool:
        """Wait for this channel's next send slot; True when stopped meanwhile.

        In a fleet the slot is reserved in the database, so the channel's rate
        limit (and a Retry-After pause) holds for all its senders together.
        """
        if self.worker is not None:
            slot = self.outbox.store.send_slot(
                self.channel.name, now=from_epoch(self.clock.time()), spacing=1.0 / self.channel.rate_limit
            )
            wait = slot.timestamp() - self.clock.time()
            return wait > 0 and await self.clock.wait(stop, wait)
        wait = self._next_send - self.clock.monotonic()
        if wait > 0 and await self.clock.wait(stop, wait):
            return True
        self._next_send = self.clock.monotonic() + 1.0 / self.channel.rate_limit
        return False

    async def _post(self, body: bytes, headers: dict[str, str], stop: asyncio.Event | None) -> Outcome:
        started = time.monotonic()  # for the log's ms only: real time, whatever the clock
        task = asyncio.ensure_future(self._request(body, headers))
        if stop is not None:
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not task.done():
                await asyncio.wait({task}, timeout=self.stop_grace)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return Outcome("released", error="stopped during the request")
        outcome = await task
        return Outcome(
            outcome.status, outcome.http_status, outcome.error, (time.monotonic() - started) * 1000, outcome.retry_after
        )

    async def _request(self, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            async with asyncio.timeout(self.channel.timeout):
                async with self.client.stream("POST", self.channel.url, content=body, headers=headers) as resp:
                    head = b""
                    async for chunk in resp.aiter_bytes():  # only the start of an answer: it is for the error message
                        head += chunk
                        if len(head) >= 1024:
                            break
        except (TimeoutError, httpx.TimeoutException):
            return Outcome("retry", error=f"timed out after {self.channel.timeout:g}s")
        except httpx.HTTPError as exc:
            return Outcome("retry", error=f"request failed: {type(exc).__name__}: {self._safe(str(exc))}")
        status = resp.status_code
        if 200 <= status < 300:
            return Outcome("sent", status)
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
        if status == 429 and retry_after is None:
            retry_after = DEFAULT_429_PAUSE
        if retry_after is not None and status in (429, 503):
            self.paused_until = max(self.paused_until, self.clock.time() + retry_after)
            if self.worker is not None:
                self.outbox.store.pause_channel(self.channel.name, until=from_epoch(self.paused_until))
        detail = self._safe(head[:200].decode("utf-8", "replace").strip())
        error = f"HTTP {status}" + (f": {detail}" if detail else "")
        return Outcome("retry" if status in RETRYABLE else "dead", status, error, retry_after=retry_after)

    def _safe(self, text: str) -> str:
        """Receiver or transport text without the channel's URL (it may be the secret itself)."""
        url = self.channel.url
        path = httpx.URL(url).path if url.startswith("http") else ""
        text = text.replace(url, "[url]")
        if len(path) > 1:
            text = text.replace(path, "[path]")
        return scrub(text, 300)

    def record(self, row: Row, outcome: Outcome, *, final: bool = False) -> None:
        now = self.clock.time()
        attempt = row.attempts + 1
        fields = {
            "channel": self.channel.name,
            "event_id": row.event_id,
            "kind": row.kind,
            "attempt": attempt,
            "http_status": outcome.http_status,
            "ms": round(outcome.ms),
        }
        if outcome.status == "released":
            self.outbox.release(row.id, now=now)
            log.info("alert.released", **fields)
        elif outcome.status == "sent":
            self.outbox.mark_sent(row.id, now=now, http_status=outcome.http_status or 0)
            log.info("alert.sent", **fields)
        elif outcome.status == "dead" or final or attempt >= self.channel.max_attempts:
            self.outbox.mark_failed(row.id, outcome.error or "failed", retry_at=None, http_status=outcome.http_status)
            log.error("alert.dead", **fields, error=outcome.error)
        else:
            delay = max(
                backoff(attempt, self.channel.retry_base, self.channel.retry_max, self.rng), outcome.retry_after or 0.0
            )
            self.outbox.mark_failed(
                row.id, outcome.error or "failed", retry_at=now + delay, http_status=outcome.http_status
            )
            log.warning(
                "alert.retry", **fields, error=outcome.error, retry_in=round(delay, 2), next_attempt_at=ts(now + delay)
            )

    async def send_test(self) -> Outcome:
        """Write a test alert and send it now (``beacons alerts test``)."""
        now = self.clock.time()
        event_id = f"test-{int(now * 1000)}-{self.channel.name}"
        self.outbox.add_event(self.channel.name, event_id, "test", {}, now=now)
        row = self.outbox.get(event_id)
        claimed = self.outbox.claim_id(row.id, now=now, lease=self.channel.lease) if row else None
        if claimed is None:
            return Outcome("dead", error="could not claim the test row")
        return await self.process(
            claimed, None, rate_limited=False, final=True
        )  # a test is never retried behind the user's back


async def run_sender(service: Service, stop: asyncio.Event, *, tick: float = 0.1) -> None:
    """The daemon's alert task: every channel concurrently; drain once when ``stop`` is already set."""
    from beacons.queue.inbox import sla_policy

    channels = named(service.config.alerts)
    if not channels:
        return
    outbox = Outbox(service.store)
    senders = [
        ChannelSender(
            c,
            outbox,
            sources=service.config.sources,
            sla=sla_policy(service.config.routing.sla),
            public_url=public_url(service.config),
            tick=tick,
            clock=service.clock,
            report=service.config.report,
        )
        for c in channels
    ]
    for s in senders:
        s.worker = service.worker
    try:
        if stop.is_set():
            results = await asyncio.gather(*(s.drain() for s in senders), return_exceptions=True)
            for sender, result in zip(senders, results, strict=True):
                if isinstance(result, Exception):
                    log.error(
                        "alert.sender_bug",
                        channel=sender.channel.name,
                        error=f"{type(result).__name__}: {scrub(str(result), 300)}",
                    )
        else:
            log.info("alert.sender_started", channels=[c.name for c in channels])
            await asyncio.gather(*(s.run(stop) for s in senders))
    finally:
        for s in senders:
            await s.aclose()


def _register() -> None:
    from beacons.daemon import EXTRA_TASKS

    if run_sender not in EXTRA_TASKS:
        EXTRA_TASKS.append(run_sender)


_register()
