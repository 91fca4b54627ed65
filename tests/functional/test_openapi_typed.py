"""/openapi.json documents every body and parameter of the data plane and the admin API
with a real type: a body shown as a bare ``{"type": "object"}`` (or without a schema)
tells a client nothing, and neither does a parameter without a type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from searchgate.config import Settings
from searchgate.webapp import create_app

# Operations that take no body at all: actions whose path says everything.
BODILESS_WRITES = {
    ("POST", "/api/v1/admin/users/{user}/disable"),
    ("POST", "/api/v1/admin/users/{user}/enable"),
    ("POST", "/api/v1/admin/keys/{key}/make-primary"),
    ("POST", "/api/v1/admin/keys/{key}/enable"),
    ("POST", "/api/v1/collections/{name}/replacements"),
    ("POST", "/api/v1/collections/{name}/replacements/{replacement_id}/commit"),
    ("POST", "/api/v1/admin/areas/{area}/merchandising/discard"),
}
COMBINERS = ("anyOf", "oneOf", "allOf")


def openapi(tmp_path: Path) -> dict[str, Any]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'searchgate.db'}",
        key_pepper="test-pepper",
    )
    # Without the lifespan: the document needs no database.
    r = TestClient(create_app(settings)).get("/openapi.json")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a ``$ref`` points to; None when it points nowhere in the document."""
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        schema = node
    return schema


def untyped(doc: dict[str, Any], schema: Any, where: str, seen: set[str]) -> list[str]:
    """Where ``schema`` (and every schema inside it) says nothing of its values' type:
    no schema, ``{}``, or an object with neither properties nor typed values."""
    if not isinstance(schema, dict) or not schema:
        return [where]
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return []
        seen = seen | {ref}
    target = resolve(doc, schema)
    if target is None:
        return [f"{where} (dangling {ref})"]
    schema = target
    problems: list[str] = []
    for combiner in COMBINERS:
        for n, option in enumerate(schema.get(combiner, [])):
            problems += untyped(doc, option, f"{where}.{combiner}[{n}]", seen)
    if any(c in schema for c in COMBINERS) or "enum" in schema or "const" in schema:
        return problems
    kind = schema.get("type")
    if kind is None:
        return [where]
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds:
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        # Inside a body, a field may hold any object when its model says so outright
        # (a protocol field that is accepted and ignored, what a rotation step found).
        free_form = extra is True and where != "body"
        if not props and not isinstance(extra, dict) and not free_form:
            problems.append(where)
        for name, prop in props.items():
            problems += untyped(doc, prop, f"{where}.{name}", seen)
        if isinstance(extra, dict) and extra:
            problems += untyped(doc, extra, f"{where}.*", seen)
    if "array" in kinds:
        problems += untyped(doc, schema.get("items"), f"{where}[]", seen)
    return problems


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path, op))
    return ops


def test_the_document_covers_the_data_plane_and_the_admin_api(tmp_path: Path) -> None:
    paths = set(openapi(tmp_path)["paths"])
    for expected in (
        "/api/v1/search",
        "/api/v1/sayt/search",
        "/api/v1/collections/{name}",
        "/data/v1/upload/stream",
        "/api/v1/keys/revoke",
        "/api/v1/admin/users",
        "/api/v1/admin/keys/{key}",
        "/api/v1/admin/rotations/{rotation_id}/steps",
    ):
        assert expected in paths


def test_every_request_body_has_a_real_schema(tmp_path: Path) -> None:
    doc = openapi(tmp_path)
    problems: list[str] = []
    for method, path, op in operations(doc):
        name = f"{method} {path}"
        body = op.get("requestBody")
        if body is None:
            if method in ("POST", "PUT", "PATCH") and (method, path) not in BODILESS_WRITES:
                problems.append(f"{name}: no request body documented")
            continue
        content = body.get("content") or {}
        if not content:
            problems.append(f"{name}: a request body without content")
        for media, described in content.items():
            problems += [
                f"{name} {media}: untyped at {at}"
                for at in untyped(doc, described.get("schema"), "body", set())
            ]
    assert problems == [], "\n".join(problems)


# Query parameters the API reads: each must be declared (a parameter read by hand from
# the query string is missing from the document).
READ_PARAMETERS = {
    ("GET", "/api/v1/admin/audit"): {
        "user",
        "action",
        "target",
        "outcome",
        "since",
        "until",
        "before",
        "limit",
    },
    ("GET", "/api/v1/admin/audit/export"): {"user", "action", "target", "outcome", "since"},
    ("GET", "/api/v1/admin/keys"): {"all"},
    ("GET", "/api/v1/admin/keys/{key}/usage"): {"days"},
    ("GET", "/api/v1/admin/invitations"): {"all"},
    ("POST", "/data/v1/upload/stream"): {"wait"},
    ("POST", "/api/v1/collections/{name}/records"): {"mode", "wait", "failOnFirstError"},
    ("GET", "/api/v1/admin/areas/{area}/merchandising/versions"): {"limit"},
    ("GET", "/api/v1/admin/areas/{area}/merchandising/export"): {"version"},
}


def test_every_parameter_read_is_declared(tmp_path: Path) -> None:
    declared = {
        (method, path): {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        for method, path, op in operations(openapi(tmp_path))
    }
    missing = {
        op: sorted(names - declared.get(op, set()))
        for op, names in READ_PARAMETERS.items()
        if names - declared.get(op, set())
    }
    assert missing == {}


def test_every_parameter_has_a_type(tmp_path: Path) -> None:
    doc = openapi(tmp_path)
    problems: list[str] = []
    for method, path, op in operations(doc):
        for param in op.get("parameters", []):
            at = f"{method} {path} {param['in']} {param['name']}"
            problems += [f"{at}: untyped" for _ in untyped(doc, param.get("schema"), at, set())]
    assert problems == [], "\n".join(problems)


def test_every_operation_documents_the_error_body_and_no_422(tmp_path: Path) -> None:
    doc = openapi(tmp_path)
    problems: list[str] = []
    for method, path, op in operations(doc):
        responses = op.get("responses", {})
        if "422" in responses:
            problems.append(f"{method} {path}: documents a 422 the API never answers")
        if not path.startswith(("/api/", "/data/")):
            continue  # /healthz, /readyz, /metrics: no request to refuse
        schema = responses.get("4XX", {}).get("content", {}).get("application/json", {})
        target = resolve(doc, schema.get("schema", {})) or {}
        if "error" not in target.get("properties", {}):
            problems.append(f"{method} {path}: no error body documented")
    assert problems == [], "\n".join(problems)


# The hot path's answers (search, refinements, SAYT) are the GroupBy protocol's, in
# docs/api.md; every other answer of the API has a model.
DESCRIBED_ANSWERS = ("/api/v1/admin/", "/api/v1/collections", "/api/v1/keys/", "/data/")


def test_answers_have_a_schema(tmp_path: Path) -> None:
    doc = openapi(tmp_path)
    problems: list[str] = []
    for method, path, op in operations(doc):
        if not path.startswith(DESCRIBED_ANSWERS):
            continue
        ok = [v for k, v in op.get("responses", {}).items() if k.startswith("2")]
        if len(ok) != 1:
            problems.append(f"{method} {path}: {len(ok)} success answers documented")
            continue
        for media, described in (ok[0].get("content") or {"?": {}}).items():
            if media == "application/json" and described.get("schema") == {"type": "string"}:
                problems.append(f"{method} {path}: a JSON answer documented as a string")
            problems += [
                f"{method} {path} {media}: untyped at {at}"
                for at in untyped(doc, described.get("schema"), "answer", set())
            ]
    assert problems == [], "\n".join(problems)
