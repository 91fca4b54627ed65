"""Key Management in a real browser: an admin creates a new primary key, sees its
secret once and copies it; reloading shows it no more. The old key's traffic from two
systems appears on its page; the admin disables it, then deletes it with its name typed
out after confirming their password, and its tombstone stays in the list."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, open_tab, run_cli
from tests.browser.test_console_browser import enrol_mfa, sign_in
from tests.e2e import server as server_module
from tests.e2e.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

OLD_KEY = "storefront"
SYSTEMS = ("storefront-web", "catalog-feed")
# Short, so that the deletion meets a stale proof and the re-authentication flow runs;
# long enough for the few clicks between confirming and deleting.
REAUTH_WINDOW_SECONDS = 15.0
KEY = re.compile(r"^sgk_[0-9A-Za-z]{38}$")


@pytest.fixture(scope="module")
def old_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data directory with the first admin, a demo catalog and the primary key."""
    data_dir = tmp_path_factory.mktemp("keys") / "data"
    create_user(data_dir, ADMIN_EMAIL, ADMIN_PASSWORD, "admin", "Ada Admin")
    run_cli(data_dir, "demo", "--count", "50")
    out = run_cli(data_dir, "keys", "create", "--name", OLD_KEY, "--all-scopes", "--json")
    return data_dir, str(json.loads(out)["secret"])


@pytest.fixture(scope="module")
def server(old_key: tuple[Path, str]) -> Iterator[ServerProcess]:
    srv = ServerProcess(old_key[0])
    window = str(REAUTH_WINDOW_SECONDS / 60)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(server_module.BASE_ENV, "SEARCHGATE_REAUTH_WINDOW_MINUTES", window)
        srv.start()
    try:
        srv.wait_ready(timeout=90)
        yield srv
    finally:
        srv.stop()


def call(server: ServerProcess, secret: str, system: str) -> httpx.Response:
    return httpx.get(
        server.url + "/api/v1/keys/self",
        headers={"Authorization": f"Bearer {secret}", "X-Searchgate-System": system},
        timeout=10,
    )


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.25)


def legend(page: Page) -> set[str]:
    items = page.locator("[data-testid=chart-legend] li")
    return set(items.evaluate_all("items => items.map(li => li.getAttribute('data-system'))"))


def test_new_primary_key_once_then_the_old_key_s_traffic_disable_and_delete(
    browser: Browser, server: ServerProcess, old_key: tuple[Path, str]
) -> None:
    old_secret = old_key[1]
    tab = open_tab(browser, server)
    page = tab.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)

    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    enrol_mfa(page)
    signed_in = time.monotonic()
    page.get_by_role("link", name="I have saved them").click()
    # Traffic of the old key from two systems, counted while the admin works.
    for system in SYSTEMS:
        assert call(server, old_secret, system).status_code == 200

    page.get_by_role("link", name="Key Management").click()
    old_card = page.locator(f"[data-testid=key][data-key-name={OLD_KEY}]")
    expect(old_card.get_by_test_id("key-primary")).to_be_visible()

    # A new primary key: its secret once, with a warning, copied by the button.
    page.get_by_role("link", name="Create new primary key…").click()
    expect(page.get_by_test_id("consequences")).to_contain_text(f"{OLD_KEY} keeps working")
    proof = page.get_by_label("Confirm it is you: your password or a code from your authenticator")
    if proof.count():  # the sign-in's proof may have lapsed already
        proof.fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Create the new primary key").click()
    expect(page.get_by_role("heading", name="New primary key")).to_be_visible()
    expect(page.get_by_test_id("secret-warning")).to_contain_text("never be shown again")
    expect(page.get_by_test_id("replaced")).to_contain_text(f"{OLD_KEY} keeps working")
    field = page.get_by_test_id("key-secret")
    secret = field.input_value()
    assert KEY.match(secret), secret
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-copy-status]")).to_contain_text("Copied to the clipboard")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    # The fallback: focusing the read-only field selects the whole key.
    field.focus()
    assert page.evaluate(
        "() => { const f = document.getElementById('key-secret');"
        " return [f.selectionStart, f.selectionEnd, f.readOnly]; }"
    ) == [0, len(secret), True]
    # The answer's history entry is now the new key's page: a reload fetches that.
    expect(page).to_have_url(re.compile(r"/admin/keys/key_[0-9a-f]{16}$"))
    new_key_url = page.url
    page.reload()
    expect(page.get_by_test_id("key-primary")).to_be_visible()
    expect(page.get_by_test_id("key-secret")).to_have_count(0)
    assert secret not in page.content()
    page.go_back()  # to the confirmation page, never to the answer
    expect(page).to_have_url(re.compile(r"/admin/keys/new-primary$"))
    assert secret not in page.content()
    page.go_forward()
    expect(page).to_have_url(new_key_url)
    assert secret not in page.content()
    me = httpx.get(
        server.url + "/api/v1/keys/self", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    ).json()
    assert me["primary"] is True and me["name"].startswith(OLD_KEY)

    # The old key still works, is marked to retire, and shows who used it.
    page.goto("/admin/keys")
    expect(old_card.get_by_test_id("key-retiring")).to_be_visible()
    old_card.get_by_role("link", name=OLD_KEY).click()
    expect(page.get_by_role("heading", name=OLD_KEY, exact=True)).to_be_visible()

    def traffic_shown() -> bool:
        page.reload()
        return legend(page) == set(SYSTEMS)

    wait_until(traffic_shown, 30, "the old key's traffic by system")
    chart = page.get_by_test_id("key-chart")
    expect(chart.locator("svg[role=img] rect[fill]").first).to_be_attached()
    expect(page.get_by_test_id("key-systems")).to_contain_text(SYSTEMS[0])
    expect(page.get_by_test_id("key-systems")).to_contain_text(SYSTEMS[1])
    expect(page.get_by_test_id("key-last-use")).to_contain_text("127.0.0.1")

    # Disabled: reversible, and refused by the server within seconds.
    page.get_by_label("Reason (for the change log)").fill("moved to the new primary key")
    page.get_by_role("button", name="Disable key").click()
    expect(page.get_by_test_id("flash")).to_contain_text(f"Key {OLD_KEY} is disabled")
    expect(page.get_by_test_id("key-state")).to_have_text("disabled")
    expect(page.get_by_test_id("key-disabled")).to_contain_text("moved to the new primary key")
    wait_until(
        lambda: call(server, old_secret, SYSTEMS[0]).status_code == 401, 10, "refusing the key"
    )

    # Deleting needs a fresh proof of the password: wait until the sign-in's is stale.
    time.sleep(max(0.0, signed_in + REAUTH_WINDOW_SECONDS + 1 - time.monotonic()))
    page.get_by_test_id("delete-link").click()
    expect(page).to_have_url(re.compile(r"/reauth\?next=/admin/keys/key_[0-9a-f]{16}/delete$"))
    expect(page.get_by_test_id("flash")).to_contain_text("confirm it is you first")
    page.get_by_label("Your password, or a code from your authenticator").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name=f"Delete {OLD_KEY}")).to_be_visible()
    expect(page.get_by_test_id("in-use")).to_contain_text("Still in use")
    expect(page.get_by_test_id("in-use-system")).to_have_count(len(SYSTEMS))
    expect(page.get_by_test_id("delete-last-use")).to_contain_text("127.0.0.1")
    confirm = page.get_by_label("Type the key's name to confirm")
    confirm.fill(OLD_KEY + "x")
    page.get_by_test_id("force").check()
    page.get_by_role("button", name="Delete this key forever").click()
    expect(page.locator("[data-error-for=confirm_name]")).to_contain_text("Type the key's name")
    confirm.fill(OLD_KEY)
    expect(page.get_by_test_id("force")).to_be_checked()
    page.get_by_role("button", name="Delete this key forever").click()

    expect(page).to_have_url(re.compile(r"/admin/keys$"))
    expect(page.get_by_test_id("flash")).to_contain_text(f"Key {OLD_KEY} was deleted")
    expect(old_card).to_have_count(0)
    tombstones = page.get_by_test_id("tombstones")
    tombstones.locator("summary").click()
    expect(tombstones.get_by_test_id("tombstone")).to_have_count(1)
    expect(tombstones.get_by_test_id("tombstone")).to_contain_text(OLD_KEY)
    refused = call(server, old_secret, SYSTEMS[0])
    assert refused.status_code == 401 and old_secret not in refused.text
    assert call(server, secret, SYSTEMS[0]).status_code == 200
    assert not tab.errors, tab.errors
