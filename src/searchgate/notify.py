"""PostgreSQL LISTEN/NOTIFY: the processes that follow the database's changes (the
indexer, the key cache) are woken when a change commits rather than at their next poll.

A notification is sent in the transaction of the change it announces, so it is
delivered when that commits and never when it rolls back. It is a wake-up call, not a
message to rely on: a process that was not listening (starting, or cut off from the
database) learns of the change at its next poll, which stays as the fallback. SQLite
has no notifications; its followers poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from searchgate.db import Database

log = logging.getLogger("searchgate.notify")

# Payload: the last change-log position the transaction wrote.
CHANGES = "searchgate_changes"
# Payload: the id of the client key that changed.
KEYS = "searchgate_keys"
# Payload: a change-log position an upload waits for (``?wait=true``) on every process.
WAITING = "searchgate_waiting"

Handler = Callable[[str], None]

# How long the listening thread waits for notifications before it looks whether it
# should stop: also the longest ``Listener.stop`` takes.
IDLE_SECONDS = 0.2
RETRY_SECONDS = 1.0


def is_postgres(db: Database) -> bool:
    return not db.is_sqlite


def notify(s: Session, channel: str, payload: str = "") -> None:
    """Announces a change when ``s``'s transaction commits (nothing on SQLite)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
        )


def ask_commit(db: Database, seq: int) -> None:
    """Asks every listening process to make change ``seq`` searchable at once, rather
    than at its next timed commit (a ``?wait=true`` upload waits for all of them)."""
    if is_postgres(db):
        with db.write() as s:
            notify(s, WAITING, str(seq))


def conninfo(url: str) -> str:
    """The libpq connection string of a SQLAlchemy database URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """One connection per process that LISTENs on ``handlers``' channels and calls the
    handler of each notification with its payload, on its own thread.

    After every (re)connection each handler is called once with an empty payload: what
    was committed while nobody listened is then looked for at once.
    """

    def __init__(
        self,
        url: str,
        handlers: Mapping[str, Handler],
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._conninfo = conninfo(url)
        self._handlers = dict(handlers)
        self._retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="searchgate-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                if self._connected.is_set():
                    log.warning("lost the database's notifications (%s); polling meanwhile", exc)
                self._connected.clear()
                self._stop.wait(self._retry_seconds)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
            for channel in self._handlers:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._connected.set()
            for handler in self._handlers.values():
                self._call(handler, "")
            while not self._stop.is_set():
                for note in conn.notifies(timeout=IDLE_SECONDS):
                    found = self._handlers.get(note.channel)
                    if found is not None:
                        self._call(found, note.payload)
        self._connected.clear()

    @staticmethod
    def _call(handler: Handler, payload: str) -> None:
        try:
            handler(payload)
        except Exception:
            # A failing follower must not stop the others from being woken.
            log.exception("a follower of the database's notifications failed")
