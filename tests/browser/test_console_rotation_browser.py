"""The rotation wizard in a real browser, against a real server whose client key lives
in a file store (the demo set-up's): an admin starts a rotation, watches the steps and
the traffic by system change without reloading the page, and sees it finish with the old
key deleted. A storefront reads the key from the store and searches all along; none of
its requests fails."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from searchgate.secretstores.file import FileStore
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, create_user, open_tab, run_cli
from tests.browser.test_console_browser import enrol_mfa, sign_in
from tests.e2e import server as server_module
from tests.e2e.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SYSTEM = "storefront-web"
KEY_SHAPED = re.compile(r"sgk_[0-9A-Za-z]{16,}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first admin, a demo catalog, and the primary key in a file store (where the
    demo set-up keeps it)."""
    data = tmp_path_factory.mktemp("rotation") / "data"
    create_user(data, ADMIN_EMAIL, ADMIN_PASSWORD, "admin", "Ada Admin")
    run_cli(data, "demo", "--count", "50")
    out = run_cli(data, "keys", "create", "--name", "shop", "--all-scopes", "--primary", "--json")
    store_of(data).write(json.loads(out)["secret"], expected_version=None)
    return data


def store_of(data_dir: Path) -> FileStore:
    return FileStore(data_dir / "secrets" / "client-key.json")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(data_dir)
    env = {
        "SEARCHGATE_ROTATION_STORE_KIND": "file",
        "SEARCHGATE_ROTATION_STORE_PATH": str(store_of(data_dir).path),
        # Usage and revocations reach the database within 0.2 s: the waits stay short.
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


@dataclass
class Storefront:
    """Searches every 0.3 s with the key it reads from the store (as the SDK refreshes
    it), naming itself in X-Searchgate-System."""

    server: ServerProcess
    store: FileStore
    statuses: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10) as http:
            while not self.stop.is_set():
                key = self.store.read().value
                r = http.post(
                    "/api/v1/search",
                    json={"query": "macbook", "pageSize": 1},
                    headers={"Authorization": f"Bearer {key}", "X-Searchgate-System": SYSTEM},
                )
                self.statuses.append(r.status_code)
                self.stop.wait(0.3)


def test_an_admin_rotates_the_key_and_watches_it_without_reloading(
    browser: Browser, server: ServerProcess, data_dir: Path
) -> None:
    store = store_of(data_dir)
    old_secret = store.read().value
    shop = Storefront(server, store)
    thread = threading.Thread(target=shop.run, daemon=True)
    thread.start()
    tab = open_tab(browser, server)
    page = tab.page
    try:
        sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        enrol_mfa(page)
        page.get_by_role("link", name="I have saved them").click()
        page.get_by_role("link", name="Key Management").click()
        page.get_by_test_id("rotate-link").click()

        expect(page.get_by_role("heading", name="Rotate the client key")).to_be_visible()
        expect(page.get_by_test_id("no-secret-notice")).to_contain_text("never shown here")
        expect(page.get_by_test_id("store-location")).to_have_text(f"file:{store.path}")
        expect(page.locator("[data-testid=precondition][data-ok=yes]")).to_have_count(5)
        page.get_by_label("Quiet period").fill("5s")
        page.get_by_label("Probation").fill("2s")
        page.get_by_label("Move timeout").fill("2m")
        page.get_by_role("button", name="Start the rotation").click()
        expect(page.get_by_test_id("flash")).to_contain_text("Rotation started")

        # From here on the page is never loaded again: a mark left in it must stay.
        page.evaluate("window.__notReloaded = true")
        steps = page.get_by_test_id("steps")
        expect(steps.locator("[data-step=store-write]")).to_have_attribute(
            "data-state", "done", timeout=30_000
        )
        shop_row = page.locator(f"[data-testid=traffic-system][data-system={SYSTEM}]")
        expect(shop_row).to_contain_text("moved", timeout=30_000)
        expect(page.get_by_test_id("quiet-remaining")).to_be_visible(timeout=30_000)
        expect(page.get_by_test_id("run-state")).to_have_attribute(
            "data-state", "finished", timeout=60_000
        )
        for step in ("verify", "drain", "confirm"):
            expect(steps.locator(f"[data-step={step}]")).to_have_attribute("data-state", "done")
        expect(page.get_by_test_id("rotation-status")).to_have_text("finished")
        expect(page.get_by_test_id("old-key-state")).to_have_text("deleted")
        expect(page.get_by_test_id("new-key")).to_contain_text("primary")
        expect(page.get_by_test_id("rotation-live")).to_have_attribute("data-live", "no")
        # "Rotation started" no longer holds: the notice goes with the run.
        expect(page.get_by_test_id("flash")).to_have_count(0)
        assert page.evaluate("window.__notReloaded") is True

        new_secret = store.read().value
        assert new_secret != old_secret
        html = page.content()
        assert not KEY_SHAPED.search(html) and new_secret not in html
        refused = httpx.get(
            server.url + "/api/v1/keys/self",
            headers={"Authorization": f"Bearer {old_secret}"},
            timeout=10,
        )
        assert refused.status_code == 401
    finally:
        shop.stop.set()
        thread.join(10)
    # The storefront followed the store: not one of its requests failed.
    assert shop.statuses and set(shop.statuses) == {200}, shop.statuses
    assert not tab.errors, tab.errors
