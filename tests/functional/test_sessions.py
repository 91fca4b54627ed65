"""Server-side sessions: fresh ids, timeouts on a moving clock, rotation on privilege
change, listing and ending, CSRF tokens."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from searchgate.audit import AuditFilter
from searchgate.errors import Forbidden, Unauthenticated
from searchgate.permissions import Actor, Permission
from searchgate.runtime import Services
from tests.conftest import ManualClock, make_user, sign_in

SYSTEM = Actor.system()


def reason(services: Services, secret: str) -> str:
    with pytest.raises(Unauthenticated) as exc:
        services.sessions.authenticate(secret)
    return str(exc.value.details["reason"])


def test_every_sign_in_gets_a_new_random_id_stored_only_as_a_digest(accounts: Services) -> None:
    make_user(accounts, "vic@example.com")
    first = sign_in(accounts, "vic@example.com")
    second = sign_in(accounts, "vic@example.com")
    assert first != second
    assert len(first) >= 43  # 32 random bytes, URL-safe base64: 256 bits
    one = accounts.sessions.authenticate(first)
    two = accounts.sessions.authenticate(second)
    assert one.session.id != two.session.id and one.session.id.startswith("ses_")
    assert one.actor.session_id == one.session.id  # the public id, not the cookie
    with accounts.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM user_sessions")).all()
    dumped = repr(rows)
    assert len(rows) == 2 and first not in dumped and second not in dumped
    # Signing out one leaves the other.
    accounts.sessions.sign_out(first)
    assert reason(accounts, first) == "signed_out"
    assert accounts.sessions.authenticate(second).actor.user_id == one.actor.user_id


def test_an_unknown_or_empty_cookie_is_refused(accounts: Services) -> None:
    assert reason(accounts, "") == "no_session"
    assert reason(accounts, "A" * 43) == "no_session"


def test_idle_timeout_is_30_minutes_without_a_request(
    accounts: Services, clock: ManualClock
) -> None:
    make_user(accounts, "vic@example.com")
    secret = sign_in(accounts, "vic@example.com")
    for _ in range(3):  # activity keeps it alive well past 30 minutes in total
        clock.advance(minutes=29)
        assert accounts.sessions.authenticate(secret).new_secret is None
    clock.advance(minutes=30, seconds=1)
    assert reason(accounts, secret) == "idle_timeout"
    clock.advance(minutes=1)
    assert reason(accounts, secret) == "idle_timeout"  # stays ended
    assert accounts.sessions.list_for_user(SYSTEM, accounts.users.list(SYSTEM)[0].id) == []


def test_absolute_timeout_is_12_hours_whatever_the_activity(
    accounts: Services, clock: ManualClock
) -> None:
    make_user(accounts, "vic@example.com")
    secret = sign_in(accounts, "vic@example.com")
    info = accounts.sessions.authenticate(secret).session
    for _ in range(35):  # 35 x 20 min = 11 h 40 min
        clock.advance(minutes=20)
        accounts.sessions.authenticate(secret)
    assert info.created_at + accounts.sessions.policy.absolute > clock.now
    clock.advance(minutes=20, seconds=1)
    assert reason(accounts, secret) == "absolute_timeout"


def test_a_privilege_change_gives_the_session_a_new_id(
    accounts: Services, clock: ManualClock
) -> None:
    uid = make_user(accounts, "vic@example.com")
    secret = sign_in(accounts, "vic@example.com")
    before = accounts.sessions.authenticate(secret)
    assert not before.actor.has(Permission.COLLECTIONS_WRITE)
    clock.advance(minutes=1)
    accounts.users.update(SYSTEM, uid, role="merchandiser")
    after = accounts.sessions.authenticate(secret)
    assert after.new_secret is not None and after.new_secret != secret
    assert after.session.id != before.session.id
    assert after.actor.has(Permission.COLLECTIONS_WRITE)
    # The absolute limit still counts from sign-in; the old cookie is dead.
    assert after.session.created_at == before.session.created_at
    assert reason(accounts, secret) == "rotated"
    again = accounts.sessions.authenticate(after.new_secret)
    assert again.new_secret is None and again.session.id == after.session.id
    # A changed role's permissions rotate its holders' sessions too.
    accounts.roles.create(SYSTEM, "auditor", ["admin:audit:read"])
    accounts.users.update(SYSTEM, uid, role="auditor")
    rotated = accounts.sessions.authenticate(after.new_secret).new_secret
    assert rotated is not None
    accounts.roles.update(SYSTEM, "auditor", permissions=["admin:audit:read", "admin:users:read"])
    assert accounts.sessions.authenticate(rotated).new_secret is not None


def test_sessions_are_listed_and_ended_by_their_owner_or_an_admin(accounts: Services) -> None:
    vic = make_user(accounts, "vic@example.com")
    make_user(accounts, "val@example.com")
    laptop = sign_in(accounts, "vic@example.com")
    phone = sign_in(accounts, "vic@example.com")
    val = accounts.sessions.authenticate(sign_in(accounts, "val@example.com")).actor
    me = accounts.sessions.authenticate(laptop).actor
    mine = accounts.sessions.list_for_user(me)
    assert len(mine) == 2 and {s.user_id for s in mine} == {vic}
    phone_id = accounts.sessions.authenticate(phone).session.id
    with pytest.raises(Forbidden):
        accounts.sessions.list_for_user(val, vic)
    with pytest.raises(Forbidden):
        accounts.sessions.end(val, phone_id)
    accounts.sessions.end(me, phone_id)
    assert reason(accounts, phone) == "ended"
    assert accounts.sessions.authenticate(laptop).actor.user_id == vic
    assert accounts.sessions.end_all(SYSTEM, vic) == 1
    assert reason(accounts, laptop) == "ended"
    log = accounts.audit.query(SYSTEM, AuditFilter(user="val@example.com")).events
    assert [(e.action, e.outcome) for e in log][:2] == [
        ("auth:session:end", "denied"),
        ("admin:users:list", "denied"),
    ]


def test_reauthentication_is_stamped_on_the_session(accounts: Services, clock: ManualClock) -> None:
    make_user(accounts, "vic@example.com")
    secret = sign_in(accounts, "vic@example.com")
    window = accounts.authorizer.reauth_window
    assert accounts.sessions.authenticate(secret).actor.reauthenticated_within(window, clock.now)
    clock.advance(minutes=6)
    actor = accounts.sessions.authenticate(secret).actor
    assert not actor.reauthenticated_within(window, clock.now)
    accounts.auth.reauthenticate(actor, password="correct horse battery staple")
    actor = accounts.sessions.authenticate(secret).actor
    assert actor.reauthenticated_within(window, clock.now)
    assert actor.reauthenticated_at == clock.now


def test_csrf_tokens_are_bound_to_the_session(accounts: Services) -> None:
    make_user(accounts, "vic@example.com")
    one, two = sign_in(accounts, "vic@example.com"), sign_in(accounts, "vic@example.com")
    token = accounts.sessions.csrf_token(one)
    assert accounts.sessions.check_csrf(one, token)
    assert not accounts.sessions.check_csrf(two, token)
    assert not accounts.sessions.check_csrf(one, "")
    assert not accounts.sessions.check_csrf("", accounts.sessions.csrf_token(""))
    assert one not in token


def test_old_sessions_are_forgotten_at_the_next_sign_in(
    accounts: Services, clock: ManualClock
) -> None:
    make_user(accounts, "vic@example.com")
    old = sign_in(accounts, "vic@example.com")
    accounts.sessions.sign_out(old)
    sign_in(accounts, "vic@example.com")
    clock.advance(days=7, minutes=1)
    sign_in(accounts, "vic@example.com")
    with accounts.db.engine.connect() as conn:
        ends = conn.execute(text("SELECT end_reason FROM user_sessions")).scalars().all()
    # The signed-out one went; the expired one (never marked ended) stays a while.
    assert sorted(e or "" for e in ends) == ["", ""]
