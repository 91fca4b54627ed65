"""People: one account each, with a role, a state and an optional MFA enrolment.

Guards: nobody hands out, or manages someone holding, more permissions than they hold
themselves; the last active admin (anyone whose role grants ``admin:users:manage``)
cannot be demoted, disabled or deleted; nobody disables or deletes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from searchgate.accounts.common import check_display_name, check_email, new_id
from searchgate.accounts.identity import Identity, load_identity
from searchgate.accounts.mfa import remove_mfa
from searchgate.accounts.models import RoleRow, TotpRow, UserRow, UserState
from searchgate.accounts.passwords import PasswordHasher, check_password_policy
from searchgate.accounts.roles import count_admins, require_within, role_areas, role_permissions
from searchgate.accounts.sessions import end_user_sessions
from searchgate.accounts.tokens import revoke_user_tokens
from searchgate.audit import Action, AuditLog
from searchgate.authorizer import Authorizer
from searchgate.clock import Clock, aware, utc_now
from searchgate.db import Database
from searchgate.errors import Conflict, InvalidInput, NotFound
from searchgate.permissions import ADMIN_MARKER, Actor, Permission


@dataclass(frozen=True)
class UserInfo:
    id: str
    email: str
    display_name: str
    role: str
    state: str
    mfa_enrolled: bool
    is_admin: bool
    created_at: datetime
    last_sign_in_at: datetime | None
    must_change_password: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "displayName": self.display_name,
            "role": self.role,
            "state": self.state,
            "mfaEnrolled": self.mfa_enrolled,
            "admin": self.is_admin,
            "createdAt": self.created_at.isoformat(),
            "lastSignInAt": self.last_sign_in_at.isoformat() if self.last_sign_in_at else None,
            "mustChangePassword": self.must_change_password,
        }


@dataclass(frozen=True)
class AdminSummary:
    """For the Users page and the dashboard's security notices."""

    active_admins: int
    max_admins: int
    admins_without_mfa: int

    @property
    def too_many(self) -> bool:
        return self.active_admins > self.max_admins


def user_info(identity: Identity) -> UserInfo:
    u = identity.user
    return UserInfo(
        id=u.id,
        email=u.email,
        display_name=u.display_name,
        role=identity.role_name,
        state=u.state,
        mfa_enrolled=identity.mfa_enrolled,
        is_admin=ADMIN_MARKER in identity.permissions,
        created_at=aware(u.created_at),
        last_sign_in_at=aware(u.last_sign_in_at) if u.last_sign_in_at else None,
        must_change_password=bool(u.must_change_password),
    )


class UserService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        authorizer: Authorizer,
        passwords: PasswordHasher,
        clock: Clock = utc_now,
        max_admins: int = 3,
    ) -> None:
        self.db = db
        self.audit = audit
        self.authorizer = authorizer
        self.passwords = passwords
        self.clock = clock
        self.max_admins = max_admins

    # --- reading -----------------------------------------------------------------

    def list(self, actor: Actor) -> list[UserInfo]:
        self.authorizer.authorize(actor, Permission.USERS_READ, Action.USERS_LIST)
        with self.db.read() as s:
            roles = {r.id: r for r in s.scalars(select(RoleRow))}
            enrolled = set(
                s.scalars(select(TotpRow.user_id).where(TotpRow.confirmed_at.is_not(None)))
            )
            out = []
            for u in s.scalars(select(UserRow).order_by(UserRow.email)):
                role = roles.get(u.role_id)
                out.append(
                    user_info(
                        Identity(
                            user=u,
                            role_name=role.name if role else "",
                            permissions=role_permissions(role) if role else frozenset(),
                            areas=role_areas(role) if role else frozenset(),
                            mfa_enrolled=u.id in enrolled,
                        )
                    )
                )
            return out

    def get(self, actor: Actor, user: str) -> UserInfo:
        """By id or email; one's own account needs no permission."""
        with self.db.read() as s:
            identity = self._find(s, user)
        if identity.user.id != actor.user_id:
            self.authorizer.authorize(actor, Permission.USERS_READ, Action.USERS_LIST, target=user)
        return user_info(identity)

    def admin_summary(self, actor: Actor) -> AdminSummary:
        self.authorizer.authorize(actor, Permission.USERS_READ, Action.USERS_LIST)
        users = self.list(actor)
        admins = [u for u in users if u.is_admin and u.state == UserState.ACTIVE]
        return AdminSummary(
            active_admins=len(admins),
            max_admins=self.max_admins,
            admins_without_mfa=sum(1 for u in admins if not u.mfa_enrolled),
        )

    # --- changing ----------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        email: str,
        password: str,
        role: str,
        display_name: str | None = None,
        must_change_password: bool | None = None,
    ) -> UserInfo:
        """A new account with a first password. Its owner must change that password at
        their first sign-in when someone else chose it: by default, when a person (an
        admin) creates the account; the CLI operator usually creates their own."""
        email = check_email(email)
        if must_change_password is None:
            must_change_password = actor.user_id is not None
        self.authorizer.authorize(
            actor, Permission.USERS_MANAGE, Action.USER_CREATE, target=email, sensitive=True
        )
        name = check_display_name(display_name or email.split("@")[0])
        check_password_policy(password, email)
        # The slow part (argon2) runs before the write transaction takes its lock.
        password_hash = self.passwords.hash(password)
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.USER_CREATE, target=email),
            self.audit.transaction() as s,
        ):
            role_row = find_role(s, role)
            require_within(
                actor, role_permissions(role_row), role_areas(role_row), "giving this role"
            )
            user = insert_user(s, email, name, password_hash, role_row, now, must_change_password)
            identity = load_identity(s, user.id)
            assert identity is not None
            self.audit.record(
                s,
                actor,
                Action.USER_CREATE,
                target=email,
                details={
                    "user": user.id,
                    "role": role_row.name,
                    "changeAtSignIn": must_change_password,
                    **self._admin_note(s, identity),
                },
            )
        return user_info(identity)

    def update(
        self,
        actor: Actor,
        user: str,
        *,
        role: str | None = None,
        display_name: str | None = None,
    ) -> UserInfo:
        """Changes role and/or display name. A new role gives the person's sessions
        new ids on their next request."""
        self.authorizer.authorize(
            actor, Permission.USERS_MANAGE, Action.USER_UPDATE, target=user, sensitive=True
        )
        with (
            self.authorizer.denials(actor, Action.USER_UPDATE, target=user),
            self.audit.transaction() as s,
        ):
            before = self._find(s, user)
            self._may_manage(actor, before)
            u = before.user
            changes: dict[str, Any] = {}
            if display_name is not None and display_name.strip() != u.display_name:
                changes["displayName"] = {"from": u.display_name, "to": display_name.strip()}
                u.display_name = check_display_name(display_name)
            if role is not None:
                new_role = find_role(s, role)
                if new_role.id != u.role_id:
                    new_perms = role_permissions(new_role)
                    require_within(actor, new_perms, role_areas(new_role), "giving this role")
                    if (
                        before.active
                        and ADMIN_MARKER in before.permissions
                        and ADMIN_MARKER not in new_perms
                    ):
                        self._keep_an_admin(s, u, "demoted")
                    changes["role"] = {"from": before.role_name, "to": new_role.name}
                    u.role_id = new_role.id
                    u.privilege_epoch += 1
            if not changes:
                return user_info(before)
            u.updated_at = self.clock()
            s.flush()
            after = load_identity(s, u.id)
            assert after is not None
            self.audit.record(
                s,
                actor,
                Action.USER_UPDATE,
                target=u.email,
                details={"user": u.id, "changes": changes, **self._admin_note(s, after)},
            )
        return user_info(after)

    def disable(self, actor: Actor, user: str) -> UserInfo:
        """Ends every session and revokes every token of the person at once."""
        self.authorizer.authorize(
            actor, Permission.USERS_MANAGE, Action.USER_DISABLE, target=user, sensitive=True
        )
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.USER_DISABLE, target=user),
            self.audit.transaction() as s,
        ):
            identity = self._find(s, user)
            self._may_manage(actor, identity)
            u = identity.user
            if u.id == actor.user_id:
                raise Conflict("you cannot disable your own account; ask another admin")
            if u.state == UserState.DISABLED:
                return user_info(identity)
            if ADMIN_MARKER in identity.permissions:
                self._keep_an_admin(s, u, "disabled")
            u.state = UserState.DISABLED
            u.disabled_at = now
            u.updated_at = now
            sessions = end_user_sessions(s, u.id, now, "user_disabled")
            tokens = revoke_user_tokens(s, u.id, now)
            self.audit.record(
                s,
                actor,
                Action.USER_DISABLE,
                target=u.email,
                details={"user": u.id, "sessionsEnded": sessions, "tokensRevoked": tokens},
            )
            result = user_info(identity)
        return result

    def enable(self, actor: Actor, user: str) -> UserInfo:
        self.authorizer.authorize(
            actor, Permission.USERS_MANAGE, Action.USER_ENABLE, target=user, sensitive=True
        )
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.USER_ENABLE, target=user),
            self.audit.transaction() as s,
        ):
            identity = self._find(s, user)
            self._may_manage(actor, identity)
            u = identity.user
            if u.state == UserState.ACTIVE:
                return user_info(identity)
            u.state = UserState.ACTIVE
            u.disabled_at = None
            u.updated_at = now
            self.audit.record(s, actor, Action.USER_ENABLE, target=u.email, details={"user": u.id})
            result = user_info(identity)
        return result

    def delete(self, actor: Actor, user: str) -> None:
        """Removes the account, its sessions, tokens and MFA. Change log entries keep
        the name and email they were recorded with."""
        self.authorizer.authorize(
            actor, Permission.USERS_MANAGE, Action.USER_DELETE, target=user, sensitive=True
        )
        with (
            self.authorizer.denials(actor, Action.USER_DELETE, target=user),
            self.audit.transaction() as s,
        ):
            identity = self._find(s, user)
            self._may_manage(actor, identity)
            u = identity.user
            if u.id == actor.user_id:
                raise Conflict("you cannot delete your own account; ask another admin")
            if identity.active and ADMIN_MARKER in identity.permissions:
                self._keep_an_admin(s, u, "deleted")
            remove_mfa(s, u.id)
            s.delete(u)
            self.audit.record(
                s,
                actor,
                Action.USER_DELETE,
                target=u.email,
                details={"user": u.id, "displayName": u.display_name, "role": identity.role_name},
            )

    def reset_password(
        self, actor: Actor, user: str, new_password: str, *, temporary: bool = True
    ) -> None:
        """Sets a password for someone and ends their sessions. A ``temporary`` one (the
        default) must be changed by its owner at their next sign-in."""
        self.authorizer.authorize(
            actor, Permission.USERS_MANAGE, Action.USER_RESET_PASSWORD, target=user, sensitive=True
        )
        with self.db.read() as s:
            email = self._find(s, user).user.email
        check_password_policy(new_password, email)
        password_hash = self.passwords.hash(new_password)
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.USER_RESET_PASSWORD, target=user),
            self.audit.transaction() as s,
        ):
            identity = self._find(s, user)
            self._may_manage(actor, identity)
            u = identity.user
            u.password_hash = password_hash
            u.password_changed_at = now
            u.updated_at = now
            u.must_change_password = temporary
            n = end_user_sessions(s, u.id, now, "password_reset")
            self.audit.record(
                s,
                actor,
                Action.USER_RESET_PASSWORD,
                target=u.email,
                details={"user": u.id, "sessionsEnded": n, "changeAtSignIn": temporary},
            )

    def reset_mfa(self, actor: Actor, user: str) -> None:
        """Removes someone's MFA (a lost device); they enrol again at next sign-in."""
        self.authorizer.authorize(
            actor, Permission.USERS_MANAGE, Action.USER_RESET_MFA, target=user, sensitive=True
        )
        now = self.clock()
        with (
            self.authorizer.denials(actor, Action.USER_RESET_MFA, target=user),
            self.audit.transaction() as s,
        ):
            identity = self._find(s, user)
            self._may_manage(actor, identity)
            u = identity.user
            if not remove_mfa(s, u.id):
                raise NotFound(f"{u.email} has no MFA enrolment")
            u.privilege_epoch += 1
            n = end_user_sessions(s, u.id, now, "mfa_reset")
            self.audit.record(
                s,
                actor,
                Action.USER_RESET_MFA,
                target=u.email,
                details={"user": u.id, "sessionsEnded": n},
            )

    # --- helpers -----------------------------------------------------------------

    @staticmethod
    def _find(s: Session, user: str) -> Identity:
        key = user.strip()
        user_id = s.scalar(
            select(UserRow.id).where((UserRow.id == key) | (UserRow.email == key.lower()))
        )
        identity = load_identity(s, user_id) if user_id else None
        if identity is None:
            raise NotFound(f"no user {user!r}", field="user")
        return identity

    @staticmethod
    def _may_manage(actor: Actor, target: Identity) -> None:
        require_within(actor, target.permissions, target.areas, "managing this user")

    @staticmethod
    def _keep_an_admin(s: Session, user: UserRow, what: str) -> None:
        if count_admins(s, except_user=user.id) == 0:
            raise Conflict(
                f"{user.email} is the last active admin and cannot be {what}; make another "
                "person an admin first",
                field="user",
            )

    def _admin_note(self, s: Session, identity: Identity) -> dict[str, Any]:
        if ADMIN_MARKER not in identity.permissions:
            return {}
        n = count_admins(s)
        note: dict[str, Any] = {"activeAdmins": n}
        if n > self.max_admins:
            note["warning"] = f"{n} admins, more than the {self.max_admins} configured"
        return note


def insert_user(
    s: Session,
    email: str,
    display_name: str,
    password_hash: str,
    role: RoleRow,
    now: datetime,
    must_change_password: bool,
) -> UserRow:
    """Adds an active account (the caller checked the email, name, password and role,
    and records the event)."""
    if s.scalar(select(UserRow.id).where(UserRow.email == email)):
        raise Conflict(f"a user with the email {email!r} exists already", field="email")
    user = UserRow(
        id=new_id("usr"),
        email=email,
        display_name=display_name,
        password_hash=password_hash,
        role_id=role.id,
        state=UserState.ACTIVE,
        privilege_epoch=0,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
        must_change_password=must_change_password,
    )
    s.add(user)
    s.flush()
    return user


def find_role(s: Session, name: str) -> RoleRow:
    row = s.scalar(select(RoleRow).where((RoleRow.name == name) | (RoleRow.id == name)))
    if row is None:
        known = ", ".join(s.scalars(select(RoleRow.name).order_by(RoleRow.name)))
        raise InvalidInput(f"no role named {name!r} (roles: {known})", field="role")
    return row


def count_users(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(UserRow)) or 0)
