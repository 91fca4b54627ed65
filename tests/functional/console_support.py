"""Driving the console's pages from tests: forms with their CSRF token and Origin."""

from __future__ import annotations

import html
import re
from typing import Any

import pyotp
from starlette.testclient import TestClient

from searchgate.runtime import Runtime
from tests.conftest import PASSWORD, ManualClock, make_user

HTTPS = "https://testserver"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def use_https(client: TestClient) -> TestClient:
    """The app as served over HTTPS (the ``__Host-`` cookie needs Secure)."""
    client.base_url = HTTPS  # type: ignore[assignment]
    return client


def token_of(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def post(
    client: TestClient,
    path: str,
    data: dict[str, Any] | None = None,
    *,
    page: str | None = None,
    token: str | None = None,
    origin: str | None = None,
) -> Any:
    """Submits a form as a browser would: the token from ``page`` (default: ``path``)
    and an Origin header naming this site."""
    if token is None:
        token = token_of(client.get(page or path).text)
    body = {**(data or {}), "csrf_token": token}
    headers = {"Origin": origin or str(client.base_url).rstrip("/")}
    return client.post(path, data=body, headers=headers, follow_redirects=False)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return post(client, "/sign-in", {"email": email, "password": password})


def error_for(page: str, field: str) -> str:
    """The message shown next to a form field (empty when there is none)."""
    match = re.search(rf'data-error-for="{re.escape(field)}"[^>]*>([^<]*)<', page)
    return html.unescape(match.group(1)).strip() if match else ""


def enrol_mfa(client: TestClient) -> str:
    """Enrols the signed-in person through the MFA pages; returns the TOTP seed.
    The current code is spent on enrolment."""
    r = post(client, "/account/mfa/begin", page="/account/mfa")
    assert r.status_code == 200, r.text
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', r.text)
    assert secret, r.text
    seed = secret.group(1)
    r = post(
        client,
        "/account/mfa/confirm",
        {"code": pyotp.TOTP(seed).now()},
        token=token_of(r.text),
    )
    assert r.status_code == 200 and 'data-testid="recovery-codes"' in r.text, r.text
    return seed


def outlast_reauth_window(rt: Runtime) -> None:
    """Moves the app's clock (a test marked ``manual_clock``) past the re-authentication
    window, so the next sensitive request finds the sign-in's proof stale."""
    clock = rt.services.authorizer.clock
    assert isinstance(clock, ManualClock), "mark the test manual_clock"
    clock.advance(seconds=rt.services.authorizer.reauth_window.total_seconds() + 1)


def signed_in_admin(client: TestClient, rt: Runtime, email: str = "ada@example.com") -> str:
    """An admin signed in through the pages, MFA enrolled (admins must). Returns the id."""
    user_id = make_user(rt.services, email, "admin")
    r = sign_in(client, email)
    assert r.headers["location"] == "/account/mfa", r.headers
    enrol_mfa(client)
    return user_id
