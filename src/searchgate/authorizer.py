"""Who may do what: deny by default, decided from ``permissions.py``; every refusal
goes into the change log exactly once.

It sits above the audit log (which records the refusals) and below the services
that ask it (accounts, keys, catalog, rotation).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from searchgate.audit.service import AuditLog
from searchgate.audit.tags import Action, Outcome
from searchgate.clock import Clock, utc_now
from searchgate.errors import Forbidden, ReauthenticationRequired
from searchgate.permissions import Actor, Permission

__all__ = ["Authorizer"]


class Authorizer:
    def __init__(
        self,
        audit: AuditLog,
        clock: Clock = utc_now,
        reauth_window: timedelta = timedelta(minutes=5),
    ) -> None:
        self.audit = audit
        self.clock = clock
        # How long a session's confirmation (password or TOTP code) covers sensitive
        # actions.
        self.reauth_window = reauth_window

    def authorize(
        self,
        actor: Actor,
        permission: Permission,
        action: Action | str,
        *,
        target: str | None = None,
        sensitive: bool = False,
    ) -> None:
        """Raises Forbidden (and records the refusal) unless the actor holds
        ``permission``; for ``sensitive`` actions a session must also have
        re-authenticated within the window."""
        if not actor.has(permission):
            raise self.audit.record_refusal(actor, permission, action, target=target)
        if sensitive and not self.reauthenticated(actor):
            minutes = int(self.reauth_window.total_seconds() // 60)
            raise ReauthenticationRequired(
                f"confirm your password or a TOTP code first (needed for this action "
                f"when you last confirmed more than {minutes} min ago)"
            )

    def reauthenticated(self, actor: Actor) -> bool:
        """True when ``actor`` may do a sensitive action without confirming first."""
        return actor.reauthenticated_within(self.reauth_window, self.clock())

    @contextmanager
    def denials(
        self, actor: Actor, action: Action | str, *, target: str | None = None
    ) -> Iterator[None]:
        """Records a refusal raised inside (after its transaction rolled back): put it
        outside ``db.write()``. Prompts to re-authenticate are not refusals."""
        try:
            yield
        except Forbidden as exc:
            if not exc.recorded and not isinstance(exc, ReauthenticationRequired):
                self.audit.record_now(
                    actor,
                    action,
                    target=target,
                    outcome=Outcome.DENIED,
                    details={"reason": exc.message},
                )
                exc.recorded = True
            raise
