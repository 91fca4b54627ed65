"""Followers woken by the database: PostgreSQL NOTIFY sent in the transaction of each
change, and the revocation watch a serving process uses to fail closed.

NOTIFY is delivered when its transaction commits and never when it rolls back; SQLite
has no such thing (its followers poll), so those tests run on PostgreSQL only. The
revocation watch runs on both.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from searchgate import notify
from searchgate.audit.tags import Action
from searchgate.db import Database
from searchgate.errors import RevocationsUnconfirmed
from searchgate.keys.check import Presented, RequestContext
from searchgate.keys.revocations import RevocationWatch
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.runtime import Services
from tests import pg
from tests.keyhelp import SYSTEM

DEADLINE = 10.0
CONTEXT = RequestContext(
    ip="198.51.100.1", origin=None, system="tests", user_agent=None, browser_tokens=False
)


class Heard:
    """What a listener heard, per channel, in order."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[str, str]] = queue.Queue()

    def handler(self, channel: str) -> notify.Handler:
        return lambda payload: self.items.put((channel, payload))

    def next_on(self, channel: str) -> str:
        """The next payload on ``channel`` (a reconnect's empty wake-ups are skipped)."""
        while True:
            got_channel, payload = self.items.get(timeout=DEADLINE)
            if got_channel == channel and payload:
                return payload


@pytest.fixture
def pg_services(services: Services) -> Services:
    if services.db.is_sqlite:
        pytest.skip("SQLite has no NOTIFY: its followers poll")
    return services


@pytest.fixture
def heard(pg_services: Services) -> Iterator[Heard]:
    found = Heard()
    listener = notify.Listener(
        pg_services.db.url,
        {
            notify.CHANGES: found.handler(notify.CHANGES),
            notify.KEYS: found.handler(notify.KEYS),
            notify.WAITING: found.handler(notify.WAITING),
        },
    )
    listener.start()
    assert listener.wait_connected(DEADLINE)
    yield found
    listener.stop()


def test_an_upload_notifies_its_last_change_log_position(
    pg_services: Services, heard: Heard
) -> None:
    result = pg_services.catalog.write_records("c", [{"id": "a", "title": "one"}])
    assert int(heard.next_on(notify.CHANGES)) == result.seq
    result = pg_services.catalog.write_records("c", [{"id": "b", "title": "two"}])
    assert int(heard.next_on(notify.CHANGES)) == result.seq


def test_a_key_change_notifies_and_a_rolled_back_one_does_not(
    pg_services: Services, heard: Heard
) -> None:
    created = pg_services.keys.create(SYSTEM, "notified", ALL_SCOPES)
    assert heard.next_on(notify.KEYS) == created.info.id
    with pg_services.db.write() as s:
        notify.notify(s, notify.KEYS, "rolled-back")
        s.rollback()
    pg_services.keys.disable(SYSTEM, "notified")
    # Delivered in commit order: the rolled-back one would have come first.
    assert heard.next_on(notify.KEYS) == created.info.id


def test_the_listener_reconnects_after_its_connection_is_killed(
    pg_services: Services, heard: Heard
) -> None:
    with pg_services.db.write() as s:
        s.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
            )
        )
    # Once listening again, commits are heard; the poll of the followers covers the gap.
    while True:
        created = pg_services.keys.create(SYSTEM, f"after-{heard.items.qsize()}", ALL_SCOPES)
        try:
            assert heard.next_on(notify.KEYS) == created.info.id
            return
        except queue.Empty:
            continue


def test_a_waiting_upload_asks_other_processes_to_commit_at_once(
    pg_services: Services, heard: Heard
) -> None:
    notify.ask_commit(pg_services.db, 42)
    assert heard.next_on(notify.WAITING) == "42"


# --- failing closed ---------------------------------------------------------------------


class Moved:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_refused_once_revocations_are_unconfirmed_for_longer_than_the_bound(
    services: Services,
) -> None:
    key = services.keys.create(SYSTEM, "watched", ALL_SCOPES).secret
    moved = Moved()
    watch = RevocationWatch(services.db, services.keys.forget_cache, 5.0, monotonic=moved)
    services.keys.watch_revocations(watch)
    assert watch.refresh()
    services.keys.authorize(Presented(key), CONTEXT, Scope.SEARCH, None)

    moved.now += 5.0  # at the bound: still trusted
    services.keys.authorize(Presented(key), CONTEXT, Scope.SEARCH, None)
    moved.now += 0.5
    with pytest.raises(RevocationsUnconfirmed) as refused:
        services.keys.authorize(Presented(key), CONTEXT, Scope.SEARCH, None)
    assert refused.value.code == "revocations_unconfirmed"
    assert refused.value.retry_after >= 1
    assert key not in refused.value.message

    # Confirmed again (the database answers): accepted without anything else.
    assert watch.refresh()
    services.keys.authorize(Presented(key), CONTEXT, Scope.SEARCH, None)


def test_a_revocation_seen_by_the_watch_empties_the_cache_at_once(services: Services) -> None:
    key = services.keys.create(SYSTEM, "cached", ALL_SCOPES).secret
    watch = RevocationWatch(services.db, services.keys.forget_cache, 5.0)
    services.keys.watch_revocations(watch)
    assert watch.refresh()
    services.keys.authorize(Presented(key), CONTEXT, Scope.SEARCH, None)
    # Disabled by another process: this one's cache would trust the key for a while.
    other = Database(services.db.url)
    try:
        with other.write() as s:
            s.execute(text("UPDATE client_keys SET disabled_at = created_at"))
            services.audit.record(s, SYSTEM, Action.KEY_DISABLE, target="cached")
    finally:
        other.dispose()
    assert watch.refresh()
    with pytest.raises(Exception, match="disabled"):
        services.keys.authorize(Presented(key), CONTEXT, Scope.SEARCH, None)


def test_an_unreachable_database_is_never_confirmed() -> None:
    # Nothing listens on this port: every check fails at once.
    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{pg.free_port()}/none")
    forgotten = threading.Event()
    watch = RevocationWatch(db, forgotten.set, 5.0)
    try:
        assert not watch.refresh()
        assert not watch.fresh()
    finally:
        db.dispose()
