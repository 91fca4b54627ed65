"""Area changes: permission checks, one audit event each, and custom roles following a
rename (both in the change's own transaction)."""

from __future__ import annotations

import pytest

from searchgate.audit.events import AuditFilter
from searchgate.errors import Conflict, Forbidden
from searchgate.permissions import Actor, CredentialKind, Permission
from searchgate.runtime import Services


def _actions(services: Services, prefix: str = "console:areas:*") -> list[tuple[str, str, str]]:
    page = services.audit.query(Actor.system(), AuditFilter(action=prefix))
    return sorted((e.action, e.target or "", e.outcome) for e in page.events)


def test_area_changes_are_audited_and_roles_follow_a_rename(services: Services) -> None:
    admin = Actor.system(name="ops")
    services.areas.create(admin, "Staging", [{"key": "banner", "value": "hello"}])
    services.roles.create(admin, "stager", [Permission.AREAS_READ.value], areas=["Staging"])
    services.areas.set_params(admin, "Staging", [{"key": "banner", "value": "bye"}])
    services.areas.rename(admin, "Staging", "Preview")
    assert services.roles.get(admin, "stager").areas == frozenset({"Preview"})
    assert [a.name for a in services.areas.list_areas()] == ["Preview", "Production"]
    with pytest.raises(Conflict):
        services.areas.delete(admin, "Production")
    services.areas.delete(admin, "Preview")
    assert _actions(services) == [
        ("console:areas:create", "Staging", "success"),
        ("console:areas:delete", "Preview", "success"),
        ("console:areas:rename", "Preview", "success"),
        ("console:areas:update", "Staging", "success"),
    ]
    update = services.audit.query(Actor.system(), AuditFilter(action="console:areas:update"))
    # Keys are logged, the merchant's values are not.
    assert update.events[0].details == {"keysBefore": ["banner"], "keysAfter": ["banner"]}


def test_area_changes_need_the_permission(services: Services) -> None:
    viewer = Actor(
        kind=CredentialKind.SESSION,
        name="Viewer",
        permissions=frozenset({Permission.AREAS_READ}),
        user_id="usr_viewer",
    )
    with pytest.raises(Forbidden):
        services.areas.create(viewer, "Staging")
    assert [a.name for a in services.areas.list_areas()] == ["Production"]
    assert _actions(services) == [("console:areas:create", "Staging", "denied")]
