"""Every main page in a real browser, as an admin: it renders without a script error
or a Content-Security-Policy violation, and nothing overflows a laptop-sized window.
Screenshots go to $SEARCHGATE_CONSOLE_SHOTS when set (for a person to look at)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import create_user, open_tab
from tests.browser.test_console_browser import enrol_mfa, sign_in
from tests.e2e.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PASSWORD = "sam's long admin password"


def shoot(page: Page, name: str, shots: Path) -> None:
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_main_pages_render_cleanly(browser: Browser, server: ServerProcess, tmp_path: Path) -> None:
    shots = Path(os.environ.get("SEARCHGATE_CONSOLE_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    create_user(server.data_dir, "sam@example.com", PASSWORD, "admin", "Sam Admin")
    tab = open_tab(browser, server)
    page = tab.page

    page.goto("/sign-in")
    shoot(page, "01-sign-in", shots)
    sign_in(page, "sam@example.com", "not the password")
    expect(page.locator("[data-error-for=password]")).to_contain_text("not correct")
    shoot(page, "02-sign-in-error", shots)
    sign_in(page, "sam@example.com", PASSWORD)
    page.get_by_role("button", name="Set up two-factor authentication").click()
    shoot(page, "03-mfa-enrol", shots)
    page.go_back()
    enrol_mfa(page)
    shoot(page, "04-recovery-codes", shots)

    pages = {
        "05-dashboard": "/",
        "06-collections": "/collections",
        "07-collection": "/collections/default",
        "08-collection-delete": "/collections/default/delete",
        "09-search-preview": "/search?q=laptop",
        "10-areas": "/areas",
        "11-area": "/areas/Production",
        "12-users": "/admin/users",
        "13-user-new": "/admin/users/new",
        "14-roles": "/admin/roles",
        "15-role-new": "/admin/roles/new",
        "16-role-builtin": "/admin/roles/merchandiser",
        "17-change-log": "/admin/audit",
        "18-settings": "/admin/settings",
        "19-account": "/account",
    }
    for name, path in pages.items():
        response = page.goto(path)
        assert response is not None and response.status == 200, (path, response)
        expect(page.locator("main h1")).to_be_visible()
        shoot(page, name, shots)

    page.goto("/admin/users/new")
    page.get_by_label("Email").fill("ana@localhost")
    page.get_by_label("First password").fill("short")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("[data-error-for=email]")).to_be_visible()
    shoot(page, "20-user-new-errors", shots)

    page.goto("/admin/users")
    page.get_by_role("link", name="Ada Admin").click()
    shoot(page, "21-user", shots)

    # Site parameters are key/value rows; a row is added in the page, then saved.
    page.goto("/areas/Production")
    page.get_by_role("button", name="Add a row").click()
    page.get_by_label("Key", exact=True).last.fill("banner")
    page.get_by_label("Value", exact=True).last.fill("Spring sale")
    page.get_by_role("button", name="Save site parameters").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Site parameters saved")
    expect(page.locator("input[name=value]").first).to_have_value("Spring sale")

    page.goto("/account")
    page.get_by_label("Name", exact=True).fill("nightly export")
    page.get_by_label("admin:audit:read").check()  # none is ticked by default
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("token-secret")).to_contain_text("sgp_")
    shoot(page, "22-token-created", shots)

    assert tab.errors == []
