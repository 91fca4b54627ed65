"""Signing in to the console: cookies, session ids, MFA, sign-out, disabled users."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pyotp
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.audit import AuditFilter
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from tests.conftest import PASSWORD, make_user
from tests.functional.console_support import (
    error_for,
    post,
    sign_in,
    token_of,
    use_https,
)

COOKIE = "__Host-sg_session"


def _set_cookie(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(name + "=")]
    assert found, headers
    return str(found[-1])


def test_sign_in_issues_a_new_host_prefixed_session_id(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "vic@example.com", "viewer")
    assert client.get("/", follow_redirects=False).headers["location"] == "/sign-in?next=/"
    # A session id planted by someone else (fixation) is never adopted.
    client.cookies.set(COOKIE, "planted-by-an-attacker", domain="testserver.local")
    r = sign_in(client, "vic@example.com")
    assert r.status_code == 303 and r.headers["location"] == "/"
    header = _set_cookie(r, COOKIE)
    first = header.split(";")[0].split("=", 1)[1]
    assert first != "planted-by-an-attacker" and len(first) >= 32
    attributes = {a.strip().lower() for a in header.split(";")[1:]}
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= attributes
    assert not any(a.startswith("domain") for a in attributes)
    page = client.get("/")
    assert page.status_code == 200 and "vic" in page.text
    # Signing in again (same browser) gives yet another id; the old one stops working.
    second = _set_cookie(sign_in(client, "vic@example.com"), COOKIE).split(";")[0].split("=")[1]
    assert second != first
    client.cookies.clear()
    client.cookies.set(COOKIE, first, domain="testserver.local")
    assert client.get("/", follow_redirects=False).status_code == 200  # both sessions live
    r = post(client, "/sign-out", page="/")
    assert r.headers["location"] == "/sign-in?reason=signed_out"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_plain_http_to_another_host_uses_an_unprefixed_cookie(
    client: TestClient, rt: Runtime
) -> None:
    make_user(rt.services, "vic@example.com", "viewer")
    page = client.get("/sign-in")
    assert "plain HTTP" in page.text
    header = _set_cookie(sign_in(client, "vic@example.com"), "sg_session")
    assert "secure" not in header.lower() and "httponly" in header.lower()
    assert client.get("/").status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    make_user(rt.services, "vic@example.com", "viewer")
    wrong = sign_in(client, "vic@example.com", "not the password at all")
    unknown = sign_in(client, "nobody@example.com", "not the password at all")
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert error_for(r.text, "password") == "The email or password is not correct."
        assert "set-cookie" not in r.headers or COOKIE not in r.headers["set-cookie"]
    assert 'value="nobody@example.com"' in unknown.text  # the email is kept in the form
    empty = sign_in(client, "", "")
    assert error_for(empty.text, "email") == "Enter your email address"
    assert error_for(empty.text, "password") == "Enter your password"


def test_mfa_sign_in_asks_for_a_code_and_refuses_a_replayed_one(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    services = rt.services
    make_user(services, "vic@example.com", "viewer")
    secret = services.auth.sign_in("vic@example.com", PASSWORD, ip=None, user_agent=None).secret
    actor = services.sessions.authenticate(secret).actor
    seed = services.mfa.begin_enrolment(actor).secret
    # Enrol with the previous step's code, so that the current one is still unused.
    earlier = pyotp.TOTP(seed).at(services.audit.clock() - timedelta(seconds=30))
    services.mfa.confirm_enrolment(actor, earlier)

    r = sign_in(client, "vic@example.com")
    assert r.headers["location"] == "/sign-in/mfa?next=/"
    # A password alone opens nothing.
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/sign-in")
    bad = post(client, "/sign-in/mfa", {"code": "000000"}, page="/sign-in/mfa")
    assert bad.status_code == 401
    assert error_for(bad.text, "code") == "That code is not correct, or was used already."
    code = pyotp.TOTP(seed).now()
    ok = post(client, "/sign-in/mfa", {"code": code, "next": "/account"}, page="/sign-in/mfa")
    assert ok.status_code == 303 and ok.headers["location"] == "/account"
    assert client.get("/account").status_code == 200

    post(client, "/sign-out", page="/")
    sign_in(client, "vic@example.com")
    replay = post(client, "/sign-in/mfa", {"code": code}, page="/sign-in/mfa")
    assert replay.status_code == 401 and error_for(replay.text, "code")


def test_next_never_leaves_the_site(client: TestClient, rt: Runtime) -> None:
    make_user(rt.services, "vic@example.com", "viewer")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = post(
            client,
            "/sign-in",
            {"email": "vic@example.com", "password": PASSWORD, "next": target},
        )
        assert r.headers["location"] == "/", target
    r = post(
        client, "/sign-in", {"email": "vic@example.com", "password": PASSWORD, "next": "/search"}
    )
    assert r.headers["location"] == "/search"


def test_a_disabled_users_next_request_is_refused(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    user_id = make_user(rt.services, "vic@example.com", "viewer")
    sign_in(client, "vic@example.com")
    account = client.get("/account")
    assert account.status_code == 200

    rt.services.users.disable(Actor.system(), "vic@example.com")

    # A form from a page opened before: refused, nothing created.
    r = post(
        client,
        "/account/tokens",
        {"name": "late", "expires": "7", "permission": "console:collections:read"},
        token=token_of(account.text),
    )
    assert r.status_code == 303
    assert r.headers["location"].endswith("reason=user_disabled")
    assert "max-age=0" in _set_cookie(r, COOKIE).lower()  # the dead cookie is dropped
    actor = Actor.system()
    assert rt.services.tokens.list(actor, user_id, include_inactive=True) == []
    r = client.get("/collections", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
    shown = client.get("/sign-in?next=/collections&reason=user_disabled")
    assert "This account is disabled" in shown.text
    # Signing in again is refused, with the same message as a wrong password.
    again = sign_in(client, "vic@example.com")
    assert again.status_code == 401
    assert error_for(again.text, "password") == "The email or password is not correct."


def test_an_admin_enrols_in_mfa_before_anything_else(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "ada@example.com", "admin")
    r = sign_in(client, "ada@example.com")
    assert r.headers["location"] == "/account/mfa"
    for path in ("/", "/admin/users", "/collections"):
        assert client.get(path, follow_redirects=False).headers["location"] == "/account/mfa"
    page = client.get("/account/mfa")
    assert 'data-testid="mfa-required"' in page.text
    begin = post(client, "/account/mfa/begin", page="/account/mfa")
    # The QR code is drawn on the server as inline SVG: the seed goes to no other site.
    svg = re.search(r'<div class="qr"[^>]*>(.*?)</div>', begin.text, re.S)
    assert svg and svg.group(1).lstrip().startswith("<svg") and "<path" in svg.group(1)
    assert "<img" not in begin.text
    seed = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', begin.text)
    assert seed
    hidden = dict(re.findall(r'type="hidden" name="(secret|uri)" value="([^"]*)"', begin.text))
    wrong = post(
        client,
        "/account/mfa/confirm",
        {"code": "123456", **{k: html.unescape(v) for k, v in hidden.items()}},
        token=token_of(begin.text),
    )
    assert wrong.status_code == 400 and error_for(wrong.text, "code")
    # The same seed is shown again (not a new one) so the app's entry keeps working.
    assert seed.group(1) in wrong.text
    enrol_mfa_done = post(
        client,
        "/account/mfa/confirm",
        {"code": pyotp.TOTP(seed.group(1)).now()},
        page="/account/mfa",
    )
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", enrol_mfa_done.text)
    assert len(codes) == 10
    assert client.get("/admin/users").status_code == 200
    # The codes are never shown again.
    assert codes[0] not in client.get("/account/mfa").text


def _retry_after(response: object) -> int:
    value = response.headers.get("retry-after")  # type: ignore[attr-defined]
    assert value is not None and value.isascii() and value.isdigit(), value
    return int(value)


def test_a_throttled_sign_in_answers_429_with_retry_after(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "vic@example.com", "viewer")
    for _ in range(5):  # the free failures
        assert sign_in(client, "vic@example.com", "not the password at all").status_code == 401
    # Refused while waiting, even with the right password; a page, not a bare status.
    for password in ("not the password at all", PASSWORD):
        r = sign_in(client, "vic@example.com", password)
        assert r.status_code == 429 and 1 <= _retry_after(r) <= 60
        assert r.headers["content-type"].startswith("text/html")
        assert "Too many failed attempts; try again in" in error_for(r.text, "password")
        assert 'value="vic@example.com"' in r.text


def test_a_throttled_code_step_answers_429_with_retry_after(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    services = rt.services
    make_user(services, "vic@example.com", "viewer")
    secret = services.auth.sign_in("vic@example.com", PASSWORD, ip=None, user_agent=None).secret
    actor = services.sessions.authenticate(secret).actor
    seed = services.mfa.begin_enrolment(actor).secret
    services.mfa.confirm_enrolment(actor, pyotp.TOTP(seed).now())
    sign_in(client, "vic@example.com")
    for _ in range(5):
        bad = post(client, "/sign-in/mfa", {"code": "000000"}, page="/sign-in/mfa")
        assert bad.status_code == 401
    r = post(client, "/sign-in/mfa", {"code": "000000"}, page="/sign-in/mfa")
    assert r.status_code == 429 and 1 <= _retry_after(r) <= 60
    assert "Too many failed attempts" in error_for(r.text, "code")


def test_any_code_at_the_code_step_answers_4xx(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    services = rt.services
    make_user(services, "vic@example.com", "viewer")
    secret = services.auth.sign_in("vic@example.com", PASSWORD, ip=None, user_agent=None).secret
    actor = services.sessions.authenticate(secret).actor
    seed = services.mfa.begin_enrolment(actor).secret
    services.mfa.confirm_enrolment(actor, pyotp.TOTP(seed).now())
    sign_in(client, "vic@example.com")
    token = token_of(client.get("/sign-in/mfa").text)

    @hsettings(max_examples=60, deadline=None)
    @given(code=st.text(min_size=1) | st.text(st.characters(categories=["Nd", "No"]), min_size=6))
    def check(code: str) -> None:
        r = post(client, "/sign-in/mfa", {"code": code}, token=token)
        assert r.status_code in (401, 429), (code, r.status_code)

    check()
    failures = services.audit.query(Actor.system(), AuditFilter(action="auth:mfa:verify")).events
    assert failures and {e.outcome for e in failures} == {"failure"}
