"""Key Management's guards in a real browser, on a server whose primary key is in a
file store and whose re-authentication window is a few seconds: every key change asks
for the password once the proof is stale; a new primary key and a roll each show what
will happen first; a key's collections are picked from those that exist; the rotation
wizard offers both ways back after a primary key made by hand; and the expiry a roll
set can be cancelled and moved."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from searchgate.secretstores.file import FileStore
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, open_tab, run_cli
from tests.browser.test_console_browser import enrol_mfa, sign_in
from tests.e2e import server as server_module
from tests.e2e.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

STORED = "shop"
WINDOW_MINUTES = 0.05  # 3 s: a proof goes stale within a test, and holds for a submit
CONFIRM = "Confirm it is you: your password or a code from your authenticator"
KEY = re.compile(r"^sgk_[0-9A-Za-z]{38}$")


def store_of(data_dir: Path) -> FileStore:
    return FileStore(data_dir / "secrets" / "client-key.json")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first admin, a demo catalog (collection ``default``), and the primary key in
    a file store."""
    data = tmp_path_factory.mktemp("guards") / "data"
    create_user(data, ADMIN_EMAIL, ADMIN_PASSWORD, "admin", "Ada Admin")
    run_cli(data, "demo", "--count", "20")
    out = run_cli(data, "keys", "create", "--name", STORED, "--all-scopes", "--primary", "--json")
    store_of(data).write(json.loads(out)["secret"], expected_version=None)
    return data


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(data_dir)
    env = {
        "SEARCHGATE_ROTATION_STORE_KIND": "file",
        "SEARCHGATE_ROTATION_STORE_PATH": str(store_of(data_dir).path),
        "SEARCHGATE_REAUTH_WINDOW_MINUTES": str(WINDOW_MINUTES),
        "SEARCHGATE_KEY_USAGE_FLUSH_SECONDS": "0.2",
        "SEARCHGATE_KEY_CACHE_SECONDS": "0.2",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setitem(server_module.BASE_ENV, name, value)
        srv.start()
    try:
        srv.wait_ready(timeout=90)
        yield srv
    finally:
        srv.stop()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.25)


def until_stale(page: Page, scope: Locator | None = None) -> None:
    """Reloads until the page asks for the password: the last proof has gone stale."""

    def asks() -> bool:
        page.reload()
        return (scope or page.locator("main")).get_by_label(CONFIRM).count() > 0

    wait_until(asks, 30, "the re-authentication window to lapse")


def call(server: ServerProcess, secret: str) -> int:
    r = httpx.get(
        server.url + "/api/v1/keys/self",
        headers={"Authorization": f"Bearer {secret}", "X-Searchgate-System": "feed-importer"},
        timeout=10,
    )
    return r.status_code


def test_key_changes_ask_for_the_password_and_say_what_happens(
    browser: Browser, server: ServerProcess, data_dir: Path
) -> None:
    tab = open_tab(browser, server)
    page = tab.page
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    enrol_mfa(page)
    page.get_by_role("link", name="I have saved them").click()

    # A new key: collections are ticked from those that exist; no free-typed names.
    page.goto("/admin/keys/new")
    until_stale(page)
    collections = page.get_by_test_id("collections")
    expect(collections.locator("input[name=collection]")).to_have_count(1)
    expect(page.locator("[name=collections]")).to_have_count(0)
    page.get_by_label("Name", exact=True).fill("feed")
    page.locator("input[name=scope][value=search]").check()
    collections.get_by_label("default").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("[data-error-for=reauth]")).to_contain_text("password")
    expect(collections.get_by_label("default")).to_be_checked()
    page.get_by_label(CONFIRM).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Key created")).to_be_visible()
    feed_secret = page.get_by_test_id("key-secret").input_value()
    assert KEY.match(feed_secret)
    expect(page.get_by_test_id("key-collections")).to_have_count(0)  # the secret page
    page.get_by_role("link", name="I have stored it").click()
    expect(page.get_by_test_id("key-collections")).to_have_text("default")

    # A new primary key: first what happens, then the password.
    page.goto("/admin/keys")
    page.get_by_test_id("new-primary").click()
    expect(page.get_by_role("heading", name="Create a new primary key")).to_be_visible()
    consequences = page.get_by_test_id("consequences")
    expect(consequences).to_contain_text(f"{STORED} keeps working")
    expect(consequences).to_contain_text("secret store")
    until_stale(page)
    page.get_by_role("button", name="Create the new primary key").click()
    expect(page.locator("[data-error-for=reauth]")).to_contain_text("password")
    page.get_by_label(CONFIRM).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Create the new primary key").click()
    expect(page.get_by_role("heading", name="New primary key")).to_be_visible()
    primary_secret = page.get_by_test_id("key-secret").input_value()
    assert KEY.match(primary_secret)

    # The wizard: the store holds the old key; it says so, and offers both ways back.
    page.goto("/admin/rotation")
    held = page.locator("[data-testid=precondition][data-ok=no]")
    expect(held).to_have_count(1)
    expect(held).to_contain_text("The store holds the current primary key")
    fix = page.get_by_test_id("store-fix")
    expect(fix.get_by_test_id("store-primary-form")).to_contain_text(f"Make {STORED} primary again")
    until_stale(page, fix)
    shots = os.environ.get("SEARCHGATE_CONSOLE_SHOTS")
    if shots:  # for a person to look at
        page.screenshot(path=str(Path(shots) / "rotation-store-fix.png"), full_page=True)
    fix.get_by_label("Secret of the primary key").fill(feed_secret)
    fix.get_by_label(CONFIRM).fill(ADMIN_PASSWORD)
    fix.get_by_role("button", name="Write it to the store").click()
    expect(page.locator("[data-error-for=secret]")).to_contain_text("not the secret of the primary")
    assert store_of(data_dir).read().value != primary_secret
    assert feed_secret not in page.content()
    fix = page.get_by_test_id("store-fix")
    fix.get_by_label("Secret of the primary key").fill(primary_secret)
    if fix.get_by_label(CONFIRM).count():
        fix.get_by_label(CONFIRM).fill(ADMIN_PASSWORD)
    fix.get_by_role("button", name="Write it to the store").click()
    expect(page.get_by_test_id("flash")).to_contain_text("The store holds the primary key")
    expect(page.locator("[data-testid=precondition][data-ok=yes]")).to_have_count(5)
    expect(page.get_by_test_id("store-fix")).to_have_count(0)
    assert store_of(data_dir).read().value == primary_secret
    assert primary_secret not in page.content()

    # The other way back: after another primary key made by hand, the stored key is
    # made the primary key again (confirming the password on the way).
    page.goto("/admin/keys/new-primary")
    if page.get_by_label(CONFIRM).count():
        page.get_by_label(CONFIRM).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Create the new primary key").click()
    expect(page.get_by_role("heading", name="New primary key")).to_be_visible()
    page.goto("/admin/rotation")
    fix = page.get_by_test_id("store-fix")
    until_stale(page, fix)
    stored_name = fix.get_by_test_id("store-primary-form").locator("h3").inner_text()
    stored_name = stored_name.removeprefix("Make ").removesuffix(" primary again")
    fix.get_by_role("button", name=re.compile(r"^Make .* primary again$")).click()
    expect(page).to_have_url(re.compile(r"/reauth\?next=/admin/rotation$"))
    page.get_by_label("Your password, or a code from your authenticator").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/admin/rotation$"))
    page.get_by_role("button", name=re.compile(r"^Make .* primary again$")).click()
    expect(page.get_by_test_id("flash")).to_contain_text(f"{stored_name} is the primary key again")
    expect(page.locator("[data-testid=precondition][data-ok=yes]")).to_have_count(5)

    # Roll: what happens to the live key (its 24 h fuse) before anything changes.
    assert call(server, feed_secret) == 200
    page.goto("/admin/keys")
    page.locator("[data-testid=key][data-key-name=feed]").get_by_role("link", name="feed").click()
    feed_url = page.url
    page.get_by_role("button", name="Roll key…").click()
    expect(page.get_by_role("heading", name="Roll feed")).to_be_visible()
    fuse = page.get_by_test_id("fuse")
    expect(fuse).to_contain_text("feed stops working at")
    expect(fuse).to_contain_text("24 h from now")
    wait_until(
        lambda: page.reload() is not None and page.get_by_test_id("live-key").count() == 1,
        30,
        "the key's use to be counted",
    )
    expect(page.get_by_test_id("live-key")).to_contain_text("feed-importer")
    until_stale(page)
    page.get_by_role("button", name="Roll the key").click()
    expect(page.locator("[data-error-for=reauth]")).to_contain_text("password")
    assert call(server, feed_secret) == 200
    page.get_by_label(CONFIRM).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Roll the key").click()
    expect(page.get_by_role("heading", name="Key rolled")).to_be_visible()
    expect(page.get_by_test_id("replaced")).to_contain_text("keeps working until")

    # The roll's expiry is cancelled, then moved, on the old key's page.
    page.goto(feed_url)
    expect(page.get_by_test_id("expiry-now")).to_contain_text("set by a roll")
    until_stale(page, page.get_by_test_id("expiry-form"))
    form = page.get_by_test_id("expiry-form")
    form.get_by_label(CONFIRM).fill(ADMIN_PASSWORD)
    form.get_by_role("button", name="Never expire").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Key feed never expires now")
    expect(page.get_by_test_id("expiry-now")).to_contain_text("Never expires")
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    form = page.get_by_test_id("expiry-form")
    form.get_by_label("Expires at (UTC)").fill(later)
    if form.get_by_label(CONFIRM).count():
        form.get_by_label(CONFIRM).fill(ADMIN_PASSWORD)
    form.get_by_role("button", name="Change expiry").click()
    expect(page.get_by_test_id("flash")).to_contain_text(
        f"Key feed stops working at {later.replace('T', ' ')} UTC"
    )
    assert call(server, feed_secret) == 200

    page.goto("/admin/audit?action=admin:keys:expiry")
    expect(page.get_by_test_id("event")).to_have_count(2)
    page.goto("/admin/audit?action=admin:rotation:store-write")
    expect(page.get_by_test_id("event")).to_have_count(1)
    assert not tab.errors, tab.errors
