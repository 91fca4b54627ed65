"""Throttling at the documented numbers: per account 5 free failures, then a wait of
1 min doubling to at most 15 min; per IP 30 failures per 15 minutes. And no user
enumeration: an unknown email is answered, throttled and hashed like a known one."""

from __future__ import annotations

from datetime import timedelta

import pyotp

from searchgate.accounts.throttle import ThrottlePolicy
from searchgate.audit import AuditFilter
from searchgate.errors import SearchgateError, TooManyAttempts, Unauthenticated
from searchgate.permissions import Actor
from searchgate.runtime import Services
from tests.conftest import PASSWORD, ManualClock, enrol, make_user, sign_in

SYSTEM = Actor.system()
WRONG = "not the password at all"


def attempt(services: Services, email: str, password: str = WRONG, ip: str = "192.0.2.1") -> str:
    """The outcome of one sign-in: 'ok', 'wrong' or 'wait <seconds>'."""
    try:
        services.auth.sign_in(email, password, ip=ip, user_agent="pytest")
    except TooManyAttempts as exc:
        return f"wait {exc.details['retryAfter']}"
    except Unauthenticated as exc:
        assert exc.message == "the email or password is not correct"
        return "wrong"
    return "ok"


def test_the_documented_numbers() -> None:
    p = ThrottlePolicy()
    assert (p.account_free_failures, p.ip_max_failures) == (5, 30)
    assert p.ip_window == p.account_max_delay == timedelta(minutes=15)
    assert [p.account_delay(n).total_seconds() for n in range(4, 12)] == [
        0,
        60,
        120,
        240,
        480,
        900,
        900,
        900,
    ]


def test_per_account_backoff_doubles_to_15_minutes_and_never_locks_for_good(
    accounts: Services, clock: ManualClock
) -> None:
    make_user(accounts, "vic@example.com")
    assert [attempt(accounts, "vic@example.com") for _ in range(5)] == ["wrong"] * 5
    # Even the right password waits now; waiting attempts are not counted.
    for _ in range(3):
        assert attempt(accounts, "vic@example.com", PASSWORD) == "wait 60"
    for wait in (60, 120, 240, 480, 900, 900):
        clock.advance(seconds=wait - 1)
        assert attempt(accounts, "vic@example.com", PASSWORD) == "wait 1"
        clock.advance(seconds=1)
        assert attempt(accounts, "vic@example.com") == "wrong"
        assert attempt(accounts, "vic@example.com", PASSWORD).startswith("wait")
    clock.advance(minutes=15)
    assert attempt(accounts, "vic@example.com", PASSWORD) == "ok"
    # Success starts the count again from zero.
    assert [attempt(accounts, "vic@example.com") for _ in range(5)] == ["wrong"] * 5
    assert attempt(accounts, "vic@example.com") == "wait 60"


def test_failures_are_forgotten_after_24_hours(accounts: Services, clock: ManualClock) -> None:
    make_user(accounts, "vic@example.com")
    for _ in range(5):
        attempt(accounts, "vic@example.com")
    clock.advance(hours=24, seconds=1)
    assert [attempt(accounts, "vic@example.com") for _ in range(5)] == ["wrong"] * 5


def test_an_unknown_email_looks_exactly_like_a_wrong_password(accounts: Services) -> None:
    make_user(accounts, "vic@example.com")
    hasher = accounts.passwords
    outcomes: dict[str, list[str]] = {}
    for email in ("vic@example.com", "nobody@example.com"):
        before = hasher.verifications
        outcomes[email] = [attempt(accounts, email) for _ in range(7)]
        # One argon2 verification per attempt that got past the throttle, either way.
        assert hasher.verifications - before == 5
    assert outcomes["vic@example.com"] == outcomes["nobody@example.com"]
    assert outcomes["nobody@example.com"] == ["wrong"] * 5 + ["wait 60"] * 2
    failed = accounts.audit.query(SYSTEM, AuditFilter(target="nobody@example.com")).events
    assert len(failed) == 7 and all(e.outcome == "failure" for e in failed)
    assert {e.details["reason"] for e in failed} == {"bad_credentials", "throttled"}
    assert not any(WRONG in str(e.to_dict()) for e in failed)


def test_per_ip_limit_is_30_failures_per_15_minutes(accounts: Services, clock: ManualClock) -> None:
    make_user(accounts, "vic@example.com")
    for n in range(30):  # spread over many accounts: no account limit is reached
        assert attempt(accounts, f"guess{n % 10}@example.com", ip="198.51.100.66") == "wrong"
        clock.advance(seconds=20)
    outcome = attempt(accounts, "vic@example.com", PASSWORD, ip="198.51.100.66")
    assert outcome == "wait 300"  # the window opened 10 min ago
    assert attempt(accounts, "vic@example.com", PASSWORD, ip="198.51.100.67") == "ok"
    clock.advance(minutes=5)
    assert attempt(accounts, "vic@example.com", PASSWORD, ip="198.51.100.66") == "ok"


def test_successful_sign_ins_do_not_count_against_the_ip(accounts: Services) -> None:
    make_user(accounts, "vic@example.com")
    for _ in range(35):
        assert attempt(accounts, "vic@example.com", PASSWORD, ip="10.0.0.1") == "ok"


def test_mfa_codes_are_throttled_per_account(accounts: Services, clock: ManualClock) -> None:
    make_user(accounts, "mia@example.com")
    _, seed = enrol(accounts, sign_in(accounts, "mia@example.com"))
    clock.advance(seconds=30)
    pending = accounts.auth.sign_in("mia@example.com", PASSWORD, ip="192.0.2.2", user_agent=None)

    def code(value: str) -> str:
        try:
            accounts.auth.verify_mfa(pending.secret, value, ip="192.0.2.2", user_agent=None)
        except TooManyAttempts as exc:
            return f"wait {exc.details['retryAfter']}"
        except SearchgateError:
            return "wrong"
        return "ok"

    assert [code("000000") for _ in range(5)] == ["wrong"] * 5
    assert code(pyotp.TOTP(seed).at(clock.now)) == "wait 60"
    clock.advance(seconds=60)
    assert code(pyotp.TOTP(seed).at(clock.now)) == "ok"


def test_throttled_attempts_are_recorded(accounts: Services) -> None:
    for _ in range(6):
        attempt(accounts, "x@example.com")
    log = accounts.audit.query(SYSTEM, AuditFilter(action="auth:session:sign-in")).events
    assert log[0].details == {"reason": "throttled", "retryAfter": 60}
    assert log[0].ip == "192.0.2.1" and log[0].target == "x@example.com"
