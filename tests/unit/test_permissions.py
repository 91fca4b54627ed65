"""Permissions, built-in roles, credential kinds and the Actor's checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from searchgate.audit.tags import ACTION_PATTERN, Action, check_action
from searchgate.permissions import (
    ADMIN_ROLE,
    ALL_PERMISSIONS,
    BUILTIN_ROLES,
    GRANTABLE_BY,
    MERCHANDISER_ROLE,
    PERMISSION_HELP,
    VIEWER_ROLE,
    Actor,
    CredentialKind,
    Permission,
    parse_permissions,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_every_permission_is_named_area_resource_action_and_explained() -> None:
    for p in Permission:
        assert re.fullmatch(r"(console|admin):[a-z]+:[a-z]+", p.value), p
        assert PERMISSION_HELP[p]


def test_every_action_tag_has_the_same_shape() -> None:
    for a in Action:
        assert ACTION_PATTERN.match(a.value), a
    with pytest.raises(ValueError, match="area:resource:action"):
        check_action("deleteUser")


def test_builtin_roles_nest_and_only_admin_manages_people_and_keys() -> None:
    viewer, merch, admin = (BUILTIN_ROLES[r] for r in (VIEWER_ROLE, MERCHANDISER_ROLE, ADMIN_ROLE))
    assert viewer < merch < admin == ALL_PERMISSIONS
    assert not any(p.value.startswith("admin:") for p in merch)
    assert Permission.COLLECTIONS_DELETE not in merch
    assert Permission.SEARCH_PREVIEW in viewer and Permission.COLLECTIONS_WRITE not in viewer


def test_a_client_key_grants_no_command_center_permission() -> None:
    assert GRANTABLE_BY[CredentialKind.CLIENT_KEY] == frozenset()
    key = Actor(kind=CredentialKind.CLIENT_KEY, name="storefront", permissions=ALL_PERMISSIONS)
    assert key.effective_permissions == frozenset()
    assert not any(key.has(p) for p in Permission)


def test_a_token_never_carries_security_settings_even_for_an_admin() -> None:
    token = Actor(kind=CredentialKind.PERSONAL_TOKEN, name="ci", permissions=ALL_PERMISSIONS)
    assert not token.has(Permission.SETTINGS_MANAGE)
    assert token.has(Permission.USERS_MANAGE)
    session = Actor(kind=CredentialKind.SESSION, name="ann", permissions=ALL_PERMISSIONS)
    assert session.has(Permission.SETTINGS_MANAGE)


def test_deny_by_default_and_until_mfa_enrolment() -> None:
    nobody = Actor(kind=CredentialKind.SESSION, name="x")
    assert not any(nobody.has(p) for p in Permission)
    pending = Actor(
        kind=CredentialKind.SESSION,
        name="admin",
        permissions=ALL_PERMISSIONS,
        mfa_enrolment_required=True,
    )
    assert pending.effective_permissions == frozenset()


def test_reauthentication_window_applies_to_sessions_only() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    window = timedelta(minutes=5)
    fresh = Actor(kind=CredentialKind.SESSION, name="a", reauthenticated_at=now)
    assert fresh.reauthenticated_within(window, now + timedelta(minutes=5))
    assert not fresh.reauthenticated_within(window, now + timedelta(minutes=5, seconds=1))
    never = Actor(kind=CredentialKind.SESSION, name="a")
    assert not never.reauthenticated_within(window, now)
    token = Actor(kind=CredentialKind.PERSONAL_TOKEN, name="a")
    assert token.reauthenticated_within(window, now)
    assert Actor.system().reauthenticated_within(window, now)


def test_area_access() -> None:
    everywhere = Actor(kind=CredentialKind.SESSION, name="a")
    staging = Actor(kind=CredentialKind.SESSION, name="b", areas=frozenset({"Staging"}))
    assert everywhere.can_access_area("Production") and everywhere.covers_areas(None)
    assert staging.can_access_area("Staging") and not staging.can_access_area("Production")
    assert staging.covers_areas(frozenset({"Staging"}))
    assert not staging.covers_areas(None)  # "all areas" is more than it has
    assert not staging.covers_areas(frozenset({"Staging", "Production"}))


def test_parse_permissions_names_the_unknown_one() -> None:
    assert parse_permissions(["admin:audit:read"]) == {Permission.AUDIT_READ}
    with pytest.raises(ValueError, match="'admin:everything:all'"):
        parse_permissions(["admin:audit:read", "admin:everything:all"])


def test_docs_cover_every_permission_role_action_and_number() -> None:
    text = DOCS.read_text()
    missing = [p.value for p in Permission if f"`{p.value}`" not in text]
    missing += [a.value for a in Action if f"`{a.value}`" not in text]
    missing += [r for r in BUILTIN_ROLES if f"`{r}`" not in text]
    assert not missing, f"docs/security.md does not mention: {missing}"
    for fact in ("19 MiB", "30 min", "12 h", "5 failures", "15 min", "30 failures", "audit verify"):
        assert fact in text, fact


def test_an_admins_token_may_manage_what_no_token_can_carry() -> None:
    token = Actor(
        kind=CredentialKind.PERSONAL_TOKEN,
        name="ci",
        permissions=ALL_PERMISSIONS - {Permission.SETTINGS_MANAGE},
        role_permissions=ALL_PERMISSIONS,
    )
    assert not token.has(Permission.SETTINGS_MANAGE)
    assert token.delegable == ALL_PERMISSIONS
    narrow = Actor(
        kind=CredentialKind.PERSONAL_TOKEN,
        name="ci",
        permissions=frozenset({Permission.AUDIT_READ}),
        role_permissions=ALL_PERMISSIONS,
    )
    assert narrow.delegable == {Permission.AUDIT_READ, Permission.SETTINGS_MANAGE}
