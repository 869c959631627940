"""Surviving a lost database connection (server restart, failover, idle timeout, pg_terminate_backend).

:class:`Retry` runs a database step again after a lost connection, with a doubling wait, a bounded
number of times; then :class:`LostDatabase` (exit 3, one line). :class:`SyncConnection` is a sync
worker's own session: its claims (session advisory locks), its run's lock and its batch writes live
on one connection, so a write that commits was made under the claims, and after a reconnect the
claims and the run lock are taken back before anything else is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from . import store, tables
from .errors import DatabaseError, first_line


class LostDatabase(DatabaseError):
    """The database stayed away longer than the retries allow."""


def is_connection_lost(error: BaseException) -> bool:
    """A dropped or refused connection, from psycopg directly or through SQLAlchemy."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


@dataclass
class Retry:
    retries: int = 8
    wait: float = 0.5
    max_wait: float = 10.0

    @classmethod
    def from_settings(cls, settings) -> "Retry":
        return cls(max(0, settings.get("sync.db_retries")), max(0.0, settings.get("sync.db_retry_wait")))

    def call(self, step: Callable[[], Any], reconnect: Callable[[], None] | None = None) -> Any:
        """``step()``; after a lost connection, wait, ``reconnect()`` and run it again."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return step()
            except Exception as error:  # noqa: BLE001 - only a lost connection is retried
                if not is_connection_lost(error):
                    raise
                attempt += 1
                if attempt > self.retries:
                    raise LostDatabase(
                        f"lost the database connection ({first_line(error)}); gave up after {self.retries} "
                        f"retries over {time.monotonic() - started:.0f} s. Run the command again to resume "
                        "(sync.db_retries, sync.db_retry_wait)") from None
                time.sleep(min(self.max_wait, self.wait * 2 ** (attempt - 1)))
                if reconnect is not None:
                    self.quietly(reconnect)

    @staticmethod
    def quietly(reconnect: Callable[[], None]) -> None:
        """A reconnect that fails leaves the step to fail again, which counts as the next attempt."""
        try:
            reconnect()
        except Exception as error:  # noqa: BLE001
            if not is_connection_lost(error):
                raise


class SyncConnection:
    def __init__(self, url: str, id_type: str, retry: Retry, table: str | None = None):
        """table: the configuration's table the writes and claims go to (``use_table`` changes it)."""
        self.url, self.id_type, self.retry = url, id_type, retry
        self.table = table or tables.qualified(tables.VIEW)
        self.run_id: int | None = None
        self.held: set = set()           # the pictures this worker holds claims on, on this session
        self.to_retake: set = set()      # claims lost with a session, not taken back yet
        self.generation = 0              # goes up with every reconnect: claims made before may be gone
        self.writer: store.BatchWriter | None = None
        self.claims: store.Claims | None = None
        self.retry.call(self.connect, self.connect)

    def connect(self) -> None:
        self.close()
        self.writer = store.BatchWriter(self.url, self.id_type, self.table)
        self.claims = store.Claims(self.url, self.table, self.writer.connection)

    def use_table(self, table: str) -> None:
        """Write and claim into ``table`` from now on, on the same session (the run lock stays)."""
        if self.held:
            raise RuntimeError("cannot change tables while holding claims")
        self.table = table

        def attach() -> None:
            self.writer = store.BatchWriter(self.url, self.id_type, table, self.writer.connection)
            self.claims = store.Claims(self.url, table, self.writer.connection)
        self.call(attach)

    def reconnect(self) -> None:
        """A new session, then the run lock and the claims taken back; until that has all worked, the
        lost claims are not counted as held (a write never relies on a claim it may not have)."""
        self.generation += 1
        self.to_retake |= self.held
        self.held = set()
        self.connect()
        if self.run_id is not None:
            store.lock_run(self.writer.connection, self.run_id)
        if self.to_retake:
            self.held = self.claims.claim(list(self.to_retake))
        self.to_retake = set()

    def call(self, step: Callable[[], Any]) -> Any:
        return self.retry.call(step, self.reconnect)

    def start_run(self, worker: str, config_id: str, catalogue_size: int | None = None) -> int:
        self.run_id = self.call(lambda: store.start_locked_run(self.writer.connection, worker, config_id,
                                                               catalogue_size))
        return self.run_id

    def claim(self, ids: list) -> set:
        """Claim those of ``ids`` this worker does not hold yet (a second lock would need a second unlock)."""
        def step() -> set:
            new = [artwork_id for artwork_id in ids if artwork_id not in self.held]
            self.held |= self.claims.claim(new) if new else set()
            return {artwork_id for artwork_id in ids if artwork_id in self.held}
        return self.call(step)

    def release(self, ids: list) -> None:
        self.to_retake -= set(ids)
        ids = [artwork_id for artwork_id in ids if artwork_id in self.held]
        self.held -= set(ids)
        self.call(lambda: self.claims.release(ids))

    def run_counts(self) -> tuple[int, int]:
        return store.run_counts(self.writer.connection, self.run_id)

    def close(self) -> None:
        """Close the session; the objects stay, so a step run before a reconnect succeeds fails as
        a lost connection ("the connection is closed"), and is retried."""
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - a dead connection closes as well as it can
                pass
