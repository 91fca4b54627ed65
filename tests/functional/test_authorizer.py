"""The Authorizer: who may do what, deny by default, every refusal in the change log
exactly once, and what each kind of credential can grant."""

from __future__ import annotations

from datetime import timedelta

import pytest

from searchgate.audit import AuditFilter
from searchgate.audit.tags import Action
from searchgate.errors import Conflict, Forbidden, ReauthenticationRequired
from searchgate.permissions import ALL_PERMISSIONS, Actor, CredentialKind, Permission
from searchgate.runtime import Services
from tests.conftest import ManualClock

SYSTEM = Actor.system()


def denials(services: Services) -> list[tuple[str, str | None, dict[str, object]]]:
    page = services.audit.query(SYSTEM, AuditFilter(outcome="denied"), limit=500)
    return [(e.action, e.target, e.details) for e in page.events]


def person(kind: CredentialKind, *permissions: Permission, **extra: object) -> Actor:
    return Actor(kind=kind, name="pat", permissions=frozenset(permissions), **extra)  # type: ignore[arg-type]


def test_an_actor_holding_the_permission_is_allowed_and_nothing_is_recorded(
    accounts: Services,
) -> None:
    actor = person(CredentialKind.PERSONAL_TOKEN, Permission.KEYS_READ)
    before = accounts.audit.count(SYSTEM)
    accounts.authorizer.authorize(actor, Permission.KEYS_READ, Action.KEYS_LIST)
    assert accounts.audit.count(SYSTEM) == before


def test_a_refusal_is_raised_and_recorded_once(accounts: Services) -> None:
    actor = person(CredentialKind.SESSION, Permission.KEYS_READ)
    with pytest.raises(Forbidden) as caught:
        accounts.authorizer.authorize(
            actor, Permission.KEYS_MANAGE, Action.KEY_DISABLE, target="key_1"
        )
    err = caught.value
    assert err.recorded and err.code == "forbidden"
    assert err.message == "this session lacks the permission 'admin:keys:manage'"
    assert err.details == {"permission": "admin:keys:manage"}
    expected = [
        (
            "admin:keys:disable",
            "key_1",
            {"permission": "admin:keys:manage", "reason": "lacks admin:keys:manage"},
        )
    ]
    assert denials(accounts) == expected
    # A service that wraps its work in ``denials`` does not record it a second time.
    with pytest.raises(Forbidden), accounts.authorizer.denials(actor, Action.KEY_DISABLE):
        accounts.authorizer.authorize(actor, Permission.KEYS_MANAGE, Action.KEY_DISABLE)
    assert len(denials(accounts)) == 2


def test_mfa_enrolment_comes_first(accounts: Services) -> None:
    actor = person(CredentialKind.SESSION, *ALL_PERMISSIONS, mfa_enrolment_required=True)
    with pytest.raises(Forbidden, match=r"'admin:users:read' \(enrol in MFA first\)$"):
        accounts.authorizer.authorize(actor, Permission.USERS_READ, Action.USERS_LIST)
    [(_, _, details)] = denials(accounts)
    assert details == {"permission": "admin:users:read", "reason": "MFA enrolment required first"}


@pytest.mark.parametrize(
    ("kind", "granted"),
    [
        (CredentialKind.SESSION, ALL_PERMISSIONS),
        (CredentialKind.SYSTEM, ALL_PERMISSIONS),
        (CredentialKind.PERSONAL_TOKEN, ALL_PERMISSIONS - {Permission.SETTINGS_MANAGE}),
        (CredentialKind.CLIENT_KEY, frozenset()),
    ],
)
def test_what_each_kind_of_credential_can_grant(
    accounts: Services, kind: CredentialKind, granted: frozenset[Permission]
) -> None:
    actor = person(kind, *ALL_PERMISSIONS)
    refused = set()
    for permission in Permission:
        try:
            accounts.authorizer.authorize(actor, permission, Action.KEYS_LIST)
        except Forbidden:
            refused.add(permission)
    assert refused == ALL_PERMISSIONS - granted
    assert len(denials(accounts)) == len(refused)


def test_sensitive_actions_need_a_recent_confirmation_from_sessions(
    accounts: Services, clock: ManualClock
) -> None:
    window = timedelta(minutes=accounts.settings.reauth_window_minutes)
    session = person(CredentialKind.SESSION, Permission.KEYS_MANAGE, reauthenticated_at=clock())
    accounts.authorizer.authorize(
        session, Permission.KEYS_MANAGE, Action.KEY_CREATE, sensitive=True
    )
    clock.advance(seconds=window.total_seconds() + 1)
    with pytest.raises(ReauthenticationRequired, match="more than 5 min ago"):
        accounts.authorizer.authorize(
            session, Permission.KEYS_MANAGE, Action.KEY_CREATE, sensitive=True
        )
    # Tokens and the operator hold the permission itself: no confirmation to ask for.
    token = person(CredentialKind.PERSONAL_TOKEN, Permission.KEYS_MANAGE)
    accounts.authorizer.authorize(token, Permission.KEYS_MANAGE, Action.KEY_CREATE, sensitive=True)
    # A prompt to confirm is not a refusal: the change log stays empty.
    with (
        pytest.raises(ReauthenticationRequired),
        accounts.authorizer.denials(session, Action.KEY_CREATE),
    ):
        accounts.authorizer.authorize(
            session, Permission.KEYS_MANAGE, Action.KEY_CREATE, sensitive=True
        )
    assert denials(accounts) == []


def test_a_refusal_raised_inside_denials_is_recorded_with_its_reason(accounts: Services) -> None:
    actor = person(CredentialKind.SESSION, Permission.USERS_MANAGE)
    with (
        pytest.raises(Forbidden),
        accounts.authorizer.denials(actor, Action.USER_DELETE, target="ann@example.com"),
    ):
        raise Forbidden("you cannot delete yourself")
    assert denials(accounts) == [
        ("admin:users:delete", "ann@example.com", {"reason": "you cannot delete yourself"})
    ]
    # Other errors pass through unrecorded.
    with pytest.raises(Conflict), accounts.authorizer.denials(actor, Action.USER_DELETE):
        raise Conflict("busy")
    assert len(denials(accounts)) == 1
