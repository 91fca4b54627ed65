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
    INVITATION_CREATE = "admin:invitations:create"
    INVITATION_REVOKE = "admin:invitations:revoke"
    INVITATION_ACCEPT = "auth:invitation:accept"
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
    MERCH_DRAFT_UPDATE = "console:merchandising:draft-update"
    MERCH_DRAFT_DISCARD = "console:merchandising:draft-discard"
    MERCH_IMPORT = "console:merchandising:import"
    MERCH_PUBLISH = "console:merchandising:publish"
    MERCH_ROLLBACK = "console:merchandising:rollback"
    # Refusals only: someone without the permission (or the area) reads merchandising.
    MERCH_READ = "console:merchandising:read"
    PAGE_DENY = "console:page:deny"
    # Data-plane changes made with a client key (the actor is the key).
    DATA_SETTINGS = "data:collections:settings"
    DATA_COLLECTION_DELETE = "data:collections:delete"
    DATA_RECORDS_WRITE = "data:records:write"
    DATA_RECORDS_DELETE = "data:records:delete"
    DATA_REPLACEMENT_START = "data:replacements:start"
    DATA_REPLACEMENT_BATCH = "data:replacements:batch"
    DATA_REPLACEMENT_COMMIT = "data:replacements:commit"
    DATA_REPLACEMENT_ABORT = "data:replacements:abort"
    DATA_REPLACEMENT_EXPIRE = "data:replacements:expire"
    # Client keys (Key Management).
    KEYS_LIST = "admin:keys:list"
    KEY_CREATE = "admin:keys:create"
    KEY_NEW_PRIMARY = "admin:keys:new-primary"
    KEY_ROLL = "admin:keys:roll"
    KEY_UPDATE = "admin:keys:update"
    KEY_EXPIRY = "admin:keys:expiry"
    KEY_DISABLE = "admin:keys:disable"
    KEY_ENABLE = "admin:keys:enable"
    KEY_DELETE = "admin:keys:delete"
    KEY_LEAK_REPORTED = "admin:keys:leak-reported"
    # Key rotation: one event per step of the six.
    ROTATION_START = "admin:rotation:start"
    ROTATION_STEP = "admin:rotation:step"
    ROTATION_ABORT = "admin:rotation:abort"
    ROTATION_FINISH = "admin:rotation:finish"
    # Outside a rotation: the primary key written to the store by hand (in the wizard).
    ROTATION_STORE_WRITE = "admin:rotation:store-write"
    # Server secrets (docs/operations.md#several-hosts): fingerprints only, never values.
    SERVER_SECRETS_RECORD = "server:secrets:record"
    SERVER_SECRETS_PUSH = "server:secrets:push"


# How the change log and the overview name each action: words, where the tag is code.
ACTION_LABELS: dict[Action, str] = {
    Action.SIGN_IN: "Signed in",
    Action.SIGN_OUT: "Signed out",
    Action.SESSION_END: "Session ended",
    Action.REAUTHENTICATE: "Confirmed it is them",
    Action.MFA_VERIFY: "Two-factor code checked",
    Action.MFA_ENROL: "Two-factor authentication set up",
    Action.MFA_DISABLE: "Two-factor authentication turned off",
    Action.MFA_RECOVERY_CODES: "Recovery codes regenerated",
    Action.PASSWORD_CHANGE: "Password changed",
    Action.TOKEN_CREATE: "Personal token created",
    Action.TOKEN_REVOKE: "Personal token revoked",
    Action.USERS_LIST: "Users listed",
    Action.USER_CREATE: "User created",
    Action.USER_UPDATE: "User changed",
    Action.USER_DISABLE: "User disabled",
    Action.USER_ENABLE: "User enabled",
    Action.USER_DELETE: "User deleted",
    Action.USER_RESET_PASSWORD: "Password reset",
    Action.USER_RESET_MFA: "Two-factor authentication reset",
    Action.USER_END_SESSIONS: "All sessions ended",
    Action.INVITATION_CREATE: "Invitation sent",
    Action.INVITATION_REVOKE: "Invitation withdrawn",
    Action.INVITATION_ACCEPT: "Invitation accepted",
    Action.ROLES_LIST: "Roles listed",
    Action.ROLE_CREATE: "Role created",
    Action.ROLE_UPDATE: "Role changed",
    Action.ROLE_DELETE: "Role deleted",
    Action.AUDIT_READ: "Change log read",
    Action.AUDIT_EXPORT: "Change log exported",
    Action.COLLECTIONS_LIST: "Collections listed",
    Action.COLLECTION_DELETE: "Collection deleted",
    Action.AREA_CREATE: "Area created",
    Action.AREA_UPDATE: "Area changed",
    Action.AREA_RENAME: "Area renamed",
    Action.AREA_DELETE: "Area deleted",
    Action.MERCH_DRAFT_UPDATE: "Merchandising draft changed",
    Action.MERCH_DRAFT_DISCARD: "Merchandising draft discarded",
    Action.MERCH_IMPORT: "Merchandising imported into the draft",
    Action.MERCH_PUBLISH: "Merchandising published",
    Action.MERCH_ROLLBACK: "Merchandising rolled back",
    Action.MERCH_READ: "Merchandising read",
    Action.PAGE_DENY: "Page refused",
    Action.DATA_SETTINGS: "Collection settings changed",
    Action.DATA_COLLECTION_DELETE: "Collection deleted by a key",
    Action.DATA_RECORDS_WRITE: "Records uploaded",
    Action.DATA_RECORDS_DELETE: "Records deleted",
    Action.DATA_REPLACEMENT_START: "Collection replacement started",
    Action.DATA_REPLACEMENT_BATCH: "Records staged for a replacement",
    Action.DATA_REPLACEMENT_COMMIT: "Collection replaced",
    Action.DATA_REPLACEMENT_ABORT: "Collection replacement aborted",
    Action.DATA_REPLACEMENT_EXPIRE: "Collection replacement expired",
    Action.KEYS_LIST: "Keys listed",
    Action.KEY_CREATE: "Key created",
    Action.KEY_NEW_PRIMARY: "New primary key",
    Action.KEY_ROLL: "Key rolled",
    Action.KEY_UPDATE: "Key changed",
    Action.KEY_EXPIRY: "Key expiry changed",
    Action.KEY_DISABLE: "Key disabled",
    Action.KEY_ENABLE: "Key enabled",
    Action.KEY_DELETE: "Key deleted",
    Action.KEY_LEAK_REPORTED: "Key reported as leaked",
    Action.ROTATION_START: "Rotation started",
    Action.ROTATION_STEP: "Rotation step done",
    Action.ROTATION_ABORT: "Rotation aborted",
    Action.ROTATION_FINISH: "Rotation finished",
    Action.ROTATION_STORE_WRITE: "Primary key written to the store",
    Action.SERVER_SECRETS_RECORD: "Server secrets recorded",
    Action.SERVER_SECRETS_PUSH: "Server secrets put in the secret store",
}


def label_of(action: str) -> str:
    """The words for an action; a tag recorded by another package shows as itself."""
    try:
        return ACTION_LABELS[Action(action)]
    except (ValueError, KeyError):
        return action


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # the credential or input was wrong (bad password, bad code)
    DENIED = "denied"  # a valid actor without the permission


def check_action(action: str) -> str:
    if not ACTION_PATTERN.match(action):
        raise ValueError(f"an audit action is named area:resource:action, not {action!r}")
    return action
