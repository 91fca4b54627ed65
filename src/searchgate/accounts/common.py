"""Small helpers shared by the account services."""

from __future__ import annotations

import hashlib
import re
import secrets

from searchgate.errors import InvalidInput

EMAIL_MAX = 320
NAME_MAX = 128
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    email = normalize_email(email)
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        raise InvalidInput("enter an email address like name@example.com", field="email")
    return email


def check_display_name(name: str, field: str = "display_name") -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"a name has 1 to {NAME_MAX} characters", field=field)
    if _CONTROL.search(name):
        raise InvalidInput("a name cannot hold control characters", field=field)
    return name


def subject_hash(value: str) -> str:
    """Hex SHA-256, for keys that must not list addresses in the clear."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
