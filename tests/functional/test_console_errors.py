"""What a person sees when a console address is wrong, refused or fails: an HTML page
in the console's layout with a way back. The API keeps answering JSON."""

from __future__ import annotations

import re

from sqlalchemy import text
from starlette.testclient import TestClient

from searchgate.runtime import Runtime
from tests.conftest import make_user
from tests.functional.console_support import post, sign_in, use_https


def _html(response: object) -> str:
    r = response
    assert r.headers["content-type"].startswith("text/html"), r.headers  # type: ignore[attr-defined]
    assert "Content-Security-Policy" in r.headers  # type: ignore[attr-defined]
    page: str = r.text  # type: ignore[attr-defined]
    assert 'data-testid="error-title"' in page
    return page


def test_an_unknown_console_address_is_an_html_404(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    for path in ("/no-such-page", "/admin/no-such-page", "/collections/x/y/z/nothing"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 404, path
        page = _html(r)
        assert 'href="/sign-in"' in page  # not signed in: the way back is signing in
        assert "Sign in" in page
    make_user(rt.services, "vic@example.com", "viewer")
    sign_in(client, "vic@example.com")
    r = client.get("/admin/no-such-page")
    assert r.status_code == 404
    page = _html(r)
    # Signed in: the whole layout (navigation, who is signed in) and a link to the overview.
    assert 'data-testid="who"' in page and 'aria-label="Main"' in page
    assert re.search(r'<a href="/">[^<]*overview', page)
    wrong_method = post(client, "/account/mfa", page="/account")
    assert wrong_method.status_code == 405
    _html(wrong_method)
    assert "GET" in wrong_method.headers["allow"]


def test_a_refused_console_page_is_an_html_403(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "vic@example.com", "viewer")
    sign_in(client, "vic@example.com")
    r = client.get("/admin/users")
    assert r.status_code == 403
    page = _html(r)
    assert 'data-testid="who"' in page and re.search(r'<a href="/">[^<]*overview', page)


def test_a_failing_console_page_is_an_html_500(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    make_user(rt.services, "vic@example.com", "viewer")
    sign_in(client, "vic@example.com")
    with rt.services.db.engine.begin() as conn:
        conn.execute(
            text(
                "DROP TABLE areas CASCADE"
                if conn.dialect.name == "postgresql"
                else "DROP TABLE areas"
            )
        )
    r = client.get("/areas")
    assert r.status_code == 500
    page = _html(r)
    assert 'data-testid="who"' in page and re.search(r'<a href="/">[^<]*overview', page)
    assert "areas" not in page.split('data-testid="error-message"')[1].split("</p>")[0].lower()
    # Nothing of the failure (SQL, a trace) reaches the page; the request id does.
    assert "DROP" not in page and "Traceback" not in page and "sqlalchemy" not in page.lower()
    assert re.search(r"request id [0-9a-f]{16}", page)


def test_the_api_keeps_answering_json(client: TestClient, auth: dict[str, str]) -> None:
    for path in ("/api/v1/no-such-thing", "/data/v1/no-such-thing", "/api/v1/admin/nothing"):
        r = client.get(path, headers=auth)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["code"] == "not_found"
    r = client.delete("/api/v1/search", headers=auth)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
