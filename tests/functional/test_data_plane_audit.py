"""Changes made with a client key are in the change log, attributed to the key."""

from __future__ import annotations

from starlette.testclient import TestClient

from searchgate.audit.events import AuditFilter
from searchgate.permissions import Actor
from searchgate.runtime import Runtime


def _events(rt: Runtime) -> list[tuple[str, str | None, str | None, dict[str, object]]]:
    page = rt.services.audit.query(Actor.system(), AuditFilter(action="data:*"))
    return [(e.action, e.target, e.actor_token_id, e.details) for e in reversed(page.events)]


def test_key_changes_are_logged_with_the_key_as_actor(
    client: TestClient, rt: Runtime, key: str, auth: dict[str, str]
) -> None:
    key_id = rt.services.keys.verify(key).id  # type: ignore[union-attr]
    settings = {"idField": "id", "titleField": "t", "searchable": [{"name": "t"}]}
    assert client.put("/api/v1/collections/c", json=settings, headers=auth).status_code == 201
    r = client.post(
        "/api/v1/collections/c/records", json=[{"id": "1", "t": "a"}, {"t": "no id"}], headers=auth
    )
    assert r.status_code == 200
    rejected = client.post(
        "/api/v1/collections/c/records?failOnFirstError=true", json=[{"t": "x"}], headers=auth
    )
    assert rejected.status_code == 420
    r = client.post("/api/v1/collections/c/records/delete", json={"ids": ["1", "2"]}, headers=auth)
    assert r.status_code == 200
    assert client.delete("/api/v1/collections/c", headers=auth).status_code == 200
    assert _events(rt) == [
        ("data:collections:settings", "c", key_id, {"created": True}),
        (
            "data:records:write",
            "c",
            key_id,
            {"mode": "upsert", "upserted": 1, "invalid": 1, "createdCollection": False},
        ),
        ("data:records:delete", "c", key_id, {"requested": 2, "deleted": 1}),
        ("data:collections:delete", "c", key_id, {"records": 0}),
    ]
    page = rt.services.audit.query(Actor.system(), AuditFilter(action="data:*"))
    assert all(key not in str(e) for e in page.events)
    assert rt.services.audit.verify().ok
