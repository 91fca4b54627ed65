"""Imports every table module so that metadata (and Alembic) sees all tables."""

from searchgate.accounts.models import (
    PersonalTokenRow,
    RecoveryCodeRow,
    RoleRow,
    SessionRow,
    ThrottleRow,
    TotpRow,
    UserRow,
)
from searchgate.audit.models import AuditEventRow, AuditHeadRow
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
from searchgate.keys.usage_models import KeySystemRow, KeyUsageHourRow
from searchgate.merchandising.models import MerchDraftRow, MerchVersionRow
from searchgate.rotation.models import RotationRow
from searchgate.server_secrets import ServerSecretRow

__all__ = [
    "AreaRow",
    "AuditEventRow",
    "AuditHeadRow",
    "Base",
    "ChangeCounter",
    "ChangeRow",
    "ClientKeyRow",
    "CollectionRow",
    "IndexNodeRow",
    "KeySystemRow",
    "KeyUsageHourRow",
    "MerchDraftRow",
    "MerchVersionRow",
    "PersonalTokenRow",
    "QueryStatRow",
    "RecordRow",
    "RecoveryCodeRow",
    "RoleRow",
    "RotationRow",
    "ServerSecretRow",
    "SessionRow",
    "ThrottleRow",
    "TotpRow",
    "UserRow",
]
