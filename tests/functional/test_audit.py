"""The change log: one event per change in the same transaction, the MAC chain and
``searchgate audit verify`` against edits made directly in SQL, filters, paging and
a CSV export that user input cannot forge lines in."""

from __future__ import annotations

import csv
import io
import json
import stat
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from searchgate.audit import AuditFilter, AuditLog, csv_cell, encode_field
from searchgate.audit.chain import AuditKey
from searchgate.cli.main import app
from searchgate.config import Settings
from searchgate.errors import Conflict, Forbidden
from searchgate.permissions import Actor, CredentialKind
from searchgate.runtime import Services
from searchgate.server_secrets import ServerSecretsError
from tests.conftest import ManualClock, make_user

SYSTEM = Actor.system()


# The first event of every log: the start-up recorded the server secrets' fingerprints.
STARTUP_EVENTS = 1


def seed(services: Services, n: int = 6) -> None:
    for i in range(n):
        make_user(services, f"user{i}@example.com")


def sql(services: Services, statement: str) -> None:
    with services.db.write_engine.begin() as conn:
        conn.execute(text(statement))


def problems(services: Services) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in services.audit.verify().problems]


def test_each_change_records_one_chained_event(accounts: Services) -> None:
    seed(accounts, 3)
    report = accounts.audit.verify()
    assert report.ok and report.checked == 4 and report.last_seq == 4
    events = accounts.audit.query(SYSTEM).events
    assert [e.seq for e in events] == [4, 3, 2, 1]
    assert events[-1].action == "server:secrets:record"
    e = events[-2]
    assert (e.action, e.target, e.outcome, e.actor_kind) == (
        "admin:users:create",
        "user0@example.com",
        "success",
        "system",
    )
    assert e.occurred_at.tzinfo is not None and e.details["role"] == "viewer"
    # A change that fails leaves no event and no gap.
    with pytest.raises(Conflict):
        make_user(accounts, "user0@example.com")
    assert accounts.audit.verify().checked == 3 + STARTUP_EVENTS


def test_verify_finds_an_edited_row(services: Services) -> None:
    seed(services)
    sql(services, "UPDATE audit_events SET target = 'someone-else@example.com' WHERE seq = 3")
    assert problems(services) == [(3, "edited")]


def test_verify_finds_a_deleted_row(services: Services) -> None:
    seed(services)
    sql(services, "DELETE FROM audit_events WHERE seq = 4")
    found = services.audit.verify().problems
    assert [(p.seq, p.kind) for p in found] == [(4, "missing")]
    assert "event 4 missing" in found[0].message


def test_verify_finds_a_swapped_pair(services: Services) -> None:
    seed(services)
    sql(services, "UPDATE audit_events SET seq = -1 WHERE seq = 2")
    sql(services, "UPDATE audit_events SET seq = 2 WHERE seq = 5")
    sql(services, "UPDATE audit_events SET seq = 5 WHERE seq = -1")
    found = problems(services)
    assert {seq for seq, _ in found} == {2, 3, 5, 6}
    assert (2, "edited") in found and (5, "edited") in found


def test_verify_finds_a_removed_tail_and_with_an_anchor_a_rewritten_head(
    services: Services,
) -> None:
    seed(services)
    anchor = services.audit.verify().anchor
    sql(services, "DELETE FROM audit_events WHERE seq = 7")
    assert problems(services) == [(7, "head")]
    # An attacker who also rewinds the head escapes the head check, not the anchor.
    with services.db.write_engine.begin() as conn:
        mac = conn.execute(text("SELECT mac FROM audit_events WHERE seq = 6")).scalar_one()
        conn.execute(text("UPDATE audit_head SET seq = 6, mac = :m"), {"m": mac})
    assert services.audit.verify().ok
    report = services.audit.verify(anchor=anchor)
    assert [(p.seq, p.kind) for p in report.problems] == [(7, "anchor")]


def test_a_different_key_cannot_verify_or_forge(services: Services) -> None:
    seed(services, 2)
    other = AuditLog(services.db, AuditKey.from_secret(b"not the server's key"))
    assert [p.kind for p in other.verify().problems] == ["foreign-key"] * 3
    # Events appended with another key are flagged by the real one.
    other.record_now(SYSTEM, "admin:users:create", target="forged@example.com")
    assert problems(services) == [(4, "foreign-key")]


def test_the_key_is_not_in_the_database(services: Services, settings: Settings) -> None:
    seed(services, 2)
    key_file = settings.secrets_dir / "audit-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    with services.db.engine.connect() as conn:
        dumped = repr(conn.execute(text("SELECT * FROM audit_events")).all())
        dumped += repr(conn.execute(text("SELECT * FROM audit_head")).all())
    assert key not in dumped and services.audit.key.secret.decode() == key


def test_details_never_hold_a_secret(services: Services) -> None:
    for details in (
        {"password": "x"},
        {"nested": {"totp_code": "123456"}},
        {"note": "sgk_" + "A" * 38},
        {"list": ["sgp_" + "b" * 38]},
    ):
        with pytest.raises(ValueError):
            services.audit.record_now(SYSTEM, "admin:users:update", details=details)
    assert services.audit.verify().checked == STARTUP_EVENTS


def test_concurrent_writers_keep_one_unbroken_chain(services: Services) -> None:
    def write(n: int) -> None:
        for i in range(15):
            services.audit.record_now(SYSTEM, "admin:users:update", target=f"t{n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = services.audit.verify()
    assert report.ok and report.checked == report.last_seq == 60 + STARTUP_EVENTS


def test_query_filters_and_pages(accounts: Services, clock: ManualClock) -> None:
    start = clock.now
    seed(accounts, 5)
    clock.advance(hours=1)
    accounts.roles.create(SYSTEM, "auditors", ["admin:audit:read"])
    accounts.roles.update(SYSTEM, "auditors", description="reads the log")
    page = accounts.audit.query(SYSTEM, limit=3)
    assert [e.seq for e in page.events] == [8, 7, 6] and page.next_before == 6
    page = accounts.audit.query(SYSTEM, limit=3, before=page.next_before)
    assert [e.seq for e in page.events] == [5, 4, 3] and page.next_before == 3
    page = accounts.audit.query(SYSTEM, limit=3, before=page.next_before)
    assert [e.seq for e in page.events] == [2, 1] and page.next_before is None
    roles = accounts.audit.query(SYSTEM, AuditFilter(action="admin:roles:*")).events
    assert [e.action for e in roles] == ["admin:roles:update", "admin:roles:create"]
    one = accounts.audit.query(SYSTEM, AuditFilter(target="user3@example.com")).events
    assert [e.target for e in one] == ["user3@example.com"]
    since = AuditFilter(since=start + timedelta(minutes=30))
    assert accounts.audit.count(SYSTEM, since) == 2
    until = AuditFilter(until=start + timedelta(minutes=30))
    assert accounts.audit.count(SYSTEM, until) == 5 + STARTUP_EVENTS
    assert accounts.audit.count(SYSTEM, AuditFilter(user="nobody@example.com")) == 0


def test_reading_the_log_needs_the_permission(accounts: Services) -> None:
    uid = make_user(accounts, "vic@example.com")
    viewer = Actor(kind=CredentialKind.SESSION, name="vic", user_id=uid, permissions=frozenset())
    with pytest.raises(Forbidden, match="admin:audit:read"):
        accounts.audit.query(viewer)
    denied = accounts.audit.query(SYSTEM, AuditFilter(outcome="denied")).events
    assert [(e.action, e.actor_user_id) for e in denied] == [("admin:audit:read", uid)]


def test_csv_export_cannot_be_forged_by_user_input(accounts: Services) -> None:
    evil = 'Eve\r\n2026-01-01,system,admin:users:delete,"root"\x1b[31m\u202e=cmd'
    accounts.users.create(SYSTEM, "eve@example.com", "correct horse battery", "viewer", "Eve")
    accounts.users.update(SYSTEM, "eve@example.com", display_name="Eve B")
    uid = accounts.users.get(SYSTEM, "eve@example.com").id
    actor = Actor(kind=CredentialKind.SESSION, name=evil, user_id=uid, ip="1.2.3.4\nx")
    accounts.audit.record_now(actor, "admin:users:update", target="=HYPERLINK(1)")
    body = "".join(accounts.audit.export_csv(SYSTEM))
    lines = body.split("\r\n")
    # header, the start-up's event, 3 events + the export
    assert lines[-1] == "" and len(lines) == 1 + STARTUP_EVENTS + 4 + 1
    assert "\n" not in body.replace("\r\n", "") and "\r" not in body.replace("\r\n", "")
    assert "\x1b" not in body and "\u202e" not in body
    rows = list(csv.DictReader(io.StringIO(body)))
    forged = rows[STARTUP_EVENTS + 2]
    assert forged["actor_name"] == encode_field(evil)
    assert forged["actor_name"].startswith("Eve\\r\\n2026") and "\\x1b[31m" in forged["actor_name"]
    assert forged["target"] == "'=HYPERLINK(1)" and forged["ip"] == "1.2.3.4\\nx"
    assert rows[STARTUP_EVENTS + 3]["action"] == "admin:audit:export"
    assert accounts.audit.verify().ok


def test_field_encoding_is_reversible_and_single_line() -> None:
    for raw, encoded in (
        ("plain", "plain"),
        ("a\\b", "a\\\\b"),
        ("line\nbreak\r", "line\\nbreak\\r"),
        ("\x00\x7f\x85", "\\x00\\x7f\\x85"),
        ("\u2028", "\\u2028"),
    ):
        assert encode_field(raw) == encoded
    assert encode_field(None) == ""
    assert csv_cell("-1+1") == "'-1+1" and csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("fine") == "fine"


runner = CliRunner()


def test_cli_audit_verify_exit_codes(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEARCHGATE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("SEARCHGATE_KEY_PEPPER", str(settings.key_pepper))
    seed(services, 4)
    args = ["audit", "verify", "--data-dir", str(settings.data_dir)]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.stderr
    assert f"{4 + STARTUP_EVENTS} events verified" in ok.stderr
    sql(services, "UPDATE audit_events SET details_json = '{}' WHERE seq = 2")
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert "event 2" in bad.stderr and "edited" in bad.stderr
    as_json = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert as_json["ok"] is False and as_json["problems"][0]["seq"] == 2
    # With another key the command refuses to start, naming the audit key (the
    # installed `searchgate` prints that one line and exits 78).
    monkeypatch.setenv("SEARCHGATE_AUDIT_KEY", "a different key")
    refused = runner.invoke(app, args)
    assert isinstance(refused.exception, ServerSecretsError)
    assert "audit key" in refused.exception.message
