"""Deny by default: every console route is declared with the permission it needs, and
the pipeline enforces it for anonymous visitors, each built-in role and a custom one."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from searchgate.audit import AuditFilter
from searchgate.console import PUBLIC, ROUTES, SIGNED_IN
from searchgate.permissions import BUILTIN_ROLES, Actor, Permission
from searchgate.runtime import Runtime
from tests.conftest import make_user
from tests.functional.console_support import post, sign_in, token_of, use_https
from tests.functional.test_auth import app_routes

NOT_CONSOLE = ("/api/", "/data/", "/static", "/healthz", "/readyz", "/metrics", "/openapi.json")


def _filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_console_route_is_declared_and_every_declared_one_is_served(
    client: TestClient,
) -> None:
    served = {(m, p) for m, p in app_routes(client.app) if not p.startswith(NOT_CONSOLE)}
    declared = {(r.method, r.path) for r in ROUTES}
    assert served == declared
    assert len(declared) >= 40
    for r in ROUTES:
        assert r.need in (PUBLIC, SIGNED_IN) or isinstance(r.need, Permission), r
        if r.path.startswith("/admin/"):
            assert isinstance(r.need, Permission) and r.need.value.startswith("admin:"), r
    public = {(r.method, r.path) for r in ROUTES if r.need == PUBLIC}
    assert public == {
        ("GET", "/sign-in"),
        ("POST", "/sign-in"),
        ("GET", "/sign-in/mfa"),
        ("POST", "/sign-in/mfa"),
        ("GET", "/invitation"),
        ("POST", "/invitation"),
        ("POST", "/invitation/accept"),
    }


def test_anonymous_visitors_are_sent_to_sign_in_from_every_other_route(
    client: TestClient,
) -> None:
    use_https(client)
    token = token_of(client.get("/sign-in").text)
    for spec in ROUTES:
        if spec.need == PUBLIC:
            continue
        path = _filled(spec.path)
        if spec.method == "GET":
            r = client.get(path, follow_redirects=False)
        else:
            r = post(client, path, {}, token=token)
        assert r.status_code == 303, (spec, r.status_code)
        assert r.headers["location"].startswith("/sign-in?next="), spec


def _denied(r: object, need: str) -> bool:
    text = r.text  # type: ignore[attr-defined]
    return r.status_code == 403 and "Not allowed" in text and need in text  # type: ignore[attr-defined]


def _check_role(client: TestClient, held: frozenset[Permission]) -> int:
    """Every route needing a permission outside ``held`` answers a 403 page."""
    token = token_of(client.get("/").text)
    refused = 0
    for spec in ROUTES:
        if not isinstance(spec.need, Permission) or spec.need in held:
            continue
        path = _filled(spec.path)
        r = (
            client.get(path, follow_redirects=False)
            if spec.method == "GET"
            else post(client, path, {}, token=token)
        )
        assert _denied(r, spec.need.value), (spec, r.status_code, r.text[:300])
        refused += 1
    return refused


def test_each_builtin_role_is_refused_what_it_does_not_hold(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    for role in ("viewer", "merchandiser"):
        client.cookies.clear()
        make_user(rt.services, f"{role}@example.com", role)
        sign_in(client, f"{role}@example.com")
        assert _check_role(client, BUILTIN_ROLES[role]) >= 20
        # The navigation offers only what the role may open.
        nav = client.get("/").text.split('<main class="content">')[0]
        assert ("/admin/users" in nav) is False
        assert ("/collections" in nav) is (Permission.COLLECTIONS_READ in BUILTIN_ROLES[role])
    # Refusals are in the change log, with the person and the permission.
    events = rt.services.audit.query(
        Actor.system(), AuditFilter(user="viewer@example.com", action="console:page:deny")
    ).events
    assert events and all(e.outcome == "denied" for e in events)
    assert {"admin:users:read", "admin:audit:read"} <= {e.details["permission"] for e in events}


def test_a_custom_role_opens_its_permissions_and_its_areas_only(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    system = Actor.system()
    rt.services.areas.create(
        Actor.system(name="test"), "Staging", [{"key": "banner", "value": "test"}]
    )
    perms = [Permission.SEARCH_PREVIEW.value, Permission.AREAS_READ.value]
    rt.services.roles.create(system, "Staging previewer", perms, ["Staging"])
    make_user(rt.services, "sue@example.com", "Staging previewer")
    sign_in(client, "sue@example.com")
    assert _check_role(client, frozenset(Permission(p) for p in perms)) >= 25
    areas = client.get("/areas").text
    assert "/areas/Staging" in areas and "/areas/Production" not in areas
    assert client.get("/areas/Production").status_code == 403
    assert client.get("/areas/Staging").status_code == 200
    r = client.get("/search?area=Production")
    assert r.status_code == 403 and "area Production" in r.text
    assert client.get("/search?area=Staging").status_code == 200


def test_a_personal_token_or_client_key_opens_no_console_page(
    client: TestClient, rt: Runtime, admin_token: str, auth: dict[str, str]
) -> None:
    for headers in ({"Authorization": f"Bearer {admin_token}"}, auth):
        for path in ("/", "/admin/users", "/collections"):
            r = client.get(path, headers=headers, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/sign-in"), path
