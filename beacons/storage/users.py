"""People (issue 13): users and their roles, personal API tokens, sign-in sessions and failed sign-ins.

Tokens and session secrets are stored as their SHA-256 only (they are 256-bit
random values, so a fast hash is enough); a token or session row is looked up
by that hash, joined with its user, so disabling a user or revoking a row
stops it on the very next request. Failed sign-ins are rows too: every server
of a fleet counts the same ones for its rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from beacons.errors import UserExists, UserNotFound
from beacons.storage.base import Backend, Tx


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    created_at: str
    disabled_at: str | None
    has_password: bool
    tokens: int  # personal API tokens not revoked
    sessions: int  # sign-in sessions not revoked (some may have expired)

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token or session belongs to, when it is still good."""

    name: str
    role: str
    session: str | None = None  # the session's public id


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    created_at: str
    expires_at: str
    address: str | None
    revoked_at: str | None


_USER_COLUMNS = (
    "SELECT u.name, u.role, u.created_at, u.disabled_at, u.password_hash IS NOT NULL,"
    " (SELECT COUNT(*) FROM user_tokens t WHERE t.user_name = u.name AND t.revoked_at IS NULL),"
    " (SELECT COUNT(*) FROM user_sessions s WHERE s.user_name = u.name AND s.revoked_at IS NULL)"
    " FROM users u"
)


def _user(row: tuple[object, ...]) -> User:
    return User(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]) if row[3] else None,
        bool(row[4]),
        int(str(row[5])),
        int(str(row[6])),
    )


def _require(tx: Tx, name: str) -> None:
    if tx.execute("SELECT 1 FROM users WHERE name = ?", [name]).one() is None:
        raise UserNotFound(name)


class UsersMixin:
    backend: Backend

    # -- users ----------------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, *, now: datetime) -> User:
        with self.backend.transaction() as tx:
            added = tx.execute(
                "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                [name, role, now],
            ).rowcount
            if added != 1:
                raise UserExists(name)
        user = self.get_user(name)
        assert user is not None
        return user

    def get_user(self, name: str) -> User | None:
        row = self.backend.read(f"{_USER_COLUMNS} WHERE u.name = ?", [name]).one()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        return [_user(r) for r in self.backend.read(f"{_USER_COLUMNS} ORDER BY u.name").rows]

    def count_users(self) -> int:
        return int(self.backend.read("SELECT COUNT(*) FROM users").scalar())

    def set_role(self, name: str, role: str) -> None:
        with self.backend.transaction() as tx:
            if tx.execute("UPDATE users SET role = ? WHERE name = ?", [role, name]).rowcount != 1:
                raise UserNotFound(name)

    def disable_user(self, name: str, *, now: datetime) -> bool:
        """Disable ``name`` and revoke every token and session it has; False when it was disabled already."""
        with self.backend.transaction() as tx:
            _require(tx, name)
            changed = tx.execute(
                "UPDATE users SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL", [now, name]
            ).rowcount
            tx.execute("UPDATE user_tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL", [now, name])
            tx.execute(
                "UPDATE user_sessions SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL", [now, name]
            )
        return changed == 1

    def password_hash(self, name: str) -> str | None:
        """The stored hash of an active user's password; None for an unknown, disabled or password-less user."""
        value = self.backend.read(
            "SELECT password_hash FROM users WHERE name = ? AND disabled_at IS NULL", [name]
        ).scalar()
        return str(value) if value else None

    def set_password(self, name: str, password_hash: str) -> None:
        with self.backend.transaction() as tx:
            if tx.execute("UPDATE users SET password_hash = ? WHERE name = ?", [password_hash, name]).rowcount != 1:
                raise UserNotFound(name)

    # -- personal API tokens --------------------------------------------------------------------------

    def add_token(self, name: str, token_id: str, token_hash: str, *, now: datetime) -> None:
        with self.backend.transaction() as tx:
            _require(tx, name)
            tx.execute(
                "INSERT INTO user_tokens (id, user_name, hash, created_at) VALUES (?, ?, ?, ?)",
                [token_id, name, token_hash, now],
            )

    def revoke_tokens(self, name: str, *, now: datetime) -> int:
        with self.backend.transaction() as tx:
            _require(tx, name)
            return tx.execute(
                "UPDATE user_tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL", [now, name]
            ).rowcount

    def user_for_token(self, token_hash: str) -> Principal | None:
        row = self.backend.read(
            "SELECT u.name, u.role FROM user_tokens t JOIN users u ON u.name = t.user_name"
            " WHERE t.hash = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
            [token_hash],
        ).one()
        return Principal(row[0], row[1]) if row else None

    # -- sign-in sessions -----------------------------------------------------------------------------

    def add_user_session(
        self, name: str, session_id: str, secret_hash: str, *, address: str | None, now: datetime, expires: datetime
    ) -> None:
        with self.backend.transaction() as tx:
            _require(tx, name)
            tx.execute(
                "INSERT INTO user_sessions (id, user_name, hash, address, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [session_id, name, secret_hash, address, now, expires],
            )

    def user_for_session(self, secret_hash: str, *, now: datetime) -> Principal | None:
        row = self.backend.read(
            "SELECT u.name, u.role, s.id FROM user_sessions s JOIN users u ON u.name = s.user_name"
            " WHERE s.hash = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND u.disabled_at IS NULL",
            [secret_hash, now],
        ).one()
        return Principal(row[0], row[1], row[2]) if row else None

    def list_user_sessions(self, name: str) -> list[SessionRow]:
        if self.get_user(name) is None:
            raise UserNotFound(name)
        rows = self.backend.read(
            "SELECT id, created_at, expires_at, address, revoked_at FROM user_sessions WHERE user_name = ?"
            " ORDER BY created_at, id",
            [name],
        ).rows
        return [SessionRow(*r) for r in rows]

    def revoke_user_sessions(self, name: str, *, now: datetime, session_id: str | None = None) -> int:
        """Revoke every open session of ``name`` (or only ``session_id``); the number revoked."""
        with self.backend.transaction() as tx:
            _require(tx, name)
            sql = "UPDATE user_sessions SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL"
            args: list[object] = [now, name]
            if session_id is not None:
                sql += " AND id = ?"
                args.append(session_id)
            return tx.execute(sql, args).rowcount

    # -- failed sign-ins (the rate limit) -------------------------------------------------------------

    def record_login_failure(self, name: str, address: str, *, now: datetime, forget_before: datetime) -> None:
        with self.backend.transaction() as tx:
            tx.execute("DELETE FROM login_failures WHERE at < ?", [forget_before])
            tx.execute("INSERT INTO login_failures (user_name, address, at) VALUES (?, ?, ?)", [name, address, now])

    def login_failures(self, name: str, address: str, *, since: datetime) -> tuple[list[str], list[str]]:
        """(times of failures for ``name``, times of failures from ``address``) since ``since``, oldest first."""
        rows = self.backend.read(
            "SELECT user_name, address, at FROM login_failures WHERE at >= ? AND (user_name = ? OR address = ?)"
            " ORDER BY at",
            [since, name, address],
        ).rows
        return [r[2] for r in rows if r[0] == name], [r[2] for r in rows if r[1] == address]

    def clear_login_failures(self, name: str) -> None:
        """A good sign-in forgets the user's failures (the address's stay: they may be guesses at other names)."""
        with self.backend.transaction() as tx:
            tx.execute("DELETE FROM login_failures WHERE user_name = ?", [name])
