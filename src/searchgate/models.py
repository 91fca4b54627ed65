"""Imports every table module so that metadata (and Alembic) sees all tables."""

from searchgate.catalog.models import (
    AreaRow,
    ChangeCounter,
    ChangeRow,
    CollectionRow,
    IndexNodeRow,
    QueryStatRow,
    RecordRow,
)
from searchgate.db import Base
from searchgate.keys.models import ClientKeyRow

__all__ = [
    "AreaRow",
    "Base",
    "ChangeCounter",
    "ChangeRow",
    "ClientKeyRow",
    "CollectionRow",
    "IndexNodeRow",
    "QueryStatRow",
    "RecordRow",
]
