"""What a client key may do. A client key never holds a Command Center permission."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    SEARCH = "search"
    SAYT = "sayt"
    RECORDS_WRITE = "records:write"
    COLLECTIONS_WRITE = "collections:write"
    COLLECTIONS_DELETE = "collections:delete"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)

SCOPE_HELP: dict[Scope, str] = {
    Scope.SEARCH: "search and refinements (POST /api/v1/search...) and reading collection settings",
    Scope.SAYT: "search as you type (GET /api/v1/sayt/search)",
    Scope.RECORDS_WRITE: "upload, replace and delete records",
    Scope.COLLECTIONS_WRITE: "create collections and change their settings",
    Scope.COLLECTIONS_DELETE: "delete whole collections (irreversible)",
}
