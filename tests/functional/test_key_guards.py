"""Guards around client-key changes, on both databases: a console session must have
re-authenticated recently for every key change that hands out or moves access; a key
names only collections that exist unless the caller allows unknown ones (and is then
warned); and the expiry a roll set on the old key can be moved or cancelled, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.errors import Conflict, InvalidInput, ReauthenticationRequired
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import Scope
from searchgate.keys.service import UnknownCollection
from searchgate.permissions import ALL_PERMISSIONS, Actor, CredentialKind
from searchgate.rotation.store_repair import restore_stored_primary, write_primary_to_store
from searchgate.runtime import Runtime
from searchgate.secretstores.file import FileStore
from tests.keyhelp import SYSTEM

KEYS = "/api/v1/admin/keys"
SEARCH = frozenset({Scope.SEARCH})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def person(reauthenticated_at: datetime | None) -> Actor:
    return Actor(
        kind=CredentialKind.SESSION,
        name="Ada Admin",
        permissions=ALL_PERMISSIONS,
        user_id="usr_ada",
        session_id="ses_ada",
        reauthenticated_at=reauthenticated_at,
    )


def events(rt: Runtime, action: str) -> list[dict[str, Any]]:
    page = rt.services.audit.query(Actor.system(), limit=500)
    return [e.to_dict() for e in page.events if e.action == action]


def upload(client: TestClient, key: str, collection: str) -> None:
    r = client.post(
        f"/api/v1/collections/{collection}/records",
        json=[{"id": "1", "title": "a record"}],
        headers=bearer(key),
    )
    assert r.status_code == 200, r.text


def test_every_key_change_by_a_session_needs_a_recent_reauthentication(rt: Runtime) -> None:
    keys = rt.services.keys
    first = keys.create(SYSTEM, "storefront", SEARCH)
    stale = person(keys.clock() - timedelta(hours=1))
    never = person(None)
    calls = {
        "create": lambda a: keys.create(a, "another", SEARCH),
        "new primary": lambda a: keys.new_primary(a),
        "roll": lambda a: keys.roll(a, first.info.id, timedelta(hours=24)),
        "expiry": lambda a: keys.set_expiry(a, first.info.id, None),
        "make primary": lambda a: keys.make_primary(a, first.info.id),
        "enable": lambda a: keys.enable(a, first.info.id),
        "update": lambda a: keys.update(a, first.info.id, name="renamed"),
    }
    for what, call in calls.items():
        for actor in (stale, never):
            with pytest.raises(ReauthenticationRequired):
                call(actor)
            assert [(k.name, k.primary) for k in keys.list()] == [("storefront", True)], what
    fresh = person(keys.clock())
    created = keys.create(fresh, "another", SEARCH)
    keys.new_primary(fresh)
    keys.roll(fresh, created.info.id, timedelta(hours=24))
    # Disabling, the emergency brake, only takes access away: it needs no new proof.
    keys.disable(stale, created.info.id, "leak suspected")


def test_unknown_collections_are_refused_unless_allowed(
    client: TestClient, rt: Runtime, admin_token: str, key: str
) -> None:
    upload(client, key, "default")
    body = {"name": "feed", "scopes": ["search"], "collections": ["default", "defualt"]}
    r = client.post(KEYS, json=body, headers=bearer(admin_token))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "unknown_collection"
    assert error["field"] == "collections"
    assert error["unknown"] == ["defualt"]
    assert "defualt" in error["message"]
    assert [k.name for k in rt.services.keys.list()] == ["test-all"]

    r = client.post(KEYS, json={**body, "allowUnknown": True}, headers=bearer(admin_token))
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == [
        "no collection is named 'defualt' yet: the key works there once it exists"
    ]
    assert r.json()["key"]["collections"] == ["default", "defualt"]

    # Known collections need no flag and bring no warning.
    ok = {"name": "web", "scopes": ["search"], "collections": ["default"]}
    r = client.post(KEYS, json=ok, headers=bearer(admin_token))
    assert r.status_code == 201 and r.json()["warnings"] == []

    # A change naming a new unknown collection is refused the same way; the
    # collections the key had already are not checked again.
    r = client.patch(f"{KEYS}/web", json={"collections": ["outlet"]}, headers=bearer(admin_token))
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_collection"
    r = client.patch(f"{KEYS}/feed", json={"rateLimitPerMinute": 60}, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    r = client.patch(
        f"{KEYS}/web",
        json={"collections": ["outlet"], "allowUnknown": True},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200 and r.json()["warnings"], r.text

    with pytest.raises(UnknownCollection):
        rt.services.keys.create(
            SYSTEM, "direct", SEARCH, Restrictions.build(collections=["nowhere"])
        )


def test_the_expiry_a_roll_set_can_be_moved_or_cancelled(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    old = client.post(
        KEYS, json={"name": "shop", "scopes": ["search"]}, headers=bearer(admin_token)
    ).json()
    r = client.post(
        f"{KEYS}/shop/roll", json={"expiresInSeconds": 3600}, headers=bearer(admin_token)
    )
    assert r.status_code == 201, r.text
    assert r.json()["replaced"]["expiresAt"] is not None

    later = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    r = client.post(
        f"{KEYS}/shop/expiry",
        json={"expiresAt": later.isoformat().replace("+00:00", "Z")},
        headers=bearer(admin_token),
    )
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["key"]["expiresAt"]) == later

    r = client.post(f"{KEYS}/shop/expiry", json={"expiresAt": None}, headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["key"]["expiresAt"] is None
    assert rt.services.keys.get("shop").usable(rt.services.keys.clock())

    changes = events(rt, "admin:keys:expiry")
    assert [e["target"] for e in changes] == [old["key"]["id"]] * 2
    assert changes[0]["details"]["before"] == later.isoformat()
    assert changes[0]["details"]["after"] is None

    bad = [
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "soon"}, "expiresAt"),
        ({}, "expiresAt"),
        ({"expiresAt": None, "extra": 1}, "extra"),
    ]
    for body, field in bad:
        r = client.post(f"{KEYS}/shop/expiry", json=body, headers=bearer(admin_token))
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["field"] == field, r.text
    r = client.post(f"{KEYS}/nope/expiry", json={"expiresAt": None}, headers=bearer(admin_token))
    assert r.status_code == 404


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def test_no_expiry_or_collection_input_answers_5xx(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    rt.services.keys.create(SYSTEM, "shop", SEARCH)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(expires=JSON, collections=JSON, allow=JSON)
    def check(expires: Any, collections: Any, allow: Any) -> None:
        r = client.post(
            f"{KEYS}/shop/expiry", json={"expiresAt": expires}, headers=bearer(admin_token)
        )
        assert r.status_code in (200, 400), (expires, r.text)
        body = {"collections": collections, "allowUnknown": allow}
        r = client.patch(f"{KEYS}/shop", json=body, headers=bearer(admin_token))
        assert r.status_code in (200, 400), (body, r.text)
        if r.status_code == 400:
            assert r.json()["error"]["field"] in ("collections", "allowUnknown"), r.text

    check()


def test_the_store_and_the_primary_key_are_put_back_in_agreement(
    rt: Runtime, tmp_path: Path
) -> None:
    keys = rt.services.keys
    rotations = rt.services.rotations
    store = FileStore(tmp_path / "client-key.json")
    stored = keys.create(SYSTEM, "shop", SEARCH)
    store.write(stored.secret, expected_version=None)
    by_hand = keys.new_primary(SYSTEM)
    other = keys.create(SYSTEM, "feed", SEARCH)

    stale = person(keys.clock() - timedelta(hours=1))
    with pytest.raises(ReauthenticationRequired):
        write_primary_to_store(rotations, stale, store, by_hand.secret)
    with pytest.raises(ReauthenticationRequired):
        restore_stored_primary(rotations, stale, store, stored.info.id)
    for wrong in (other.secret, stored.secret, "not a key", ""):
        with pytest.raises(InvalidInput) as refused:
            write_primary_to_store(rotations, SYSTEM, store, wrong)
        assert refused.value.field == "secret"
        assert not wrong or wrong not in refused.value.message
    assert store.read().value == stored.secret

    written = write_primary_to_store(rotations, person(keys.clock()), store, by_hand.secret)
    assert store.read().value == by_hand.secret
    assert (written.version_before, written.version_after) != (None, None)
    (event,) = events(rt, "admin:rotation:store-write")
    assert event["details"]["keyId"] == by_hand.info.id
    assert event["details"]["versionAfter"] == written.version_after
    assert by_hand.secret not in str(event)

    # The other way back: the key the store holds becomes the primary key again.
    again = keys.new_primary(SYSTEM)
    with pytest.raises(Conflict):
        restore_stored_primary(rotations, SYSTEM, store, stored.info.id)  # not what it holds
    name = restore_stored_primary(rotations, person(keys.clock()), store, by_hand.info.id)
    assert name == by_hand.info.name and keys.primary() == keys.get(by_hand.info.id)
    assert keys.get(again.info.id).retiring_since is not None
