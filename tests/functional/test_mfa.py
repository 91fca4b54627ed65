"""TOTP MFA: enrolment, the second sign-in step, one use per code, recovery codes,
and the requirement for admins (or everyone)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from searchgate.audit import AuditFilter
from searchgate.config import Settings
from searchgate.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    ReauthenticationRequired,
    Unauthenticated,
)
from searchgate.permissions import Actor, Permission
from searchgate.runtime import Services, build_services
from tests.conftest import PASSWORD, ManualClock, enrol, make_user, sign_in

SYSTEM = Actor.system()
IP = "203.0.113.5"


def password_step(services: Services, email: str) -> str:
    result = services.auth.sign_in(email, PASSWORD, ip=IP, user_agent="pytest")
    assert result.mfa_required and result.session.state == "mfa_pending"
    return result.secret


def code_step(services: Services, pending: str, code: str) -> str:
    return services.auth.verify_mfa(pending, code, ip=IP, user_agent="pytest").secret


def enrolled_user(services: Services, email: str = "mia@example.com") -> str:
    make_user(services, email, "viewer")
    _, seed = enrol(services, sign_in(services, email))
    return seed


def test_enrolment_gives_a_provisioning_uri_and_needs_a_matching_code(
    accounts: Services, clock: ManualClock
) -> None:
    make_user(accounts, "mia@example.com")
    actor = accounts.sessions.authenticate(sign_in(accounts, "mia@example.com")).actor
    enrolment = accounts.mfa.begin_enrolment(actor)
    uri = urlparse(enrolment.provisioning_uri)
    query = parse_qs(uri.query)
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert "mia%40example.com" in uri.path and query["issuer"] == ["Searchgate"]
    assert query["secret"] == [enrolment.secret] and len(enrolment.secret) >= 32
    with pytest.raises(InvalidInput) as wrong:
        accounts.mfa.confirm_enrolment(actor, "000000")
    assert wrong.value.field == "code"
    assert not accounts.mfa.status(actor.user_id or "").enrolled
    codes = accounts.mfa.confirm_enrolment(actor, pyotp.TOTP(enrolment.secret).at(clock.now))
    assert len(codes) == 10 and len(set(codes)) == 10
    status = accounts.mfa.status(actor.user_id or "")
    assert status.enrolled and status.recovery_codes_left == 10
    with pytest.raises(Conflict):
        accounts.mfa.begin_enrolment(actor)
    with accounts.db.engine.connect() as conn:
        stored = repr(conn.execute(text("SELECT * FROM user_recovery_codes")).all())
    assert not any(c in stored or c.replace("-", "") in stored for c in codes)
    log = accounts.audit.query(SYSTEM, AuditFilter(action="auth:mfa:enrol")).events
    assert [e.outcome for e in log] == ["success", "failure"]


def test_sign_in_with_mfa_takes_a_code_and_issues_a_new_session(
    accounts: Services, clock: ManualClock
) -> None:
    seed = enrolled_user(accounts)
    clock.advance(seconds=30)
    pending = password_step(accounts, "mia@example.com")
    with pytest.raises(Unauthenticated) as exc:
        accounts.sessions.authenticate(pending)  # a pending session opens nothing
    assert exc.value.details["reason"] == "mfa_pending"
    with pytest.raises(Unauthenticated, match="code is not correct"):
        code_step(accounts, pending, "123456")
    final = code_step(accounts, pending, pyotp.TOTP(seed).at(clock.now))
    assert final != pending
    assert accounts.sessions.authenticate(final).actor.email == "mia@example.com"
    with pytest.raises(Unauthenticated):
        code_step(accounts, pending, pyotp.TOTP(seed).at(clock.now))  # pending is spent
    failures = accounts.audit.query(SYSTEM, AuditFilter(action="auth:mfa:verify")).events
    assert [(e.outcome, e.details["reason"]) for e in failures] == [("failure", "bad_code")]


def test_a_pending_sign_in_expires_after_five_minutes(
    accounts: Services, clock: ManualClock
) -> None:
    seed = enrolled_user(accounts)
    clock.advance(seconds=30)
    pending = password_step(accounts, "mia@example.com")
    clock.advance(minutes=5, seconds=1)
    with pytest.raises(Unauthenticated, match="too long"):
        code_step(accounts, pending, pyotp.TOTP(seed).at(clock.now))


def test_a_totp_code_is_accepted_only_once(accounts: Services, clock: ManualClock) -> None:
    seed = enrolled_user(accounts)
    totp = pyotp.TOTP(seed)
    clock.advance(seconds=30)
    code = totp.at(clock.now)
    code_step(accounts, password_step(accounts, "mia@example.com"), code)
    # Replayed within the same 30 s step, and a moment later while still valid.
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="code is not correct"):
            code_step(accounts, password_step(accounts, "mia@example.com"), code)
        clock.advance(seconds=10)
    # An older (still in the drift window) code is refused once a newer one was used.
    clock.advance(seconds=30)
    newer, older = totp.at(clock.now), totp.at(clock.now.timestamp() - 30)
    code_step(accounts, password_step(accounts, "mia@example.com"), newer)
    with pytest.raises(Unauthenticated):
        code_step(accounts, password_step(accounts, "mia@example.com"), older)
    clock.advance(seconds=30)
    code_step(accounts, password_step(accounts, "mia@example.com"), totp.at(clock.now))


def test_recovery_codes_work_once_each(accounts: Services) -> None:
    make_user(accounts, "mia@example.com")
    actor = accounts.sessions.authenticate(sign_in(accounts, "mia@example.com")).actor
    enrolment = accounts.mfa.begin_enrolment(actor)
    codes = accounts.mfa.confirm_enrolment(
        actor, pyotp.TOTP(enrolment.secret).at(accounts.audit.clock())
    )
    final = code_step(accounts, password_step(accounts, "mia@example.com"), codes[0].upper())
    assert accounts.sessions.authenticate(final).actor.user_id == actor.user_id
    with pytest.raises(Unauthenticated):
        code_step(accounts, password_step(accounts, "mia@example.com"), codes[0])
    code_step(accounts, password_step(accounts, "mia@example.com"), codes[1].replace("-", ""))
    assert accounts.mfa.status(actor.user_id or "").recovery_codes_left == 8
    signed_in = accounts.audit.query(SYSTEM, AuditFilter(action="auth:session:sign-in")).events
    assert [e.details.get("mfa") for e in signed_in[:2]] == ["recovery", "recovery"]


def test_admins_must_enrol_before_anything_is_granted(accounts: Services) -> None:
    make_user(accounts, "root@example.com", "admin")
    result = accounts.auth.sign_in("root@example.com", PASSWORD, ip=IP, user_agent=None)
    assert result.mfa_enrolment_required and not result.mfa_required
    actor = accounts.sessions.authenticate(result.secret).actor
    assert actor.mfa_enrolment_required and actor.effective_permissions == frozenset()
    assert not actor.has(Permission.USERS_READ)
    with pytest.raises(Forbidden, match="enrol in MFA first"):
        accounts.users.list(actor)
    new_secret, _ = enrol(accounts, result.secret)
    actor = accounts.sessions.authenticate(new_secret).actor
    assert actor.has(Permission.USERS_MANAGE) and not actor.mfa_enrolment_required
    viewer_id = make_user(accounts, "vic@example.com", "viewer")
    viewer = accounts.sessions.authenticate(sign_in(accounts, "vic@example.com")).actor
    assert viewer.user_id == viewer_id and not viewer.mfa_enrolment_required


@pytest.fixture
def strict(settings: Settings, clock: ManualClock) -> Iterator[Services]:
    svc = build_services(settings.model_copy(update={"mfa_required_for_all": True}), clock=clock)
    yield svc
    svc.db.dispose()


def test_mfa_can_be_required_for_everyone(strict: Services) -> None:
    make_user(strict, "vic@example.com", "viewer")
    actor = strict.sessions.authenticate(sign_in(strict, "vic@example.com")).actor
    assert actor.mfa_enrolment_required and not actor.has(Permission.COLLECTIONS_READ)


def test_turning_mfa_off_needs_reauthentication_and_an_admin_can_reset_it(
    accounts: Services, clock: ManualClock
) -> None:
    enrolled_user(accounts)
    uid = accounts.users.get(SYSTEM, "mia@example.com").id
    accounts.users.reset_mfa(SYSTEM, "mia@example.com")
    assert not accounts.mfa.status(uid).enrolled
    secret = sign_in(accounts, "mia@example.com")  # no code asked any more
    _, seed = enrol(accounts, secret)
    clock.advance(minutes=6)
    pending = password_step(accounts, "mia@example.com")
    final = code_step(accounts, pending, pyotp.TOTP(seed).at(clock.now))
    clock.advance(minutes=6)
    actor = accounts.sessions.authenticate(final).actor
    with pytest.raises(ReauthenticationRequired):
        accounts.mfa.disable_own(actor)
    clock.advance(seconds=30)
    accounts.auth.reauthenticate(actor, code=pyotp.TOTP(seed).at(clock.now))
    actor = accounts.sessions.authenticate(final).actor
    accounts.mfa.disable_own(actor)
    assert not accounts.mfa.status(uid).enrolled
    actions = [e.action for e in accounts.audit.query(SYSTEM, AuditFilter(user=uid)).events]
    assert "auth:mfa:disable" in actions


# Digits of other scripts and forms (str.isdigit() holds for each), and a recovery code
# shape with a letter that lower-cases to two characters: none is a code. Four, so that
# the throttle (five free failures) lets the right code through after them.
FOREIGN_CODES = [
    "\u00b2" * 6,  # superscript two
    "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic 1 to 6
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth 1 to 6
    "abcde-fgh\u0130",  # capital I with dot above
]


def test_a_code_in_foreign_digits_is_a_wrong_code_and_recorded(
    accounts: Services, clock: ManualClock
) -> None:
    seed = enrolled_user(accounts)
    clock.advance(seconds=30)
    pending = password_step(accounts, "mia@example.com")
    for code in FOREIGN_CODES:
        with pytest.raises(Unauthenticated, match="code is not correct") as exc:
            code_step(accounts, pending, code)
        assert exc.value.field == "code"
    actor = accounts.sessions.authenticate(sign_in_mfa(accounts, pending, seed, clock)).actor
    with pytest.raises(InvalidInput) as wrong:
        accounts.auth.reauthenticate(actor, code="²²²²²²")
    assert wrong.value.field == "code"
    failures = accounts.audit.query(SYSTEM, AuditFilter(action="auth:mfa:verify")).events
    assert [(e.outcome, e.details["reason"]) for e in failures] == [("failure", "bad_code")] * len(
        FOREIGN_CODES
    )
    reauth = accounts.audit.query(SYSTEM, AuditFilter(action="auth:session:reauthenticate"))
    assert [e.outcome for e in reauth.events] == ["failure"]


def sign_in_mfa(services: Services, pending: str, seed: str, clock: ManualClock) -> str:
    return code_step(services, pending, pyotp.TOTP(seed).at(clock.now))


def test_enrolment_refuses_a_code_in_foreign_digits(accounts: Services) -> None:
    make_user(accounts, "mia@example.com")
    actor = accounts.sessions.authenticate(sign_in(accounts, "mia@example.com")).actor
    accounts.mfa.begin_enrolment(actor)
    with pytest.raises(InvalidInput) as wrong:
        accounts.mfa.confirm_enrolment(actor, "²²²²²²")
    assert wrong.value.field == "code"
    log = accounts.audit.query(SYSTEM, AuditFilter(action="auth:mfa:enrol")).events
    assert [e.outcome for e in log] == ["failure"]


def test_any_code_string_is_checked_without_raising(accounts: Services, clock: ManualClock) -> None:
    enrolled_user(accounts)
    uid = accounts.users.get(SYSTEM, "mia@example.com").id
    codes = (
        st.text()
        | st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=6, max_size=6)
        | st.text(st.characters(categories=["Nd", "No", "Ll", "Lu", "Pd", "Zs"]), max_size=12)
    )

    @hsettings(max_examples=300, deadline=None)
    @given(code=codes)
    def check(code: str) -> None:
        with accounts.db.write() as s:
            method = accounts.mfa.consume(s, uid, code, clock.now)
        assert method in (None, "totp", "recovery")

    check()
