"""Accounts in a real browser: a person accepts an invitation link and signs in with
the password they chose; a person changes their password, first because an operator
set it and then of their own accord. Screenshots at a phone's and a laptop's width go
to $SEARCHGATE_CONSOLE_SHOTS when set."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, open_tab, run_cli
from tests.browser.test_console_browser import enrol_mfa, sign_in
from tests.e2e.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WIDTHS = (390, 1366)
MIA_PASSWORD = "mia chose this one herself"


def shots_dir(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("SEARCHGATE_CONSOLE_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def shoot(page: Page, name: str, shots: Path) -> None:
    """The page at each width, with nothing wider than the window."""
    size = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844 if width < 800 else 860})
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {width}px: the page is {overflow}px wider"
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    if size is not None:
        page.set_viewport_size(size)


def test_a_person_accepts_an_invitation_and_signs_in(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    shots = shots_dir(tmp_path)
    admin = open_tab(browser, server)
    page = admin.page
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    enrol_mfa(page)
    page.get_by_role("link", name="I have saved them").click()
    page.goto("/admin/users")
    page.get_by_role("link", name="Invite someone").click()
    page.get_by_label("Email").fill("mia@example.com")
    page.get_by_label("Role").select_option("merchandiser")
    shoot(page, "accounts-01-invite", shots)
    page.get_by_role("button", name="Create invitation link").click()
    link = page.get_by_test_id("invitation-link").inner_text().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/invitation#sgi_[\w-]{43}", link), link
    shoot(page, "accounts-02-invitation-link", shots)
    page.goto("/admin/users")
    expect(page.get_by_test_id("invitation-row")).to_contain_text("mia@example.com")

    mia = open_tab(browser, server)
    invited = mia.page
    invited.goto(link)
    # The code moved from the address into the form; the address no longer holds it.
    expect(invited.get_by_label("Invitation code")).to_have_value(link.split("#", 1)[1])
    expect(invited).to_have_url(re.compile(r"/invitation$"))
    shoot(invited, "accounts-03-invitation", shots)
    invited.get_by_role("button", name="Continue").click()
    expect(invited.get_by_test_id("invited-email")).to_have_text("mia@example.com")
    invited.get_by_label("Your name").fill("Mia Merchant")
    invited.get_by_label("Choose a password").fill(MIA_PASSWORD)
    invited.get_by_label("The password again").fill("not the same at all")
    invited.get_by_role("button", name="Create account").click()
    expect(invited.locator("[data-error-for=repeat]")).to_contain_text("differ")
    shoot(invited, "accounts-04-invitation-accept-error", shots)
    invited.get_by_label("Choose a password").fill(MIA_PASSWORD)
    invited.get_by_label("The password again").fill(MIA_PASSWORD)
    invited.get_by_role("button", name="Create account").click()
    expect(invited.get_by_test_id("who")).to_have_text("Mia Merchant")
    expect(invited.get_by_test_id("flash")).to_contain_text("mia@example.com")

    # Signing out and in again with the password she chose.
    invited.get_by_role("button", name="Sign out").click()
    sign_in(invited, "mia@example.com", MIA_PASSWORD)
    expect(invited.get_by_role("heading", name="Overview")).to_be_visible()
    # The link worked once.
    other = open_tab(browser, server).page
    other.goto(link)
    other.get_by_role("button", name="Continue").click()
    expect(other.locator("[data-error-for=token]")).to_contain_text("not valid")
    shoot(other, "accounts-05-invitation-used", shots)
    page.goto("/admin/users")
    expect(page.get_by_test_id("invitation-row")).to_have_count(0)
    assert not admin.errors and not mia.errors, admin.errors + mia.errors


def test_a_person_changes_their_password(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    shots = shots_dir(tmp_path)
    first, chosen, later = (
        "a password the operator set",
        "my own password now",
        "and another one later",
    )
    create_user(server.data_dir, "vic@example.com", first, "viewer", "Vic Viewer")
    # The operator sets a password: Vic must replace it at the next sign-in.
    run_cli(
        server.data_dir,
        "users",
        "set-password",
        "vic@example.com",
        "--password-stdin",
        stdin=first + "\n",
    )
    tab = open_tab(browser, server)
    page = tab.page
    sign_in(page, "vic@example.com", first)
    expect(page).to_have_url(re.compile(r"/account/password$"))
    expect(page.get_by_test_id("password-change-required")).to_be_visible()
    page.goto("/collections")
    expect(page).to_have_url(re.compile(r"/account/password$"))
    shoot(page, "accounts-06-password-required", shots)
    page.get_by_label("Current password").fill(first)
    page.get_by_label("New password", exact=True).fill(chosen)
    page.get_by_label("New password again").fill(chosen)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Your password was changed")
    page.goto("/collections")
    expect(page.get_by_role("heading", name="Collections")).to_be_visible()

    # Later, of their own accord, from the Account page.
    page.goto("/account")
    page.get_by_role("link", name="Change password").click()
    page.get_by_label("Current password").fill("not my password at all")
    page.get_by_label("New password", exact=True).fill(later)
    page.get_by_label("New password again").fill(later)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("[data-error-for=current]")).to_contain_text("not correct")
    shoot(page, "accounts-07-password-error", shots)
    page.get_by_label("Current password").fill(chosen)
    page.get_by_label("New password", exact=True).fill(later)
    page.get_by_label("New password again").fill(later)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Your password was changed")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "vic@example.com", chosen)
    expect(page.locator("[data-error-for=password]")).to_contain_text("not correct")
    sign_in(page, "vic@example.com", later)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert not tab.errors, tab.errors
