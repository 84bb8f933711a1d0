"""The one error hierarchy of beacons.

    BeaconsError
     +-- ConfigError(problems)
     +-- SourceError(source_id)
     |    +-- FetchError(url)
     |    |    +-- FetchTimeout
     |    |    +-- BodyTooLarge
     |    |    +-- TooManyRedirects
     |    |    +-- BadRedirect
     |    |    +-- HTTPStatusError(status, retry_after)
     |    +-- ParseError(reason)
     +-- StoreError
     +-- QueueError
     |    +-- BeaconNotFound(beacon_id)
     |    +-- TransitionConflict(beacon_id, action, status, assignee)
     |    +-- InvalidInput(field)
     +-- UserError(name)
     |    +-- UserNotFound
     |    +-- UserExists
     +-- AlertError(channel)

Signals are not errors and stay outside the tree: ``NotModified`` (a 304, the
poll had nothing new) and ``Retry(after)`` (try again later).
"""

from __future__ import annotations

from dataclasses import dataclass


class BeaconsError(Exception):
    """Base class of every error beacons raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    loc: str  # key path such as "sources[2].interval"
    msg: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.msg}" if self.loc else self.msg


class ConfigError(BeaconsError):
    def __init__(self, problems: list[Problem], path: str | None = None) -> None:
        self.problems = problems
        self.path = path
        where = f" in {path}" if path else ""
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s){where}:\n{lines}")


class SourceError(BeaconsError):
    def __init__(self, message: str, *, source_id: str | None = None) -> None:
        self.source_id = source_id
        super().__init__(message)


class FetchError(SourceError):
    def __init__(self, message: str, *, url: str, source_id: str | None = None) -> None:
        self.url = url
        super().__init__(message, source_id=source_id)


class FetchTimeout(FetchError):
    pass


class BodyTooLarge(FetchError):
    def __init__(self, message: str, *, url: str, limit: int, source_id: str | None = None) -> None:
        self.limit = limit
        super().__init__(message, url=url, source_id=source_id)


class TooManyRedirects(FetchError):
    pass


class BadRedirect(FetchError):
    pass


class HTTPStatusError(FetchError):
    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int,
        retry_after: float | None = None,
        source_id: str | None = None,
        body: bytes = b"",
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.body = body  # the start of the error body, for collectors to read; never logged
        super().__init__(message, url=url, source_id=source_id)


class ParseError(SourceError):
    def __init__(self, reason: str, *, source_id: str | None = None) -> None:
        self.reason = reason
        super().__init__(reason, source_id=source_id)


class StoreError(BeaconsError):
    pass


class QueueError(BeaconsError):
    """A queue action that cannot be done as asked."""


class BeaconNotFound(QueueError):
    def __init__(self, beacon_id: int) -> None:
        self.beacon_id = beacon_id
        super().__init__(f"no beacon with id {beacon_id} (see `beacons queue list --queue all`)")


class TransitionConflict(QueueError):
    """The beacon is not in a state that allows the action (someone else got there first)."""

    def __init__(
        self, beacon_id: int, action: str, status: str, assignee: str | None, message: str | None = None
    ) -> None:
        self.beacon_id, self.action, self.status, self.assignee = beacon_id, action, status, assignee
        who = f" by {assignee}" if assignee and status != "new" else ""
        super().__init__(message or f"cannot {action} beacon {beacon_id}: it is already {status}{who}")


class InvalidInput(QueueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class UserError(BeaconsError):
    """A user command that cannot be done as asked (issue 13)."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


class UserNotFound(UserError):
    def __init__(self, name: str) -> None:
        super().__init__(name, f"no user named {name!r} (see `beacons users list`)")


class UserExists(UserError):
    def __init__(self, name: str) -> None:
        super().__init__(name, f"a user named {name!r} already exists")


class AlertError(BeaconsError):
    def __init__(self, message: str, *, channel: str, retry_after: float | None = None) -> None:
        self.channel = channel
        self.retry_after = retry_after
        super().__init__(message)


class NotModified(Exception):
    """Signal: the server answered 304, nothing to parse."""


class Retry(Exception):
    """Signal: try this unit of work again after ``after`` seconds."""

    def __init__(self, after: float) -> None:
        self.after = after
        super().__init__(f"retry after {after:.1f}s")
