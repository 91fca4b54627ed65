"""The Command Center in a real browser: the first admin signs in and enrols MFA,
composes a custom role, creates a person with it, that person is refused an admin
page, is disabled while signed in and refused on their next click, and the admin
reads it all in the change log."""

from __future__ import annotations

import csv
import io
import re

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tab, open_tab
from tests.e2e.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

MIA_EMAIL = "mia@example.com"
MIA_PASSWORD = "a first password for mia"
MIA_OWN_PASSWORD = "mia's own long password"
ROLE = "Catalog reader"


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def enrol_mfa(page: Page) -> str:
    """From the MFA page: scan (read) the secret, type the current code."""
    page.get_by_role("button", name="Set up two-factor authentication").click()
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    return secret


def test_admin_story_from_first_sign_in_to_the_change_log(
    browser: Browser, server: ServerProcess
) -> None:
    admin = open_tab(browser, server)
    page = admin.page

    # Admins must enrol in MFA first (on by default): nothing else opens until then.
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    expect(page).to_have_url(re.compile(r"/account/mfa$"))
    expect(page.get_by_test_id("mfa-required")).to_be_visible()
    page.goto("/admin/users")
    expect(page).to_have_url(re.compile(r"/account/mfa$"))
    enrol_mfa(page)
    page.get_by_role("link", name="I have saved them").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("who")).to_have_text("Ada Admin")
    expect(page.get_by_test_id("dash-collections")).to_contain_text("default")

    # A custom role from permission checkboxes, limited to one area.
    page.get_by_role("link", name="Roles").click()
    page.get_by_role("link", name="New role").click()
    page.get_by_label("Name", exact=True).fill(ROLE)
    page.get_by_label("Description").fill("Reads the catalog, previews search")
    page.locator("input[name=permission][value='console:collections:read']").check()
    page.locator("input[name=permission][value='console:search:preview']").check()
    page.get_by_label("Only these areas:").check()
    page.locator("input[name=area][value=Production]").check()
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_test_id("flash")).to_contain_text(f"Role {ROLE} was created")
    expect(page.get_by_test_id("roles")).to_contain_text(ROLE)

    # A person with that role.
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Email").fill(MIA_EMAIL)
    page.get_by_label("Name", exact=True).fill("Mia Merch")
    page.get_by_label("Role", exact=True).select_option(ROLE)
    page.get_by_label("First password").fill(MIA_PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("flash")).to_contain_text(f"{MIA_EMAIL} can sign in now")
    mia_url = page.url

    # Mia, in her own browser profile: catalog pages open, the admin section does not.
    mia = open_tab(browser, server)
    sign_in(mia.page, MIA_EMAIL, MIA_PASSWORD)
    # The admin chose that password: Mia replaces it before anything else.
    expect(mia.page).to_have_url(re.compile(r"/account/password$"))
    mia.page.get_by_label("Current password").fill(MIA_PASSWORD)
    mia.page.get_by_label("New password", exact=True).fill(MIA_OWN_PASSWORD)
    mia.page.get_by_label("New password again").fill(MIA_OWN_PASSWORD)
    mia.page.get_by_role("button", name="Change password").click()
    expect(mia.page.get_by_test_id("flash")).to_contain_text("Your password was changed")
    expect(mia.page.get_by_test_id("who")).to_have_text("Mia Merch")
    expect(mia.page.locator(".sidenav")).not_to_contain_text("Users")
    mia.page.get_by_role("link", name="Collections").click()
    expect(mia.page.get_by_test_id("collections")).to_contain_text("default")
    response = mia.page.goto("/admin/users")
    assert response is not None and response.status == 403
    expect(mia.page.get_by_test_id("error-title")).to_have_text("Not allowed")
    expect(mia.page.get_by_test_id("error-message")).to_contain_text("admin:users:read")

    # The admin disables Mia while her browser is signed in ...
    page.goto(mia_url)
    page.get_by_role("button", name="Disable account").click()
    expect(page.get_by_test_id("flash")).to_contain_text("is disabled")
    expect(page.get_by_test_id("user-state")).to_have_text("disabled")

    # ... and her very next click is refused.
    mia.page.get_by_role("link", name="Search preview").click()
    expect(mia.page).to_have_url(re.compile(r"/sign-in\?.*reason=user_disabled"))
    expect(mia.page.get_by_test_id("ended")).to_contain_text("This account is disabled")
    mia.page.goto("/collections")
    expect(mia.page).to_have_url(re.compile(r"/sign-in"))

    # The change log tells the story, filtered, and exports it.
    page.get_by_role("link", name="Change log").click()
    log = page.get_by_test_id("audit")
    for action in ("admin:users:disable", "admin:users:create", "admin:roles:create"):
        expect(log).to_contain_text(action)
    page.get_by_label("User (email or id)").fill(MIA_EMAIL)
    page.get_by_role("button", name="Filter").click()
    expect(log).to_contain_text("console:page:deny")
    expect(log).not_to_contain_text("admin:roles:create")
    page.get_by_label("User (email or id)").fill("")
    page.get_by_label("Action").fill("admin:users:disable")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("event")).to_have_count(1)
    expect(page.get_by_test_id("event")).to_contain_text(MIA_EMAIL)
    with page.expect_download() as download:
        page.get_by_test_id("export").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [r["action"] for r in rows] == ["admin:users:disable"]
    assert rows[0]["target"] == MIA_EMAIL and rows[0]["actor_email"] == ADMIN_EMAIL

    assert admin.errors == [] and mia.errors == []


def test_search_preview_refines_by_clicking_a_navigation(
    browser: Browser, server: ServerProcess
) -> None:
    from tests.browser.conftest import create_user

    create_user(server.data_dir, "vic@example.com", MIA_PASSWORD, "viewer", "Vic Viewer")
    tab: Tab = open_tab(browser, server)
    page = tab.page
    sign_in(page, "vic@example.com", MIA_PASSWORD)
    page.get_by_role("link", name="Search preview").click()
    total = page.get_by_test_id("total")
    expect(total).to_contain_text("300 results")
    first = page.locator("[data-testid^=refine-]").first
    label = first.inner_text()
    count = int(label.split()[-1].replace(",", ""))
    first.click()
    expect(total).to_contain_text(f"{count:,} results")
    expect(page.get_by_test_id("selected")).to_have_count(1)
    page.get_by_label("Remove").click()
    expect(total).to_contain_text("300 results")

    # The query box swaps the results in place (htmx) and keeps the URL shareable.
    page.get_by_label("Query").fill("laptop")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search\?.*q=laptop"))
    expect(total).not_to_contain_text("300 results")
    assert page.get_by_test_id("result").count() > 0

    # The record browser pages with htmx too.
    page.goto("/collections/default")
    expect(page.get_by_test_id("record-range")).to_contain_text("Records 1\u201325 of 300")
    page.get_by_test_id("next-page").click()
    expect(page.get_by_test_id("record-range")).to_contain_text("Records 26\u201350 of 300")
    expect(page).to_have_url(re.compile(r"after=SKU0000025"))
    assert tab.errors == []
