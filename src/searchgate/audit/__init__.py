"""The tamper-evident change log."""

from searchgate.audit.chain import AuditKey, Problem
from searchgate.audit.encoding import csv_cell, encode_field
from searchgate.audit.service import AuditEvent, AuditFilter, AuditLog, AuditPage, VerifyReport
from searchgate.audit.tags import Action, Outcome

__all__ = [
    "Action",
    "AuditEvent",
    "AuditFilter",
    "AuditKey",
    "AuditLog",
    "AuditPage",
    "Outcome",
    "Problem",
    "VerifyReport",
    "csv_cell",
    "encode_field",
]
