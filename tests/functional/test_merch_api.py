"""The admin API for merchandising, /api/v1/admin/areas/{area}/merchandising/...:
the draft with its revision (ETag and If-Match), objects one at a time, publishing,
history with diffs, rollback, export and import, the preview, permissions (checked
before the body is read), typed answers, and no body that answers 5xx."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from starlette.routing import Match
from starlette.testclient import TestClient

from searchgate.api import routes_merchandising
from searchgate.audit.events import AuditFilter
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from tests.conftest import load, make_user
from tests.functional.test_typed_bodies import CONTENT_TYPES, JSON_VALUES
from tests.keyhelp import SYSTEM

AREA = "Production"
BASE = f"/api/v1/admin/areas/{AREA}/merchandising"
TV = {"name": "tv", "terms": ["tv", "television"]}
LAPTOP = {"name": "laptop", "terms": ["laptop", "notebook"]}
REDIRECT = {
    "name": "TV redirect",
    "triggers": [{"type": "queryEquals", "value": "tv"}],
    "redirect": "/tv",
}


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def token(rt: Runtime, role: str) -> str:
    user = make_user(rt.services, f"{role}@example.com", role)
    return rt.services.tokens.create(SYSTEM, role, user_id=user).secret


def declared_answer(method: str, path: str) -> TypeAdapter[Any]:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in routes_merchandising.router.routes:
        if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
            assert route.response_model is not None, path
            return TypeAdapter(route.response_model)
    raise AssertionError(f"no route for {method} {path}")


class Api:
    """Calls that check the status and that the answer is what the document says."""

    def __init__(self, client: TestClient, secret: str) -> None:
        self.client = client
        self.secret = secret

    def __call__(
        self,
        method: str,
        path: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        r = self.client.request(
            method, BASE + path, headers=bearer(self.secret, **(headers or {})), **kwargs
        )
        assert r.status_code == status, (method, path, r.text)
        if status < 300:
            declared_answer(method, BASE + path.split("?")[0]).validate_python(r.json())
        return r


def test_edit_publish_history_and_rollback_through_the_api(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    api = Api(client, admin_token)
    r = api("GET", "/draft")
    assert r.headers["ETag"] == '"0"'
    draft = r.json()["draft"]
    assert (draft["area"], draft["revision"], draft["changed"], draft["liveVersion"]) == (
        AREA,
        0,
        False,
        None,
    )
    assert draft["document"]["format"] == "searchgate.merchandising/1"
    r = api("PUT", "/draft", json={"synonyms": [TV]}, headers={"If-Match": '"0"'})
    assert r.json()["draft"]["revision"] == 1 and r.headers["ETag"] == '"1"'
    # Someone else's revision: refused, nothing changed.
    r = api("PUT", "/draft", 409, json={"synonyms": []}, headers={"If-Match": '"0"'})
    error = r.json()["error"]
    assert error["code"] == "conflict" and error["field"] == "expectedRevision"
    assert error["revision"] == 1
    # One object at a time.
    r = api("PUT", "/draft/rules/TV redirect", json=REDIRECT, headers={"If-Match": "1"})
    assert [x["name"] for x in r.json()["draft"]["document"]["rules"]] == ["TV redirect"]
    api("PUT", "/draft/synonyms/laptop", json={"terms": ["laptop", "notebook"]})
    # A body naming another object renames the one in the path.
    r = api("PUT", "/draft/synonyms/tv", json={**TV, "name": "televisions"})
    assert [s["name"] for s in r.json()["draft"]["document"]["synonyms"]] == [
        "televisions",
        "laptop",
    ]
    api("DELETE", "/draft/synonyms/laptop", headers={"If-Match": '"4"'})
    api("DELETE", "/draft/synonyms/laptop", 404)
    api("PUT", "/draft/banners/x", 400, json=TV)
    # Publish, then nothing left to publish.
    r = api("POST", "/publish", 201, json={"note": "first", "expectedRevision": 5})
    first = r.json()["version"]
    assert (first["number"], first["note"], first["rollbackOf"]) == (1, "first", None)
    r = api("POST", "/publish", 409, json={})
    assert "nothing to publish" in r.json()["error"]["message"]
    api("PUT", "/draft/synonyms/laptop", json=LAPTOP)
    api("POST", "/publish", 201, json={"note": "laptops"})
    listed = api("GET", "/versions").json()
    assert [v["number"] for v in listed["versions"]] == [2, 1] and listed["live"] == 2
    assert [v["number"] for v in api("GET", "/versions?limit=1").json()["versions"]] == [2]
    api("GET", "/versions?limit=0", 400)
    detail = api("GET", "/versions/2").json()
    assert detail["against"] == 1
    assert [(c["kind"], c["name"], c["change"]) for c in detail["changes"]] == [
        ("synonyms", "laptop", "added")
    ]
    assert api("GET", "/versions/1").json()["against"] is None
    api("GET", "/versions/9", 404)
    api("GET", "/versions/abc", 400)
    api("GET", "/versions/99999999999999999999", 400)
    r = api("POST", "/versions/1/rollback", 201, json={"note": "undo laptops"})
    back = r.json()["version"]
    assert (back["number"], back["rollbackOf"], back["note"]) == (3, 1, "undo laptops")
    live = rt.services.merchandising.live(AREA)
    assert live is not None and live.number == 3
    # The draft still holds what was being worked on.
    draft = api("GET", "/draft").json()["draft"]
    assert draft["changed"] and draft["liveVersion"] == 3
    r = api("POST", "/discard")
    assert not r.json()["draft"]["changed"]
    actions = [
        e.action
        for e in reversed(
            rt.services.audit.query(
                Actor.system(), AuditFilter(action="console:merchandising:*")
            ).events
        )
    ]
    assert actions == ["console:merchandising:draft-update"] * 5 + [
        "console:merchandising:publish",
        "console:merchandising:draft-update",
        "console:merchandising:publish",
        "console:merchandising:rollback",
        "console:merchandising:draft-discard",
    ]


def test_an_if_match_that_is_no_revision_is_a_400(client: TestClient, admin_token: str) -> None:
    api = Api(client, admin_token)
    for value in ("seven", '"-1"', "1.5", "W/", '"'):
        r = api("PUT", "/draft", 400, json={}, headers={"If-Match": value})
        assert r.json()["error"]["field"] == "If-Match"
    # A weak tag and a star are what HTTP allows.
    api("PUT", "/draft", json={"synonyms": [TV]}, headers={"If-Match": 'W/"0"'})
    api("PUT", "/draft", json={"synonyms": [TV, LAPTOP]}, headers={"If-Match": "*"})


def test_export_is_the_file_and_import_makes_it_the_draft(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    api = Api(client, admin_token)
    r = api("GET", "/export")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="merchandising-{AREA}-empty.json"'
    )
    api("PUT", "/draft", json={"synonyms": [TV], "rules": [REDIRECT]})
    api("POST", "/publish", 201, json={"note": "one"})
    r = api("GET", "/export")
    assert r.headers["content-disposition"].endswith(f'filename="merchandising-{AREA}-v1.json"')
    exported = r.content
    # Indented, one field a line: a file to keep in git.
    assert exported.startswith(b'{\n  "format": "searchgate.merchandising/1"')
    assert exported.endswith(b"\n")
    changed = orjson.loads(exported)
    changed["synonyms"].append(LAPTOP)
    changed["rules"] = []
    r = api("POST", "/import", content=orjson.dumps(changed))
    body = r.json()
    assert body["draft"]["revision"] == 2 and body["draft"]["changed"]
    assert [(c["kind"], c["name"], c["change"]) for c in body["changes"]] == [
        ("synonyms", "laptop", "added"),
        ("rules", "TV redirect", "removed"),
    ]
    r = api("GET", "/export?version=draft")
    assert r.headers["content-disposition"].endswith(f'filename="merchandising-{AREA}-draft.json"')
    assert r.headers["ETag"] == '"2"'
    assert orjson.loads(r.content) == body["draft"]["document"]
    api("GET", "/export?version=next", 400)
    [imported] = rt.services.audit.query(
        Actor.system(), AuditFilter(action="console:merchandising:import")
    ).events
    assert imported.details == {
        "revision": 2,
        "changes": 2,
        "objects": [
            {"kind": "synonyms", "name": "laptop", "change": "added"},
            {"kind": "rules", "name": "TV redirect", "change": "removed"},
        ],
    }
    # A bad file names the field.
    r = api("POST", "/import", 400, json={"rules": [{**REDIRECT, "priority": "high"}]})
    assert r.json()["error"]["field"] == "rules.0.priority"


def test_each_route_asks_its_permission_before_reading_the_body(
    client: TestClient, rt: Runtime
) -> None:
    viewer, merchandiser = token(rt, "viewer"), token(rt, "merchandiser")
    Api(client, viewer)("GET", "/draft")
    Api(client, viewer)("GET", "/versions")
    for body in (b"{not json", b"[" * 1000 + b"]" * 1000, b'{"synonyms": 1}'):
        for method, path in (
            ("PUT", "/draft"),
            ("POST", "/import"),
            ("PUT", "/draft/synonyms/tv"),
            ("DELETE", "/draft/synonyms/tv"),
            ("POST", "/discard"),
        ):
            r = client.request(method, BASE + path, content=body, headers=bearer(viewer))
            assert r.status_code == 403, (path, r.text)
        r = client.post(BASE + "/publish", content=body, headers=bearer(merchandiser))
        assert r.status_code == 403, r.text
    api = Api(client, merchandiser)
    api("PUT", "/draft", json={"synonyms": [TV]})
    api("POST", "/publish", 403, json={"note": "mine"})
    api("POST", "/versions/1/rollback", 403, json={})


def test_a_role_limited_to_other_areas_is_refused(client: TestClient, rt: Runtime) -> None:
    s = rt.services
    s.areas.create(Actor.system(), "Staging")
    s.roles.create(
        Actor.system(),
        "stager",
        ["console:areas:read", "console:merchandising:edit"],
        areas=["Staging"],
    )
    user = make_user(s, "stager@example.com", "stager")
    secret = s.tokens.create(SYSTEM, "stager", user_id=user).secret
    r = client.get(BASE + "/draft", headers=bearer(secret))
    assert r.status_code == 403 and r.json()["error"]["field"] == "area", r.text
    r = client.put(
        "/api/v1/admin/areas/Staging/merchandising/draft",
        json={"synonyms": [TV]},
        headers=bearer(secret),
    )
    assert r.status_code == 200, r.text


def test_an_unknown_area_is_a_404(client: TestClient, admin_token: str) -> None:
    for area in ("Nowhere", "a%00b"):
        r = client.get(
            f"/api/v1/admin/areas/{area}/merchandising/draft", headers=bearer(admin_token)
        )
        assert r.status_code == 404 and r.json()["error"]["field"] == "area", r.text


def test_the_preview_searches_with_the_live_version_or_the_draft(
    client: TestClient, rt: Runtime, admin_token: str, auth: dict[str, str]
) -> None:
    load(
        client,
        auth,
        "products",
        [{"id": f"t{i}", "title": f"tv {i}"} for i in range(3)],
        {"idField": "id", "titleField": "title", "searchable": [{"name": "title"}]},
    )
    api = Api(client, admin_token)
    api("PUT", "/draft", json={"rules": [REDIRECT]})
    query = {"collection": "products", "query": "tv"}
    live = api("POST", "/preview", json={**query, "version": "live"}).json()
    assert live["version"] == "live" and live["response"]["totalRecordCount"] == 3
    assert live["response"].get("redirect") is None
    draft = api("POST", "/preview", json={**query, "version": "draft"}).json()
    assert draft["version"] == "draft"
    assert draft["response"]["redirect"] == "/tv"
    assert draft["response"]["debug"]["merchandising"]["version"] == "draft"
    # The area is the path's, whatever the body says.
    other = api("POST", "/preview", json={**query, "area": "Nowhere", "version": "draft"}).json()
    assert other["response"]["redirect"] == "/tv"
    api("POST", "/preview", 400, json={**query, "version": "next"})
    api("POST", "/preview", 400, json={**query, "pageSize": -1})
    # A viewer may preview; someone without search preview may not.
    Api(client, token(rt, "viewer"))("POST", "/preview", json={**query, "version": "draft"})
    s = rt.services
    s.roles.create(Actor.system(), "reader", ["console:areas:read"])
    user = make_user(s, "reader@example.com", "reader")
    reader = s.tokens.create(SYSTEM, "reader", user_id=user).secret
    Api(client, reader)("POST", "/preview", 403, json=query)


# --- no body answers 5xx ----------------------------------------------------------

MERCH_KEYS = st.sampled_from(
    [
        "synonyms",
        "rules",
        "biasingProfiles",
        "stopWords",
        "relatedQueries",
        "defaultBiasingProfile",
        "name",
        "terms",
        "to",
        "kind",
        "triggers",
        "type",
        "value",
        "pins",
        "hide",
        "redirect",
        "template",
        "zones",
        "biases",
        "strength",
        "content",
        "activeFrom",
        "activeTo",
        "note",
        "expectedRevision",
        "version",
        "query",
        "words",
        "related",
    ]
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "two-way",
            "one-way",
            "queryEquals",
            "Weak_Increase",
            "Record",
            "2026-01-01T00:00:00Z",
            "/x",
        ]
    )
)
MERCH_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(MERCH_KEYS, inner, max_size=5),
    max_leaves=16,
)


def test_no_body_or_header_answers_5xx(client: TestClient, admin_token: str) -> None:
    calls = [
        ("PUT", "/draft"),
        ("POST", "/import"),
        ("PUT", "/draft/synonyms/tv"),
        ("PUT", "/draft/rules/r"),
        ("PUT", "/draft/biasingProfiles/p"),
        ("PUT", "/draft/stopWords/s"),
        ("PUT", "/draft/relatedQueries/q"),
        ("DELETE", "/draft/rules/r"),
        ("POST", "/publish"),
        ("POST", "/versions/1/rollback"),
        ("POST", "/preview"),
    ]

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        body=st.binary(max_size=64) | MERCH_VALUES.map(lambda v: repr(v).encode()),
        json_body=MERCH_VALUES | JSON_VALUES,
        content_type=CONTENT_TYPES,
        as_json=st.booleans(),
        if_match=st.none() | st.text(max_size=8),
    )
    def check(
        body: bytes, json_body: Any, content_type: str | None, as_json: bool, if_match: str | None
    ) -> None:
        headers = bearer(admin_token)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if if_match is not None and if_match.isprintable() and if_match.isascii():
            headers["If-Match"] = if_match
        # Python's encoder, not orjson: it writes NaN and integers past 64 bits.
        content = json.dumps(json_body).encode() if as_json else body
        for method, path in calls:
            r = client.request(method, BASE + path, content=content, headers=headers)
            assert r.status_code < 500 and r.status_code != 422, (method, path, r.text)
            if r.status_code >= 400:
                assert r.json()["error"]["code"], r.text

    check()


def test_awkward_values_are_kept_or_refused_never_a_500(
    client: TestClient, rt: Runtime, admin_token: str
) -> None:
    api = Api(client, admin_token)
    key_shaped = "sgk_" + "A" * 30
    nul_rule = {
        **REDIRECT,
        "name": key_shaped,
        "redirect": None,
        "template": {"name": "t", "zones": [{"name": "z", "type": "Content", "content": "a\nb"}]},
    }
    # A NUL in a zone's content is refused with the field named (a storefront would
    # render it); line breaks are kept; a name shaped like a key is masked in the
    # change log.
    nul_zone = {"name": "z", "type": "Content", "content": "a\x00b"}
    r = api(
        "PUT",
        "/draft",
        400,
        json={"rules": [{**nul_rule, "template": {"name": "t", "zones": [nul_zone]}}]},
    )
    assert r.json()["error"]["field"] == "rules.0.template.zones.0.content"
    r = api("PUT", "/draft", json={"rules": [nul_rule]})
    assert r.json()["draft"]["document"]["rules"][0]["template"]["zones"][0]["content"] == "a\nb"
    [event_] = rt.services.audit.query(
        Actor.system(), AuditFilter(action="console:merchandising:draft-update")
    ).events
    assert key_shaped not in str(event_.details) and "[redacted]" in str(event_.details)
    profile = {
        "name": "p",
        "biases": [{"name": "brand", "content": 1, "strength": "Weak_Increase"}],
    }
    for number in (b"1e400", b"-1e400", b"123456789012345678901234567890"):
        body = b'{"biasingProfiles": [' + orjson.dumps(profile).replace(b"1", number, 1) + b"]}"
        r = client.put(BASE + "/draft", content=body, headers=bearer(admin_token))
        assert r.status_code in (200, 400), r.text
    r = api("POST", "/publish", 400, json={"note": "bad\x00note"})
    assert r.json()["error"]["field"] == "note"
    r = client.delete(BASE + "/draft/rules/x%00y", headers=bearer(admin_token))
    assert r.status_code == 404 and r.json()["error"]["field"] == "name", r.text
