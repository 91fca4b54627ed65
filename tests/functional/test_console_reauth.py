"""Sensitive actions from the console need a recent password or code: here the window
is 60 ms, so every sensitive request finds the session's proof out of date."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from starlette.testclient import TestClient

from searchgate.audit import AuditFilter
from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from tests.conftest import PASSWORD, load, make_user
from tests.functional.console_support import (
    enrol_mfa,
    error_for,
    outlast_reauth_window,
    post,
    sign_in,
    signed_in_admin,
    token_of,
    use_https,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"reauth_window_minutes": 0.001})


@pytest.mark.manual_clock
def test_deleting_a_collection_needs_its_name_typed_and_a_password(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(12)), demo_settings())
    use_https(client)
    signed_in_admin(client, rt)
    outlast_reauth_window(rt)
    page = "/collections/default/delete"
    assert 'name="reauth"' in client.get(page).text
    cases = [
        ({"confirm_name": "default"}, "reauth", "Enter your password or a code"),
        ({"confirm_name": "default", "reauth": "not my password at all"}, "reauth", "not correct"),
        ({"confirm_name": "defaul", "reauth": PASSWORD}, "confirm_name", "Type the collection"),
    ]
    for form, field, message in cases:
        r = post(client, page, form)
        assert r.status_code == 400, r.text
        assert message in error_for(r.text, field), (form, error_for(r.text, field))
        assert rt.services.catalog.settings_of("default") is not None
    r = post(client, page, {"confirm_name": "default", "reauth": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/collections"
    assert "deleted with its 12 records" in client.get("/collections").text
    assert rt.services.catalog.settings_of("default") is None
    events = rt.services.audit.query(
        Actor.system(), AuditFilter(action="console:collections:delete")
    ).events
    assert [(e.target, e.details) for e in events] == [("default", {"records": 12})]


def test_a_code_from_the_authenticator_also_confirms(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "ada@example.com", "admin")
    sign_in(client, "ada@example.com")
    seed = enrol_mfa(client)
    mia = make_user(rt.services, "mia@example.com", "viewer")
    # A button without its own password field sends the person to confirm first.
    r = client.post(
        f"/admin/users/{mia}/disable",
        data={"csrf_token": _token(client, f"/admin/users/{mia}")},
        headers={
            "Origin": "https://testserver",
            "Referer": f"https://testserver/admin/users/{mia}",
        },
        follow_redirects=False,
    )
    assert r.status_code == 400 and "Enter your password or a code" in error_for(r.text, "actions")
    # The code used for enrolment is spent; the next step's code is fresh.
    totp = pyotp.TOTP(seed)
    code = totp.at(rt.services.audit.clock() + timedelta(seconds=30))
    r = post(client, f"/admin/users/{mia}/disable", {"reauth": code}, page=f"/admin/users/{mia}")
    assert r.status_code == 303
    assert rt.services.users.get(Actor.system(), mia).state == "disabled"


def test_the_reauth_page_confirms_and_returns(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    page = client.get("/reauth?next=/admin/users")
    assert page.status_code == 200 and 'name="reauth"' in page.text
    wrong = post(
        client,
        "/reauth",
        {"reauth": "wrong password, long", "next": "/admin/users"},
        page="/reauth",
    )
    assert wrong.status_code == 401 and "not correct" in error_for(wrong.text, "reauth")
    ok = post(client, "/reauth", {"reauth": PASSWORD, "next": "//evil.example"}, page="/reauth")
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    events = rt.services.audit.query(
        Actor.system(), AuditFilter(action="auth:session:reauthenticate")
    ).events
    assert [e.outcome for e in events] == ["success", "failure"]


def _token(client: TestClient, path: str) -> str:
    return token_of(client.get(path).text)


def test_a_crafted_next_never_leaves_the_site(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    page = client.get("/reauth?next=/%09/evil.example/")
    assert page.status_code == 200 and 'name="next" value="/"' in page.text
    for crafted in ("/\t/evil.example/", "/%2F/evil.example", "/\\evil.example"):
        r = post(client, "/reauth", {"reauth": PASSWORD, "next": crafted}, page="/reauth")
        assert r.status_code == 303 and r.headers["location"] == "/", crafted
    client.cookies.clear()
    make_user(rt.services, "vic@example.com", "viewer")
    form = client.get("/sign-in?next=/%0a/evil.example/")
    assert 'name="next" value="/"' in form.text
    r = post(
        client,
        "/sign-in",
        {"email": "vic@example.com", "password": PASSWORD, "next": "/\n/evil.example/"},
        page="/sign-in",
    )
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_throttled_reauthentication_answers_429_with_retry_after(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    for _ in range(5):
        r = post(client, "/reauth", {"reauth": "wrong password, long", "next": "/"}, page="/reauth")
        assert r.status_code == 401
    r = post(client, "/reauth", {"reauth": PASSWORD, "next": "/"}, page="/reauth")
    assert r.status_code == 429 and r.headers["retry-after"].isdigit()
    assert "Too many failed attempts" in error_for(r.text, "reauth")
