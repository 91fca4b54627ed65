"""Merchandising in a real browser: a merchandiser builds a draft (a synonym set and a
structured rule) and compares live and draft results; a viewer cannot edit; a
merchandiser cannot publish; an admin publishes, reads the version's diff and rolls
back. Every page is checked at phone and laptop widths (no sideways scroll) and its
screenshot saved to $SEARCHGATE_CONSOLE_SHOTS when set."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from searchgate.demo import generate
from tests.browser.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Tab,
    create_user,
    open_tab,
    run_cli,
)
from tests.browser.test_console_browser import enrol_mfa, sign_in
from tests.browser.test_console_layout_browser import LAPTOP, PHONE, check_page
from tests.e2e.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

MERCH_EMAIL = "max@example.com"
MERCH_PASSWORD = "max's own long merchandiser password"
VIEWER_EMAIL = "val@example.com"
VIEWER_PASSWORD = "val's own long viewer password"
BASE = "/areas/Production/merchandising"
DEMO_COUNT = 300
# A laptop of the demo catalog (the same records each time): pinned for "notebook".
LAPTOP_ID = next(r["id"] for r in generate(DEMO_COUNT) if "Laptop - " in r["title"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("merch") / "data"
    create_user(data_dir, ADMIN_EMAIL, ADMIN_PASSWORD, "admin", "Ada Admin")
    create_user(data_dir, MERCH_EMAIL, MERCH_PASSWORD, "merchandiser", "Max Merch")
    create_user(data_dir, VIEWER_EMAIL, VIEWER_PASSWORD, "viewer", "Val Viewer")
    run_cli(data_dir, "demo", "--count", str(DEMO_COUNT))
    srv = ServerProcess(data_dir)
    srv.start()
    try:
        srv.wait_ready(timeout=90)
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    path = Path(os.environ.get("SEARCHGATE_CONSOLE_SHOTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def both_sizes(page: Page, name: str, shots: Path) -> None:
    """The page as it is (not reloaded: it may be the answer to a form), on a phone and
    on a laptop."""
    for size_name, size in (("390", PHONE), ("1366", LAPTOP)):
        page.set_viewport_size(size)
        page.evaluate("window.scrollTo(0, 0)")
        expect(page.locator("main h1")).to_be_visible()
        check_page(page, f"{size_name}-{name}", shots)
    page.set_viewport_size({"width": 1280, "height": 860})


def test_merchandising_from_draft_to_rollback(
    browser: Browser, server: ServerProcess, shots: Path
) -> None:
    # --- a merchandiser builds the draft ----------------------------------------------------
    max_tab = open_tab(browser, server)
    page = max_tab.page
    sign_in(page, MERCH_EMAIL, MERCH_PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Merchandising").click()
    page.get_by_role("link", name="Production").click()
    expect(page.get_by_role("heading", name="Merchandising of Production")).to_be_visible()
    expect(nav.get_by_role("link", name="Merchandising")).to_have_attribute("aria-current", "page")
    expect(page.get_by_test_id("unpublished")).to_have_text("same as live")

    page.get_by_role("link", name="Add a synonym set").click()
    page.get_by_label("Name", exact=True).fill("notebooks")
    page.get_by_label("Kind").select_option("one-way")
    page.get_by_label("Terms").fill("notebook")
    page.get_by_label("To (one-way only)").fill("laptop")
    both_sizes(page, "merch-synonym-form", shots)
    page.get_by_role("button", name="Save synonym set").click()
    expect(page.get_by_test_id("flash")).to_contain_text("notebooks was added in the draft")

    page.get_by_role("link", name="Add a rule").click()
    page.get_by_label("Name", exact=True).fill("Back to school")
    page.get_by_label("Priority").fill("5")
    page.locator("#trigger-value-0").fill("notebook")
    # A second trigger: a plain button adds a row, what was typed stays.
    page.get_by_role("button", name="Add a trigger").click()
    expect(page.get_by_test_id("trigger-row")).to_have_count(2)
    expect(page.locator("#trigger-value-0")).to_have_value("notebook")
    page.locator("#trigger-type-1").select_option("customUrlParam")
    page.locator("#trigger-key-1").fill("device")
    page.locator("#trigger-value-1").fill("mobile")
    page.get_by_label("To (UTC, not included)").fill("2099-01-01T00:00")
    page.get_by_label("Template name").fill("school")
    page.locator("#zone-name-0").fill("banner")
    page.locator("#zone-content-0").fill("Back to school: laptops for every class")
    # A mistake is shown at its row, and what was typed stays.
    page.locator("#pin-id-0").fill(LAPTOP_ID)
    page.locator("#pin-position-0").fill("0")
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator("[data-error-for=pins-0]")).to_contain_text("greater than or equal to 1")
    expect(page.locator("#trigger-value-1")).to_have_value("mobile")
    both_sizes(page, "merch-rule-form", shots)
    page.locator("#pin-position-0").fill("1")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Back to school was added in the draft")
    expect(page.get_by_test_id("unpublished")).to_have_text("2 changes not published")
    rule = page.get_by_test_id("rule")
    expect(rule).to_contain_text("query equals “notebook”")
    expect(rule).to_contain_text("customUrlParams device = mobile")
    expect(rule.get_by_test_id("rule-status")).to_have_text("active")
    expect(rule.locator("time")).to_have_text("2099-01-01 00:00 UTC")
    # The publish button is not offered, and why.
    expect(page.get_by_test_id("publish-refusal")).to_contain_text("console:merchandising:publish")
    expect(page.get_by_role("button", name="Publish")).to_have_count(0)
    both_sizes(page, "merch-draft", shots)

    # Live and draft side by side.
    page.get_by_role("link", name="Live and draft").first.click()
    page.get_by_label("Query").fill("notebook")
    page.get_by_label("customUrlParams").fill("device=mobile")
    page.get_by_role("button", name="Compare").click()
    live, draft = page.get_by_test_id("live-side"), page.get_by_test_id("draft-side")
    expect(draft.get_by_test_id("template")).to_contain_text("school")
    expect(live.get_by_test_id("template")).to_have_count(0)
    expect(draft.get_by_test_id("explain-synonyms")).to_contain_text("notebook")
    expect(live.get_by_test_id("explain-synonyms")).to_contain_text("none applied")
    expect(draft.get_by_test_id("explain-rule").filter(has_text="Back to school")).to_contain_text(
        "fired"
    )
    expect(draft.get_by_test_id("side-record").first).to_contain_text(LAPTOP_ID)
    both_sizes(page, "merch-preview", shots)

    # A merchandiser's own POST to publish is refused as well.
    page.goto(BASE)
    status = page.evaluate(
        """async () => {
          const token = document.querySelector('input[name=csrf_token]').value;
          const r = await fetch(location.pathname + '/publish', {method: 'POST',
            body: new URLSearchParams({csrf_token: token, note: 'sneaky'})});
          return r.status;
        }"""
    )
    assert status == 403
    assert not max_tab.errors, max_tab.errors

    # --- a viewer reads, and cannot edit ---------------------------------------------------
    # In New York: the rule's window in UTC, and beside it in the viewer's own clock.
    context = browser.new_context(base_url=server.url, timezone_id="America/New_York")
    context.set_default_timeout(15_000)
    val_tab = Tab(context.new_page())
    page = val_tab.page
    page.on("pageerror", lambda exc: val_tab.errors.append(str(exc)))
    sign_in(page, VIEWER_EMAIL, VIEWER_PASSWORD)
    page.goto(BASE)
    window = page.get_by_test_id("rule").locator("td.window")
    expect(window).to_contain_text("2099-01-01 00:00 UTC · 2098-12-31 19:00 your time (UTC-05:00)")
    expect(page.get_by_test_id("table-synonyms")).to_contain_text("notebook")
    expect(page.get_by_role("link", name="Add a rule")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^Edit"))).to_have_count(0)
    expect(page.get_by_text("read only").first).to_be_visible()
    response = page.goto(f"{BASE}/rules/new")
    assert response is not None and response.status == 403
    expect(page.locator("main")).to_contain_text("console:merchandising:edit")
    assert not val_tab.errors, val_tab.errors

    # --- an admin publishes, reads the diff, rolls back --------------------------------------
    ada_tab = open_tab(browser, server)
    page = ada_tab.page
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    enrol_mfa(page)
    page.get_by_role("link", name="I have saved them").click()
    page.goto(BASE)
    page.get_by_label("Note for the history (optional)").fill("Back to school")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Version 1 is live")
    expect(page.get_by_role("heading", name="Version 1")).to_be_visible()
    changes = page.get_by_test_id("diff").get_by_test_id("change")
    expect(changes).to_have_count(2)
    expect(changes.filter(has_text="notebooks")).to_contain_text("added")

    # A second version changes the synonym set.
    page.goto(BASE)
    page.get_by_role("link", name="Edit notebooks").click()
    page.get_by_label("To (one-way only)").fill("laptop\nchromebook")
    page.get_by_role("button", name="Save synonym set").click()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Version 2 is live")
    change = page.get_by_test_id("diff").get_by_test_id("change")
    expect(change).to_have_count(1)
    expect(change).to_contain_text("changed")
    expect(change.locator("td.before")).to_contain_text('["laptop"]')
    expect(change.locator("td.after")).to_contain_text('["laptop","chromebook"]')
    both_sizes(page, "merch-version", shots)

    # One click rolls back to version 1 (after the browser's confirmation).
    page.get_by_role("link", name="History").click()
    page.get_by_role("link", name="1", exact=True).click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Version 3 is live")
    expect(page.get_by_test_id("rollback-marker")).to_have_text("rollback to 1")
    page.get_by_role("link", name="History").click()
    rows = page.get_by_test_id("version")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("rollback to 1")
    expect(rows.first).to_contain_text("live")
    both_sizes(page, "merch-history", shots)
    page.goto("/merchandising")
    both_sizes(page, "merch-areas", shots)
    # The search preview says what the live merchandising did to a search.
    page.goto("/search?q=notebook")
    expect(page.get_by_test_id("rewrite")).to_contain_text("synonym: notebook =>")
    both_sizes(page, "merch-search-preview", shots)
    assert not ada_tab.errors, ada_tab.errors
