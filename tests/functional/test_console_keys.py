"""Key Management in the console: the list with restrictions, use and traffic; creating
keys (the secret in one response only), new primary, roll, disable, enable, make
primary, and deletion with a typed name, the quiet period and re-authentication."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from searchgate.audit import AuditFilter
from searchgate.catalog.settings import CollectionSettings
from searchgate.config import Settings
from searchgate.console.key_chart import OTHERS, PALETTE, build_chart
from searchgate.keys.scopes import ALL_SCOPES, SCOPE_HELP, Scope
from searchgate.keys.usage import DayCount
from searchgate.permissions import Actor
from searchgate.runtime import Runtime, build_services
from searchgate_client.keyformat import KEY_PATTERN
from tests.conftest import PASSWORD, ManualClock, make_user
from tests.functional.console_support import (
    enrol_mfa,
    error_for,
    outlast_reauth_window,
    post,
    sign_in,
    signed_in_admin,
    token_of,
    use_https,
)
from tests.keyhelp import SYSTEM

_SECRET = re.compile(r'data-testid="key-secret" type="text" value="([^"]+)"')
NEW = "/admin/keys/new"
FORM = {
    "name": "storefront-web",
    "scope": ["search", "sayt"],
    "collection": ["shop", "outlet"],
    "ip_ranges": "203.0.113.0/24\n2001:db8::/32",
    "origins": "https://shop.example",
    "rate_limit": "600",
    "expires_at": "2099-01-31T00:00",
}


def make_collections(rt: Runtime, *names: str) -> None:
    for name in names:
        rt.services.catalog.put_settings(name, CollectionSettings())


def secret_in(page: str) -> str:
    match = _SECRET.search(page)
    assert match, "the page shows no secret"
    return match.group(1)


def use(client: TestClient, rt: Runtime, secret: str, *systems: str) -> None:
    """One data-plane request per system, written to the database at once."""
    for system in systems:
        r = client.get(
            "/api/v1/keys/self",
            headers={"Authorization": f"Bearer {secret}", "X-Searchgate-System": system},
        )
        assert r.status_code == 200, r.text
    rt.usage.flush()


def card(page: str, name: str) -> str:
    """The HTML of one key's card on the list page."""
    start = page.index(f'data-key-name="{name}"')
    end = page.find('data-testid="key"', start + 1)
    return page[start : end if end != -1 else len(page)]


def later_pages(client: TestClient, key_id: str) -> list[Any]:
    return [client.get(p) for p in ("/admin/keys", f"/admin/keys/{key_id}", "/admin/audit", "/")]


def test_the_form_preselects_no_scope_and_names_each_bad_field(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    make_collections(rt, "shop", "outlet")
    page = client.get(NEW).text
    assert 'name="scope"' in page and " checked" not in page.split('data-testid="scopes"')[1]
    for help_text in SCOPE_HELP.values():
        assert help_text in page
    cases = [
        ({**FORM, "scope": []}, "scopes", "Choose at least one scope"),
        ({**FORM, "scope": ["search", "admin"]}, "scopes", "Unknown scope 'admin'"),
        ({**FORM, "name": ""}, "name", "1 to 128 characters"),
        ({**FORM, "ip_ranges": "10.0.0.0/33"}, "ip_ranges", "CIDR"),
        ({**FORM, "origins": "shop.example"}, "origins", "https://shop.example"),
        ({**FORM, "rate_limit": "fast"}, "rate_limit", "whole number"),
        ({**FORM, "rate_limit": "²"}, "rate_limit", "whole number"),
        ({**FORM, "rate_limit": "0"}, "rate_limit", "between 1 and"),
        ({**FORM, "expires_at": "2001-01-01T00:00"}, "expires_at", "in the future"),
        ({**FORM, "expires_at": "soon"}, "expires_at", "ISO 8601"),
        ({**FORM, "collection": ["shop", "../etc"]}, "collections", "not a collection name"),
        ({**FORM, "collection": ["shop", "defualt"]}, "collections", "No collection is named"),
    ]
    for form, field, message in cases:
        r = post(client, "/admin/keys", form, page=NEW)
        assert r.status_code == 400, (form, r.status_code)
        assert message in error_for(r.text, field), (field, error_for(r.text, field))
        assert 'value="storefront-web"' in r.text or form["name"] == ""  # typed values stay
        assert "sgk_" not in r.text
    assert rt.services.keys.list() == []
    assert post(client, "/admin/keys", FORM, page=NEW).status_code == 200
    r = post(client, "/admin/keys", FORM, page=NEW)
    assert r.status_code == 400 and "exists already" in error_for(r.text, "name")


def test_a_new_key_is_shown_once_and_never_again(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    make_collections(rt, "shop", "outlet")
    r = post(client, "/admin/keys", FORM, page=NEW)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert "it will never be shown again" in r.text
    assert '<script src="/static/js/keys.js" defer>' in r.text
    secret = secret_in(r.text)
    assert KEY_PATTERN.match(secret)
    assert secret not in r.headers.get("set-cookie", "")
    assert client.get("/static/js/keys.js").status_code == 200
    info = rt.services.keys.verify(secret)
    assert info is not None and info.name == "storefront-web" and info.primary
    assert info.scopes == {Scope.SEARCH, Scope.SAYT}
    assert info.restrictions.to_dict() == {
        "collections": ["outlet", "shop"],
        "expiresAt": "2099-01-31T00:00:00+00:00",
        "ipRanges": ["203.0.113.0/24", "2001:db8::/32"],
        "origins": ["https://shop.example"],
        "rateLimitPerMinute": 600,
    }
    for later in later_pages(client, info.id):
        assert later.status_code == 200
        assert secret not in later.text and secret not in str(later.headers)
    listed = card(client.get("/admin/keys").text, "storefront-web")
    for shown in (
        f"{info.display_prefix}…",
        "<code>sayt</code><code>search</code>",
        "outlet, shop",
        "<code>203.0.113.0/24</code>",
        "<code>https://shop.example</code>",
        "600 requests per minute",
        "2099-01-31 00:00 UTC",
        'data-testid="key-age">0 days<',
        'data-testid="key-primary"',
        'data-testid="key-state">active<',
        "never used",
        "No requests in the last 14 days",
    ):
        assert shown in listed, shown
    events = rt.services.audit.query(SYSTEM, AuditFilter(action="admin:keys:create")).events
    assert [(e.target, e.actor_email) for e in events] == [(info.id, "ada@example.com")]


def test_new_primary_keeps_the_old_key_working_and_a_resent_form_makes_nothing(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    old = rt.services.keys.create(SYSTEM, "shop", frozenset({Scope.SEARCH}))
    confirm = client.get("/admin/keys/new-primary").text
    assert "shop</strong> keeps working: nothing expires it" in confirm
    token = token_of(confirm)
    r = post(client, "/admin/keys/new-primary", {"replaces": old.info.id}, token=token)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = secret_in(r.text)
    assert "shop</strong> keeps working and is marked to retire" in r.text
    new = rt.services.keys.verify(secret)
    assert new is not None and new.primary and new.scopes == {Scope.SEARCH}
    old_now = rt.services.keys.get(old.info.id)
    assert old_now.usable(datetime.now(UTC)) and not old_now.primary and old_now.retiring_since
    # The same form sent again (a reload of the answer, a double click) creates nothing.
    again = post(client, "/admin/keys/new-primary", {"replaces": old.info.id}, token=token)
    assert again.status_code == 409 and "No new key was made" in again.text
    assert "sgk_" not in again.text
    assert len(rt.services.keys.list()) == 2
    listed = client.get("/admin/keys").text
    assert 'data-testid="key-retiring"' in card(listed, "shop")
    assert 'data-testid="key-primary"' in card(listed, new.name)
    for later in later_pages(client, new.id):
        assert secret not in later.text


def test_roll_makes_a_copy_and_schedules_the_old_key_s_expiry(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    old = rt.services.keys.create(SYSTEM, "feed", frozenset({Scope.RECORDS_WRITE})).info
    page = f"/admin/keys/{old.id}"
    r = post(client, f"{page}/roll", {"hours": "721", "seen": "current"}, page=page)
    assert r.status_code == 400 and "0 to 720" in error_for(r.text, "hours")
    r = post(client, f"{page}/roll", {"hours": "²", "seen": "current"}, page=page)
    assert r.status_code == 400 and "0 to 720" in error_for(r.text, "hours")
    r = post(
        client, f"{page}/roll", {"hours": "2", "roll_name": "feed", "seen": "current"}, page=page
    )
    assert r.status_code == 400 and "exists already" in error_for(r.text, "roll_name")
    before = datetime.now(UTC)
    r = post(client, f"{page}/roll", {"hours": "2", "seen": "current"}, page=page)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = secret_in(r.text)
    assert "keeps working until" in r.text
    rolled = rt.services.keys.get(old.id)
    assert rolled.restrictions.expires_at is not None
    assert before + timedelta(hours=2) <= rolled.restrictions.expires_at
    assert rolled.restrictions.expires_at <= datetime.now(UTC) + timedelta(hours=2)
    new = rt.services.keys.verify(secret)
    assert new is not None and new.primary and new.scopes == {Scope.RECORDS_WRITE}
    # The roll form saw the old key before it was retiring: sent again, it is stale.
    r = post(client, f"{page}/roll", {"hours": "2", "seen": "current"}, page=page)
    assert r.status_code == 409 and len(rt.services.keys.list()) == 2
    assert secret not in client.get(page).text


def test_disable_enable_and_make_primary(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    first = rt.services.keys.create(SYSTEM, "first", ALL_SCOPES).info
    other = rt.services.keys.create(SYSTEM, "other", frozenset({Scope.SAYT})).info
    page = f"/admin/keys/{other.id}"
    r = post(client, f"{page}/disable", {"reason": "moving to v2"}, page=page)
    assert r.status_code == 303 and r.headers["location"] == page
    shown = client.get(page).text
    assert "is disabled" in shown and 'data-testid="key-state">disabled<' in shown
    assert "moving to v2" in shown and "Enable key" in shown
    assert rt.services.keys.get(other.id).state(datetime.now(UTC)) == "disabled"
    # A disabled key is not offered as primary; enabled again, it is.
    assert f'action="{page}/primary"' not in shown
    post(client, f"{page}/enable", page=page)
    assert rt.services.keys.get(other.id).usable(datetime.now(UTC))
    r = post(client, f"{page}/primary", page=page)
    assert r.status_code == 303
    assert rt.services.keys.get(other.id).primary
    assert rt.services.keys.get(first.id).retiring_since is not None
    actions = [
        e.action
        for e in rt.services.audit.query(SYSTEM, AuditFilter(target=other.id)).events
        if e.actor_email == "ada@example.com"
    ]
    assert actions == ["admin:keys:update", "admin:keys:enable", "admin:keys:disable"]


def test_delete_needs_the_name_typed_and_force_only_when_in_use(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    keys = rt.services.keys
    primary = keys.create(SYSTEM, "primary", ALL_SCOPES).info
    idle = keys.create(SYSTEM, "idle", frozenset({Scope.SEARCH}))
    busy = keys.create(SYSTEM, "busy", frozenset({Scope.SEARCH}))
    # The primary key while others exist: the page explains, and offers no form.
    blocked = client.get(f"/admin/keys/{primary.id}/delete").text
    assert 'data-testid="delete-blocked"' in blocked and "confirm_name" not in blocked

    page = f"/admin/keys/{idle.info.id}/delete"
    shown = client.get(page).text
    assert "cannot be undone" in shown and 'data-testid="not-in-use"' in shown
    assert 'name="force"' not in shown and "never used" in shown
    r = post(client, page, {"confirm_name": "Idle"})
    assert r.status_code == 400 and "Type the key's name exactly" in error_for(
        r.text, "confirm_name"
    )
    assert keys.verify(idle.secret) is not None and not keys.get(idle.info.id).deleted
    r = post(client, page, {"confirm_name": "idle"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/keys"
    assert keys.get(idle.info.id, include_deleted=True).deleted
    keys.forget_cache()
    gone = keys.verify(idle.secret)
    assert gone is not None and gone.state(datetime.now(UTC)) == "deleted"

    use(client, rt, busy.secret, "web-1", "feed-job")
    page = f"/admin/keys/{busy.info.id}/delete"
    shown = client.get(page).text
    assert 'data-testid="in-use"' in shown and 'name="force"' in shown
    assert set(re.findall(r'in-use-system">([^<]+)<', shown)) == {"web-1", "feed-job"}
    assert "testclient" in shown  # the last IP
    r = post(client, page, {"confirm_name": "busy"})
    assert r.status_code == 400 and "was used within the last 15 min" in error_for(r.text, "force")
    assert not keys.get(busy.info.id).deleted
    r = post(client, page, {"confirm_name": "busy", "force": "yes"})
    assert r.status_code == 303
    listed = client.get("/admin/keys").text
    tombstones = listed.split('data-testid="tombstones"')[1]
    assert tombstones.count('data-testid="tombstone"') == 2
    assert "busy" in tombstones and "idle" in tombstones
    assert 'data-key-name="busy"' not in listed  # no longer among the live keys
    detail = client.get(f"/admin/keys/{busy.info.id}").text
    assert 'data-testid="tombstone-notice"' in detail and 'data-testid="key-actions"' not in detail
    event = rt.services.audit.query(SYSTEM, AuditFilter(action="admin:keys:delete")).events[0]
    assert event.target == busy.info.id and event.details["forced"] is True


@pytest.mark.manual_clock
class TestReauthentication:
    """A session that has not proved its password within the window (60 ms here)."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"reauth_window_minutes": 0.001})

    def test_deleting_sends_the_person_to_confirm_first(
        self, client: TestClient, rt: Runtime
    ) -> None:
        use_https(client)
        signed_in_admin(client, rt)
        outlast_reauth_window(rt)
        rt.services.keys.create(SYSTEM, "primary", ALL_SCOPES)
        victim = rt.services.keys.create(SYSTEM, "old", frozenset({Scope.SEARCH})).info
        page = f"/admin/keys/{victim.id}/delete"
        to_reauth = f"/reauth?next={page}"
        r = client.get(page, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == to_reauth
        token = token_of(client.get("/admin/keys").text)
        r = post(client, page, {"confirm_name": "old"}, token=token)
        assert r.status_code == 303 and r.headers["location"] == to_reauth
        assert "confirm it is you" in client.get(to_reauth).text
        r = post(client, page, {"confirm_name": "old", "reauth": "a wrong password!"}, token=token)
        assert r.status_code == 400 and "not correct" in error_for(r.text, "reauth")
        assert not rt.services.keys.get(victim.id).deleted
        # The confirmation page itself asks for the password and passes it on.
        r = post(client, "/reauth", {"reauth": PASSWORD, "next": page}, token=token)
        assert r.status_code == 303 and r.headers["location"] == page
        r = post(client, page, {"confirm_name": "old", "reauth": PASSWORD}, token=token)
        assert r.status_code == 303 and r.headers["location"] == "/admin/keys"
        assert rt.services.keys.get(victim.id, include_deleted=True).deleted


def test_forms_need_the_csrf_token_and_this_site_as_origin(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    old = rt.services.keys.create(SYSTEM, "shop", ALL_SCOPES).info
    token = token_of(client.get("/admin/keys").text)
    for path, form in (
        ("/admin/keys", {**FORM}),
        ("/admin/keys/new-primary", {"replaces": old.id}),
        (f"/admin/keys/{old.id}/disable", {}),
        (f"/admin/keys/{old.id}/delete", {"confirm_name": "shop"}),
    ):
        r = post(client, path, form, token="0" * 43)
        assert r.status_code == 403 and "security token" in r.text, path
        r = post(client, path, form, token=token, origin="https://evil.example")
        assert r.status_code == 403 and "did not come from a page" in r.text, path
    assert [k.id for k in rt.services.keys.list()] == [old.id]
    assert rt.services.keys.get(old.id).usable(datetime.now(UTC))


def test_only_key_readers_see_keys_and_only_managers_change_them(
    client: TestClient, rt: Runtime
) -> None:
    use_https(client)
    key = rt.services.keys.create(SYSTEM, "shop", ALL_SCOPES).info
    pages = ("/admin/keys", NEW, f"/admin/keys/{key.id}", f"/admin/keys/{key.id}/delete")
    for role in ("viewer", "merchandiser"):
        client.cookies.clear()
        make_user(rt.services, f"{role}@example.com", role)
        sign_in(client, f"{role}@example.com")
        for path in pages:
            r = client.get(path)
            assert r.status_code == 403 and "admin:keys:" in r.text, (role, path)
        r = post(client, f"/admin/keys/{key.id}/disable", page="/")
        assert r.status_code == 403 and "admin:keys:manage" in r.text
        assert "/admin/keys" not in client.get("/").text
    assert rt.services.keys.get(key.id).usable(datetime.now(UTC))
    # A reader sees everything except the buttons, and may not press them anyway.
    rt.services.roles.create(Actor.system(), "Key auditor", ["admin:keys:read"])
    make_user(rt.services, "kim@example.com", "Key auditor")
    client.cookies.clear()
    # Any admin:* permission makes MFA enrolment due at the first sign-in.
    assert sign_in(client, "kim@example.com").headers["location"] == "/account/mfa"
    enrol_mfa(client)
    assert 'href="/admin/keys"' in client.get("/").text
    listed = client.get("/admin/keys")
    assert listed.status_code == 200 and 'data-key-name="shop"' in listed.text
    assert (
        "Create new primary key" not in listed.text and 'href="/admin/keys/new"' not in listed.text
    )
    detail = client.get(f"/admin/keys/{key.id}").text
    assert 'data-testid="key-actions"' not in detail and "Delete…" not in detail
    assert client.get(NEW).status_code == 403
    r = post(client, "/admin/keys/new-primary", {"replaces": key.id}, page="/admin/keys")
    assert r.status_code == 403 and len(rt.services.keys.list()) == 1


def test_the_traffic_chart_shows_each_system(client: TestClient, rt: Runtime) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    created = rt.services.keys.create(SYSTEM, "shop", frozenset({Scope.SEARCH}))
    use(client, rt, created.secret, "web-1", "web-1", "web-1", "feed-job")
    listed = card(client.get("/admin/keys").text, "shop")
    assert re.search(r'data-system="web-1">.*?web-1 <span class="muted">3<', listed)
    assert re.search(r'data-system="feed-job">.*?feed-job <span class="muted">1<', listed)
    assert "4 requests in all, at most 4 in a day. web-1: 3. feed-job: 1." in listed
    today = datetime.now(UTC).date().isoformat()
    assert f'<td class="nowrap">{today}</td><td class="num">3</td><td class="num">1</td>' in (
        listed
    )
    assert f"{today}, web-1: 3" in listed and 'role="img"' in listed
    assert 'data-testid="key-last-use"' in listed and "testclient" in listed
    detail = client.get(f"/admin/keys/{created.info.id}").text
    rows = re.findall(r'data-testid="key-system"><td><strong>([^<]+)<', detail)
    assert sorted(rows) == ["feed-job", "web-1"]


def test_the_chart_stacks_the_busiest_systems_and_groups_the_rest() -> None:
    today = datetime(2026, 5, 20, tzinfo=UTC).date()
    counts = [DayCount(today, f"s{i}", 10 - i) for i in range(7)]
    counts.append(DayCount(today - timedelta(days=13), "s0", 20))
    counts.append(DayCount(today - timedelta(days=14), "s0", 99))  # outside the window
    chart = build_chart(counts, today)
    assert len(chart.bars) == 14 and chart.bars[-1].day == today
    assert [s for s, _c, _n in chart.legend] == ["s0", "s1", "s2", "s3", OTHERS]
    assert [c for _s, c, _n in chart.legend][:4] == list(PALETTE[:4])
    last = chart.bars[-1]
    assert last.total == sum(range(4, 11)) == chart.peak
    assert chart.count(last, OTHERS) == 6 + 5 + 4
    # Stacked from the bottom: each segment ends where the next begins.
    bottoms = [round(s.y + s.height, 2) for s in last.segments]
    assert bottoms[0] == chart.height
    assert all(abs(b - s.y) < 0.02 for b, s in zip(bottoms[1:], last.segments, strict=False))
    assert abs(last.segments[-1].y) < 0.1  # the busiest day fills the height
    assert chart.bars[0].total == 20 and chart.total == 20 + 49
    assert not chart.bars[5].segments


def test_the_dashboard_flags_old_keys_and_leaks(
    client: TestClient, rt: Runtime, settings: Settings
) -> None:
    use_https(client)
    signed_in_admin(client, rt)
    now = datetime.now(UTC)
    max_age = settings.key_max_age_days
    for name, days in (("ancient", max_age + 10), ("ageing", max_age - 10), ("fresh", 10)):
        past = build_services(
            settings, migrate=False, clock=ManualClock(now - timedelta(days=days))
        )
        past.keys.create(SYSTEM, name, ALL_SCOPES)
        past.db.dispose()
    leaked = rt.services.keys.create(SYSTEM, "leaky", frozenset({Scope.SEARCH}))
    r = client.post("/api/v1/keys/revoke", json={"key": leaked.secret})
    assert r.status_code == 200, r.text
    dashboard = client.get("/").text
    ancient, ageing = (rt.services.keys.get(n) for n in ("ancient", "ageing"))
    old = re.findall(r'data-testid="notice-key-old">(.*?)</div>', dashboard)
    assert len(old) == 1 and f"is {max_age + 10} days old" in old[0] and "rotate it" in old[0]
    assert f'href="/admin/keys/{ancient.id}"' in old[0]
    soon = re.findall(r'data-testid="notice-key-ageing">(.*?)</div>', dashboard)
    assert len(soon) == 1 and "ageing" in soon[0] and "in 10 days" in soon[0]
    assert f'href="/admin/keys/{ageing.id}"' in soon[0]
    leak = re.findall(r'data-testid="notice-key-leak">(.*?)</div>', dashboard)
    assert len(leak) == 1 and "leaky" in leak[0]
    assert f'href="/admin/keys/{leaked.info.id}"' in leak[0]
    assert leaked.secret not in dashboard
    detail = client.get(f"/admin/keys/{leaked.info.id}").text
    assert 'data-testid="leak-notice"' in detail
    # People who may not see keys are not told about them.
    make_user(rt.services, "vic@example.com", "viewer")
    client.cookies.clear()
    sign_in(client, "vic@example.com")
    assert "notice-key" not in client.get("/").text
