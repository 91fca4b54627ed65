"""Users and roles: creation, guards against escalation and against losing the last
admin, disabling and deleting, password rehash; and ``searchgate users``."""

from __future__ import annotations

import json
from pathlib import Path

import argon2
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from searchgate.accounts.models import UserRow
from searchgate.audit import AuditFilter
from searchgate.cli.main import app
from searchgate.config import Settings
from searchgate.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ReauthenticationRequired,
    Unauthenticated,
)
from searchgate.permissions import Actor
from searchgate.runtime import Services, build_services
from tests.conftest import PASSWORD, ManualClock, enrol, make_user, sign_in

SYSTEM = Actor.system()


def session_actor(services: Services, email: str) -> tuple[str, Actor]:
    """Signs in (enrolling in MFA when the role requires it); returns cookie and actor."""
    secret = sign_in(services, email)
    auth = services.sessions.authenticate(secret)
    if auth.actor.mfa_enrolment_required:
        secret, _ = enrol(services, secret)
        auth = services.sessions.authenticate(secret)
    return secret, auth.actor


def events(services: Services, **filters: str) -> list[dict[str, object]]:
    page = services.audit.query(SYSTEM, AuditFilter(**filters), limit=500)  # type: ignore[arg-type]
    return [e.to_dict() for e in page.events]


def test_a_fresh_database_has_no_account_at_all(accounts: Services) -> None:
    assert accounts.users.list(SYSTEM) == []
    with pytest.raises(Unauthenticated):
        accounts.auth.sign_in("admin@example.com", "admin", ip="192.0.2.1", user_agent=None)
    assert {r.name for r in accounts.roles.list(SYSTEM)} == {"admin", "merchandiser", "viewer"}


def test_create_validates_and_refuses_duplicates(accounts: Services) -> None:
    info = accounts.users.create(SYSTEM, " Ann@Example.COM ", PASSWORD, "merchandiser", "Ann")
    assert (info.email, info.role, info.state, info.is_admin) == (
        "ann@example.com",
        "merchandiser",
        "active",
        False,
    )
    with pytest.raises(Conflict) as exc:
        accounts.users.create(SYSTEM, "ANN@example.com", PASSWORD, "viewer")
    assert exc.value.field == "email"
    for email, password, role, field in (
        ("not-an-email", PASSWORD, "viewer", "email"),
        ("bob@example.com", "short", "viewer", "password"),
        ("bob@example.com", PASSWORD, "superuser", "role"),
    ):
        with pytest.raises(InvalidInput) as bad:
            accounts.users.create(SYSTEM, email, password, role)
        assert bad.value.field == field
    assert "merchandiser" in str(bad.value.message)  # the error lists the roles that exist
    stored = accounts.db.engine.connect().execute(text("SELECT password_hash FROM users")).all()
    assert len(stored) == 1 and stored[0][0].startswith("$argon2id$")
    assert PASSWORD not in stored[0][0]


def test_the_last_admin_cannot_be_demoted_disabled_or_deleted(accounts: Services) -> None:
    root = make_user(accounts, "root@example.com", "admin")
    with pytest.raises(Conflict, match="last active admin"):
        accounts.users.update(SYSTEM, root, role="viewer")
    with pytest.raises(Conflict, match="last active admin"):
        accounts.users.disable(SYSTEM, root)
    with pytest.raises(Conflict, match="last active admin"):
        accounts.users.delete(SYSTEM, "root@example.com")
    assert accounts.users.get(SYSTEM, root).role == "admin"
    # A custom role that manages users counts as admin; stripping that from the only
    # role held by an admin is refused too.
    accounts.roles.create(SYSTEM, "people", ["admin:users:manage", "admin:users:read"])
    ops = make_user(accounts, "ops@example.com", "people")
    accounts.users.update(SYSTEM, root, role="viewer")  # ops is an admin now
    with pytest.raises(Conflict, match="no active admin"):
        accounts.roles.update(SYSTEM, "people", permissions=["admin:users:read"])
    assert accounts.users.admin_summary(SYSTEM).active_admins == 1
    # With a second admin, demotion works.
    accounts.users.update(SYSTEM, root, role="admin")
    accounts.users.update(SYSTEM, ops, role="viewer")
    assert [u.email for u in accounts.users.list(SYSTEM) if u.is_admin] == ["root@example.com"]


def test_admin_count_warns_above_the_configured_maximum(accounts: Services) -> None:
    for n in range(accounts.users.max_admins + 1):
        make_user(accounts, f"admin{n}@example.com", "admin")
    summary = accounts.users.admin_summary(SYSTEM)
    assert summary.active_admins == 4 == summary.max_admins + 1
    assert summary.too_many and summary.admins_without_mfa == 4
    last = events(accounts, action="admin:users:create")[0]
    assert "more than the 3 configured" in str(last["details"])


def test_nobody_hands_out_more_than_they_hold(accounts: Services) -> None:
    make_user(accounts, "root@example.com", "admin")
    viewer = sorted(accounts.roles.get(SYSTEM, "viewer").permissions)
    accounts.roles.create(SYSTEM, "helpdesk", ["admin:users:read", "admin:users:manage", *viewer])
    make_user(accounts, "help@example.com", "helpdesk")
    make_user(accounts, "vic@example.com", "viewer")
    _, helpdesk = session_actor(accounts, "help@example.com")
    with pytest.raises(Forbidden, match="admin:keys:manage"):
        accounts.users.create(helpdesk, "eve@example.com", PASSWORD, "admin")
    with pytest.raises(Forbidden):
        accounts.users.disable(helpdesk, "root@example.com")
    with pytest.raises(Forbidden):
        accounts.roles.create(helpdesk, "keys", ["admin:keys:manage"])  # no roles:manage
    with pytest.raises(Forbidden, match="permissions you do not hold"):
        accounts.users.update(helpdesk, "vic@example.com", role="merchandiser")
    # Within their own rights, they can act.
    accounts.users.create(helpdesk, "new@example.com", PASSWORD, "helpdesk")
    accounts.users.disable(helpdesk, "vic@example.com")
    denied = events(accounts, outcome="denied")
    assert {e["action"] for e in denied} >= {"admin:users:create", "admin:users:disable"}
    assert all(e["actor"]["email"] == "help@example.com" for e in denied)  # type: ignore[index]


def test_sensitive_changes_need_a_recent_reauthentication(
    accounts: Services, clock: ManualClock
) -> None:
    make_user(accounts, "root@example.com", "admin")
    make_user(accounts, "vic@example.com", "viewer")
    secret, admin = session_actor(accounts, "root@example.com")
    clock.advance(minutes=6)
    admin = accounts.sessions.authenticate(secret).actor
    with pytest.raises(ReauthenticationRequired):
        accounts.users.update(admin, "vic@example.com", role="merchandiser")
    with pytest.raises(InvalidInput):
        accounts.auth.reauthenticate(admin, password="wrong password here")
    accounts.auth.reauthenticate(admin, password=PASSWORD)
    admin = accounts.sessions.authenticate(secret).actor
    assert accounts.users.update(admin, "vic@example.com", role="merchandiser").role == (
        "merchandiser"
    )
    assert [e["outcome"] for e in events(accounts, action="auth:session:reauthenticate")] == [
        "success",
        "failure",
    ]


def test_nobody_disables_or_deletes_themselves(accounts: Services) -> None:
    make_user(accounts, "root@example.com", "admin")
    make_user(accounts, "second@example.com", "admin")
    _, admin = session_actor(accounts, "root@example.com")
    with pytest.raises(Conflict, match="your own account"):
        accounts.users.disable(admin, "root@example.com")
    with pytest.raises(Conflict, match="your own account"):
        accounts.users.delete(admin, "root@example.com")


def test_disabling_ends_sessions_and_tokens_on_the_next_request(accounts: Services) -> None:
    make_user(accounts, "vic@example.com", "viewer")
    secret, actor = session_actor(accounts, "vic@example.com")
    token = accounts.tokens.create(actor, "script").secret
    assert accounts.tokens.authenticate(token).user_id == actor.user_id
    accounts.users.disable(SYSTEM, "vic@example.com")
    with pytest.raises(Unauthenticated) as ended:
        accounts.sessions.authenticate(secret)
    assert ended.value.details["reason"] in ("user_disabled", "ended")
    with pytest.raises(Unauthenticated):
        accounts.tokens.authenticate(token)
    with pytest.raises(Unauthenticated):
        accounts.auth.sign_in("vic@example.com", PASSWORD, ip="192.0.2.9", user_agent=None)
    # Enabling lets them sign in again, but nothing old comes back.
    accounts.users.enable(SYSTEM, "vic@example.com")
    with pytest.raises(Unauthenticated):
        accounts.sessions.authenticate(secret)
    with pytest.raises(Unauthenticated, match="revoked"):
        accounts.tokens.authenticate(token)
    sign_in(accounts, "vic@example.com")
    details = events(accounts, action="admin:users:disable")[0]["details"]
    assert details == {"user": actor.user_id, "sessionsEnded": 1, "tokensRevoked": 1}


def test_deleting_a_user_keeps_their_name_on_their_events(accounts: Services) -> None:
    make_user(accounts, "root@example.com", "admin")
    uid = accounts.users.create(SYSTEM, "dora@example.com", PASSWORD, "viewer", "Dora Explorer").id
    secret, dora = session_actor(accounts, "dora@example.com")
    accounts.tokens.create(dora, "report")
    accounts.users.delete(SYSTEM, uid)
    with pytest.raises(NotFound):
        accounts.users.get(SYSTEM, uid)
    with pytest.raises(Unauthenticated):
        accounts.sessions.authenticate(secret)
    mine = events(accounts, user=uid)
    assert {e["action"] for e in mine} == {"auth:session:sign-in", "account:tokens:create"}
    assert all(e["actor"]["name"] == "Dora Explorer" for e in mine)  # type: ignore[index]
    assert events(accounts, user="dora@example.com") == mine
    assert accounts.audit.verify().ok


def test_password_is_rehashed_at_sign_in_when_parameters_rise(accounts: Services) -> None:
    uid = make_user(accounts, "old@example.com", "viewer")
    weak = argon2.PasswordHasher(memory_cost=8 * 1024, time_cost=1, parallelism=1).hash(PASSWORD)
    with accounts.db.write() as s:
        s.get_one(UserRow, uid).password_hash = weak
    sign_in(accounts, "old@example.com")
    with accounts.db.read() as s:
        stored = s.scalar(select(UserRow.password_hash).where(UserRow.id == uid))
    assert stored is not None and stored != weak
    params = argon2.extract_parameters(stored)
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2
    sign_in(accounts, "old@example.com")  # the new hash checks out


def test_custom_roles_compose_permissions_and_areas(accounts: Services) -> None:
    accounts.areas.create(Actor.system(name="test"), "Staging")
    role = accounts.roles.create(
        SYSTEM, "Staging editor", ["console:collections:read", "console:areas:manage"], ["Staging"]
    )
    assert role.areas == {"Staging"} and not role.builtin
    with pytest.raises(InvalidInput, match="unknown area"):
        accounts.roles.create(SYSTEM, "x", ["console:areas:read"], ["Nowhere"])
    with pytest.raises(InvalidInput, match="unknown permission"):
        accounts.roles.create(SYSTEM, "y", ["console:everything:do"])
    with pytest.raises(Conflict, match="built-in"):
        accounts.roles.update(SYSTEM, "viewer", permissions=["admin:audit:read"])
    with pytest.raises(Conflict, match="built-in"):
        accounts.roles.create(SYSTEM, "Admin", ["admin:audit:read"])
    make_user(accounts, "stan@example.com", "Staging editor")
    _, stan = session_actor(accounts, "stan@example.com")
    assert stan.areas == {"Staging"} and stan.can_access_area("Staging")
    assert not stan.can_access_area("Production")
    with pytest.raises(Conflict, match="hold the role"):
        accounts.roles.delete(SYSTEM, "Staging editor")
    accounts.roles.update(SYSTEM, "Staging editor", all_areas=True)
    assert accounts.roles.get(SYSTEM, "Staging editor").areas is None


def test_reset_password_ends_the_persons_sessions(accounts: Services) -> None:
    make_user(accounts, "vic@example.com", "viewer")
    secret = sign_in(accounts, "vic@example.com")
    accounts.users.reset_password(SYSTEM, "vic@example.com", "a brand new passphrase")
    with pytest.raises(Unauthenticated):
        accounts.sessions.authenticate(secret)
    with pytest.raises(Unauthenticated):
        sign_in(accounts, "vic@example.com")
    sign_in(accounts, "vic@example.com", "a brand new passphrase")


# --- the CLI -------------------------------------------------------------------------

runner = CliRunner()


def users_cli(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["users", *args, "--data-dir", str(data_dir)], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_cli_creates_the_first_admin_with_a_password_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEARCHGATE_DATABASE_URL", raising=False)
    data_dir = tmp_path / "data"
    code, _, err = users_cli(
        data_dir,
        "create",
        "--email",
        "boss@example.com",
        "--role",
        "admin",
        "--password-stdin",
        stdin="short\n",
    )
    assert code == 2 and "at least 12" in err
    code, out, err = users_cli(
        data_dir,
        "create",
        "--email",
        "boss@example.com",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, err
    assert PASSWORD not in out + err
    assert "MFA" in err  # admins are told they will enrol
    code, out, _ = users_cli(data_dir, "list", "--json")
    listed = json.loads(out)
    assert [(u["email"], u["role"], u["state"]) for u in listed] == [
        ("boss@example.com", "admin", "active")
    ]
    # The prompt asks twice and refuses a mismatch.
    code, _, err = users_cli(
        data_dir,
        "create",
        "--email",
        "two@example.com",
        "--role",
        "viewer",
        stdin=f"{PASSWORD}\nsomething else entirely\n",
    )
    assert code == 2 and "differ" in err
    code, _, err = users_cli(data_dir, "disable", "boss@example.com")
    assert code == 2 and "last active admin" in err
    services = build_services(Settings(data_dir=data_dir))
    try:
        result = services.auth.sign_in("boss@example.com", PASSWORD, ip=None, user_agent=None)
        assert result.mfa_enrolment_required
        created = services.audit.query(SYSTEM, AuditFilter(action="admin:users:create"))
        assert created.events[0].actor_name.startswith("cli:")
    finally:
        services.db.dispose()
