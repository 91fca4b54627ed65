"""People, roles, sessions, MFA, throttling and personal API tokens."""

from searchgate.accounts.identity import MfaPolicy
from searchgate.accounts.invitations import CreatedInvitation, InvitationInfo, InvitationService
from searchgate.accounts.mfa import Enrolment, MfaService, MfaStatus
from searchgate.accounts.passwords import PasswordHasher, check_password_policy
from searchgate.accounts.roles import RoleInfo, RoleService
from searchgate.accounts.sessions import Authenticated, SessionInfo, SessionPolicy, SessionService
from searchgate.accounts.signin import AuthService, SignInResult
from searchgate.accounts.throttle import Throttle, ThrottlePolicy
from searchgate.accounts.tokens import CreatedToken, TokenInfo, TokenService
from searchgate.accounts.users import AdminSummary, UserInfo, UserService

__all__ = [
    "AdminSummary",
    "AuthService",
    "Authenticated",
    "CreatedInvitation",
    "CreatedToken",
    "Enrolment",
    "InvitationInfo",
    "InvitationService",
    "MfaPolicy",
    "MfaService",
    "MfaStatus",
    "PasswordHasher",
    "RoleInfo",
    "RoleService",
    "SessionInfo",
    "SessionPolicy",
    "SessionService",
    "SignInResult",
    "Throttle",
    "ThrottlePolicy",
    "TokenInfo",
    "TokenService",
    "UserInfo",
    "UserService",
    "check_password_policy",
]
