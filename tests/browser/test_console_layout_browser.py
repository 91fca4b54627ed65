"""Every main console page on a phone (390x844) and a laptop (1366x768), in a real
browser: the page body never scrolls sideways, no table is cut off (wide ones scroll in
their own box), the header never covers the navigation, which folds into a menu on the
phone; headings never skip a level, no table header is empty, a skip link leads to the
content and the current page is marked in the navigation. Screenshots go to
$SEARCHGATE_CONSOLE_SHOTS when set (for a person to look at)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, open_tab, run_cli
from tests.browser.test_console_browser import enrol_mfa, sign_in
from tests.e2e.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
KEY_NAME = "storefront-web-with-a-rather-long-name"
BO_EMAIL = "bo@example.com"
BO_PASSWORD = "bo's own long admin password"
VIC_EMAIL = "vic@example.com"
VIC_PASSWORD = "vic's own long viewer password"

# Tables whose right edge passes the box that clips them, or the window: cut off.
CUT_OFF_TABLES = """() => [...document.querySelectorAll('main table')]
  .filter(t => t.getClientRects().length > 0)
  .filter(t => {
    const right = t.getBoundingClientRect().right;
    for (let p = t.parentElement; p && p !== document.documentElement; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll') return false;
      if (o === 'hidden' || o === 'clip') return right > p.getBoundingClientRect().right + 1;
    }
    return right > document.documentElement.clientWidth + 1;
  })
  .map(t => t.getAttribute('data-testid') || t.outerHTML.slice(0, 80))"""

# Each heading at most one level below the one before it (h1 -> h2 -> h3).
HEADING_SKIPS = """() => {
  const found = [];
  let last = 0;
  for (const h of document.querySelectorAll('main h1, main h2, main h3, main h4, main h5')) {
    const level = Number(h.tagName[1]);
    if (level > last + 1) found.push(`h${last} -> ${h.tagName} ${h.textContent.trim()}`);
    last = level;
  }
  return found;
}"""

# What sticks out past the window's right edge (the culprits of a too-wide page).
STICKING_OUT = """() => [...document.body.querySelectorAll('*')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .filter(e => ![...e.children].some(
    c => c.getBoundingClientRect().right > document.documentElement.clientWidth + 1))
  .slice(0, 5).map(e => e.outerHTML.slice(0, 120))"""

EMPTY_HEADERS = """() => [...document.querySelectorAll('th')]
  .filter(th => th.textContent.trim() === '')
  .map(th => th.closest('table').outerHTML.slice(0, 80))"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("layout") / "data"
    create_user(data_dir, ADMIN_EMAIL, ADMIN_PASSWORD, "admin", "Ada Admin")
    create_user(data_dir, BO_EMAIL, BO_PASSWORD, "admin", "Bo Admin")
    create_user(data_dir, VIC_EMAIL, VIC_PASSWORD, "viewer", "Vic Viewer")
    run_cli(data_dir, "demo", "--count", "60")
    out = run_cli(data_dir, "keys", "create", "--name", KEY_NAME, "--all-scopes", "--json")
    (data_dir / "key-id").write_text(json.loads(out)["key"]["id"])
    # The other tests disable KEY_NAME: the shoppers' searches use a key of their own.
    out = run_cli(data_dir, "keys", "create", "--name", "shop", "--all-scopes", "--json")
    (data_dir / "shop-key").write_text(json.loads(out)["secret"])
    srv = ServerProcess(data_dir)
    srv.start()
    try:
        srv.wait_ready(timeout=90)
        yield srv
    finally:
        srv.stop()


def check_page(page: Page, name: str, shots: Path) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    too_wide = f"{name}: the page is {widths[0] - widths[1]}px too wide"
    assert widths[0] <= widths[1], (too_wide, page.evaluate(STICKING_OUT))
    assert page.evaluate(CUT_OFF_TABLES) == [], f"{name}: tables cut off"
    assert page.evaluate(HEADING_SKIPS) == [], f"{name}: headings skip a level"
    assert page.evaluate(EMPTY_HEADERS) == [], f"{name}: empty table headers"
    header = page.locator("header.topbar").bounding_box()
    main = page.locator("main").bounding_box()
    assert header is not None and main is not None
    assert header["y"] + header["height"] <= main["y"] + 1, f"{name}: the header covers the page"


def test_every_main_page_fits_a_phone_and_a_laptop(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("SEARCHGATE_CONSOLE_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    key_id = (server.data_dir / "key-id").read_text()
    tab = open_tab(browser, server)
    page = tab.page
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    enrol_mfa(page)
    page.get_by_role("link", name="I have saved them").click()
    # Wide rows in the change log and the key's page.
    page.goto(f"/admin/keys/{key_id}")
    page.get_by_label("Reason (for the change log)").fill("checking who still uses this key " * 3)
    page.get_by_role("button", name="Disable key").click()
    expect(page.get_by_test_id("flash")).to_contain_text("is disabled")

    pages = {
        "dashboard": "/",
        "collections": "/collections",
        "collection": "/collections/default",
        "search-preview": "/search?q=laptop",
        "areas": "/areas",
        "area": "/areas/Production",
        "merchandising": "/merchandising",
        "merch-draft": "/areas/Production/merchandising",
        "merch-synonym-new": "/areas/Production/merchandising/synonyms/new?term=flat+screen+tv",
        "merch-rule-new": "/areas/Production/merchandising/rules/new?query=laptop",
        "merch-profile-new": "/areas/Production/merchandising/biasing-profiles/new",
        "merch-stop-words-new": "/areas/Production/merchandising/stop-words/new",
        "merch-related-new": "/areas/Production/merchandising/related-queries/new",
        "merch-preview": "/areas/Production/merchandising/preview?q=laptop",
        "merch-versions": "/areas/Production/merchandising/versions",
        "analytics": "/analytics?days=90",
        "users": "/admin/users",
        "user-new": "/admin/users/new",
        "roles": "/admin/roles",
        "role-new": "/admin/roles/new",
        "keys": "/admin/keys",
        "key-new": "/admin/keys/new",
        "key": f"/admin/keys/{key_id}",
        "key-delete": f"/admin/keys/{key_id}/delete",
        "key-new-primary": "/admin/keys/new-primary",
        "key-roll": f"/admin/keys/{key_id}/roll?hours=24&roll_name=",
        "reauth": "/reauth?next=/",
        "mfa": "/account/mfa",
        "rotation": "/admin/rotation",
        "change-log": "/admin/audit",
        "settings": "/admin/settings",
        "account": "/account",
    }
    for size_name, size in (("390", PHONE), ("1366", LAPTOP)):
        page.set_viewport_size(size)
        for name, path in pages.items():
            response = page.goto(path)
            assert response is not None and response.status == 200, (path, response)
            expect(page.locator("main h1")).to_be_visible()
            check_page(page, f"{size_name}-{name}", shots)

    # On the phone the navigation is a menu: closed, it takes no room; opened, it leads on.
    page.set_viewport_size(PHONE)
    page.goto("/")
    nav = page.get_by_role("navigation", name="Main")
    keys_link = nav.get_by_role("link", name="Key Management")
    expect(keys_link).to_be_hidden()
    page.get_by_text("Menu", exact=True).click()
    expect(keys_link).to_be_visible()
    check_page(page, "390-menu-open", shots)
    keys_link.click()
    expect(page.get_by_role("heading", name="Key Management", exact=True)).to_be_visible()
    expect(keys_link).to_be_hidden()
    page.set_viewport_size(LAPTOP)
    expect(keys_link).to_be_visible()
    expect(page.get_by_text("Menu", exact=True)).to_be_hidden()
    # On a laptop the first Tab goes to the skip link, the next to the header's links:
    # the phone's menu box is out of the way.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") != "nav-toggle"
    assert not tab.errors, tab.errors


def test_skip_link_current_page_token_form_audit_dates_and_labels(
    browser: Browser, server: ServerProcess
) -> None:
    key_id = (server.data_dir / "key-id").read_text()
    tab = open_tab(browser, server)
    page = tab.page
    sign_in(page, BO_EMAIL, BO_PASSWORD)
    enrol_mfa(page)
    page.get_by_role("link", name="I have saved them").click()
    # Whatever the other test did to it, the key is disabled once more, by the CLI.
    run_cli(server.data_dir, "keys", "enable", key_id)
    run_cli(server.data_dir, "keys", "disable", key_id, "--reason", "layout check")

    # The first Tab reaches a link that skips the header and the navigation.
    page.goto("/admin/keys")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    skip.press("Enter")
    expect(page).to_have_url(re.compile(r"#content$"))
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Key Management")).to_have_attribute("aria-current", "page")
    expect(nav.locator("[aria-current]")).to_have_count(1)
    page.goto(f"/admin/keys/{key_id}")
    expect(nav.get_by_role("link", name="Key Management")).to_have_attribute("aria-current", "page")

    # A personal token's permissions: none is ticked for the person.
    page.goto("/account")
    boxes = page.locator("input[name=permission]")
    assert boxes.count() > 3
    expect(page.locator("input[name=permission]:checked")).to_have_count(0)

    # A mistyped date stays in its field, with the error beside it.
    page.goto("/admin/audit?since=2024-13-45")
    since = page.get_by_label("From (UTC)")
    expect(since).to_have_value("2024-13-45")
    expect(page.locator("[data-error-for=since]")).to_contain_text("YYYY-MM-DD")

    # The change log speaks words, and names keys by their names.
    page.goto("/admin/audit?action=admin:keys:disable")
    event = page.get_by_test_id("event").first
    expect(event).to_contain_text("Key disabled")
    expect(event).to_contain_text(KEY_NAME)
    expect(event.locator("code", has_text="admin:keys:disable")).to_have_count(1)
    page.goto("/")
    expect(page.get_by_test_id("dash-recent")).to_contain_text("Key disabled")
    assert not tab.errors, tab.errors


def test_the_analytics_page_draws_its_trend_on_a_phone_and_a_laptop(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("SEARCHGATE_CONSOLE_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    secret = (server.data_dir / "shop-key").read_text()
    for query in ("laptop", "laptop", "qqxxzzv"):
        r = httpx.post(
            f"{server.url}/api/v1/search",
            json={"collection": "default", "query": query, "disableAutocorrection": True},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert r.status_code == 200, r.text
    tab = open_tab(browser, server)
    page = tab.page
    sign_in(page, VIC_EMAIL, VIC_PASSWORD)
    expect(page.locator("main h1")).to_have_text("Overview")
    # The server writes its counts every few seconds: wait for them, with a deadline.
    deadline = time.monotonic() + 30
    while True:
        page.goto("/analytics?days=7")
        if page.get_by_test_id("total-searches").inner_text() != "0":
            break
        assert time.monotonic() < deadline, "the searches never reached the page"
        page.wait_for_timeout(250)
    for size_name, size in (("390", PHONE), ("1366", LAPTOP)):
        page.set_viewport_size(size)
        page.goto("/analytics?days=7")
        chart = page.get_by_test_id("trend-chart").locator("svg").first
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 40, box
        expect(page.get_by_test_id("zero-share-line")).to_have_count(1)
        expect(page.get_by_test_id("top-query").first).to_contain_text("laptop")
        expect(page.get_by_test_id("zero-query").first).to_contain_text("qqxxzzv")
        check_page(page, f"{size_name}-analytics-data", shots)
        page.goto("/")
        expect(page.get_by_test_id("dash-trend").locator("svg").first).to_be_visible()
        check_page(page, f"{size_name}-overview-trend", shots)
    assert not tab.errors, tab.errors
