"""Server secrets: the key pepper and the audit key, the same on every node.

A node takes each one from, in this order: its setting (``SEARCHGATE_KEY_PEPPER``,
``SEARCHGATE_AUDIT_KEY``), the server secrets store (``SEARCHGATE_SERVER_SECRETS_STORE_KIND``
and ``_PATH``), the data directory's secrets folder. The database remembers a
fingerprint of each: the ids that stored key digests and change-log events already
carry, never the secrets. A node whose secrets differ would answer 401 to every client
key (another pepper) or break the change log's chain for every node (another audit
key), so it refuses to start before it writes anything, and a node joining a database
that knows its secrets never makes new ones.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from searchgate.audit.chain import KEY_FILE, AuditKey
from searchgate.audit.models import AuditEventRow
from searchgate.audit.service import AuditLog
from searchgate.audit.tags import Action
from searchgate.clock import Clock
from searchgate.config import Settings
from searchgate.db import Base, Database
from searchgate.keys.hashing import PEPPER_FILE, Pepper, previous_peppers
from searchgate.keys.models import ClientKeyRow
from searchgate.permissions import Actor
from searchgate.secretfile import load_or_create_secret, read_secret
from searchgate.secretstores import FieldStore, StoreError, StoreNotFound, open_store

KEY_PEPPER = "key_pepper"
AUDIT_KEY = "audit_key"
# Optional in the store: peppers being retired, one per line (docs/keys.md).
KEY_PEPPER_PREVIOUS = "key_pepper_previous"
DOCS = "docs/operations.md#several-hosts"


class ServerSecretRow(Base):
    """One fingerprint per server secret: what the database was built with."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ServerSecretsError(Exception):
    """This node may not start with its server secrets. ``message`` is one line that
    names the secret, both fingerprints and the fix; it never holds a secret."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Secret:
    field: str
    words: str
    variable: str
    filename: str
    fingerprint: Callable[[bytes], str]


SECRETS = (
    _Secret(
        KEY_PEPPER,
        "key pepper",
        "SEARCHGATE_KEY_PEPPER",
        PEPPER_FILE,
        lambda value: Pepper.from_secret(value).id,
    ),
    _Secret(
        AUDIT_KEY,
        "audit key",
        "SEARCHGATE_AUDIT_KEY",
        KEY_FILE,
        lambda value: AuditKey.from_secret(value).id,
    ),
)


@dataclass(frozen=True)
class ServerSecrets:
    pepper: Pepper
    previous_peppers: tuple[Pepper, ...]
    audit_key: AuditKey

    def fingerprints(self) -> dict[str, str]:
        return {KEY_PEPPER: self.pepper.id, AUDIT_KEY: self.audit_key.id}

    def values(self) -> dict[str, str]:
        """The secrets as a store holds them (``searchgate secrets push``)."""
        values = {
            KEY_PEPPER: self.pepper.secret.decode("utf-8"),
            AUDIT_KEY: self.audit_key.secret.decode("utf-8"),
        }
        if self.previous_peppers:
            values[KEY_PEPPER_PREVIOUS] = "\n".join(
                p.secret.decode("utf-8") for p in self.previous_peppers
            )
        return values

    def __repr__(self) -> str:
        return f"ServerSecrets({self.fingerprints()})"

    __str__ = __repr__


def recorded_fingerprints(db: Database) -> dict[str, str]:
    with db.read() as s:
        return _recorded(s)


def load_server_secrets(
    settings: Settings, db: Database, *, use_store: bool = True
) -> ServerSecrets:
    """This node's server secrets, checked against the database's record before
    anything is written. A secret that neither the node nor the database knows is
    made (a first start); one the database knows and the node lacks is refused.
    ``use_store=False``: ignore the server secrets store (``secrets push`` fills it)."""
    found: dict[str, tuple[bytes, str]] = {}
    wanted = [s for s in SECRETS if not getattr(settings, s.field)]
    stored = _read_store(settings) if use_store and wanted else None
    for secret in SECRETS:
        configured: str | None = getattr(settings, secret.field)
        if configured:
            found[secret.field] = (configured.encode("utf-8"), f"from {secret.variable}")
        elif stored is not None:
            location, values = stored
            if secret.field not in values:
                raise ServerSecretsError(
                    f"the server secrets store {location} has no {secret.field} field: put "
                    f"both there with `searchgate secrets push` from a node that runs ({DOCS})"
                )
            found[secret.field] = (values[secret.field].encode("utf-8"), f"from {location}")
        else:
            value = read_secret(settings.secrets_dir, secret.filename)
            if value is not None:
                found[secret.field] = (value, f"from {settings.secrets_dir / secret.filename}")
    retiring = list(settings.key_pepper_previous)
    if stored is not None and KEY_PEPPER_PREVIOUS in stored[1]:
        retiring += [v.strip() for v in stored[1][KEY_PEPPER_PREVIOUS].splitlines() if v.strip()]
    previous = tuple(previous_peppers(settings.secrets_dir, retiring))

    with db.read() as s:
        reference = _reference(s, found, previous)
    retiring_ids = {p.id for p in previous}
    problems = [
        problem
        for secret in SECRETS
        if (
            problem := _problem(
                secret, found.get(secret.field), reference.get(secret.field), retiring_ids
            )
        )
    ]
    if problems:
        raise ServerSecretsError(mismatch_message(problems, settings))
    for secret in SECRETS:
        if secret.field not in found:
            made = load_or_create_secret(settings.secrets_dir, secret.filename)
            found[secret.field] = (made, "made")
    return ServerSecrets(
        pepper=Pepper.from_secret(found[KEY_PEPPER][0]),
        previous_peppers=previous,
        audit_key=AuditKey.from_secret(found[AUDIT_KEY][0]),
    )


def record_server_secrets(
    db: Database, audit: AuditLog, secrets: ServerSecrets, clock: Clock
) -> None:
    """Records the fingerprints on a first start (and a pepper rotation's new one),
    with its event in the same transaction. Nodes starting at once are ordered by the
    change log's lock: the later one sees the earlier one's record."""
    want = secrets.fingerprints()
    if recorded_fingerprints(db) == want:
        return
    retiring = {p.id for p in secrets.previous_peppers}
    with audit.transaction() as s:
        rows = {r.name: r for r in s.scalars(select(ServerSecretRow))}
        if {n: r.fingerprint for n, r in rows.items()} == want:
            return
        now = clock()
        replaced: dict[str, str] = {}
        for secret in SECRETS:
            row = rows.get(secret.field)
            fingerprint = want[secret.field]
            if row is None:
                s.add(ServerSecretRow(name=secret.field, fingerprint=fingerprint, recorded_at=now))
            elif row.fingerprint != fingerprint:
                if secret.field != KEY_PEPPER or row.fingerprint not in retiring:
                    raise ServerSecretsError(
                        mismatch_message(
                            [_differs(secret, fingerprint, "on this node", row.fingerprint)],
                            None,
                        )
                    )
                replaced[f"previous_{secret.field}"] = row.fingerprint
                row.fingerprint = fingerprint
                row.recorded_at = now
        audit.record(
            s,
            Actor.system(f"node:{socket.gethostname()}"),
            Action.SERVER_SECRETS_RECORD,
            details={**want, **replaced},
        )


def _recorded(s: Session) -> dict[str, str]:
    return {r.name: r.fingerprint for r in s.scalars(select(ServerSecretRow))}


def _reference(
    s: Session, found: Mapping[str, tuple[bytes, str]], previous: tuple[Pepper, ...]
) -> dict[str, str]:
    """What each secret must be: the record, else (a database from before the record)
    what the newest change-log event was signed with and the peppers of live keys."""
    reference = _recorded(s)
    if AUDIT_KEY not in reference:
        last = s.scalar(select(AuditEventRow.key_id).order_by(AuditEventRow.seq.desc()).limit(1))
        if last is not None:
            reference[AUDIT_KEY] = last
    if KEY_PEPPER not in reference:
        used = set(
            s.scalars(
                select(ClientKeyRow.pepper_id)
                .where(ClientKeyRow.deleted_at.is_(None))
                .group_by(ClientKeyRow.pepper_id)
            )
        )
        have = found.get(KEY_PEPPER)
        known = {p.id for p in previous}
        if have is not None:
            known.add(Pepper.from_secret(have[0]).id)
        if used and not used & known:
            reference[KEY_PEPPER] = min(used)
    return reference


def _problem(
    secret: _Secret, have: tuple[bytes, str] | None, want: str | None, retiring: set[str]
) -> str | None:
    if want is None:
        return None
    if have is None:
        return f"{secret.words}: none on this node, {want} in the database"
    value, source = have
    fingerprint = secret.fingerprint(value)
    if fingerprint == want:
        return None
    if secret.field == KEY_PEPPER and want in retiring:
        # A pepper rotation: the database's pepper is this node's retiring one.
        return None
    return _differs(secret, fingerprint, f"on this node ({source})", want)


def _differs(secret: _Secret, have: str, where: str, want: str) -> str:
    return f"{secret.words} {have} {where}, {want} in the database"


def mismatch_message(problems: list[str], settings: Settings | None) -> str:
    differ = [s for s in SECRETS if any(p.startswith(s.words) for p in problems)]
    folder: Path | str = settings.secrets_dir if settings is not None else "secrets"
    files = " and ".join(s.filename for s in differ)
    variables = " and ".join(s.variable for s in differ)
    return (
        "this node's server secrets are not the ones the database was built with: "
        f"{'; '.join(problems)}; nothing was written. Fix: copy {files} from a running "
        f"node's secrets folder into {folder}, or set {variables} as on the other nodes, "
        "or have every node read them from the secret store "
        "(SEARCHGATE_SERVER_SECRETS_STORE_KIND and SEARCHGATE_SERVER_SECRETS_STORE_PATH; "
        f"`searchgate secrets push` on a running node fills it once); see {DOCS}"
    )


def _read_store(settings: Settings) -> tuple[str, dict[str, str]] | None:
    kind, path = settings.server_secrets_store_kind, settings.server_secrets_store_path
    if not kind and not path:
        return None
    if not kind or not path:
        raise ServerSecretsError(
            "set both SEARCHGATE_SERVER_SECRETS_STORE_KIND and "
            "SEARCHGATE_SERVER_SECRETS_STORE_PATH, or neither"
        )
    store = open_fields_store(kind, path)
    try:
        current = store.read_fields()
    except StoreNotFound:
        raise ServerSecretsError(
            f"the server secrets store {store.location} holds nothing yet: run `searchgate "
            f"secrets push --store {kind} --path {path}` once on a node that runs ({DOCS})"
        ) from None
    except StoreError as exc:
        raise ServerSecretsError(f"cannot read the server secrets: {exc.message}") from None
    return store.location, dict(current.values)


def open_fields_store(kind: str, path: str) -> FieldStore:
    try:
        store = open_store(kind, path)
    except StoreError as exc:
        raise ServerSecretsError(f"the server secrets store: {exc.message}") from None
    if not isinstance(store, FieldStore):
        raise ServerSecretsError(
            f"a {store.kind} store cannot hold the server secrets: use vault, aws or file, "
            "or set SEARCHGATE_KEY_PEPPER and SEARCHGATE_AUDIT_KEY"
        )
    return store
