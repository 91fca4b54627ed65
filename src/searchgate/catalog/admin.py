"""Collections as the Command Center and the admin API see them: the catalog behind
a permission check, with deletion recorded in the same transaction."""

from __future__ import annotations

from searchgate.audit import Action, AuditLog
from searchgate.authorizer import Authorizer
from searchgate.catalog.service import CatalogService, CollectionInfo
from searchgate.db import Database
from searchgate.errors import InvalidInput
from searchgate.permissions import Actor, CredentialKind, Permission


class CollectionAdmin:
    def __init__(
        self, db: Database, catalog: CatalogService, audit: AuditLog, authorizer: Authorizer
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.audit = audit
        self.authorizer = authorizer

    def list(self, actor: Actor) -> list[CollectionInfo]:
        self.authorizer.authorize(actor, Permission.COLLECTIONS_READ, Action.COLLECTIONS_LIST)
        return self.catalog.list_collections()

    def get(self, actor: Actor, name: str) -> CollectionInfo:
        self.authorizer.authorize(
            actor, Permission.COLLECTIONS_READ, Action.COLLECTIONS_LIST, target=name
        )
        return self.catalog.get_collection(name)

    def delete(self, actor: Actor, name: str, *, confirm: str | None = None) -> int:
        """Irreversible. A console session must type the name (``confirm``) and have
        re-authenticated recently. Returns how many records went."""
        self.authorizer.authorize(
            actor,
            Permission.COLLECTIONS_DELETE,
            Action.COLLECTION_DELETE,
            target=name,
            sensitive=True,
        )
        if actor.kind is CredentialKind.SESSION and confirm != name:
            raise InvalidInput(
                f"type the collection's name ({name}) to confirm the deletion", field="confirm"
            )
        with self.db.write() as s:
            removed = self.catalog.delete_collection_in(s, name)
            self.audit.record(
                s, actor, Action.COLLECTION_DELETE, target=name, details={"records": removed}
            )
        return removed
