"""POST /data/v1/upload/stream: the protocol's multipart upload (config + data parts)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.testclient import TestClient

CSV = (
    "id,title,price,inStock,colors,code\n"
    "1,Red phone,199.5,true,red|blue,007\n"
    '2,"Phone, with comma",10,false,green,1_000\n'
    "3,Third,-3,TRUE,,12345678901234567890\n"
)


def upload(
    client: TestClient,
    config: str,
    data: bytes | str,
    content_type: str = "text/csv",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        "/data/v1/upload/stream",
        files={
            "config": ("config", config, "text/plain"),
            "data": ("data", data, content_type),
        },
        headers=headers or {},
    )


def get(client: TestClient, auth: dict[str, str], collection: str, rid: str) -> Any:
    return client.get(f"/api/v1/collections/{collection}/records/{rid}", headers=auth)


def total(client: TestClient, auth: dict[str, str], collection: str) -> int:
    r = client.post(
        "/api/v1/search", json={"collection": collection, "query": "", "pageSize": 0}, headers=auth
    )
    assert r.status_code == 200, r.text
    return int(r.json()["totalRecordCount"])


def test_csv_upload_with_typed_cells(client: TestClient, auth: dict[str, str], key: str) -> None:
    config = f"clientKey: {key}\ncollection: csvcat\nwait: true\n"
    r = upload(client, config, CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "OK"
    assert body["recordCount"] == 3
    assert body["invalidRecordCount"] == 0
    assert body["searchable"] is True
    assert get(client, auth, "csvcat", "1").json() == {
        "id": 1,
        "title": "Red phone",
        "price": 199.5,
        "inStock": True,
        "colors": ["red", "blue"],
        "code": "007",
    }
    two = get(client, auth, "csvcat", "2").json()
    assert two["title"] == "Phone, with comma"
    assert two["inStock"] is False
    assert two["code"] == "1_000"
    three = get(client, auth, "csvcat", "3").json()
    assert three["price"] == -3
    assert three["inStock"] is True
    assert "colors" not in three  # an empty cell is an absent field
    assert three["code"] == "12345678901234567890"
    assert total(client, auth, "csvcat") == 3


def test_json_array_and_ndjson_data(client: TestClient, auth: dict[str, str], key: str) -> None:
    array = orjson.dumps([{"id": "a", "title": "A"}, {"id": "b", "title": "B"}])
    r = upload(client, f"clientKey={key}\ncollection=js", array, "application/json")
    assert r.status_code == 200, r.text
    assert r.json()["recordCount"] == 2
    lines = b'{"id": "c", "title": "C"}\n{"id": "d", "title": "D"}\n'
    # The config sets the data format when the part's content type says nothing.
    r = upload(
        client,
        f"clientKey: {key}\ncollection: js\nformat: ndjson\nwait: true",
        lines,
        "application/octet-stream",
    )
    assert r.status_code == 200, r.text
    assert r.json()["recordCount"] == 2
    assert total(client, auth, "js") == 4
    r = upload(
        client, f"clientKey: {key}\ncollection: js\nmode: replace\nwait: true", array, "text/plain"
    )
    assert r.status_code == 200
    assert total(client, auth, "js") == 2
    assert get(client, auth, "js", "c").status_code == 404


def test_bad_csv_rows_are_reported_by_line(client: TestClient, auth: dict[str, str]) -> None:
    data = (
        "id,title,price\n"
        "1,ok,3\n"
        "2,too,many,cells\n"
        '3,"a quoted\nline break",4\n'
        ",no id,5\n"
        "\n"
        "6,short\n"
        "7,fine,8\n"
    )
    r = upload(client, "collection: rows\nwait: true", data, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recordCount"] == 3
    assert body["invalidRecordCount"] == 3
    details = body["invalidRecordDetails"]
    assert [d["line"] for d in details] == [3, 6, 8]
    assert "expected 3 columns, found 4" in details[0]["reason"]
    assert details[1]["field"] == "id"
    assert "found 2" in details[2]["reason"]
    assert get(client, auth, "rows", "3").json()["title"] == "a quoted\nline break"
    assert total(client, auth, "rows") == 3


def test_fail_on_first_error_is_420_and_applies_nothing(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = upload(client, "collection: strict\nwait: true", "id,title\n1,one\n2,two\n", headers=auth)
    assert r.status_code == 200
    bad = "id,title\n1,changed\n3,three\n4\n"
    r = upload(client, "collection: strict\nfailOnFirstError: true", bad, headers=auth)
    assert r.status_code == 420, r.text
    body = r.json()
    assert body["error"]["code"] == "upload_rejected"
    assert body["invalidRecordCount"] == 1
    assert body["invalidRecordDetails"][0]["line"] == 4
    assert get(client, auth, "strict", "1").json()["title"] == "one"
    assert get(client, auth, "strict", "3").status_code == 404
    assert client.get("/api/v1/collections/strict", headers=auth).json()["recordCount"] == 2
    # Without the flag the same upload applies the valid rows.
    r = upload(client, "collection: strict\nfailOnFirstError: false", bad, headers=auth)
    assert r.status_code == 200
    assert r.json()["recordCount"] == 2


def test_missing_or_bad_parts_are_400(client: TestClient, auth: dict[str, str], key: str) -> None:
    r = client.post(
        "/data/v1/upload/stream",
        files={"data": ("data", "id\n1\n", "text/csv")},
        headers=auth,
    )
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "config"
    r = client.post(
        "/data/v1/upload/stream",
        files={"config": ("config", f"clientKey: {key}\ncollection: x", "text/plain")},
    )
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "data"
    r = client.post("/data/v1/upload/stream", json={"config": "collection: x"}, headers=auth)
    assert r.status_code == 400
    assert "multipart/form-data" in r.json()["error"]["message"]
    r = upload(client, "collection: x\nbogus: 1", "id\n1\n", headers=auth)
    assert r.status_code == 400
    assert "unknown key 'bogus'" in r.json()["error"]["message"]
    r = upload(client, "collection x", "id\n1\n", headers=auth)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "config"
    r = upload(client, "collection: x\nmode: merge", "id\n1\n", headers=auth)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "config.mode"
    r = upload(client, "collection: x", "id,id\n1,2\n", headers=auth)
    assert r.status_code == 400
    assert "unique" in r.json()["error"]["message"]
    assert client.get("/api/v1/collections/x", headers=auth).status_code == 404


def test_key_from_config_or_header(client: TestClient, auth: dict[str, str], key: str) -> None:
    r = upload(client, "collection: k", "id\n1\n")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_key"
    r = upload(client, "clientKey: sgk_wrongwrongwrong\ncollection: k", "id\n1\n")
    assert r.status_code == 401
    assert "sgk_wrongwrongwrong" not in r.text
    assert upload(client, f"clientKey: {key}\ncollection: k", "id\n1\n").status_code == 200
    assert upload(client, "collection: k", "id\n2\n", headers=auth).status_code == 200
    assert (
        upload(client, "collection: k", "id\n3\n", headers={"X-Client-Key": key}).status_code == 200
    )
    assert client.get("/api/v1/collections/k", headers=auth).json()["recordCount"] == 3
    # The collection defaults to "default".
    assert upload(client, "# no collection line", "id\n9\n", headers=auth).status_code == 200
    assert get(client, auth, "default", "9").status_code == 200
