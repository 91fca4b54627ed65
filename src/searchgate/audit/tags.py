"""The actions the change log records, named ``area:resource:action`` like the
permissions. Other packages may record actions of their own with the same shape."""

# The names below contain "password" and "token"; they are action tags, not secrets.
# ruff: noqa: S105

from __future__ import annotations

import re
from enum import StrEnum

ACTION_PATTERN = re.compile(r"^[a-z]+:[a-z][a-z-]*:[a-z][a-z-]*$")


class Action(StrEnum):
    SIGN_IN = "auth:session:sign-in"
    SIGN_OUT = "auth:session:sign-out"
    SESSION_END = "auth:session:end"
    REAUTHENTICATE = "auth:session:reauthenticate"
    MFA_VERIFY = "auth:mfa:verify"
    MFA_ENROL = "auth:mfa:enrol"
    MFA_DISABLE = "auth:mfa:disable"
    MFA_RECOVERY_CODES = "auth:mfa:recovery-codes"
    PASSWORD_CHANGE = "auth:password:change"
    TOKEN_CREATE = "account:tokens:create"
    TOKEN_REVOKE = "account:tokens:revoke"
    USERS_LIST = "admin:users:list"
    USER_CREATE = "admin:users:create"
    USER_UPDATE = "admin:users:update"
    USER_DISABLE = "admin:users:disable"
    USER_ENABLE = "admin:users:enable"
    USER_DELETE = "admin:users:delete"
    USER_RESET_PASSWORD = "admin:users:reset-password"
    USER_RESET_MFA = "admin:users:reset-mfa"
    USER_END_SESSIONS = "admin:users:end-sessions"
    ROLES_LIST = "admin:roles:list"
    ROLE_CREATE = "admin:roles:create"
    ROLE_UPDATE = "admin:roles:update"
    ROLE_DELETE = "admin:roles:delete"
    AUDIT_READ = "admin:audit:read"
    AUDIT_EXPORT = "admin:audit:export"
    COLLECTIONS_LIST = "console:collections:list"
    COLLECTION_DELETE = "console:collections:delete"
    AREA_CREATE = "console:areas:create"
    AREA_UPDATE = "console:areas:update"
    AREA_RENAME = "console:areas:rename"
    AREA_DELETE = "console:areas:delete"
    # Data-plane changes made with a client key (the actor is the key).
    DATA_SETTINGS = "data:collections:settings"
    DATA_COLLECTION_DELETE = "data:collections:delete"
    DATA_RECORDS_WRITE = "data:records:write"
    DATA_RECORDS_DELETE = "data:records:delete"
    # Client keys (Key Management).
    KEYS_LIST = "admin:keys:list"
    KEY_CREATE = "admin:keys:create"
    KEY_NEW_PRIMARY = "admin:keys:new-primary"
    KEY_ROLL = "admin:keys:roll"
    KEY_UPDATE = "admin:keys:update"
    KEY_DISABLE = "admin:keys:disable"
    KEY_ENABLE = "admin:keys:enable"
    KEY_DELETE = "admin:keys:delete"
    KEY_LEAK_REPORTED = "admin:keys:leak-reported"
    # Key rotation: one event per step of the six.
    ROTATION_START = "admin:rotation:start"
    ROTATION_STEP = "admin:rotation:step"
    ROTATION_ABORT = "admin:rotation:abort"
    ROTATION_FINISH = "admin:rotation:finish"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # the credential or input was wrong (bad password, bad code)
    DENIED = "denied"  # a valid actor without the permission


def check_action(action: str) -> str:
    if not ACTION_PATTERN.match(action):
        raise ValueError(f"an audit action is named area:resource:action, not {action!r}")
    return action
