"""Every state-changing console request needs this session's token and this site's
Origin (or Referer); pages carry headers that keep them out of frames and scripts."""

from __future__ import annotations

from starlette.testclient import TestClient

from searchgate.runtime import Runtime
from tests.conftest import make_user
from tests.functional.console_support import HTTPS, post, sign_in, token_of, use_https

AREA = {"name": "Staging"}


def _areas(rt: Runtime) -> set[str]:
    rt.services.areas._cache = None
    return {a.name for a in rt.services.areas.list_areas()}


def _merchandiser(client: TestClient, rt: Runtime) -> str:
    use_https(client)
    make_user(rt.services, "max@example.com", "merchandiser")
    sign_in(client, "max@example.com")
    return token_of(client.get("/areas").text)


def _refused(r: object, reason: str) -> None:
    assert r.status_code == 403, r.text  # type: ignore[attr-defined]
    assert "Request refused" in r.text and reason in r.text  # type: ignore[attr-defined]


def test_a_post_without_the_token_is_refused_and_changes_nothing(
    client: TestClient, rt: Runtime
) -> None:
    _merchandiser(client, rt)
    r = client.post("/areas", data=AREA, headers={"Origin": HTTPS}, follow_redirects=False)
    _refused(r, "security token")
    r = post(client, "/areas", AREA, token="0" * 64)
    _refused(r, "security token")
    assert "Staging" not in _areas(rt)


def test_a_foreign_origin_is_refused_even_with_a_valid_token(
    client: TestClient, rt: Runtime
) -> None:
    token = _merchandiser(client, rt)
    for origin in ("https://evil.example", "https://testserver.evil.example", "null"):
        _refused(post(client, "/areas", AREA, token=token, origin=origin), "Origin")
    # Without Origin, the Referer decides; without either the request is refused.
    data = {**AREA, "csrf_token": token}
    r = client.post("/areas", data=data, headers={"Referer": "https://evil.example/x"})
    _refused(r, "Origin")
    _refused(client.post("/areas", data=data), "Origin")
    assert "Staging" not in _areas(rt)
    r = client.post(
        "/areas", data=data, headers={"Referer": f"{HTTPS}/areas"}, follow_redirects=False
    )
    assert r.status_code == 303 and "Staging" in _areas(rt)


def test_the_token_may_come_in_the_htmx_header(client: TestClient, rt: Runtime) -> None:
    token = _merchandiser(client, rt)
    r = client.post(
        "/areas",
        data=AREA,
        headers={"Origin": HTTPS, "X-CSRF-Token": token, "HX-Request": "true"},
    )
    # htmx gets its redirect as a header, not a 303 it would follow itself.
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/areas/Staging"
    assert "Staging" in _areas(rt)


def test_another_sessions_token_is_refused(client: TestClient, rt: Runtime) -> None:
    mine = _merchandiser(client, rt)
    other = TestClient(client.app, base_url=HTTPS)
    make_user(rt.services, "mo@example.com", "merchandiser")
    sign_in(other, "mo@example.com")
    _refused(post(other, "/areas", AREA, token=mine), "security token")
    assert "Staging" not in _areas(rt)


def test_sign_in_itself_needs_the_token(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "max@example.com", "merchandiser")
    from tests.conftest import PASSWORD

    form = {"email": "max@example.com", "password": PASSWORD}
    # A cross-site form signing the victim in to the attacker's account: refused.
    r = client.post("/sign-in", data=form, headers={"Origin": HTTPS})
    _refused(r, "security token")
    r = post(client, "/sign-in", form, origin="https://evil.example")
    _refused(r, "Origin")
    assert post(client, "/sign-in", form).status_code == 303


def test_pages_carry_security_headers(client: TestClient, rt: Runtime) -> None:
    _merchandiser(client, rt)
    for path in ("/sign-in", "/", "/areas"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["referrer-policy"] == "same-origin"
        assert "<script>" not in r.text and " style=" not in r.text
    assert client.get("/static/vendor/htmx.min.js").status_code == 200
    assert "Zero-Clause BSD" in client.get("/static/vendor/htmx.LICENSE").text
