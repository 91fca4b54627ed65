"""Personal API tokens for the admin API.

Format: ``sgp_`` + 32 base62 characters + a 6-character checksum (like client keys,
so that secret scanners can recognise them offline). Stored as an HMAC digest with
the server pepper; shown once. A token carries a list of permissions, but what it
may do is that list intersected with its owner's role *now*, so a demoted owner's
tokens shrink with them, and a disabled owner's stop on the next request.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from searchgate.accounts.common import check_display_name, new_id
from searchgate.accounts.identity import MfaPolicy, build_actor, load_identity
from searchgate.accounts.models import PersonalTokenRow, TokenState, UserRow
from searchgate.audit import Action, AuditLog
from searchgate.authorizer import Authorizer
from searchgate.clock import Clock, aware, utc_now
from searchgate.db import Database
from searchgate.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ReauthenticationRequired,
    Unauthenticated,
)
from searchgate.keys.hashing import Pepper
from searchgate.permissions import (
    GRANTABLE_BY,
    Actor,
    CredentialKind,
    Permission,
    parse_permissions,
)
from searchgate_client.keyformat import ALPHABET, checksum

PREFIX = "sgp_"
RANDOM_CHARS = 32
CHECKSUM_CHARS = 6
DISPLAY_CHARS = 8
TOKEN_PATTERN = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{RANDOM_CHARS + CHECKSUM_CHARS}}}$")
DEFAULT_LIFETIME = timedelta(days=90)
# The MFA requirement is enforced when a token is created (from a session that has
# enrolled, or by the CLI operator), not on each use: automation keeps working while
# its owner re-enrols a lost device.
_MINTED_UNDER_MFA = MfaPolicy(required_for_admins=False, required_for_all=False)
TOUCH_EVERY = timedelta(minutes=1)


def generate_token() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    return f"{PREFIX}{body}{checksum(body)}"


def well_formed(candidate: str) -> bool:
    if not TOKEN_PATTERN.match(candidate):
        return False
    body = candidate[len(PREFIX) :]
    return checksum(body[:RANDOM_CHARS]) == body[RANDOM_CHARS:]


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user_id: str
    name: str
    display_prefix: str
    permissions: frozenset[Permission]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> TokenState:
        if self.revoked_at is not None:
            return TokenState.REVOKED
        return TokenState.EXPIRED if now >= self.expires_at else TokenState.ACTIVE

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "userId": self.user_id,
            "name": self.name,
            "prefix": self.display_prefix,
            "permissions": sorted(p.value for p in self.permissions),
            "createdAt": self.created_at.isoformat(),
            "expiresAt": self.expires_at.isoformat(),
            "lastUsedAt": self.last_used_at.isoformat() if self.last_used_at else None,
            "state": self.state(now),
        }


@dataclass(frozen=True)
class CreatedToken:
    info: TokenInfo
    secret: str  # shown once; never stored, logged or recorded


def _info(row: PersonalTokenRow) -> TokenInfo:
    known = {p.value for p in Permission}
    return TokenInfo(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        display_prefix=row.display_prefix,
        permissions=frozenset(Permission(p) for p in row.permissions if p in known),
        created_at=aware(row.created_at),
        expires_at=aware(row.expires_at),
        last_used_at=aware(row.last_used_at) if row.last_used_at else None,
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
    )


def revoke_user_tokens(s: Session, user_id: str, now: datetime) -> int:
    result = s.execute(
        update(PersonalTokenRow)
        .where(PersonalTokenRow.user_id == user_id, PersonalTokenRow.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


class TokenService:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        authorizer: Authorizer,
        pepper: Pepper,
        clock: Clock = utc_now,
        max_lifetime: timedelta = timedelta(days=365),
    ) -> None:
        self.db = db
        self.audit = audit
        self.authorizer = authorizer
        self.pepper = pepper
        self.clock = clock
        self.max_lifetime = max_lifetime

    def create(
        self,
        actor: Actor,
        name: str,
        permissions: Iterable[str] | None = None,
        expires_in: timedelta = DEFAULT_LIFETIME,
        *,
        user_id: str | None = None,
    ) -> CreatedToken:
        """A token for oneself (a console session that re-authenticated recently), or
        for anyone by the CLI operator. ``permissions`` None: all that the owner's role
        grants and a token may carry."""
        owner = user_id or actor.user_id
        with self.authorizer.denials(actor, Action.TOKEN_CREATE, target=owner):
            if actor.kind is not CredentialKind.SYSTEM:
                if actor.kind is not CredentialKind.SESSION or owner != actor.user_id:
                    raise Forbidden("tokens are created by their owner, signed in to the console")
                if actor.mfa_enrolment_required:
                    raise Forbidden("enrol in MFA before creating tokens")
                if not self.authorizer.reauthenticated(actor):
                    raise ReauthenticationRequired("confirm your password or a TOTP code first")
        if owner is None:
            raise InvalidInput("which user is the token for?", field="user_id")
        name = check_display_name(name, "name")
        if not timedelta(hours=1) <= expires_in <= self.max_lifetime:
            raise InvalidInput(
                f"a token lives 1 hour to {self.max_lifetime.days} days", field="expires_in"
            )
        now = self.clock()
        secret = generate_token()
        with self.audit.transaction() as s:
            identity = load_identity(s, owner)
            if identity is None or not identity.active:
                raise NotFound(f"no active user {owner!r}", field="user_id")
            allowed = identity.permissions & GRANTABLE_BY[CredentialKind.PERSONAL_TOKEN]
            perms = (
                allowed if permissions is None else self._check(permissions, identity.permissions)
            )
            if not perms:
                raise InvalidInput("the token would carry no permission", field="permissions")
            taken = s.scalar(
                select(PersonalTokenRow.id).where(
                    PersonalTokenRow.user_id == owner,
                    PersonalTokenRow.name == name,
                    PersonalTokenRow.revoked_at.is_(None),
                )
            )
            if taken:
                raise Conflict(f"you have a token named {name!r} already", field="name")
            row = PersonalTokenRow(
                id=new_id("tok"),
                user_id=owner,
                name=name,
                display_prefix=secret[: len(PREFIX) + DISPLAY_CHARS],
                digest=self.pepper.digest(secret),
                pepper_id=self.pepper.id,
                permissions=sorted(p.value for p in perms),
                created_at=now,
                expires_at=now + expires_in,
            )
            s.add(row)
            info = _info(row)
            self.audit.record(
                s,
                actor,
                Action.TOKEN_CREATE,
                target=identity.user.email,
                details={
                    "token": info.id,
                    "name": name,
                    "permissions": sorted(p.value for p in perms),
                    "expiresAt": info.expires_at.isoformat(),
                },
            )
        return CreatedToken(info=info, secret=secret)

    @staticmethod
    def _check(values: Iterable[str], role: frozenset[Permission]) -> frozenset[Permission]:
        try:
            perms = parse_permissions(values)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="permissions") from None
        not_held = perms - role
        if not_held:
            names = ", ".join(sorted(p.value for p in not_held))
            raise InvalidInput(f"your role does not grant {names}", field="permissions")
        never = perms - GRANTABLE_BY[CredentialKind.PERSONAL_TOKEN]
        if never:
            names = ", ".join(sorted(p.value for p in never))
            raise InvalidInput(
                f"a token cannot carry {names} (console sessions only)", field="permissions"
            )
        return perms

    def list(
        self, actor: Actor, user_id: str | None = None, *, include_inactive: bool = False
    ) -> list[TokenInfo]:
        """One's own tokens, or another user's with ``admin:users:manage``."""
        owner = user_id or actor.user_id
        if owner is None:
            raise InvalidInput("which user's tokens?", field="user_id")
        if owner != actor.user_id:
            self.authorizer.authorize(
                actor, Permission.USERS_MANAGE, Action.USERS_LIST, target=owner
            )
        now = self.clock()
        with self.db.read() as s:
            rows = s.scalars(
                select(PersonalTokenRow)
                .where(PersonalTokenRow.user_id == owner)
                .order_by(PersonalTokenRow.created_at.desc())
            ).all()
        infos = [_info(r) for r in rows]
        return (
            infos if include_inactive else [i for i in infos if i.state(now) is TokenState.ACTIVE]
        )

    def revoke(self, actor: Actor, token_id: str) -> TokenInfo:
        """Revokes one's own token, or anyone's with ``admin:users:manage``."""
        now = self.clock()
        with self.db.read() as s:
            row = s.get(PersonalTokenRow, token_id)
        if row is None:
            raise NotFound(f"no token {token_id!r}", field="token_id")
        if row.user_id != actor.user_id:
            self.authorizer.authorize(
                actor, Permission.USERS_MANAGE, Action.TOKEN_REVOKE, target=row.user_id
            )
        with self.audit.transaction() as s:
            s.execute(
                update(PersonalTokenRow)
                .where(PersonalTokenRow.id == token_id, PersonalTokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            owner = s.get(UserRow, row.user_id)
            fresh = s.get(PersonalTokenRow, token_id, populate_existing=True)
            assert fresh is not None
            info = _info(fresh)
            self.audit.record(
                s,
                actor,
                Action.TOKEN_REVOKE,
                target=owner.email if owner is not None else row.user_id,
                details={"token": token_id, "name": row.name},
            )
        return info

    def authenticate(
        self, secret: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> Actor:
        """The actor behind a token, or Unauthenticated with a ``reason``. No cache:
        revocation and disabling take effect on the very next request."""
        if not well_formed(secret):
            raise Unauthenticated("not a valid personal API token", reason="invalid_token")
        now = self.clock()
        digest = self.pepper.digest(secret)
        with self.db.read() as s:
            row = s.scalar(select(PersonalTokenRow).where(PersonalTokenRow.digest == digest))
            identity = load_identity(s, row.user_id) if row is not None else None
        if row is None or identity is None:
            raise Unauthenticated("not a valid personal API token", reason="invalid_token")
        info = _info(row)
        state = info.state(now)
        if state is not TokenState.ACTIVE:
            raise Unauthenticated(
                f"personal API token {info.id} is {state}", reason=f"token_{state}"
            )
        if not identity.active:
            raise Unauthenticated(
                f"the owner of token {info.id} is disabled", reason="user_disabled"
            )
        if info.last_used_at is None or now - info.last_used_at >= TOUCH_EVERY:
            with self.db.write() as s:
                s.execute(
                    update(PersonalTokenRow)
                    .where(PersonalTokenRow.id == row.id)
                    .values(last_used_at=now)
                )
        return build_actor(
            identity,
            _MINTED_UNDER_MFA,
            CredentialKind.PERSONAL_TOKEN,
            permissions=info.permissions,
            token_id=info.id,
            ip=ip,
            user_agent=user_agent,
        )
