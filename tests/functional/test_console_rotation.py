"""The rotation wizard in the console, on a real app with a real file store: starting
(preconditions shown, re-authentication, CSRF), following the run by polling its
fragment while a storefront moves to the new key, aborting (the store, the keys and the
change log rolled back), continuing a rotation whose run died, and who may do what.

The run goes on in the server's background thread while the test polls, as a browser
would; the storefront reads the key from the store at every poll (the SDK's refresh).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from searchgate.audit import AuditFilter
from searchgate.config import Settings
from searchgate.demo import generate
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.rotation.common import Timing
from searchgate.rotation.events import RotationEvent
from searchgate.rotation.jobs import LEASE_SECONDS
from searchgate.rotation.local_backend import LocalBackend
from searchgate.rotation.runner import RotationRunner, RunOptions
from searchgate.runtime import Runtime
from searchgate.secretstores.file import FileStore
from searchgate.webapp import create_app
from tests.conftest import PASSWORD, ManualClock, load, make_user
from tests.functional.console_support import (
    error_for,
    outlast_reauth_window,
    post,
    sign_in,
    signed_in_admin,
    token_of,
    use_https,
)
from tests.keyhelp import SYSTEM

PAGE = "/admin/rotation"
LIVE = "/admin/rotation/progress"
SHORT = {"quiet": "2s", "probation": "1s", "move_timeout": "60s"}
KEY_SHAPED = re.compile(r"sg[kp]_[0-9A-Za-z]{16,}")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    # Usage reaches the database and revocations every process within 0.1 s: short waits.
    return settings.model_copy(
        update={
            "key_usage_flush_seconds": 0.1,
            "key_cache_seconds": 0.1,
            "rotation_store_kind": "file",
            "rotation_store_path": str(tmp_path / "store" / "client-key.json"),
        }
    )


@dataclass
class Env:
    client: TestClient
    rt: Runtime
    store: FileStore
    old_secret: str
    old_id: str
    admin_id: str
    held: str = ""
    pages: list[str] = field(default_factory=list)

    def shop(self, refresh: bool = True) -> int:
        """One request of the storefront, with the key it holds (read afresh from the
        store when ``refresh``), counted at once."""
        if refresh or not self.held:
            self.held = self.store.read().value
        r = self.client.get(
            "/api/v1/keys/self",
            headers={"Authorization": f"Bearer {self.held}", "X-Searchgate-System": "shop"},
        )
        self.rt.usage.flush()
        return r.status_code

    def page(self, path: str = PAGE) -> str:
        r = self.client.get(path, headers={"HX-Request": "true"} if path == LIVE else {})
        assert r.status_code == 200, r.text
        self.pages.append(r.text)
        return r.text

    def follow(self, done: Callable[[str], bool], refresh: bool = True, limit: float = 60) -> str:
        """Polls the live fragment (the storefront busy all along) until ``done``."""
        deadline = time.monotonic() + limit
        while True:
            self.shop(refresh)
            fragment = self.page(LIVE)
            if done(fragment):
                return fragment
            assert time.monotonic() < deadline, fragment
            time.sleep(0.2)

    def events(self, rotation_id: str) -> list[Any]:
        page = self.rt.services.audit.query(
            SYSTEM, AuditFilter(action="admin:rotation:*", target=rotation_id), limit=100
        )
        return list(reversed(page.events))


@pytest.fixture
def env(client: TestClient, rt: Runtime, settings: Settings) -> Iterator[Env]:
    use_https(client)
    admin_id = signed_in_admin(client, rt)
    created = rt.services.keys.create(SYSTEM, "shop key", ALL_SCOPES, primary=True)
    # The catalog is loaded with a key of its own: the primary's only user is the shop.
    loader = rt.services.keys.create(SYSTEM, "loader", ALL_SCOPES).secret
    load(client, {"Authorization": f"Bearer {loader}"}, "default", list(generate(5)))
    assert settings.rotation_store_path is not None
    store = FileStore(settings.rotation_store_path)
    store.write(created.secret, expected_version=None)
    e = Env(client, rt, store, created.secret, created.info.id, admin_id)
    assert e.shop() == 200  # the storefront used the key before: it has to move
    yield e
    rt.rotation_jobs.stop()
    for text in e.pages:  # no secret on any page or fragment the test saw
        assert not KEY_SHAPED.search(text), KEY_SHAPED.search(text)


def state_of(fragment: str) -> str:
    match = re.search(r'data-testid="run-state" data-state="([a-z-]+)"', fragment)
    return match.group(1) if match else ""


def step_state(fragment: str, step: str) -> str:
    match = re.search(rf'data-step="{step}" data-state="([a-z]+)"', fragment)
    assert match, fragment
    return match.group(1)


def test_the_wizard_rotates_the_key_while_the_page_follows_the_run(env: Env) -> None:
    page = env.page()
    assert 'data-testid="no-secret-notice"' in page and "never shown here" in page
    assert f"file:{env.store.path}" in page
    assert page.count('data-testid="precondition" data-ok="yes"') == 5, page
    assert 'data-live="no"' in page  # nothing to follow yet

    r = post(env.client, PAGE + "/start", SHORT, page=PAGE)
    assert r.status_code == 303 and r.headers["location"] == PAGE, r.text
    page = env.page()
    assert 'hx-get="/admin/rotation/progress" hx-trigger="every 2s"' in page
    assert 'data-testid="start-form"' not in page

    seen: list[str] = []

    def finished(fragment: str) -> bool:
        seen.append(fragment)
        return state_of(fragment) not in ("running", "")

    last = env.follow(finished)
    assert state_of(last) == "finished", last
    assert 'data-live="no"' in last and "hx-get" not in last  # polling stops
    for step in ("preconditions", "create-key", "store-write", "verify", "drain", "confirm"):
        assert step_state(last, step) == "done"
    assert 'data-testid="rotation-status">finished<' in last
    assert 'data-testid="old-key-state">deleted<' in last
    # While it ran: a step running, the shop seen on both keys, the quiet time counted.
    # (Which step is caught running depends on the poll's timing; the drain's waits
    # last seconds, the verification can be over between two polls on a busy machine.)
    steps = ("preconditions", "create-key", "store-write", "verify", "drain", "confirm")
    assert any(step_state(f, step) == "running" for f in seen for step in steps)
    shop_rows = [f for f in seen if 'data-system="shop"' in f and ">moved<" in f]
    assert shop_rows, "the shop was never shown on both keys"
    assert any('data-testid="quiet-remaining"' in f for f in seen)
    assert any('data-testid="probation-remaining"' in f for f in seen)
    assert any('data-testid="wait-remaining"' in f for f in seen)

    # The store holds the new key, which works; the old one is refused.
    me = env.client.get("/api/v1/keys/self", headers={"Authorization": f"Bearer {env.held}"})
    assert me.status_code == 200 and me.json()["primary"] is True
    new_id = me.json()["id"]
    old = env.client.get("/api/v1/keys/self", headers={"Authorization": f"Bearer {env.old_secret}"})
    assert old.status_code == 401
    assert env.rt.services.keys.get(env.old_id, include_deleted=True).deleted
    assert f"{new_id}" in last and env.store.read().version != "1"

    # The change log: one event per step, each by the admin who started it.
    rotation_id = re.search(r'data-testid="rotation-id">(rot_[0-9a-f]+)<', last)
    assert rotation_id
    events = env.events(rotation_id.group(1))
    assert [e.action for e in events] == [
        "admin:rotation:start",
        *["admin:rotation:step"] * 6,
        "admin:rotation:finish",
    ]
    assert [e.details["step"] for e in events[1:7]] == [
        "preconditions",
        "create-key",
        "store-write",
        "verify",
        "drain",
        "confirm",
    ]
    assert {(e.outcome, e.actor_user_id, e.actor_kind) for e in events} == {
        ("success", env.admin_id, "session")
    }
    assert events[4].details["moved"] == ["shop"]
    # The finished rotation stays on the page, and a new one may start.
    page = env.page()
    assert 'data-testid="rotation-finished"' in page and 'data-testid="start-form"' in page


def test_an_abort_rolls_the_store_and_the_keys_back(env: Env) -> None:
    # The shop never reads the store again: the run waits for it at step 4.
    r = post(env.client, PAGE + "/start", SHORT, page=PAGE)
    assert r.status_code == 303, r.text
    waiting = env.follow(lambda f: "moved to the new key" in f, refresh=False)
    assert step_state(waiting, "store-write") == "done"
    assert step_state(waiting, "verify") == "running"
    assert 'data-system="shop"' in waiting and ">old key only<" in waiting
    new_key = re.search(r'data-testid="new-key"><a href="/admin/keys/(key_[0-9a-f]+)"', waiting)
    assert new_key, waiting
    assert env.store.read().value != env.old_secret  # the new key is in the store

    confirm = env.page(PAGE + "/abort")
    assert "puts the store" in confirm and "deletes the new key" in confirm
    reason = {"reason": "the shop cannot move today"}
    r = post(env.client, PAGE + "/abort", reason, token=token_of(confirm))
    assert r.status_code == 303 and r.headers["location"] == PAGE, r.text
    last = env.follow(lambda f: state_of(f) not in ("running", "aborting"), refresh=False)
    assert state_of(last) == "aborted", last
    assert 'data-testid="rotation-aborted"' in last

    current = env.store.read()
    assert current.value == env.old_secret and current.version == "3"  # restored, a new version
    keys = env.rt.services.keys
    old = keys.get(env.old_id)
    assert old.primary and old.usable(keys.clock())
    assert keys.get(new_key.group(1), include_deleted=True).deleted
    assert env.shop(refresh=False) == 200
    rotation_id = re.search(r'data-testid="rotation-id">(rot_[0-9a-f]+)<', last)
    assert rotation_id
    events = env.events(rotation_id.group(1))
    assert [e.action.rsplit(":", 1)[1] for e in events] == ["start", *["step"] * 3, "abort"]
    assert events[-1].details["reason"] == "the shop cannot move today"
    assert events[-1].details["storeVersionRestored"] == "3"
    assert events[-1].actor_user_id == env.admin_id
    # Nothing is left locked: the page offers a new start.
    assert 'data-testid="start-form"' in env.page()


class Stop(Exception):
    """Stands for a crash of the process that drove a rotation."""


@pytest.mark.manual_clock(ticking=True)
def test_a_rotation_whose_run_died_is_shown_and_continued(env: Env, app_clock: ManualClock) -> None:
    def crash_after_store_write(event: RotationEvent) -> None:
        if event.kind == "step-done" and event.step == 3:
            raise Stop

    # Another process (the CLI, another server) ran it up to step 3, then died.
    timing = Timing(timedelta(seconds=1), timedelta(seconds=1), timedelta(seconds=60))
    runner = RotationRunner(
        LocalBackend(env.rt.services, env.rt.search, SYSTEM),
        env.store,
        RunOptions(timing=timing, lease_seconds=2, poll_seconds=0.1),
        crash_after_store_write,
    )
    with pytest.raises(Stop):
        runner.run()

    page = env.page()
    assert step_state(page, "store-write") == "done" and step_state(page, "verify") == "next"
    assert 'data-testid="rotation-step">3 of 6<' in page
    # Its lease is fresh for two more seconds: the page follows it, and offers to
    # continue once the lease has lapsed.
    assert "its hold lapses in" in page and 'data-live="yes"' in page
    assert 'data-testid="continue"' not in page
    app_clock.advance(seconds=2)
    page = env.follow(lambda f: 'data-testid="continue"' in f, refresh=False, limit=10)
    assert 'data-testid="abort-link"' in page and 'data-live="no"' in page
    page = env.page()
    assert 'data-testid="start-form"' not in page
    r = post(env.client, PAGE + "/start", SHORT, page=PAGE)
    assert r.status_code == 409 and "no rotation is in progress" in r.text.lower()

    r = post(env.client, PAGE + "/continue", page=PAGE)
    assert r.status_code == 303, r.text
    last = env.follow(lambda f: state_of(f) not in ("running", ""))
    assert state_of(last) == "finished", last
    assert env.rt.services.keys.get(env.old_id, include_deleted=True).deleted
    rotation_id = re.search(r'data-testid="rotation-id">(rot_[0-9a-f]+)<', last)
    assert rotation_id
    steps = [e for e in env.events(rotation_id.group(1)) if e.action == "admin:rotation:step"]
    assert [e.details["number"] for e in steps] == [1, 2, 3, 4, 5, 6]
    # Steps 1 to 3 by the run that died, 4 to 6 by the admin who continued it.
    assert [e.actor_user_id for e in steps] == [None] * 3 + [env.admin_id] * 3


@pytest.mark.manual_clock(ticking=True)
def test_a_server_restart_stops_the_run_and_the_next_server_continues_it(
    env: Env, settings: Settings, app_clock: ManualClock
) -> None:
    # The shop does not move yet: the run waits for it at step 4 when the server stops.
    r = post(env.client, PAGE + "/start", SHORT, page=PAGE)
    assert r.status_code == 303, r.text
    env.follow(lambda f: "moved to the new key" in f, refresh=False)
    jobs = env.rt.rotation_jobs
    cookies = dict(env.client.cookies)
    env.client.__exit__(None, None, None)  # the app's shutdown stops the run first
    stopped = jobs.view()
    assert stopped is not None and stopped.state == "stopped", stopped
    assert stopped.message and "continue it" in stopped.message

    app = create_app(settings, clock=app_clock, monotonic=app_clock.monotonic)
    with TestClient(app, raise_server_exceptions=False) as client:
        use_https(client)
        client.cookies.update(cookies)
        env.client, env.rt = client, client.app.state.runtime  # type: ignore[attr-defined]
        page = env.page()
        assert step_state(page, "store-write") == "done" and step_state(page, "verify") == "next"
        assert 'data-testid="run"' not in page  # no run in this server
        assert 'data-testid="continue"' not in page  # the stopped run's lease holds
        # The stopped run's lease lapses within LEASE_SECONDS; then it can be continued.
        app_clock.advance(seconds=LEASE_SECONDS)
        env.follow(lambda f: 'data-testid="continue"' in f, refresh=False, limit=LEASE_SECONDS + 5)
        r = post(client, PAGE + "/continue", page=PAGE)
        assert r.status_code == 303, r.text
        last = env.follow(lambda f: state_of(f) not in ("running", ""))
        assert state_of(last) == "finished", last
        assert env.rt.services.keys.get(env.old_id, include_deleted=True).deleted


def test_the_start_form_checks_its_values_and_the_preconditions(env: Env) -> None:
    cases = [
        ({**SHORT, "quiet": "soon"}, "quiet", "not a duration"),
        ({**SHORT, "probation": "2d"}, "probation", "0s to 24h"),
        ({**SHORT, "move_timeout": "1s"}, "move_timeout", "10s to 24h"),
    ]
    for form, name, message in cases:
        r = post(env.client, PAGE + "/start", form, page=PAGE)
        assert r.status_code == 400 and message in error_for(r.text, name), (name, r.text)
    # The store no longer holds the primary key: the start is refused, nothing is made.
    other = env.rt.services.keys.create(SYSTEM, "other", ALL_SCOPES).secret
    env.store.write(other, expected_version="1")
    page = env.page()
    assert 'data-ok="no"' in page and "holds other" in page
    assert 'data-testid="start-form"' not in page
    r = post(env.client, PAGE + "/start", SHORT, page=PAGE)
    assert r.status_code == 409 and "Nothing was started" in error_for(r.text, "action")
    assert env.rt.services.keys.primary() is not None
    assert env.rt.services.keys.primary().id == env.old_id  # type: ignore[union-attr]
    assert env.rt.rotation_jobs.view() is None


class TestWithoutStore:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"rotation_store_kind": None})

    def test_the_page_says_how_to_configure_one(self, client: TestClient, rt: Runtime) -> None:
        use_https(client)
        signed_in_admin(client, rt)
        rt.services.keys.create(SYSTEM, "shop key", ALL_SCOPES, primary=True)
        page = client.get(PAGE).text
        assert 'data-testid="store-missing"' in page
        assert "SEARCHGATE_ROTATION_STORE_KIND" in page and "searchgate rotate --server" in page
        assert 'data-testid="start-form"' not in page
        # The start panel says why it offers no form, rather than standing empty.
        assert 'data-testid="start-needs-store"' in page
        r = post(client, PAGE + "/start", SHORT, page=PAGE)
        assert r.status_code == 409
        assert "No secret store is configured" in error_for(r.text, "action")
        assert rt.rotation_jobs.view() is None


@pytest.mark.parametrize("role", ["viewer", "merchandiser"])
def test_only_people_who_manage_keys_see_or_drive_the_wizard(
    client: TestClient, rt: Runtime, role: str
) -> None:
    use_https(client)
    make_user(rt.services, f"{role}@example.com", role)
    assert sign_in(client, f"{role}@example.com").status_code == 303
    token = token_of(client.get("/account").text)
    for path in (PAGE, LIVE, PAGE + "/abort"):
        assert client.get(path).status_code == 403, path
    for path in (PAGE + "/start", PAGE + "/continue", PAGE + "/abort"):
        r = post(client, path, {**SHORT, "reauth": PASSWORD}, token=token)
        assert r.status_code == 403 and "admin:keys:manage" in r.text, path
    assert rt.rotation_jobs.view() is None
    assert "/admin/rotation" not in client.get("/").text


def test_forms_need_the_csrf_token_and_this_site_as_origin(env: Env) -> None:
    token = token_of(env.page())
    for path in (PAGE + "/start", PAGE + "/continue", PAGE + "/abort"):
        r = post(env.client, path, SHORT, token="0" * 43)
        assert r.status_code == 403 and "security token" in r.text, path
        r = post(env.client, path, SHORT, token=token, origin="https://evil.example")
        assert r.status_code == 403 and "did not come from a page" in r.text, path
    assert env.rt.rotation_jobs.view() is None


@pytest.mark.manual_clock(ticking=True)
class TestReauthentication:
    """A session that has not proved its password within the window (60 ms here)."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"reauth_window_minutes": 0.001})

    def test_starting_continuing_and_aborting_send_the_person_to_confirm(self, env: Env) -> None:
        outlast_reauth_window(env.rt)
        to_reauth = f"/reauth?next={PAGE}"
        page = env.page()
        assert 'name="reauth"' in page  # the start form asks for the password itself
        token = token_of(page)
        r = post(env.client, PAGE + "/start", SHORT, token=token)
        assert r.status_code == 303 and r.headers["location"] == to_reauth
        r = post(env.client, PAGE + "/start", {**SHORT, "reauth": "a wrong password!"}, token=token)
        assert r.status_code == 400 and "not correct" in error_for(r.text, "reauth")
        r = post(env.client, PAGE + "/continue", token=token)
        assert r.status_code == 303 and r.headers["location"] == to_reauth
        r = post(env.client, PAGE + "/abort", token=token)
        assert r.status_code == 303 and r.headers["location"] == f"{to_reauth}/abort"
        assert env.rt.rotation_jobs.view() is None
        assert env.rt.services.keys.primary().id == env.old_id  # type: ignore[union-attr]
        # The password typed into the start form confirms it there and then.
        r = post(env.client, PAGE + "/start", {**SHORT, "reauth": PASSWORD}, token=token)
        assert r.status_code == 303 and r.headers["location"] == PAGE, r.text
        last = env.follow(lambda f: state_of(f) not in ("running", ""))
        # The run outlives the window: deleting the old key at step 5 is covered by the
        # confirmation that started it.
        assert state_of(last) == "finished", last
