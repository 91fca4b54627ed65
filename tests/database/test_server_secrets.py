"""The database remembers which server secrets it was built with: a node with other
ones refuses to start, writes nothing, and never makes new secrets of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from searchgate.audit.chain import AuditKey
from searchgate.audit.models import AuditEventRow
from searchgate.config import Settings
from searchgate.db import Database
from searchgate.keys.hashing import Pepper
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.runtime import build_services
from searchgate.server_secrets import ServerSecretRow, ServerSecretsError
from tests.keyhelp import SYSTEM

PEPPER = "first-pepper-" + "p" * 24
AUDIT = "first-audit-key-" + "a" * 24


def node(tmp_path: Path, name: str, database_url: str, **secrets: object) -> Settings:
    return Settings(
        data_dir=tmp_path / name,
        database_url=database_url,
        index_writer_heap_bytes=50_000_000,
        index_writer_threads=1,
        **secrets,  # type: ignore[arg-type]
    )


def recorded(database_url: str) -> dict[str, str]:
    db = Database(database_url)
    try:
        with db.read() as s:
            return {r.name: r.fingerprint for r in s.scalars(select(ServerSecretRow))}
    finally:
        db.dispose()


def event_count(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.read() as s:
            return int(s.scalar(select(func.count()).select_from(AuditEventRow)) or 0)
    finally:
        db.dispose()


def test_the_first_start_records_the_secrets_fingerprints_with_an_event(
    tmp_path: Path, database_url: str
) -> None:
    services = build_services(node(tmp_path, "a", database_url, key_pepper=PEPPER))
    try:
        audit_id = services.audit.key.id
        assert recorded(database_url) == {
            "key_pepper": Pepper.from_secret(PEPPER.encode()).id,
            "audit_key": audit_id,
        }
        # The audit key came from a new file; the fingerprints are not the secrets.
        audit_secret = (tmp_path / "a" / "secrets" / "audit-key").read_text().strip()
        assert AuditKey.from_secret(audit_secret.encode()).id == audit_id
        assert audit_secret not in str(recorded(database_url))
        report = services.audit.verify()
        assert report.ok, report.problems
        with services.db.read() as s:
            actions = list(s.scalars(select(AuditEventRow.action)))
        assert actions.count("server:secrets:record") == 1
    finally:
        services.db.dispose()
    # A second start with the same secrets records nothing more.
    before = event_count(database_url)
    again = build_services(node(tmp_path, "a", database_url, key_pepper=PEPPER))
    again.db.dispose()
    assert event_count(database_url) == before


def test_a_node_with_another_audit_key_refuses_and_writes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    first = build_services(node(tmp_path, "a", database_url, key_pepper=PEPPER, audit_key=AUDIT))
    first.db.dispose()
    before = event_count(database_url)
    other = AuditKey.from_secret(b"another-audit-key-" + b"b" * 24).id
    with pytest.raises(ServerSecretsError) as caught:
        build_services(
            node(
                tmp_path,
                "b",
                database_url,
                key_pepper=PEPPER,
                audit_key="another-audit-key-" + "b" * 24,
            )
        )
    message = caught.value.message
    assert "\n" not in message
    assert "audit key" in message and "key pepper" not in message.split(";")[0]
    assert other in message and AuditKey.from_secret(AUDIT.encode()).id in message
    assert "SEARCHGATE_AUDIT_KEY" in message and "searchgate secrets push" in message
    assert AUDIT not in message and PEPPER not in message
    assert event_count(database_url) == before
    assert list((tmp_path / "b" / "secrets").glob("*")) == []


def test_a_node_with_no_secrets_joining_refuses_instead_of_making_new_ones(
    tmp_path: Path, database_url: str
) -> None:
    first = build_services(node(tmp_path, "a", database_url))
    first.db.dispose()
    before = event_count(database_url)
    with pytest.raises(ServerSecretsError) as caught:
        build_services(node(tmp_path, "b", database_url))
    message = caught.value.message
    assert "key pepper" in message and "audit key" in message
    assert "none on this node" in message
    assert list((tmp_path / "b" / "secrets").glob("*")) == []
    assert event_count(database_url) == before


def test_a_node_with_the_secrets_folder_copied_accepts_the_first_node_s_keys(
    tmp_path: Path, database_url: str
) -> None:
    first = build_services(node(tmp_path, "a", database_url))
    secret = first.keys.create(SYSTEM, "storefront", ALL_SCOPES).secret
    first.db.dispose()
    shutil.copytree(tmp_path / "a" / "secrets", tmp_path / "b" / "secrets")
    second = build_services(node(tmp_path, "b", database_url))
    try:
        assert second.keys.verify(secret) is not None
        second.users.create(SYSTEM, "b@example.com", "a long enough password", "admin")
        assert second.audit.verify().ok
    finally:
        second.db.dispose()


def test_secrets_set_in_the_environment_match_the_copied_files(
    tmp_path: Path, database_url: str
) -> None:
    first = build_services(node(tmp_path, "a", database_url))
    first.db.dispose()
    files = tmp_path / "a" / "secrets"
    second = build_services(
        node(
            tmp_path,
            "b",
            database_url,
            key_pepper=(files / "key-pepper").read_text().strip(),
            audit_key=(files / "audit-key").read_text().strip(),
        )
    )
    second.db.dispose()
    assert list((tmp_path / "b" / "secrets").glob("*")) == []


def test_a_pepper_rotation_moves_the_recorded_fingerprint(
    tmp_path: Path, database_url: str
) -> None:
    new_pepper = "second-pepper-" + "q" * 24
    first = build_services(node(tmp_path, "a", database_url, key_pepper=PEPPER, audit_key=AUDIT))
    first.db.dispose()
    rotated = build_services(
        node(
            tmp_path,
            "a",
            database_url,
            key_pepper=new_pepper,
            key_pepper_previous=[PEPPER],
            audit_key=AUDIT,
        )
    )
    try:
        assert rotated.audit.verify().ok
    finally:
        rotated.db.dispose()
    assert recorded(database_url)["key_pepper"] == Pepper.from_secret(new_pepper.encode()).id
    # A node still on the old pepper alone is now the odd one out.
    with pytest.raises(ServerSecretsError, match="key pepper"):
        build_services(node(tmp_path, "b", database_url, key_pepper=PEPPER, audit_key=AUDIT))


def test_a_database_from_before_the_record_is_checked_against_its_change_log(
    tmp_path: Path, database_url: str
) -> None:
    """A deployment upgraded to this version has events but no record yet: a node
    whose audit key did not sign them must not become the reference."""
    first = build_services(node(tmp_path, "a", database_url, key_pepper=PEPPER, audit_key=AUDIT))
    first.users.create(SYSTEM, "a@example.com", "a long enough password", "admin")
    with first.db.write() as s:
        s.execute(ServerSecretRow.__table__.delete())
    first.db.dispose()
    with pytest.raises(ServerSecretsError, match="audit key"):
        build_services(node(tmp_path, "b", database_url, key_pepper=PEPPER))
    assert list((tmp_path / "b" / "secrets").glob("*")) == []
    assert recorded(database_url) == {}
