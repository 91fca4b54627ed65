"""The Command Center's merchandising pages, in-process: the draft and its objects,
the structured rule form, publishing, history with diffs, rollback, live vs draft, and
who may do what."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from searchgate.audit import AuditFilter
from searchgate.audit.tags import Action
from searchgate.demo import demo_settings, generate
from searchgate.merchandising.document import Rule, SynonymSet
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from tests.conftest import load, make_user
from tests.functional.console_support import (
    error_for,
    post,
    sign_in,
    signed_in_admin,
    token_of,
    use_https,
)

AREA = "Production"
BASE = f"/areas/{AREA}/merchandising"
SYSTEM = Actor.system()


def _as(client: TestClient, rt: Runtime, role: str, email: str | None = None) -> str:
    """Signs ``client`` in with a new person of ``role``; returns a CSRF token."""
    use_https(client)
    email = email or f"{role}@example.com"
    if role == "admin":
        signed_in_admin(client, rt, email)
    else:
        make_user(rt.services, email, role)
        sign_in(client, email)
    return token_of(client.get(BASE).text)


def _send(client: TestClient, path: str, data: dict[str, Any], token: str) -> Any:
    return post(client, path, data, token=token)


def _draft(rt: Runtime) -> Any:
    return rt.services.merchandising.draft(SYSTEM, AREA)


def _revision(rt: Runtime) -> str:
    return str(_draft(rt).revision)


SYNONYM = {"name": "tv", "kind": "two-way", "terms": "tv, television\nflat screen"}
RULE: dict[str, Any] = {
    "name": "Summer TV",
    "priority": "10",
    "enabled": "1",
    "active_from": "2026-06-01T00:00",
    "active_to": "2026-09-01T00:00",
    "trigger_type": ["queryEquals", "customUrlParam", "navigationSelected"],
    "trigger_key": ["", "device", "brand"],
    "trigger_value": ["tv", "mobile", "Samsung"],
    "pin_id": ["SKU0000003", "SKU0000001", ""],
    "pin_position": ["1", "2", ""],
    "hide": "SKU0000002\n",
    "bias_name": ["brand", ""],
    "bias_content": ["Samsung", ""],
    "bias_strength": ["Strong_Increase", "Weak_Decrease"],
    "filter": "price:[0 TO 500]",
    "nav_mode": "only",
    "navigations": "brand\nprice",
    "redirect": "",
    "template_name": "summer",
    "zone_name": ["banner", "picks"],
    "zone_type": ["Rich_Content", "Record"],
    "zone_content": ["<b>Summer</b>", "SKU0000004, SKU0000005"],
}


def test_a_merchandiser_builds_a_draft_with_a_synonym_set_and_a_structured_rule(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    load(client, auth, "default", list(generate(20)), demo_settings())
    token = _as(client, rt, "merchandiser")
    page = client.get(BASE).text
    assert 'data-testid="unpublished">same as live' in page
    assert "nothing published yet" in page

    r = _send(client, f"{BASE}/synonyms/save", {**SYNONYM, "revision": "0"}, token)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{BASE}#synonyms"
    r = _send(client, f"{BASE}/rules/save", {**RULE, "revision": _revision(rt)}, token)
    assert r.status_code == 303, r.text

    draft = _draft(rt)
    assert draft.revision == 2 and draft.changed and draft.updated_by
    assert draft.document.synonyms == [
        SynonymSet(name="tv", terms=["tv", "television", "flat screen"])
    ]
    rule = draft.document.rules[0]
    assert rule == Rule.model_validate(
        {
            "name": "Summer TV",
            "priority": 10,
            "activeFrom": "2026-06-01T00:00:00Z",
            "activeTo": "2026-09-01T00:00:00Z",
            "triggers": [
                {"type": "queryEquals", "value": "tv"},
                {"type": "customUrlParam", "key": "device", "value": "mobile"},
                {"type": "navigationSelected", "navigation": "brand", "value": "Samsung"},
            ],
            "pins": [{"id": "SKU0000003", "position": 1}, {"id": "SKU0000001", "position": 2}],
            "hide": ["SKU0000002"],
            "biases": [{"name": "brand", "content": "Samsung", "strength": "Strong_Increase"}],
            "filter": "price:[0 TO 500]",
            "navigations": ["brand", "price"],
            "template": {
                "name": "summer",
                "zones": [
                    {"name": "banner", "type": "Rich_Content", "content": "<b>Summer</b>"},
                    {"name": "picks", "type": "Record", "ids": ["SKU0000004", "SKU0000005"]},
                ],
            },
        }
    )
    page = client.get(BASE).text
    assert "2 changes not published" in page
    assert f'data-testid="updated-by">{draft.updated_by}<' in page
    assert "query equals “tv”" in page and "customUrlParams device = mobile" in page
    assert '<time datetime="2026-06-01T00:00:00+00:00" data-local-time>2026-06-01 00:00 UTC' in page
    # The rule's form shows it as saved; saving it unchanged changes nothing.
    form = client.get(f"{BASE}/rules/edit", params={"object": "Summer TV"}).text
    assert 'value="2026-06-01T00:00"' in form and "SKU0000004\nSKU0000005" in form
    fields = _form_fields(form)
    r = _send(client, f"{BASE}/rules/save", fields, token)
    assert r.status_code == 303, r.text
    assert _draft(rt).revision == 2  # nothing changed: no new revision
    # Renamed through its form: the same rule under a new name.
    r = _send(client, f"{BASE}/rules/save", {**fields, "name": "Summer TVs"}, token)
    assert r.status_code == 303
    assert [x.name for x in _draft(rt).document.rules] == ["Summer TVs"]
    # Deleted.
    r = _send(
        client,
        f"{BASE}/synonyms/delete",
        {"object": "tv", "revision": _revision(rt)},
        token,
    )
    assert r.status_code == 303 and _draft(rt).document.synonyms == []
    events = rt.services.audit.query(
        SYSTEM, AuditFilter(action=Action.MERCH_DRAFT_UPDATE.value), limit=10
    ).events
    assert len(events) == 4


_INPUT = re.compile(r'<input[^>]*\bname="([^"]+)"[^>]*>')
_TEXTAREA = re.compile(r'<textarea[^>]*\bname="([^"]+)"[^>]*>(.*?)</textarea>', re.S)
_SELECT = re.compile(r'<select[^>]*\bname="([^"]+)"[^>]*>(.*?)</select>', re.S)


def _form_fields(page: str) -> dict[str, Any]:
    """What a browser submits for the page's object form, as it is shown."""
    form = page[page.index('data-testid="object-form"') :]
    form = form[: form.index("</form>")]
    out: dict[str, Any] = {}

    def add(name: str, value: str) -> None:
        out.setdefault(name, []).append(html.unescape(value))

    for m in _INPUT.finditer(form):
        tag, name = m.group(0), m.group(1)
        if 'type="checkbox"' in tag and " checked" not in tag:
            continue
        value = re.search(r'\bvalue="([^"]*)"', tag)
        add(name, value.group(1) if value else "")
    for m in _TEXTAREA.finditer(form):
        add(m.group(1), m.group(2))
    for m in _SELECT.finditer(form):
        chosen = re.search(
            r'<option value="([^"]*)" selected|<option selected>([^<]*)<', m.group(2)
        )
        first = re.search(r'<option value="([^"]*)"|<option>([^<]*)<', m.group(2))
        pick = chosen or first
        assert pick is not None
        add(m.group(1), pick.group(1) if pick.group(1) is not None else pick.group(2))
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def test_the_rule_form_shows_each_error_at_its_field_or_row_and_keeps_what_was_typed(
    client: TestClient, rt: Runtime
) -> None:
    token = _as(client, rt, "merchandiser")
    bad = {
        **RULE,
        "priority": "soon",
        "trigger_type": ["queryEquals", "navigationSelected"],
        "trigger_key": ["", ""],
        "trigger_value": ["tv", "Samsung"],
        "pin_id": ["SKU0000003"],
        "pin_position": ["first"],
        "redirect": "ftp://example.com/x",
        "zone_name": ["picks"],
        "zone_type": ["Record"],
        "zone_content": [""],
    }
    r = _send(client, f"{BASE}/rules/save", bad, token)
    assert r.status_code == 400
    assert "integer" in error_for(r.text, "priority")
    assert error_for(r.text, "triggers-0") == ""
    assert "at least 1 character" in error_for(r.text, "triggers-1")
    assert "integer" in error_for(r.text, "pins-0")
    assert "https://" in error_for(r.text, "redirect")
    # What was typed stays in its field.
    assert 'value="soon"' in r.text and 'value="ftp://example.com/x"' in r.text
    assert _draft(rt).revision == 0
    # The window and the need for an action concern the rule as a whole.
    r = _send(
        client,
        f"{BASE}/rules/save",
        {"name": "x", "trigger_type": "queryEquals", "trigger_value": "tv", "nav_mode": "keep"},
        token,
    )
    assert "needs an action" in error_for(r.text, "form")
    r = _send(
        client,
        f"{BASE}/rules/save",
        {**RULE, "active_from": "2026-09-01T00:00", "active_to": "2026-06-01T00:00"},
        token,
    )
    assert "before activeTo" in error_for(r.text, "form")
    blank = {"trigger_key": ["", "", ""], "trigger_value": ["", "", ""]}
    r = _send(client, f"{BASE}/rules/save", {**RULE, **blank}, token)
    assert "at least 1 item" in error_for(r.text, "triggers")
    r = _send(client, f"{BASE}/synonyms/save", {**SYNONYM, "terms": "tv"}, token)
    assert "at least two terms" in error_for(r.text, "form")
    assert _draft(rt).revision == 0


def test_rows_are_added_and_removed_with_plain_buttons_and_nothing_is_saved(
    client: TestClient, rt: Runtime
) -> None:
    token = _as(client, rt, "merchandiser")
    r = _send(client, f"{BASE}/rules/save", {**RULE, "add": "triggers"}, token)
    assert r.status_code == 200
    assert r.text.count('data-testid="trigger-row"') == 4
    assert 'value="mobile"' in r.text  # the rows typed so far stay
    r = _send(client, f"{BASE}/rules/save", {**RULE, "remove": "triggers-1"}, token)
    assert r.text.count('data-testid="trigger-row"') == 2 and 'value="mobile"' not in r.text
    r = _send(client, f"{BASE}/biasing-profiles/save", {"name": "p", "add": "biases"}, token)
    assert r.status_code == 200 and r.text.count('data-testid="bias-row"') == 1
    assert _draft(rt).revision == 0
    # An empty rule form offers one row of each list.
    page = client.get(f"{BASE}/rules/new").text
    for row in ("trigger-row", "pin-row", "bias-row", "zone-row"):
        assert page.count(f'data-testid="{row}"') == 1, row


def test_a_new_object_never_replaces_another_and_a_stale_form_is_refused(
    client: TestClient, rt: Runtime
) -> None:
    token = _as(client, rt, "merchandiser")
    assert _send(client, f"{BASE}/synonyms/save", SYNONYM, token).status_code == 303
    again = _send(client, f"{BASE}/synonyms/save", {**SYNONYM, "terms": "a, b"}, token)
    assert again.status_code == 400
    assert "already has a synonym set named tv" in error_for(again.text, "name")
    stale = _send(
        client,
        f"{BASE}/synonyms/save",
        {**SYNONYM, "name": "other", "revision": "0"},
        token,
    )
    assert stale.status_code == 409 and "someone changed it" in error_for(stale.text, "form")
    assert [s.name for s in _draft(rt).document.synonyms] == ["tv"]


def test_links_from_analytics_start_a_synonym_set_or_a_rule_for_a_query(
    client: TestClient, rt: Runtime
) -> None:
    _as(client, rt, "merchandiser")
    page = client.get(f"{BASE}/synonyms/new", params={"term": "flat  screen"}).text
    assert 'name="name" type="text" value="flat screen"' in page
    assert ">flat screen</textarea>" in page
    page = client.get(f"{BASE}/rules/new", params={"query": "tv stand"}).text
    assert '<option value="queryEquals" selected>' in page
    assert 'name="trigger_value" value="tv stand"' in page
    assert client.get(f"{BASE}/nonsense/new").status_code == 404
    assert client.get(f"{BASE}/rules/edit", params={"object": "none"}).status_code == 404


def test_a_viewer_reads_the_draft_but_cannot_change_it(client: TestClient, rt: Runtime) -> None:
    rt.services.merchandising.put_object(
        SYSTEM, AREA, "synonyms", SynonymSet(name="tv", terms=["tv", "television"])
    )
    token = _as(client, rt, "viewer")
    page = client.get(BASE).text
    assert "tv ⇔ television" in page and "read only" in page
    assert "Add a synonym set" not in page and "/publish" not in page and "Discard" not in page
    assert client.get(f"{BASE}/synonyms/new").status_code == 403
    assert client.get(f"{BASE}/versions").status_code == 200
    # Where the areas are listed, each leads to its merchandising.
    assert f'href="{BASE}"' in client.get("/areas").text
    assert '<a href="/merchandising">Merchandising</a>' in client.get("/").text
    for path, data in (
        (f"{BASE}/synonyms/save", {**SYNONYM, "name": "other"}),
        (f"{BASE}/synonyms/delete", {"object": "tv"}),
        (f"{BASE}/publish", {}),
        (f"{BASE}/discard", {}),
    ):
        assert _send(client, path, data, token).status_code == 403, path
    assert [s.name for s in _draft(rt).document.synonyms] == ["tv"]


def test_biasing_profiles_the_area_default_and_discarding_the_draft(
    client: TestClient, rt: Runtime
) -> None:
    token = _as(client, rt, "merchandiser")
    profile = {
        "name": "rated",
        "influence": "2",
        "bias_name": ["rating", "inStock"],
        "bias_content": ["5", "true"],
        "bias_strength": ["Strong_Increase", "Absolute_Increase"],
        "make_default": "1",
    }
    assert _send(client, f"{BASE}/biasing-profiles/save", profile, token).status_code == 303
    doc = _draft(rt).document
    assert doc.default_biasing_profile == "rated" and doc.biasing_profiles[0].influence == 2
    page = client.get(BASE).text
    assert 'class="badge accent">default</span>' in page
    # The default cannot be deleted; chosen away first, it can.
    r = _send(client, f"{BASE}/biasing-profiles/delete", {"object": "rated"}, token)
    assert r.status_code == 409
    assert "default" in error_for(r.text, "delete-biasingProfiles")
    r = _send(client, f"{BASE}/default-profile", {"profile": ""}, token)
    assert r.status_code == 303 and _draft(rt).document.default_biasing_profile is None
    r = _send(client, f"{BASE}/default-profile", {"profile": "nope"}, token)
    assert r.status_code == 400 and "nope" in error_for(r.text, "profile")
    assert "Discard draft" in client.get(BASE).text
    r = _send(client, f"{BASE}/discard", {}, token)
    assert r.status_code == 303
    draft = _draft(rt)
    assert draft.document.biasing_profiles == [] and not draft.changed
    assert "Discard draft" not in client.get(BASE).text


def test_a_merchandiser_without_publish_is_told_why_and_the_post_is_refused(
    client: TestClient, rt: Runtime
) -> None:
    token = _as(client, rt, "merchandiser")
    assert _send(client, f"{BASE}/synonyms/save", SYNONYM, token).status_code == 303
    page = client.get(BASE).text
    refusal = re.search(r'data-testid="publish-refusal">([^<]+)<', page)
    assert refusal and "console:merchandising:publish" in refusal.group(1)
    assert 'action="/areas/Production/merchandising/publish"' not in page
    r = _send(client, f"{BASE}/publish", {"note": "go"}, token)
    assert r.status_code == 403 and "console:merchandising:publish" in r.text
    assert _draft(rt).live_number is None


def test_an_admin_publishes_sees_the_history_and_the_diff_and_rolls_back(
    client: TestClient, rt: Runtime
) -> None:
    token = _as(client, rt, "admin")
    assert _send(client, f"{BASE}/synonyms/save", SYNONYM, token).status_code == 303
    r = _send(client, f"{BASE}/publish", {"note": "first synonyms", "revision": "1"}, token)
    assert r.status_code == 303 and r.headers["location"] == f"{BASE}/versions/1"
    first = client.get(r.headers["location"]).text
    assert "Version 1 is live" in first and "first synonyms" in first
    assert 'class="badge ok">added</span>' in first and "<strong>tv</strong>" in first
    assert "This is the live version." in first

    fields = _form_fields(client.get(f"{BASE}/synonyms/edit", params={"object": "tv"}).text)
    fields["terms"] = "tv\ntelevision"
    assert _send(client, f"{BASE}/synonyms/save", fields, token).status_code == 303
    assert "1 change not published" in client.get(BASE).text
    nothing = _send(client, f"{BASE}/publish", {"revision": "0"}, token)
    assert nothing.status_code == 409 and "someone changed it" in error_for(nothing.text, "publish")
    r = _send(client, f"{BASE}/publish", {"revision": _revision(rt)}, token)
    assert r.headers["location"] == f"{BASE}/versions/2"
    second = client.get(f"{BASE}/versions/2").text
    assert 'class="badge warn">changed</span>' in second
    diff_row = re.search(r"<td><code>terms</code></td>(.*?)</tr>", second, re.S)
    assert diff_row is not None
    assert "flat screen" in diff_row.group(1)  # before
    assert html.unescape(diff_row.group(1)).count("television") == 2  # before and after
    # Same as live: nothing to publish.
    same = _send(client, f"{BASE}/publish", {}, token)
    assert same.status_code == 409 and "Nothing to publish" in error_for(same.text, "publish")

    r = _send(client, f"{BASE}/versions/1/rollback", {"note": "back to three terms"}, token)
    assert r.status_code == 303 and r.headers["location"] == f"{BASE}/versions/3"
    third = client.get(f"{BASE}/versions/3").text
    assert 'data-testid="rollback-marker">rollback to 1' in third
    history = client.get(f"{BASE}/versions").text
    assert re.findall(r"versions/(\d+)\"><strong>", history) == ["3", "2", "1"]
    assert "rollback to 1" in history and "back to three terms" in history
    live = rt.services.merchandising.live(AREA)
    assert live is not None and live.number == 3
    assert live.document.synonyms[0].terms == ["tv", "television", "flat screen"]
    assert client.get(f"{BASE}/versions/9").status_code == 404
    assert client.get(f"{BASE}/versions/x").status_code == 404
    again = _send(client, f"{BASE}/versions/3/rollback", {}, token)
    assert again.status_code == 409 and "nothing to roll back" in error_for(again.text, "rollback")
    kinds = [
        e.action
        for e in rt.services.audit.query(
            SYSTEM, AuditFilter(action="console:merchandising:*")
        ).events
    ]
    assert kinds.count(Action.MERCH_PUBLISH.value) == 2
    assert kinds.count(Action.MERCH_ROLLBACK.value) == 1


def test_forms_refuse_a_missing_token_or_a_foreign_origin(client: TestClient, rt: Runtime) -> None:
    token = _as(client, rt, "admin")
    for path in (f"{BASE}/synonyms/save", f"{BASE}/publish", f"{BASE}/versions/1/rollback"):
        r = client.post(path, data=SYNONYM, headers={"Origin": "https://testserver"})
        assert r.status_code == 403 and "security token" in r.text, path
        r = post(client, path, SYNONYM, token=token, origin="https://evil.example")
        assert r.status_code == 403 and "Origin" in r.text, path
    assert _draft(rt).revision == 0


def test_a_person_restricted_to_some_areas_cannot_open_the_others(
    client: TestClient, rt: Runtime
) -> None:
    s = rt.services
    s.areas.create(SYSTEM, "Staging")
    s.roles.create(
        SYSTEM,
        "Production merch",
        ["console:areas:read", "console:merchandising:edit"],
        areas=["Production"],
    )
    make_user(s, "pat@example.com", "Production merch")
    use_https(client)
    sign_in(client, "pat@example.com")
    assert client.get(BASE).status_code == 200
    assert client.get("/areas/Staging/merchandising").status_code == 403
    listing = client.get("/merchandising").text
    assert "/areas/Production/merchandising" in listing
    assert "/areas/Staging/merchandising" not in listing


def test_live_and_draft_side_by_side_with_the_explanation(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    records = list(generate(30))
    load(client, auth, "default", records, demo_settings())
    token = _as(client, rt, "merchandiser")
    target = records[0]["id"]
    one_way = {"name": "qq", "kind": "one-way", "terms": "qqzzx", "to": records[0]["brand"]}
    assert _send(client, f"{BASE}/synonyms/save", one_way, token).status_code == 303
    rule = {
        "name": "returns page",
        "priority": "1",
        "enabled": "1",
        "trigger_type": "queryEquals",
        "trigger_value": "returns",
        "redirect": "/help/returns",
        "nav_mode": "keep",
    }
    assert _send(client, f"{BASE}/rules/save", rule, token).status_code == 303

    page = client.get(f"{BASE}/preview", params={"q": "qqzzx", "collection": "default"})
    assert page.status_code == 200, page.text
    live, draft = _sides(page.text)
    assert "<strong>0</strong> results" in live
    assert target in draft and "new in the draft" in draft
    assert "qqzzx" in _between(draft, 'data-testid="explain-synonyms"', "</dd>")
    assert "none applied" in _between(live, 'data-testid="explain-synonyms"', "</dd>")

    page = client.get(f"{BASE}/preview", params={"q": "returns", "collection": "default"})
    live, draft = _sides(page.text)
    assert 'data-testid="redirect"' in draft and "/help/returns" in draft
    assert 'data-testid="redirect"' not in live
    fired = _between(draft, 'data-testid="explain-rules"', "</ul>")
    assert "returns page" in fired and ">fired<" in fired
    # Nothing a preview searches is counted as a shopper's query.
    assert rt.query_log.flush() == 0
    bad = client.get(f"{BASE}/preview", params={"q": "x", "params": "a=1&" * 30})
    assert bad.status_code == 200 and "at most 20" in bad.text


def _between(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i : text.index(end, i)]


def _sides(page: str) -> tuple[str, str]:
    live = _between(page, 'data-testid="live-side"', "</section>")
    draft = _between(page, 'data-testid="draft-side"', "</section>")
    return live, draft


# --- any form input: an answer, never a server error --------------------------------------

TEXT = st.text(max_size=40) | st.sampled_from(
    ["", " ", "0", "-1", "1e9", "nan", "2026-01-01T00:00", "x" * 130, "\x00", "a\nb", "é, ü"]
)
FORMS = {
    "synonyms": ("name", "kind", "terms", "to", "collections"),
    "rules": (*RULE, "add", "remove", "revision", "replacing"),
    "biasing-profiles": ("name", "influence", "bias_name", "bias_content", "bias_strength"),
    "stop-words": ("name", "words", "collections"),
    "related-queries": ("name", "query", "related", "collections"),
}


def test_any_form_input_gets_an_answer_never_a_server_error(
    client: TestClient, rt: Runtime
) -> None:
    token = _as(client, rt, "admin")

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        slug=st.sampled_from([*FORMS, "nope"]),
        data=st.data(),
    )
    def check(slug: str, data: st.DataObject) -> None:
        names = FORMS.get(slug, ("name",))
        form = {
            n: data.draw(st.lists(TEXT, max_size=3) | TEXT, label=n)
            for n in data.draw(st.lists(st.sampled_from(names), unique=True), label="fields")
        }
        for path in (
            f"{BASE}/{slug}/save",
            f"{BASE}/{slug}/delete",
            f"{BASE}/default-profile",
            f"{BASE}/publish",
        ):
            r = post(client, path, form, token=token)
            assert r.status_code < 500, (path, form, r.text[:300])
        query = {k: v for k, v in form.items() if isinstance(v, str)}
        for path in (f"{BASE}/{slug}/new", f"{BASE}/{slug}/edit", f"{BASE}/preview"):
            r = client.get(path, params=query)
            assert r.status_code < 500, (path, query, r.text[:300])
        number = data.draw(TEXT, label="number")
        r = client.get(f"{BASE}/versions/{quote(number, safe='')}")
        assert r.status_code < 500, (number, r.text[:300])

    check()
