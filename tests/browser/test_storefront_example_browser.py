"""The storefront example (examples/storefront) in Chromium, through a whole key rotation.

Real parts only: a ``searchgate serve`` process, an OpenBao dev server holding the
client key in KV v2, the example as its own processes (in which the server package
cannot be imported) reading the key there with tokens that may only read it, Chromium,
and ``searchgate rotate`` as its own process, as an operator runs it.

- ``storefront-example`` re-reads the key every 2 s. Its phone-sized page is typed into
  without pause while the rotation runs: suggestions and products come straight from
  Searchgate with browser tokens the storefront derives, and the results the
  storefront renders come through the SDK. No request of the page fails, and no
  script error shows. Its laptop-sized page, whose clock stands still from before the
  rotation (a closed lid), still holds a token of the deleted key afterwards: its next
  suggestion request is refused once, the page gets a fresh token and sends it again,
  and the shopper sees the suggestions, no error.
- ``storefront-idle`` keeps the key for the default 5 minutes, and its page (clock
  stopped too) is used only before the rotation's quiet period and after the deletion:
  the storefront itself still holds the deleted key then, so the page's renewed token
  would be refused again unless the storefront checks its key first; it does, reads
  the store once more, and the page's retry succeeds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from searchgate.secretstores import open_store
from tests.e2e.rotation_support import Operator, TunedServer, running, seed
from tests.e2e.server import stop_process
from tests.pg import free_port
from tests.stores import BaoServer, unique_path

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storefront"
SYSTEM = "storefront-example"
PAGES = f"{SYSTEM}-pages"
IDLE = "storefront-idle"
QUIET_SECONDS = 3
ROTATE = ["--quiet", f"{QUIET_SECONDS}s", "--probation", "2s", "--move-timeout", "60s"]
ROTATE += ["--poll", "0.2s", "--json"]
# Words of the demo catalog: suggestions for each, and results when it is searched.
QUERIES = ("laptop", "tv", "camera", "speaker", "monitor", "phone", "sony", "black")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
# The storefront runs where the server package cannot be imported: it has only the SDK.
RUN_WITHOUT_SERVER_PACKAGE = (
    "import runpy, sys; sys.modules['searchgate'] = None; "
    "runpy.run_path('storefront.py', run_name='__main__')"
)


class Storefront:
    """``python storefront.py`` of the example, reading the key from OpenBao."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{env['SEARCHGATE_SYSTEM']}.log"
        base = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
        # A private HOME: no ~/.vault-token of this machine is picked up.
        self.env = {**base, **env, "HOME": str(log_dir), "PORT": str(self.port)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", RUN_WITHOUT_SERVER_PACKAGE],
                cwd=EXAMPLE,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the storefront exited with {self.proc.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/stats", timeout=5).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"the storefront did not answer within 30 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stats(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/stats", timeout=10)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Watched:
    """A page and everything that went wrong in it: script errors, console errors,
    requests without an answer, and answers of 400 or more."""

    page: Page
    script_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    # Requests the browser abandoned because the page was being left (a token renewal
    # or a suggestion request still out when the search form was sent): not failures.
    leaving: bool = False
    left_behind: list[str] = field(default_factory=list)

    def failed(self, request: Request) -> None:
        what = f"{request.method} {request.url}: {request.failure}"
        if self.leaving and request.failure == "net::ERR_ABORTED":
            self.left_behind.append(what)
        else:
            self.failed_requests.append(what)

    def problems(self) -> list[str]:
        return self.script_errors + self.console_errors + self.failed_requests + self.refused


def watch(browser: Browser, storefront: Storefront, viewport: dict[str, int]) -> Watched:
    context = browser.new_context(base_url=storefront.url, viewport=viewport)
    context.set_default_timeout(15_000)
    w = Watched(context.new_page())
    w.page.on("pageerror", lambda exc: w.script_errors.append(str(exc)))
    w.page.on(
        "console",
        lambda msg: w.console_errors.append(msg.text) if msg.type == "error" else None,
    )
    w.page.on("requestfailed", w.failed)
    w.page.on(
        "response",
        lambda r: (
            w.refused.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None
        ),
    )
    return w


def type_query(page: Page, query: str) -> None:
    box = page.get_by_role("combobox", name="Search the shop")
    box.fill("")
    box.press_sequentially(query, delay=20)


def search_on_the_server(w: Watched) -> None:
    """Enter in the box: the storefront renders the results, searched through the SDK."""
    w.leaving = True
    w.page.get_by_role("combobox", name="Search the shop").press("Enter")
    expect(w.page.get_by_test_id("results").locator(".product")).not_to_have_count(0)
    w.leaving = False


def stop_clock(page: Page) -> None:
    """From now on the page's timers (its token renewal, its pause after typing) run
    only when ``type_stopped`` moves its clock: a closed laptop lid."""
    page.clock.install()
    page.clock.pause_at(time.time() + 1)


def type_stopped(page: Page, query: str) -> None:
    type_query(page, query)
    # Past the page's pause after typing (80 ms), far from its token renewal (2 s at
    # the soonest): the suggestions are asked for with the token it holds.
    page.clock.run_for(100)


def suggestions_for(page: Page, query: str) -> tuple[list[str], list[str]]:
    """The search terms and product titles the page shows for ``query``."""
    listbox = page.get_by_role("listbox", name="Suggestions")
    expect(listbox).to_have_attribute("data-query", query)
    expect(listbox).to_be_visible()
    terms = listbox.locator(".option.term .label").all_inner_texts()
    products = listbox.locator(".option.product .label").all_inner_texts()
    return terms, products


def assert_suggests(page: Page, query: str) -> None:
    terms, products = suggestions_for(page, query)
    assert terms and products, (query, terms, products)
    assert all(t.lower().startswith(query) for t in terms), (query, terms)


def fits(page: Page, name: str) -> None:
    shots = os.environ.get("SEARCHGATE_CONSOLE_SHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"storefront-{name}.png"), full_page=True)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{name}: the page is {widths[0] - widths[1]}px too wide"


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    parsed: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return parsed


@dataclass
class World(Operator):
    bao: BaoServer
    path: str
    old_key: str
    old_id: str

    def storefront_env(self, system: str, **more: str) -> dict[str, str]:
        """What a storefront is given: where the key is, and a token that may only read it."""
        mount, rest = self.path.split("/", 1)
        token = self.bao.token_with_policy(
            f'path "{mount}/data/{rest}" {{ capabilities = ["read"] }}', default_policy=False
        )
        return {
            "SEARCHGATE_URL": self.server.url,
            "SEARCHGATE_KEY_PATH": self.path,
            "SEARCHGATE_SYSTEM": system,
            "VAULT_ADDR": self.bao.addr,
            "VAULT_TOKEN": token,
            **more,
        }


@pytest.fixture
def world(tmp_path: Path, bao_server: BaoServer) -> Iterator[World]:
    path = "secret/" + unique_path()
    seeded = seed(tmp_path / "data", open_store("vault", path, env=bao_server.env), records=500)
    with running(TunedServer(tmp_path / "data")) as server:
        yield World(server, seeded.token, bao_server, path, seeded.key, seeded.key_id)


@pytest.fixture
def storefront(world: World, tmp_path: Path) -> Iterator[Storefront]:
    # Re-reads the key every 2 s, so that it and its pages move within the rotation's
    # short waits here.
    shop = Storefront(world.storefront_env(SYSTEM, SEARCHGATE_KEY_MAX_AGE_SECONDS="2"), tmp_path)
    shop.start()
    try:
        yield shop
    finally:
        shop.stop()


@pytest.fixture
def idle_storefront(world: World, tmp_path: Path) -> Iterator[Storefront]:
    shop = Storefront(world.storefront_env(IDLE), tmp_path)  # the key kept 5 minutes
    shop.start()
    try:
        yield shop
    finally:
        shop.stop()


@pytest.mark.timeout(170)
def test_the_storefront_suggests_from_the_browser_through_a_rotation_without_a_failure(
    browser: Browser, world: World, storefront: Storefront, idle_storefront: Storefront
) -> None:
    w = world
    idle = watch(browser, idle_storefront, LAPTOP)
    stop_clock(idle.page)
    idle.page.goto("/")
    type_stopped(idle.page, "black")
    assert_suggests(idle.page, "black")
    idle_last_use = time.monotonic()
    # Tokens are for the storefront's own pages, and only search as you type.
    token_answer = httpx.post(
        storefront.url + "/api/browser-token", headers={"Origin": storefront.url}, timeout=10
    )
    assert token_answer.status_code == 200, token_answer.text
    token = token_answer.json()["token"]
    assert claims(token)["org"] == [storefront.url]
    assert claims(token)["scp"] == ["sayt"] and claims(token)["col"] == ["default"]
    foreign = httpx.post(
        storefront.url + "/api/browser-token",
        headers={"Origin": "https://elsewhere.example"},
        timeout=10,
    )
    assert foreign.status_code == 403 and "token" not in foreign.json()

    phone = watch(browser, storefront, PHONE)
    laptop = watch(browser, storefront, LAPTOP)
    phone.page.goto("/")
    type_query(phone.page, "lap")
    assert_suggests(phone.page, "lap")
    fits(phone.page, "390-suggestions")
    assert w.old_key not in phone.page.content()

    # The laptop's clock stands still: it keeps its first token through the rotation.
    stop_clock(laptop.page)
    laptop.page.goto("/")
    type_stopped(laptop.page, "tv")
    assert_suggests(laptop.page, "tv")
    fits(laptop.page, "1366-suggestions")

    # The rotation waits only for systems seen on the old key within its quiet period
    # before the start: the idle storefront's pages must not be one of them.
    while time.monotonic() < idle_last_use + QUIET_SECONDS + 1:
        type_query(phone.page, "laptop")
        assert_suggests(phone.page, "laptop")
    cmd, env = w.rotate_command("vault", w.path, *ROTATE, env=w.bao.env)
    rotation = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    rounds = 0
    try:
        while rotation.poll() is None:
            query = QUERIES[rounds % len(QUERIES)]
            type_query(phone.page, query)
            assert_suggests(phone.page, query)
            if rounds % 3 == 2:
                search_on_the_server(phone)
            rounds += 1
        out, err = rotation.communicate(timeout=30)
    finally:
        if rotation.poll() is None:
            rotation.kill()
            rotation.communicate(timeout=30)
    assert rotation.returncode == 0, err[-3000:]
    result = json.loads(out)
    assert result["outcome"] == "finished", result
    [deleted] = w.admin("/audit", action="admin:keys:delete", target=w.old_id)["events"]
    assert deleted["outcome"] == "success"
    assert w.self_check(w.old_key).status_code == 401

    # After the deletion: the phone goes on as before.
    type_query(phone.page, "cam")
    assert_suggests(phone.page, "cam")
    search_on_the_server(phone)
    fits(phone.page, "390-results")
    assert phone.problems() == [], phone.problems()

    # The laptop wakes up with a token of the deleted key: one refusal, handled.
    type_stopped(laptop.page, "spea")
    assert_suggests(laptop.page, "spea")
    expect(laptop.page.get_by_role("status")).to_have_text("")
    fits(laptop.page, "1366-after-rotation")
    assert laptop.script_errors == [] and laptop.failed_requests == []
    [refusal] = laptop.refused
    assert refusal.startswith(f"401 GET {w.server.url}/api/v1/sayt/search?"), refusal
    # Chromium's own note of the refused request is the only console error.
    assert [e for e in laptop.console_errors if "status of 401" not in e] == []

    # The idle storefront's page: its token and the storefront's key both deleted.
    assert idle_storefront.stats()["keyReads"] == 1
    type_stopped(idle.page, "speaker")
    assert_suggests(idle.page, "speaker")
    expect(idle.page.get_by_role("status")).to_have_text("")
    assert idle.script_errors == [] and idle.failed_requests == []
    [refusal] = idle.refused
    assert refusal.startswith(f"401 GET {w.server.url}/api/v1/sayt/search?"), refusal
    assert [e for e in idle.console_errors if "status of 401" not in e] == []

    stats, idle_stats = storefront.stats(), idle_storefront.stats()
    report = {"rounds": rounds, "leftBehind": phone.left_behind, SYSTEM: stats, IDLE: idle_stats}
    print(json.dumps(report, indent=2))
    assert rounds >= 3
    for counts in (stats, idle_stats):
        assert counts["failedSearches"] == 0 and counts["failedBrowserTokens"] == 0
        assert counts["refusedTokenChecks"] == 1
    assert stats["keyReads"] > 1
    # The idle storefront read the store at its start, and once more when its page's
    # token was refused (the SDK's refresh on the 401 to its key check).
    assert idle_stats["keyReads"] == 2
    # The pages moved to the new key before the old one went: the rotation saw them.
    steps = w.admin(f"/rotations/{result['rotationId']}")["rotation"]["steps"]
    assert PAGES in steps["verify"]["moved"], steps["verify"]
    new_key = open_store("vault", w.path, env=w.bao.env).read().value
    for log in (storefront.log(), idle_storefront.log()):
        assert w.old_key not in log and new_key not in log
