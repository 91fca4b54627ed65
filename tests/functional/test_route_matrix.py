"""Deny by default (DESIGN rule 4): one route x role x credential matrix.

POLICY below is the declared policy, written out by hand: for every route the app
serves, the one kind of credential it accepts and what that credential must hold. It
is the expectation, so nothing in it is read from the code under test. A route the app
serves that POLICY does not name, or a POLICY entry the app does not serve, fails.
Then every credential (anonymous, client keys, personal tokens, console sessions of
each role, a disabled user, an expired session and an expired token) is sent to every
route, and only the authorization outcome is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from starlette.routing import Mount
from starlette.testclient import TestClient

from searchgate.clock import utc_now
from searchgate.console import ROUTES
from searchgate.demo import demo_settings, generate
from searchgate.keys.scopes import ALL_SCOPES, Scope
from searchgate.permissions import BUILTIN_ROLES, Actor
from searchgate.runtime import Runtime, Services
from tests.conftest import PASSWORD, ManualClock, enrol, load, make_user, sign_in
from tests.functional.console_support import token_of
from tests.functional.test_auth import app_routes, call
from tests.keyhelp import SYSTEM


@dataclass(frozen=True)
class Need:
    """What a route accepts. ``kind``: public, key (client key with the scope ``what``,
    or any usable key when None), token (personal token holding the permission
    ``what``, or any valid token when None) or session (console session holding
    ``what``, or any signed-in person)."""

    kind: str
    what: str | None = None

    @classmethod
    def public(cls) -> Need:
        return cls("public")

    @classmethod
    def key(cls, scope: str | None = None) -> Need:
        return cls("key", scope)

    @classmethod
    def token(cls, permission: str | None = None) -> Need:
        return cls("token", permission)

    @classmethod
    def session(cls, permission: str | None = None) -> Need:
        return cls("session", permission)


ADMIN = "/api/v1/admin"
COLL = "/api/v1/collections/{name}"
MERCH = f"{ADMIN}/areas/{{area}}/merchandising"

POLICY: list[tuple[str, str, Need]] = [
    # --- public operations routes -------------------------------------------------------
    ("GET", "/healthz", Need.public()),
    ("GET", "/readyz", Need.public()),
    ("GET", "/metrics", Need.public()),
    ("GET", "/openapi.json", Need.public()),
    ("GET", "/static/{path}", Need.public()),
    # --- data plane: client keys ---------------------------------------------------------
    ("POST", "/api/v1/search", Need.key("search")),
    ("POST", "/api/v1/search/refinements", Need.key("search")),
    ("GET", "/api/v1/sayt/search", Need.key("sayt")),
    ("GET", "/api/v1/collections", Need.key("search")),
    ("GET", COLL, Need.key("search")),
    ("PUT", COLL, Need.key("collections:write")),
    ("DELETE", COLL, Need.key("collections:delete")),
    ("POST", f"{COLL}/records", Need.key("records:write")),
    ("GET", f"{COLL}/records/{{record_id}}", Need.key("search")),
    ("DELETE", f"{COLL}/records/{{record_id}}", Need.key("records:write")),
    ("POST", f"{COLL}/records/delete", Need.key("records:write")),
    ("POST", "/data/v1/upload/stream", Need.key("records:write")),
    ("POST", f"{COLL}/replacements", Need.key("records:write")),
    ("GET", f"{COLL}/replacements/{{replacement_id}}", Need.key("records:write")),
    ("POST", f"{COLL}/replacements/{{replacement_id}}/records", Need.key("records:write")),
    ("POST", f"{COLL}/replacements/{{replacement_id}}/commit", Need.key("records:write")),
    ("DELETE", f"{COLL}/replacements/{{replacement_id}}", Need.key("records:write")),
    # --- data plane: key self-service and leak reports -----------------------------------
    ("GET", "/api/v1/keys/self", Need.key()),
    ("POST", "/api/v1/keys/revoke", Need.public()),
    # --- admin API: personal tokens ------------------------------------------------------
    ("GET", f"{ADMIN}/me", Need.token()),
    ("GET", f"{ADMIN}/users", Need.token("admin:users:read")),
    ("POST", f"{ADMIN}/users", Need.token("admin:users:manage")),
    ("GET", f"{ADMIN}/users/{{user}}", Need.token("admin:users:read")),
    ("PATCH", f"{ADMIN}/users/{{user}}", Need.token("admin:users:manage")),
    ("POST", f"{ADMIN}/users/{{user}}/disable", Need.token("admin:users:manage")),
    ("POST", f"{ADMIN}/users/{{user}}/enable", Need.token("admin:users:manage")),
    ("DELETE", f"{ADMIN}/users/{{user}}", Need.token("admin:users:manage")),
    ("POST", f"{ADMIN}/users/{{user}}/password", Need.token("admin:users:manage")),
    ("GET", f"{ADMIN}/invitations", Need.token("admin:users:read")),
    ("POST", f"{ADMIN}/invitations", Need.token("admin:users:manage")),
    ("DELETE", f"{ADMIN}/invitations/{{invitation}}", Need.token("admin:users:manage")),
    ("GET", f"{ADMIN}/roles", Need.token("admin:users:read")),
    ("POST", f"{ADMIN}/roles", Need.token("admin:roles:manage")),
    ("GET", f"{ADMIN}/roles/{{name}}", Need.token("admin:users:read")),
    ("PATCH", f"{ADMIN}/roles/{{name}}", Need.token("admin:roles:manage")),
    ("DELETE", f"{ADMIN}/roles/{{name}}", Need.token("admin:roles:manage")),
    ("GET", f"{ADMIN}/collections", Need.token("console:collections:read")),
    ("DELETE", f"{ADMIN}/collections/{{name}}", Need.token("console:collections:delete")),
    ("GET", f"{ADMIN}/audit", Need.token("admin:audit:read")),
    ("GET", f"{ADMIN}/audit/export", Need.token("admin:audit:read")),
    # --- admin API: client keys (Key Management) -----------------------------------------
    ("GET", f"{ADMIN}/keys", Need.token("admin:keys:read")),
    ("POST", f"{ADMIN}/keys", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/keys/new-primary", Need.token("admin:keys:manage")),
    ("GET", f"{ADMIN}/keys/{{key}}", Need.token("admin:keys:read")),
    ("PATCH", f"{ADMIN}/keys/{{key}}", Need.token("admin:keys:manage")),
    ("DELETE", f"{ADMIN}/keys/{{key}}", Need.token("admin:keys:manage")),
    ("GET", f"{ADMIN}/keys/{{key}}/usage", Need.token("admin:keys:read")),
    ("POST", f"{ADMIN}/keys/{{key}}/roll", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/keys/{{key}}/make-primary", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/keys/{{key}}/disable", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/keys/{{key}}/enable", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/keys/{{key}}/expiry", Need.token("admin:keys:manage")),
    # --- admin API: rotation -------------------------------------------------------------
    ("POST", f"{ADMIN}/rotations", Need.token("admin:keys:manage")),
    ("GET", f"{ADMIN}/rotations/current", Need.token("admin:keys:manage")),
    ("GET", f"{ADMIN}/rotations/{{rotation_id}}", Need.token("admin:keys:manage")),
    ("GET", f"{ADMIN}/rotations/{{rotation_id}}/traffic", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/rotations/{{rotation_id}}/create-key", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/rotations/{{rotation_id}}/steps", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/rotations/{{rotation_id}}/abort", Need.token("admin:keys:manage")),
    ("POST", f"{ADMIN}/rotations/{{rotation_id}}/finish", Need.token("admin:keys:manage")),
    # --- admin API: merchandising --------------------------------------------------------
    ("GET", f"{MERCH}/draft", Need.token("console:areas:read")),
    ("PUT", f"{MERCH}/draft", Need.token("console:merchandising:edit")),
    ("PUT", f"{MERCH}/draft/{{kind}}/{{name}}", Need.token("console:merchandising:edit")),
    ("DELETE", f"{MERCH}/draft/{{kind}}/{{name}}", Need.token("console:merchandising:edit")),
    ("POST", f"{MERCH}/discard", Need.token("console:merchandising:edit")),
    ("POST", f"{MERCH}/publish", Need.token("console:merchandising:publish")),
    ("GET", f"{MERCH}/versions", Need.token("console:areas:read")),
    ("GET", f"{MERCH}/versions/{{number}}", Need.token("console:areas:read")),
    ("POST", f"{MERCH}/versions/{{number}}/rollback", Need.token("console:merchandising:publish")),
    ("GET", f"{MERCH}/export", Need.token("console:areas:read")),
    ("POST", f"{MERCH}/import", Need.token("console:merchandising:edit")),
    ("POST", f"{MERCH}/preview", Need.token("console:search:preview")),
    # --- console: sessions ---------------------------------------------------------------
    ("GET", "/sign-in", Need.public()),
    ("POST", "/sign-in", Need.public()),
    ("GET", "/sign-in/mfa", Need.public()),
    ("POST", "/sign-in/mfa", Need.public()),
    ("POST", "/sign-out", Need.session()),
    ("GET", "/reauth", Need.session()),
    ("POST", "/reauth", Need.session()),
    ("GET", "/", Need.session()),
    ("GET", "/account", Need.session()),
    ("POST", "/account/tokens", Need.session()),
    ("POST", "/account/tokens/{token_id}/revoke", Need.session()),
    ("POST", "/account/sessions/{session_id}/end", Need.session()),
    ("GET", "/account/mfa", Need.session()),
    ("POST", "/account/mfa/begin", Need.session()),
    ("POST", "/account/mfa/confirm", Need.session()),
    ("POST", "/account/mfa/recovery-codes", Need.session()),
    ("POST", "/account/mfa/disable", Need.session()),
    ("GET", "/account/password", Need.session()),
    ("POST", "/account/password", Need.session()),
    ("GET", "/invitation", Need.public()),
    ("POST", "/invitation", Need.public()),
    ("POST", "/invitation/accept", Need.public()),
    ("GET", "/collections", Need.session("console:collections:read")),
    ("GET", "/collections/{name}", Need.session("console:collections:read")),
    ("GET", "/collections/{name}/delete", Need.session("console:collections:delete")),
    ("POST", "/collections/{name}/delete", Need.session("console:collections:delete")),
    ("GET", "/search", Need.session("console:search:preview")),
    ("GET", "/areas", Need.session("console:areas:read")),
    ("POST", "/areas", Need.session("console:areas:manage")),
    ("GET", "/areas/{name}", Need.session("console:areas:read")),
    ("POST", "/areas/{name}/params", Need.session("console:areas:manage")),
    ("POST", "/areas/{name}/rename", Need.session("console:areas:manage")),
    ("POST", "/areas/{name}/delete", Need.session("console:areas:manage")),
    ("GET", "/analytics", Need.session("console:analytics:view")),
    ("GET", "/analytics/export.csv", Need.session("console:analytics:view")),
    # --- console: merchandising ----------------------------------------------------------
    ("GET", "/merchandising", Need.session("console:areas:read")),
    ("GET", "/areas/{name}/merchandising", Need.session("console:areas:read")),
    ("POST", "/areas/{name}/merchandising/publish", Need.session("console:merchandising:publish")),
    ("POST", "/areas/{name}/merchandising/discard", Need.session("console:merchandising:edit")),
    (
        "POST",
        "/areas/{name}/merchandising/default-profile",
        Need.session("console:merchandising:edit"),
    ),
    ("GET", "/areas/{name}/merchandising/versions", Need.session("console:areas:read")),
    ("GET", "/areas/{name}/merchandising/versions/{number}", Need.session("console:areas:read")),
    (
        "POST",
        "/areas/{name}/merchandising/versions/{number}/rollback",
        Need.session("console:merchandising:publish"),
    ),
    ("GET", "/areas/{name}/merchandising/{kind}/new", Need.session("console:merchandising:edit")),
    ("GET", "/areas/{name}/merchandising/{kind}/edit", Need.session("console:merchandising:edit")),
    (
        "POST",
        "/areas/{name}/merchandising/{kind}/save",
        Need.session("console:merchandising:edit"),
    ),
    (
        "POST",
        "/areas/{name}/merchandising/{kind}/delete",
        Need.session("console:merchandising:edit"),
    ),
    # Also console:search:preview, which every role holding console:areas:read here has.
    ("GET", "/areas/{name}/merchandising/preview", Need.session("console:areas:read")),
    # --- console: Key Management ---------------------------------------------------------
    ("GET", "/admin/keys", Need.session("admin:keys:read")),
    ("GET", "/admin/keys/new", Need.session("admin:keys:manage")),
    ("POST", "/admin/keys", Need.session("admin:keys:manage")),
    ("GET", "/admin/keys/new-primary", Need.session("admin:keys:manage")),
    ("POST", "/admin/keys/new-primary", Need.session("admin:keys:manage")),
    ("GET", "/admin/keys/{key_id}", Need.session("admin:keys:read")),
    ("GET", "/admin/keys/{key_id}/roll", Need.session("admin:keys:manage")),
    ("POST", "/admin/keys/{key_id}/roll", Need.session("admin:keys:manage")),
    ("POST", "/admin/keys/{key_id}/expiry", Need.session("admin:keys:manage")),
    ("POST", "/admin/keys/{key_id}/disable", Need.session("admin:keys:manage")),
    ("POST", "/admin/keys/{key_id}/enable", Need.session("admin:keys:manage")),
    ("POST", "/admin/keys/{key_id}/primary", Need.session("admin:keys:manage")),
    ("GET", "/admin/keys/{key_id}/delete", Need.session("admin:keys:manage")),
    ("POST", "/admin/keys/{key_id}/delete", Need.session("admin:keys:manage")),
    # --- console: rotation wizard --------------------------------------------------------
    ("GET", "/admin/rotation", Need.session("admin:keys:manage")),
    ("GET", "/admin/rotation/progress", Need.session("admin:keys:manage")),
    ("POST", "/admin/rotation/start", Need.session("admin:keys:manage")),
    ("POST", "/admin/rotation/continue", Need.session("admin:keys:manage")),
    ("GET", "/admin/rotation/abort", Need.session("admin:keys:manage")),
    ("POST", "/admin/rotation/abort", Need.session("admin:keys:manage")),
    ("POST", "/admin/rotation/store/write", Need.session("admin:keys:manage")),
    ("POST", "/admin/rotation/store/make-primary", Need.session("admin:keys:manage")),
    ("GET", "/admin/users", Need.session("admin:users:read")),
    ("GET", "/admin/users/new", Need.session("admin:users:manage")),
    ("POST", "/admin/users", Need.session("admin:users:manage")),
    ("GET", "/admin/users/{user_id}", Need.session("admin:users:read")),
    ("POST", "/admin/users/{user_id}", Need.session("admin:users:manage")),
    ("POST", "/admin/users/{user_id}/disable", Need.session("admin:users:manage")),
    ("POST", "/admin/users/{user_id}/enable", Need.session("admin:users:manage")),
    ("POST", "/admin/users/{user_id}/reset-mfa", Need.session("admin:users:manage")),
    ("POST", "/admin/users/{user_id}/end-sessions", Need.session("admin:users:manage")),
    ("POST", "/admin/users/{user_id}/delete", Need.session("admin:users:manage")),
    ("GET", "/admin/invitations/new", Need.session("admin:users:manage")),
    ("POST", "/admin/invitations", Need.session("admin:users:manage")),
    ("POST", "/admin/invitations/{invitation_id}/withdraw", Need.session("admin:users:manage")),
    ("GET", "/admin/roles", Need.session("admin:users:read")),
    ("GET", "/admin/roles/new", Need.session("admin:roles:manage")),
    ("POST", "/admin/roles", Need.session("admin:roles:manage")),
    ("GET", "/admin/roles/{name}", Need.session("admin:users:read")),
    ("POST", "/admin/roles/{name}", Need.session("admin:roles:manage")),
    ("POST", "/admin/roles/{name}/delete", Need.session("admin:roles:manage")),
    ("GET", "/admin/audit", Need.session("admin:audit:read")),
    ("GET", "/admin/audit/export.csv", Need.session("admin:audit:read")),
    ("GET", "/admin/settings", Need.session("admin:settings:manage")),
]


def served_routes(client: TestClient) -> set[tuple[str, str]]:
    """(method, path template) of everything the app answers: its routes through
    included routers, its mounts (static files as one GET route) and the console's
    route table."""
    out = set(app_routes(client.app))
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Mount):
            if route.routes:
                out |= {(m, route.path + p) for m, p in app_routes(route)}
            else:
                out.add(("GET", route.path + "/{path}"))
    return out | {(spec.method, spec.path) for spec in ROUTES}


def test_every_served_route_is_in_the_policy_and_every_policy_entry_is_served(
    client: TestClient,
) -> None:
    declared = [(m, p) for m, p, _ in POLICY]
    assert len(declared) == len(set(declared)), "POLICY names a route twice"
    served = served_routes(client)
    missing = sorted(served - set(declared))
    assert not missing, f"routes served but missing from POLICY (deny by default): {missing}"
    stale = sorted(set(declared) - served)
    assert not stale, f"POLICY entries the app does not serve: {stale}"


# --- the credentials ------------------------------------------------------------------


@dataclass
class Credential:
    """``kind``: none, key, token or session. ``live``: not expired, disabled or
    ended. ``holds``: scopes (key) or permissions (token, session)."""

    kind: str
    live: bool = True
    holds: frozenset[str] = frozenset()
    secret: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def may(self, need: Need) -> bool:
        if need.kind == "public":
            return True
        if need.kind != self.kind or not self.live:
            return False
        return need.what is None or need.what in self.holds


def _perms(role: str) -> frozenset[str]:
    return frozenset(p.value for p in BUILTIN_ROLES[role])


def _token(services: Services, email: str, role: str, **kw: Any) -> str:
    user_id = make_user(services, email, role)
    return services.tokens.create(Actor.system(), "matrix", user_id=user_id, **kw).secret


def _session(services: Services, email: str, role: str) -> str:
    make_user(services, email, role)
    return sign_in(services, email)


def _credential(name: str, rt: Runtime, accounts: Services, clock: ManualClock) -> Credential:
    s = rt.services
    if name == "anonymous":
        return Credential("none")
    if name == "key-all-scopes":
        return Credential(
            "key", holds=frozenset(Scope), secret=s.keys.create(SYSTEM, "all", ALL_SCOPES).secret
        )
    if name == "key-sayt-only":
        key = s.keys.create(SYSTEM, "sayt", frozenset({Scope.SAYT})).secret
        return Credential("key", holds=frozenset({"sayt"}), secret=key)
    if name in ("token-admin", "token-viewer"):
        role = name.removeprefix("token-")
        return Credential("token", holds=_perms(role), secret=_token(s, f"{role}@x.io", role))
    if name == "token-expired":
        # Issued two days ago for one day, on a clock the test moves back.
        clock.now = utc_now() - timedelta(days=2)
        secret = _token(accounts, "old@x.io", "admin", expires_in=timedelta(days=1))
        return Credential("token", live=False, holds=_perms("admin"), secret=secret)
    if name == "session-admin":
        cookie = _session(s, "ada@x.io", "admin")
        cookie, _ = enrol(s, cookie)  # admins must enrol in MFA before anything is granted
        return Credential("session", holds=_perms("admin"), secret=cookie)
    if name in ("session-merchandiser", "session-viewer"):
        role = name.removeprefix("session-")
        return Credential("session", holds=_perms(role), secret=_session(s, f"{role}@x.io", role))
    if name == "session-custom-role":
        s.roles.create(Actor.system(), "Previewer", ["console:search:preview"])
        cookie = _session(s, "pat@x.io", "Previewer")
        return Credential("session", holds=frozenset({"console:search:preview"}), secret=cookie)
    if name == "session-disabled-user":
        make_user(s, "dis@x.io", "merchandiser")
        cookie = sign_in(s, "dis@x.io")
        s.users.disable(Actor.system(), s.users.get(Actor.system(), "dis@x.io").id)
        return Credential("session", live=False, holds=_perms("merchandiser"), secret=cookie)
    if name == "session-expired":
        # Signed in, then idle one minute longer than the timeout allows.
        clock.now = utc_now() - accounts.sessions.policy.idle - timedelta(minutes=1)
        cookie = _session(accounts, "idle@x.io", "merchandiser")
        return Credential("session", live=False, holds=_perms("merchandiser"), secret=cookie)
    raise AssertionError(name)


CREDENTIALS = [
    "anonymous",
    "key-all-scopes",
    "key-sayt-only",
    "token-admin",
    "token-viewer",
    "token-expired",
    "session-admin",
    "session-merchandiser",
    "session-viewer",
    "session-custom-role",
    "session-disabled-user",
    "session-expired",
]

# --- sending one request per route ----------------------------------------------------

RECORD = "SKU0000001"
TARGET = "target@x.io"  # the user that user routes act on (never the caller)
SPARE_ROLE = "Spare"  # a custom role nobody holds: role routes act on it
AREA = "Staging"
ORIGIN = "http://testserver"
KEY_NAME = "setup"  # the key that the admin API's key routes act on

ADMIN_BODIES: dict[tuple[str, str], Any] = {
    ("POST", f"{ADMIN}/users"): {"email": "new@x.io", "password": PASSWORD, "role": "viewer"},
    ("PATCH", f"{ADMIN}/users/{{user}}"): {"role": "viewer"},
    ("POST", f"{ADMIN}/users/{{user}}/password"): {"password": PASSWORD, "temporary": False},
    ("POST", f"{ADMIN}/invitations"): {"email": "invited@x.io", "role": "viewer"},
    ("POST", f"{ADMIN}/roles"): {"name": "Made", "permissions": ["console:search:preview"]},
    ("PATCH", f"{ADMIN}/roles/{{name}}"): {"permissions": ["console:areas:read"]},
    ("POST", f"{ADMIN}/keys"): {"name": "made", "scopes": ["search"]},
    ("PATCH", f"{ADMIN}/keys/{{key}}"): {"rateLimitPerMinute": 6000},
    ("POST", f"{ADMIN}/keys/{{key}}/roll"): {"expiresInSeconds": 3600},
    ("POST", f"{ADMIN}/keys/{{key}}/expiry"): {"expiresAt": None},
    ("DELETE", f"{ADMIN}/keys/{{key}}"): {"confirmName": KEY_NAME, "force": True},
}

# Forms that check a password answer 401 when it is wrong: they get the right one, so
# that a 401 can only mean the route refused the credential.
CONSOLE_FORMS: dict[str, dict[str, str]] = {
    "/sign-in": {"email": TARGET, "password": PASSWORD},
    "/reauth": {"reauth": PASSWORD},
}

DESTRUCTIVE = ("/disable", "/end-sessions", "/reset-mfa", "/revoke", "/end")


def _order(entry: tuple[str, str, Need]) -> tuple[int, str, str]:
    """What takes something away goes last, deletions after the rest and collections
    after everything they hold, so that no route loses the target it acts on before
    its turn; signing out ends the session, so it comes at the very end."""
    method, path, _ = entry
    rank = 0
    if path.endswith(DESTRUCTIVE):
        rank = 1
    if method == "DELETE" or path.endswith("/delete"):
        rank = 3 if path.endswith(("/collections/{name}", "/collections/{name}/delete")) else 2
    if path == "/account/mfa/disable":
        rank = 4  # when it succeeds, the admin must enrol again before anything else
    if path == "/sign-out":
        rank = 5
    return (rank, method, path)


def _filled(path: str, user_id: str) -> str:
    values = {
        "{path}": "css/console.css",
        "{record_id}": RECORD,
        "{user}": user_id,
        "{user_id}": user_id,
        "{token_id}": "tok_none",
        "{session_id}": "ses_none",
        "{key}": KEY_NAME,
        "{invitation}": "inv_none",
        "{invitation_id}": "inv_none",
        "{number}": "1",
        "{area}": AREA,
        "{kind}": "synonyms",
    }
    for k, v in values.items():
        path = path.replace(k, v)
    if path.startswith(f"{ADMIN}/roles/") or path.startswith("/admin/roles/"):
        return path.replace("{name}", SPARE_ROLE)
    if path.startswith("/areas/"):
        return path.replace("{name}", AREA)
    return path.replace("{name}", "default")


def _send(
    client: TestClient,
    cred: Credential,
    method: str,
    template: str,
    path: str,
    csrf: tuple[str, str],
) -> Any:
    token, pre = csrf
    headers: dict[str, str] = {}
    if cred.kind in ("key", "token"):
        headers["Authorization"] = f"Bearer {cred.secret}"
    cookies = [f"sg_pre={pre}"] if pre else []
    if cred.kind == "session":
        cookies.append(f"sg_session={cred.secret}")
    if cookies:
        # Sent on every route: a cookie must open no API route either.
        headers["Cookie"] = "; ".join(cookies)
    # The jar would keep what a response set (a cleared cookie, a new session): each
    # request carries exactly the credential under test.
    client.cookies.clear()
    if template.startswith(ADMIN):
        body = ADMIN_BODIES.get((method, template))
        return client.request(method, path, json=body, headers=headers)
    if template.startswith(("/api/", "/data/")):
        return call(client, method, path, headers)
    if method == "GET":
        return client.get(path, headers=headers, follow_redirects=False)
    headers["Origin"] = ORIGIN
    form = {**CONSOLE_FORMS.get(template, {}), "csrf_token": token}
    return client.post(path, data=form, headers=headers, follow_redirects=False)


def _csrf(client: TestClient, rt: Runtime, cred: Credential) -> tuple[str, str]:
    """A valid CSRF token for console forms (and the pre-session cookie it is bound to
    when there is no live session), so that POSTs are judged on the permission."""
    if cred.kind == "session" and cred.live:
        return rt.services.sessions.csrf_token(cred.secret), ""
    client.cookies.clear()
    r = client.get("/sign-in")
    pre = r.cookies.get("sg_pre")
    assert pre, r.headers
    return token_of(r.text), pre


def _to_sign_in(r: Any) -> bool:
    """The console's refusal of a visitor without a live session (signing out, which
    also lands on the sign-in page, carries no ``next``)."""
    location = r.headers.get("location", "")
    return r.status_code in (302, 303, 307) and location.startswith("/sign-in?next=")


@pytest.mark.parametrize("name", CREDENTIALS)
def test_each_credential_gets_exactly_what_the_policy_grants(
    name: str, client: TestClient, rt: Runtime, accounts: Services, clock: ManualClock
) -> None:
    s = rt.services
    load(
        client,
        {"Authorization": f"Bearer {s.keys.create(SYSTEM, KEY_NAME, ALL_SCOPES).secret}"},
        "default",
        list(generate(5)),
        demo_settings(),
    )
    s.areas.create(Actor.system(), AREA, [{"key": "banner", "value": "test"}])
    s.roles.create(Actor.system(), SPARE_ROLE, ["console:areas:read"])
    target = make_user(s, TARGET, "viewer")
    cred = _credential(name, rt, accounts, clock)
    csrf = _csrf(client, rt, cred)
    wrong: list[str] = []
    for method, template, need in sorted(POLICY, key=_order):
        path = _filled(template, target)
        r = _send(client, cred, method, template, path, csrf)
        expected = cred.may(need)
        refused = r.status_code in (401, 403)
        # A console page refuses a visitor without a live session by sending them to
        # sign in; a public page may redirect there for its own reasons.
        if need.kind != "public" and not template.startswith(("/api/", "/data/")):
            refused = refused or _to_sign_in(r)
        if refused == expected:
            wrong.append(
                f"{method} {template} ({path}): expected {'allowed' if expected else 'denied'},"
                f" got {r.status_code} {r.headers.get('location', '')} {r.text[:120]!r}"
            )
    assert not wrong, f"{name}:\n" + "\n".join(wrong)
