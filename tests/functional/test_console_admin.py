"""Admin pages: users, roles, change log, settings, and one's own tokens."""

from __future__ import annotations

import csv
import io
import re

from starlette.testclient import TestClient

from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from tests.conftest import make_user
from tests.functional.console_support import error_for, post, signed_in_admin, use_https

LONG_PASSWORD = "mia's own long password"
NEW_USER = {
    "email": "mia@example.com",
    "display_name": "Mia",
    "role": "viewer",
    "password": LONG_PASSWORD,
}


def test_users_are_created_with_errors_next_to_each_field(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    me = signed_in_admin(client, rt)
    page = "/admin/users/new"
    cases = [
        ({**NEW_USER, "email": ""}, "email", "Enter the person's email address"),
        ({**NEW_USER, "email": "mia@localhost"}, "email", "email address like"),
        ({**NEW_USER, "password": "short"}, "password", "at least 12 characters"),
        ({**NEW_USER, "password": "mia@example.com"}, "password", "cannot be the email"),
        ({**NEW_USER, "email": "ada@example.com"}, "email", "exists"),
        ({**NEW_USER, "password": ""}, "password", "Set a first password"),
    ]
    for form, field, message in cases:
        r = post(client, "/admin/users", form, page=page)
        assert r.status_code == 400, form
        assert message in error_for(r.text, field), (form, r.text[-3000:])
        assert f'value="{form["email"]}"' in r.text  # what was typed stays
    r = post(client, "/admin/users", NEW_USER, page=page)
    assert r.status_code == 303
    users = client.get("/admin/users").text
    assert "mia@example.com" in users and 'data-testid="admin-count">1<' in users
    # One's own account cannot be deleted or disabled from here: the reason is shown.
    r = post(client, f"/admin/users/{me}/delete", page=f"/admin/users/{me}")
    assert r.status_code == 400 and "own account" in error_for(r.text, "actions")


def test_disable_enable_and_the_admin_count_warning(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    mia = make_user(rt.services, "mia@example.com", "viewer")
    r = post(client, f"/admin/users/{mia}/disable", page=f"/admin/users/{mia}")
    assert r.status_code == 303
    assert 'data-testid="user-state">disabled<' in client.get(f"/admin/users/{mia}").text
    r = post(client, f"/admin/users/{mia}/enable", page=f"/admin/users/{mia}")
    assert 'data-testid="user-state">active<' in client.get(r.headers["location"]).text
    assert 'data-testid="too-many-admins"' not in client.get("/admin/users").text
    for n in range(3):
        make_user(rt.services, f"admin{n}@example.com", "admin")
    users = client.get("/admin/users").text
    assert 'data-testid="admin-count">4<' in users
    assert "4 people hold admin rights, more than the 3 recommended" in users
    dashboard = client.get("/").text
    assert 'data-testid="notice-too-many"' in dashboard
    assert "3 admins have no MFA" in dashboard
    # Deleting a person removes the account; the change log keeps every entry about them.
    r = post(client, f"/admin/users/{mia}/delete", page=f"/admin/users/{mia}")
    assert r.headers["location"] == "/admin/users"
    assert f"/admin/users/{mia}" not in client.get("/admin/users").text
    log = client.get("/admin/audit", params={"target": "mia@example.com"}).text
    assert log.count('data-testid="event"') == 4  # create, disable, enable, delete


def test_roles_compose_permissions_and_builtins_stay_read_only(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    builtin = client.get("/admin/roles/viewer").text
    assert "built-in role: read-only" in builtin and "Save role" not in builtin
    r = post(
        client,
        "/admin/roles/viewer",
        {"name": "viewer", "permission": "admin:users:read"},
        page="/admin/roles",
    )
    assert r.status_code == 400 and "built-in" in r.text
    form = {"name": "Auditor", "description": "reads the log", "area_scope": "all"}
    none = post(client, "/admin/roles", form, page="/admin/roles/new")
    assert "at least one permission" in error_for(none.text, "permissions")
    clash = post(
        client,
        "/admin/roles",
        {**form, "name": "Admin", "permission": "admin:audit:read"},
        page="/admin/roles/new",
    )
    assert "built-in role" in error_for(clash.text, "name")
    no_area = post(
        client,
        "/admin/roles",
        {**form, "permission": "admin:audit:read", "area_scope": "some"},
        page="/admin/roles/new",
    )
    assert "at least one area" in error_for(no_area.text, "areas")
    ok = post(
        client,
        "/admin/roles",
        {**form, "permission": ["admin:audit:read", "console:collections:read"]},
        page="/admin/roles/new",
    )
    assert ok.status_code == 303
    role = rt.services.roles.get(Actor.system(), "Auditor")
    assert {p.value for p in role.permissions} == {"admin:audit:read", "console:collections:read"}
    edited = post(
        client,
        "/admin/roles/Auditor",
        {
            "name": "Auditor",
            "permission": "admin:audit:read",
            "area_scope": "some",
            "area": "Production",
        },
        page="/admin/roles/Auditor",
    )
    assert edited.status_code == 303
    role = rt.services.roles.get(Actor.system(), "Auditor")
    assert role.areas == frozenset({"Production"}) and len(role.permissions) == 1
    r = post(client, "/admin/roles/Auditor/delete", page="/admin/roles/Auditor")
    assert r.headers["location"] == "/admin/roles"
    assert "/admin/roles/Auditor" not in client.get("/admin/roles").text


def test_change_log_filters_pages_and_exports_safely(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    forged = "Eve\r\n2026-01-01,admin,forged"
    rt.services.users.create(Actor.system(), "eve@example.com", LONG_PASSWORD, "viewer", "Eve")
    rt.services.users.update(
        Actor.system(), "eve@example.com", display_name=forged.replace("\r\n", " ")
    )
    page = client.get("/admin/audit", params={"action": "admin:users:create"}).text
    assert page.count('data-testid="event"') == 2  # ada and eve
    table = page.split('data-testid="audit"')[1]
    assert "eve@example.com" in table and "auth:session:sign-in" not in table
    prefix = client.get("/admin/audit", params={"action": "admin:users:*"}).text
    assert prefix.count('data-testid="event"') == 3
    bad = client.get("/admin/audit", params={"since": "yesterday", "until": "2020-01-01"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in error_for(bad.text, "since")
    backwards = client.get("/admin/audit", params={"since": "2030-01-02", "until": "2030-01-01"})
    assert "before the start" in error_for(backwards.text, "until")
    future = client.get("/admin/audit", params={"since": "2999-01-01"}).text
    assert "No events match" in future

    export = client.get("/admin/audit/export.csv", params={"target": "eve@example.com"})
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["action"] for r in rows] == ["admin:users:create", "admin:users:update"]
    # A name holding CR/LF cannot start a line of its own in the export.
    rt.services.users.create(Actor.system(), "mal@example.com", LONG_PASSWORD, "viewer", "Mal")
    raw = client.get("/admin/audit/export.csv").text
    assert all(line.startswith('"') for line in raw.splitlines())


def test_paging_through_a_long_change_log(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    for n in range(60):
        rt.services.audit.record_now(Actor.system(), "admin:users:list", target=f"t{n}")
    first = client.get("/admin/audit", params={"action": "admin:users:list"}).text
    seqs = [int(s) for s in re.findall(r'<td class="muted">(\d+)</td>', first)]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True)
    older = re.search(r'href="([^"]+)" data-testid="older"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    rest = [int(s) for s in re.findall(r'<td class="muted">(\d+)</td>', second)]
    assert len(rest) == 10 and max(rest) < min(seqs)
    assert 'data-testid="older"' not in second


def test_personal_tokens_are_shown_once_and_revocable(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    none = post(client, "/account/tokens", {"name": "ci", "expires": "30"}, page="/account")
    assert "at least one permission" in error_for(none.text, "permissions")
    r = post(
        client,
        "/account/tokens",
        {"name": "ci", "expires": "30", "permission": "admin:users:read"},
        page="/account",
    )
    secret = re.search(r'data-testid="token-secret">(sgp_\w+)<', r.text)
    assert secret, r.text
    me = client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert me.status_code == 200
    account = client.get("/account").text
    assert secret.group(1) not in account and secret.group(1)[:12] in account
    dup = post(
        client,
        "/account/tokens",
        {"name": "ci", "expires": "30", "permission": "admin:users:read"},
        page="/account",
    )
    assert "already" in error_for(dup.text, "name")
    token_id = re.search(r'action="/account/tokens/(tok_\w+)/revoke"', account)
    assert token_id
    post(client, f"/account/tokens/{token_id.group(1)}/revoke", page="/account")
    gone = client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert gone.status_code == 401
    assert 'data-testid="tokens"' in client.get("/account").text


def test_settings_page_shows_the_values_in_force(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    page = client.get("/admin/settings").text
    assert 'data-testid="setting-SEARCHGATE_MFA_REQUIRED_FOR_ADMINS">on<' in page
    assert 'data-testid="setting-SEARCHGATE_MFA_REQUIRED_FOR_ALL">off<' in page
    assert "30 min" in page and "12 h" in page
