"""The admin API for rotations (/api/v1/admin/rotations), and the runner driving it over
HTTP (the CLI's backend) against the real app in-process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from searchgate.config import Settings
from searchgate.demo import demo_settings, generate
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.rotation.common import ROTATION_SYSTEM, Timing
from searchgate.rotation.events import RotationEvent
from searchgate.rotation.http_backend import HttpBackend
from searchgate.rotation.runner import RotationRunner, RunOptions
from searchgate.runtime import Runtime
from searchgate.secretstores.file import FileStore
from tests.conftest import load, make_user
from tests.keyhelp import SYSTEM

ROT = "/api/v1/admin/rotations"
STORE = {"kind": "file", "location": "file:/var/lib/searchgate/client-key.json"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_usage_flush_seconds": 0.1, "key_cache_seconds": 0.1})


@pytest.fixture
def primary(rt: Runtime) -> tuple[str, str]:
    created = rt.services.keys.create(SYSTEM, "shop key", ALL_SCOPES, primary=True)
    return created.info.id, created.secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_rotation_step_by_step_over_the_api(
    client: TestClient, rt: Runtime, admin_token: str, primary: tuple[str, str]
) -> None:
    old_id, old_secret = primary
    h = bearer(admin_token)
    assert client.get(f"{ROT}/current", headers=h).json()["rotation"] is None

    r = client.post(ROT, json={"store": STORE, "options": {"quietSeconds": 60}}, headers=h)
    assert r.status_code == 201, r.text
    rot, lease = r.json()["rotation"], r.json()["lease"]
    assert rot["step"] == 0 and rot["nextStep"] == "preconditions" and rot["oldKeyId"] == old_id
    assert rot["options"]["quietSeconds"] == 60 and rot["status"] == "running"
    rid = rot["id"]

    busy = client.post(ROT, json={"store": STORE}, headers=h)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "rotation_busy"
    assert 0 < busy.json()["error"]["retryAfter"] <= 60
    other = client.post(ROT, json={"store": {**STORE, "location": "file:/elsewhere"}}, headers=h)
    assert other.status_code == 409 and "abort it first" in other.json()["error"]["message"]
    resumed = client.post(ROT, json={"store": STORE, "lease": lease}, headers=h)
    assert resumed.status_code == 200 and resumed.json()["resumed"] is True

    current = client.get(f"{ROT}/current", headers=h).json()
    assert current["rotation"]["id"] == rid and current["primary"]["id"] == old_id
    assert current["maxKeyAgeDays"] == 90 and current["primaryAgeDays"] < 1

    step = f"{ROT}/{rid}/steps"
    one = {"storeVersionBefore": "7", "storeKeyId": old_id}
    r = client.post(step, json={"lease": lease, "step": "preconditions", "data": one}, headers=h)
    assert r.status_code == 200 and r.json()["rotation"]["step"] == 1, r.text

    r = client.post(f"{ROT}/{rid}/create-key", json={"lease": lease}, headers=h)
    assert r.status_code == 201, r.text
    new_secret, new_id = r.json()["secret"], r.json()["key"]["id"]
    assert new_secret.startswith("sgk_") and r.json()["rotation"]["newKeyId"] == new_id
    # Shown once: no other answer carries it.
    again = client.get(f"{ROT}/{rid}", headers=h)
    assert new_secret not in again.text and old_secret not in again.text
    assert again.json()["rotation"]["newKey"]["primary"] is True
    assert again.json()["rotation"]["oldKey"]["retiring"] is True

    r = client.post(
        step, json={"lease": lease, "step": "3", "data": {"storeVersionAfter": "8"}}, headers=h
    )
    assert r.json()["rotation"]["storeVersionAfter"] == "8"

    # Traffic: the shop moved; the runner's own checks are not a system.
    for secret, system in (
        (old_secret, "shop"),
        (new_secret, "shop"),
        (new_secret, ROTATION_SYSTEM),
    ):
        client.get("/api/v1/keys/self", headers={**bearer(secret), "X-Searchgate-System": system})
    rt.usage.flush()
    seen = client.get(f"{ROT}/{rid}/traffic", headers=h).json()
    assert [s["system"] for s in seen["oldKey"]] == ["shop"]
    assert [s["system"] for s in seen["newKey"]] == ["shop"]

    failed = client.post(step, json={"lease": lease, "step": "verify", "error": "boom"}, headers=h)
    assert failed.json()["rotation"]["status"] == "failed"
    assert failed.json()["rotation"]["lastError"] == "boom"
    # The failed run let go of the rotation: the next run takes it over at once.
    resumed = client.post(ROT, json={"store": STORE}, headers=h)
    assert resumed.status_code in (200, 201), resumed.text
    assert resumed.json()["rotation"]["id"] == rid
    lease = resumed.json()["lease"]

    aborted = client.post(f"{ROT}/{rid}/abort", json={"lease": lease, "reason": "test"}, headers=h)
    assert aborted.status_code == 200 and aborted.json()["rotation"]["status"] == "aborted"
    assert client.get("/api/v1/keys/self", headers=bearer(old_secret)).status_code == 200
    assert client.get("/api/v1/keys/self", headers=bearer(new_secret)).status_code == 401

    log = client.get(
        "/api/v1/admin/audit", params={"target": rid, "action": "admin:rotation:*"}, headers=h
    ).json()["events"]
    assert [(e["action"], e["details"].get("step"), e["outcome"]) for e in reversed(log)] == [
        ("admin:rotation:start", None, "success"),
        ("admin:rotation:step", "preconditions", "success"),
        ("admin:rotation:step", "create-key", "success"),
        ("admin:rotation:step", "store-write", "success"),
        ("admin:rotation:step", "verify", "failure"),
        ("admin:rotation:abort", None, "success"),
    ]
    assert all(new_secret not in str(e) and old_secret not in str(e) for e in log)


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (ROT, {}, 400, "store"),
        (ROT, {"store": {"kind": "ftp", "location": "x"}}, 400, "store.kind"),
        (ROT, {"store": STORE, "options": {"quietSeconds": -1}}, 400, "quietSeconds"),
        (ROT, {"store": STORE, "leaseSeconds": 100000}, 400, "leaseSeconds"),
        (ROT, {"store": STORE, "surprise": 1}, 400, "surprise"),
        (f"{ROT}/rot_nope/steps", {"lease": "x", "step": "1", "data": {}}, 404, None),
        (f"{ROT}/rot_nope/finish", {"lease": "x"}, 404, None),
    ],
)
def test_bad_requests_get_clear_errors(
    client: TestClient,
    admin_token: str,
    primary: tuple[str, str],
    path: str,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    r = client.post(path, json=body, headers=bearer(admin_token))
    assert r.status_code == status, r.text
    assert r.json()["error"].get("field") == field


def test_only_tokens_holding_keys_manage_may_rotate(
    client: TestClient, rt: Runtime, primary: tuple[str, str]
) -> None:
    viewer = rt.services.tokens.create(
        SYSTEM, "t", user_id=make_user(rt.services, "v@example.com", "viewer")
    ).secret
    for method, path in (("GET", f"{ROT}/current"), ("POST", ROT), ("GET", f"{ROT}/rot_x")):
        r = client.request(method, path, json={"store": STORE}, headers=bearer(viewer))
        assert r.status_code == 403, r.text
        r = client.request(method, path, json={"store": STORE}, headers=bearer(primary[1]))
        assert r.status_code == 401 and r.json()["error"]["code"] == "client_key_not_accepted"
    assert client.get(f"{ROT}/current", headers=bearer(primary[1])).status_code == 401


def test_the_runner_over_http_rotates_the_key_of_a_file_store(
    client: TestClient, rt: Runtime, admin_token: str, primary: tuple[str, str], tmp_path: Path
) -> None:
    old_id, old_secret = primary
    loader = rt.services.keys.create(SYSTEM, "loader", ALL_SCOPES).secret
    load(client, bearer(loader), "default", list(generate(5)), demo_settings())
    store = FileStore(tmp_path / "client-key.json")
    store.write(old_secret, expected_version=None)
    client.get("/api/v1/keys/self", headers={**bearer(old_secret), "X-Searchgate-System": "shop"})
    rt.usage.flush()
    seen: list[RotationEvent] = []
    held = [old_secret]

    def shop_follows_store(event: RotationEvent) -> None:
        """The storefront makes requests all along, and re-reads the store when the
        runner waits for it to move (the SDK's refresh)."""
        seen.append(event)
        if event.kind == "waiting" and event.step == 4:
            held[0] = store.read().value
        if event.kind in ("step", "waiting"):
            client.get(
                "/api/v1/keys/self", headers={**bearer(held[0]), "X-Searchgate-System": "shop"}
            )
            rt.usage.flush()

    # The CLI's HTTP backend, sent through the in-process app instead of a socket.
    backend = HttpBackend("http://testserver", admin_token, transport=client._transport)
    timing = Timing(
        quiet=timedelta(seconds=0.4),
        probation=timedelta(seconds=0.4),
        move_timeout=timedelta(seconds=5),
    )
    runner = RotationRunner(
        backend, store, RunOptions(timing=timing, poll_seconds=0.05), shop_follows_store
    )

    result = runner.run()

    assert result.outcome == "finished" and result.old_key_id == old_id
    assert client.get("/api/v1/keys/self", headers=bearer(old_secret)).status_code == 401
    me = client.get("/api/v1/keys/self", headers=bearer(store.read().value)).json()
    assert me["id"] == result.new_key_id and me["primary"] is True
    assert {e.step for e in seen if e.kind == "step-done"} == {1, 2, 3, 4, 5, 6}
    assert any(e.kind == "waiting" and e.step == 5 for e in seen)
    assert client.get(f"{ROT}/current", headers=bearer(admin_token)).json()["rotation"] is None
    done = client.get(f"{ROT}/{result.rotation_id}", headers=bearer(admin_token)).json()
    assert done["rotation"]["status"] == "finished"
    assert done["rotation"]["steps"]["confirm"]["oldKeyRefusedWith"] == "invalid_key"
    assert done["rotation"]["steps"]["verify"]["moved"] == ["shop"]
