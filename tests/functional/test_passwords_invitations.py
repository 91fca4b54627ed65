"""Changing one's password, passwords someone else set (changed at first sign-in), and
one-time invitations by which a person chooses their own password."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pyotp
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text
from starlette.testclient import TestClient
from typer.testing import CliRunner

from searchgate.accounts.invitations import DEFAULT_LIFETIME
from searchgate.audit import AuditFilter
from searchgate.cli.main import app
from searchgate.config import Settings
from searchgate.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from searchgate.permissions import Actor, Permission
from searchgate.runtime import Runtime, Services, build_services
from tests.conftest import PASSWORD, ManualClock, enrol, make_user, sign_in
from tests.functional.console_support import (
    error_for,
    post,
    signed_in_admin,
    token_of,
    use_https,
)
from tests.functional.console_support import sign_in as sign_in_page

SYSTEM = Actor.system()
NEW = "a password of my very own"


def admin_actor(services: Services, clock: ManualClock, email: str = "ada@example.com") -> Actor:
    """A signed-in admin (MFA enrolled), freshly re-authenticated."""
    make_user(services, email, "admin")
    secret, seed = enrol(services, sign_in(services, email))
    clock.advance(seconds=30)
    actor = services.sessions.authenticate(secret).actor
    services.auth.reauthenticate(actor, code=pyotp.TOTP(seed).at(clock.now))
    return services.sessions.authenticate(secret).actor


def events(services: Services, action: str) -> list[tuple[str, str | None]]:
    found = services.audit.query(SYSTEM, AuditFilter(action=action)).events
    return [(e.outcome, e.target) for e in found]


def test_an_admin_set_password_is_changed_before_anything_else(
    accounts: Services, clock: ManualClock
) -> None:
    ada = admin_actor(accounts, clock)
    created = accounts.users.create(ada, "vic@example.com", PASSWORD, "viewer")
    assert created.must_change_password
    # The CLI operator creating an account (usually their own) is not asked to.
    assert not accounts.users.get(SYSTEM, "ada@example.com").must_change_password

    first = accounts.auth.sign_in("vic@example.com", PASSWORD, ip=None, user_agent=None)
    assert first.password_change_required
    other = sign_in(accounts, "vic@example.com")
    actor = accounts.sessions.authenticate(first.secret).actor
    assert actor.password_change_required and not actor.has(Permission.COLLECTIONS_READ)

    with pytest.raises(InvalidInput) as wrong:
        accounts.auth.change_password(actor, "not the current one", NEW)
    assert wrong.value.field == "current_password"
    with pytest.raises(InvalidInput, match="other than the current"):
        accounts.auth.change_password(actor, PASSWORD, PASSWORD)
    with pytest.raises(InvalidInput, match="at least 12"):
        accounts.auth.change_password(actor, PASSWORD, "short")
    assert accounts.auth.change_password(actor, PASSWORD, NEW) == 1
    # Privileges changed: this session goes on under a new id; the other one ended.
    renewed = accounts.sessions.authenticate(first.secret)
    assert renewed.new_secret is not None
    assert renewed.actor.has(Permission.COLLECTIONS_READ)
    assert renewed.actor.reauthenticated_within(accounts.authorizer.reauth_window, clock.now)
    with pytest.raises(Unauthenticated):
        accounts.sessions.authenticate(other)
    with pytest.raises(Unauthenticated):
        sign_in(accounts, "vic@example.com")
    assert not accounts.auth.sign_in(
        NEW and "vic@example.com", NEW, ip=None, user_agent=None
    ).password_change_required
    assert events(accounts, "auth:password:change") == [
        ("success", "vic@example.com"),
        ("failure", "vic@example.com"),
    ]
    created_event = accounts.audit.query(SYSTEM, AuditFilter(action="admin:users:create"))
    assert created_event.events[0].details["changeAtSignIn"] is True


def test_a_reset_password_is_temporary_unless_said_otherwise(accounts: Services) -> None:
    make_user(accounts, "vic@example.com")
    accounts.users.reset_password(SYSTEM, "vic@example.com", NEW)
    assert accounts.users.get(SYSTEM, "vic@example.com").must_change_password
    accounts.users.reset_password(SYSTEM, "vic@example.com", PASSWORD, temporary=False)
    assert not accounts.users.get(SYSTEM, "vic@example.com").must_change_password


def test_an_invitation_works_once_and_is_stored_as_a_digest(
    accounts: Services, clock: ManualClock
) -> None:
    ada = admin_actor(accounts, clock)
    invited = accounts.invitations.create(ada, "Mia@Example.com", "merchandiser", "Mia")
    secret = invited.secret
    assert secret.startswith("sgi_") and len(secret) >= 40
    assert invited.info.email == "mia@example.com"
    assert invited.info.expires_at - invited.info.created_at == DEFAULT_LIFETIME
    with accounts.db.engine.connect() as conn:
        stored = repr(conn.execute(text("SELECT * FROM user_invitations")).all())
        log = repr(conn.execute(text("SELECT * FROM audit_events")).all())
    assert secret not in stored and secret[4:] not in stored and secret[4:20] not in log

    assert accounts.invitations.find(secret).role == "merchandiser"
    with pytest.raises(InvalidInput, match="at least 12"):
        accounts.invitations.accept(secret, "short", None, ip=None, user_agent=None)
    user = accounts.invitations.accept(secret, NEW, None, ip="198.51.100.7", user_agent="t")
    assert (user.email, user.role, user.display_name) == ("mia@example.com", "merchandiser", "Mia")
    assert not user.must_change_password
    with pytest.raises(NotFound, match="not valid"):
        accounts.invitations.accept(secret, NEW, None, ip=None, user_agent=None)
    result = accounts.auth.sign_in("mia@example.com", NEW, ip=None, user_agent=None)
    assert not result.password_change_required
    assert accounts.invitations.list(ada) == []
    assert [i.state(clock.now) for i in accounts.invitations.list(ada, include_inactive=True)] == [
        "accepted"
    ]
    assert events(accounts, "admin:invitations:create") == [("success", "mia@example.com")]
    accepted = accounts.audit.query(SYSTEM, AuditFilter(action="auth:invitation:accept")).events
    assert [(e.target, e.actor_email, e.details["invitedBy"]) for e in accepted] == [
        ("mia@example.com", "mia@example.com", "ada@example.com")
    ]


def test_an_invitation_expires_and_can_be_withdrawn(accounts: Services, clock: ManualClock) -> None:
    ada = admin_actor(accounts, clock)
    old = accounts.invitations.create(ada, "mia@example.com", "viewer").secret
    clock.advance(hours=72, seconds=1)
    with pytest.raises(NotFound, match="not valid"):
        accounts.invitations.find(old)
    ada = admin_actor(accounts, clock, "bea@example.com")
    first = accounts.invitations.create(ada, "mia@example.com", "viewer")
    second = accounts.invitations.create(ada, "mia@example.com", "viewer")
    with pytest.raises(NotFound):  # a newer invitation withdraws the older one
        accounts.invitations.find(first.secret)
    accounts.invitations.revoke(ada, second.info.id)
    with pytest.raises(NotFound):
        accounts.invitations.accept(second.secret, NEW, None, ip=None, user_agent=None)
    with pytest.raises(Conflict):
        accounts.invitations.revoke(ada, second.info.id)
    with pytest.raises(NotFound):
        accounts.invitations.find("sgi_" + "A" * 43)
    with pytest.raises(Conflict, match="exists already"):
        accounts.invitations.create(ada, "ada@example.com", "viewer")
    with pytest.raises(InvalidInput):
        accounts.invitations.create(ada, "mia@example.com", "no such role")
    assert [o for o, _ in events(accounts, "admin:invitations:revoke")] == ["success"]
    withdrew = accounts.audit.query(SYSTEM, AuditFilter(action="admin:invitations:create"))
    assert withdrew.events[0].details["withdrew"] == [first.info.id]


def test_only_user_managers_invite(accounts: Services, clock: ManualClock) -> None:
    make_user(accounts, "vic@example.com", "viewer")
    vic = accounts.sessions.authenticate(sign_in(accounts, "vic@example.com")).actor
    with pytest.raises(Forbidden):
        accounts.invitations.create(vic, "mia@example.com", "viewer")
    assert events(accounts, "admin:invitations:create") == [("denied", "mia@example.com")]


# --- the CLI -------------------------------------------------------------------------

runner = CliRunner()


def users_cli(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["users", *args, "--data-dir", str(data_dir)], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_sets_passwords_and_invites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEARCHGATE_DATABASE_URL", raising=False)
    data_dir = tmp_path / "data"
    args = ("create", "--email", "vic@example.com", "--role", "viewer", "--password-stdin")
    assert users_cli(data_dir, *args, stdin=PASSWORD + "\n")[0] == 0
    code, out, err = users_cli(
        data_dir, "set-password", "vic@example.com", "--password-stdin", stdin=NEW + "\n"
    )
    assert code == 0, err
    assert NEW not in out + err
    assert "change it at their next sign-in" in " ".join((out + err).split())
    code, out, err = users_cli(
        data_dir, "set-password", "nobody@example.com", "--password-stdin", stdin=NEW + "\n"
    )
    assert code != 0 and "no user" in err
    code, out, err = users_cli(
        data_dir,
        "invite",
        "--email",
        "mia@example.com",
        "--role",
        "viewer",
        "--hours",
        "24",
        "--json",
    )
    assert code == 0, err
    invited = json.loads(out)
    assert invited["url"].startswith("/invitation#sgi_")
    assert invited["invitation"]["email"] == "mia@example.com"
    code, out, err = users_cli(data_dir, "invitations", "--json")
    assert [i["email"] for i in json.loads(out)] == ["mia@example.com"]
    code, out, err = users_cli(
        data_dir, "invite", "--email", "x@example.com", "--role", "viewer", "--hours", "0"
    )
    assert code == 2 and "1 hour to 30 days" in err
    services = build_services(Settings(data_dir=data_dir))
    try:
        vic = services.users.get(SYSTEM, "vic@example.com")
        assert vic.must_change_password
        result = services.auth.sign_in("vic@example.com", NEW, ip=None, user_agent=None)
        assert result.password_change_required
        secret = invited["url"].split("#", 1)[1]
        services.invitations.accept(secret, PASSWORD, "Mia", ip=None, user_agent=None)
        reset = services.audit.query(SYSTEM, AuditFilter(action="admin:users:reset-password"))
        assert reset.events[0].actor_name.startswith("cli:")
    finally:
        services.db.dispose()


# --- the console -----------------------------------------------------------------------


def _second_browser(client: TestClient) -> TestClient:
    return use_https(TestClient(client.app, raise_server_exceptions=False))


def test_the_console_changes_ones_password(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "vic@example.com", "viewer")
    sign_in_page(client, "vic@example.com")
    assert 'href="/account/password"' in client.get("/account").text
    page = "/account/password"
    differ = post(client, page, {"current": PASSWORD, "new": NEW, "repeat": NEW + "!"})
    assert differ.status_code == 400 and error_for(differ.text, "repeat")
    wrong = post(client, page, {"current": "not my password", "new": NEW, "repeat": NEW})
    assert wrong.status_code == 400
    assert error_for(wrong.text, "current") == "The current password is not correct"
    short = post(client, page, {"current": PASSWORD, "new": "short", "repeat": "short"})
    assert short.status_code == 400 and "at least 12" in error_for(short.text, "new")
    ok = post(client, page, {"current": PASSWORD, "new": NEW, "repeat": NEW})
    assert ok.status_code == 303 and ok.headers["location"] == "/account"
    assert client.get("/account").status_code == 200  # this session goes on
    other = _second_browser(client)
    assert sign_in_page(other, "vic@example.com").status_code == 401
    assert sign_in_page(other, "vic@example.com", NEW).status_code == 303
    outcomes = events(rt.services, "auth:password:change")
    assert [o for o, _ in outcomes] == ["success", "failure"]


def test_an_account_an_admin_made_changes_its_password_first(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    r = post(
        client,
        "/admin/users",
        {"email": "vic@example.com", "role": "viewer", "password": PASSWORD},
        page="/admin/users/new",
    )
    assert r.status_code == 303, r.text
    vic = _second_browser(client)
    r = sign_in_page(vic, "vic@example.com")
    assert r.headers["location"] == "/account/password"
    for path in ("/", "/collections", "/account", "/account/mfa"):
        assert vic.get(path, follow_redirects=False).headers["location"] == "/account/password"
    page = vic.get("/account/password")
    assert 'data-testid="password-change-required"' in page.text
    r = post(vic, "/account/password", {"current": PASSWORD, "new": NEW, "repeat": NEW})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert vic.get("/", follow_redirects=False).status_code == 200


def test_an_admin_invites_and_the_person_chooses_their_password(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    assert 'href="/admin/invitations/new"' in client.get("/admin/users").text
    assert "<h1>Invite someone</h1>" in client.get("/admin/invitations/new").text
    r = post(
        client,
        "/admin/invitations",
        {"email": "mia@example.com", "role": "merchandiser", "expires": "72"},
        page="/admin/invitations/new",
    )
    assert r.status_code == 200, r.text
    link = re.search(r'data-testid="invitation-link">([^<]+)<', r.text)
    assert link and link.group(1).startswith("https://testserver/invitation#sgi_")
    secret = html.unescape(link.group(1)).split("#", 1)[1]
    assert secret not in client.get("/admin/users").text  # shown once
    assert 'data-testid="invitation-row"' in client.get("/admin/users").text

    mia = _second_browser(client)
    assert mia.get("/invitation").status_code == 200
    bad = post(mia, "/invitation", {"token": "sgi_not-a-real-one"})
    assert bad.status_code == 404 and "not valid" in error_for(bad.text, "token")
    opened = post(mia, "/invitation", {"token": secret})
    assert opened.status_code == 200 and "mia@example.com" in opened.text
    token = token_of(opened.text)
    short = post(
        mia,
        "/invitation/accept",
        {"token": secret, "password": "short", "repeat": "short"},
        token=token,
    )
    assert short.status_code == 400 and "at least 12" in error_for(short.text, "password")
    done = post(
        mia,
        "/invitation/accept",
        {"token": secret, "display_name": "Mia", "password": NEW, "repeat": NEW},
        token=token,
    )
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert mia.get("/collections").status_code == 200  # signed in, merchandiser
    again = post(_second_browser(client), "/invitation", {"token": secret})
    assert again.status_code == 404
    assert rt.services.users.get(SYSTEM, "mia@example.com").display_name == "Mia"
    assert 'data-testid="invitation-row"' not in client.get("/admin/users").text


def test_an_admin_withdraws_an_invitation(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    r = post(
        client,
        "/admin/invitations",
        {"email": "mia@example.com", "role": "viewer", "expires": "24"},
        page="/admin/invitations/new",
    )
    secret = html.unescape(
        re.search(r'data-testid="invitation-link">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    ).split("#", 1)[1]
    pending = rt.services.invitations.list(SYSTEM)
    r = post(client, f"/admin/invitations/{pending[0].id}/withdraw", page="/admin/users")
    assert r.status_code == 303
    assert post(_second_browser(client), "/invitation", {"token": secret}).status_code == 404
    bad_lifetime = post(
        client,
        "/admin/invitations",
        {"email": "mia@example.com", "role": "viewer", "expires": "9999"},
        page="/admin/invitations/new",
    )
    assert bad_lifetime.status_code == 400 and error_for(bad_lifetime.text, "expires")


# --- the admin API ---------------------------------------------------------------------


def test_the_admin_api_sets_passwords_and_invites(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    make_user(rt.services, "vic@example.com", "viewer")
    r = client.post(
        "/api/v1/admin/users/vic@example.com/password", json={"password": NEW}, headers=auth
    )
    assert r.status_code == 200 and r.json()["user"]["mustChangePassword"] is True
    assert NEW not in r.text
    r = client.post(
        "/api/v1/admin/users/vic@example.com/password", json={"password": "short"}, headers=auth
    )
    assert r.status_code == 400 and r.json()["error"]["field"] == "password"
    r = client.post(
        "/api/v1/admin/invitations",
        json={"email": "mia@example.com", "role": "viewer", "expiresInHours": 24},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"].startswith("http://testserver/invitation#sgi_")
    assert body["invitation"]["state"] == "pending"
    listed = client.get("/api/v1/admin/invitations", headers=auth).json()["invitations"]
    assert [i["email"] for i in listed] == ["mia@example.com"]
    assert "sgi_" not in repr(listed)
    r = client.post(
        "/api/v1/admin/invitations",
        json={"email": "x@example.com", "role": "viewer", "expiresInHours": 10_000},
        headers=auth,
    )
    assert r.status_code == 400 and r.json()["error"]["field"] == "expires_in_hours"
    r = client.delete(f"/api/v1/admin/invitations/{listed[0]['id']}", headers=auth)
    assert r.status_code == 200 and r.json()["invitation"]["state"] == "withdrawn"
    assert client.get("/api/v1/admin/invitations", headers=auth).json()["invitations"] == []
    assert client.delete("/api/v1/admin/invitations/inv_nothing", headers=auth).status_code == 404


def test_any_invitation_code_is_refused_cleanly(accounts: Services) -> None:
    @hsettings(max_examples=200, deadline=None)
    @given(code=st.text() | st.text().map(lambda t: "sgi_" + t))
    def check(code: str) -> None:
        with pytest.raises(NotFound, match="not valid"):
            accounts.invitations.find(code)

    check()


def test_a_throttled_password_change_answers_429(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "vic@example.com", "viewer")
    sign_in_page(client, "vic@example.com")
    form = {"current": "not my password", "new": NEW, "repeat": NEW}
    for _ in range(5):
        assert post(client, "/account/password", form).status_code == 400
    r = post(client, "/account/password", {**form, "current": PASSWORD})
    assert r.status_code == 429 and r.headers["retry-after"].isdigit()
    assert "Too many failed attempts" in error_for(r.text, "current")


def test_an_invited_admin_enrols_in_mfa_next(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    secret = rt.services.invitations.create(SYSTEM, "root@example.com", "admin").secret
    opened = post(client, "/invitation", {"token": secret})
    done = post(
        client,
        "/invitation/accept",
        {"token": secret, "password": NEW, "repeat": NEW},
        token=token_of(opened.text),
    )
    assert done.status_code == 303 and done.headers["location"] == "/account/mfa"
    assert client.get("/", follow_redirects=False).headers["location"] == "/account/mfa"
    assert rt.services.users.get(SYSTEM, "root@example.com").display_name == "root"
