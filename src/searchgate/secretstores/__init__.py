"""Secret stores for the client key: Vault KV v2, AWS Secrets Manager, a local file, and
a read-only environment variable, behind one protocol (read, check-and-set write,
versions, restore). See docs/secret-stores.md."""

from searchgate.secretstores.base import (
    FIELD,
    FieldStore,
    SecretFields,
    SecretStore,
    SecretVersion,
    StoreConflict,
    StoreError,
    StoreMisconfigured,
    StoreNotFound,
    StorePermissionDenied,
    StoreUnavailable,
)
from searchgate.secretstores.factory import KINDS, open_store

__all__ = [
    "FIELD",
    "KINDS",
    "FieldStore",
    "SecretFields",
    "SecretStore",
    "SecretVersion",
    "StoreConflict",
    "StoreError",
    "StoreMisconfigured",
    "StoreNotFound",
    "StorePermissionDenied",
    "StoreUnavailable",
    "open_store",
]
