"""The staleness bound through HTTP: a process whose revocation watch stops confirming
(here: stopped, as a thread stuck on a database that does not answer would be) refuses
client keys with 503 ``revocations_unconfirmed`` and Retry-After once the bound has
passed, reports ``/readyz`` not ready, and serves again after the next confirmation.
"""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from searchgate.runtime import Runtime

DEADLINE = 30.0  # the 5 s bound, with room for a loaded machine


def test_keys_are_refused_and_readiness_lost_past_the_bound_until_confirmed(
    client: TestClient, rt: Runtime, auth: dict[str, str]
) -> None:
    assert client.get("/api/v1/keys/self", headers=auth).status_code == 200
    rt.revocations.stop()
    deadline = time.monotonic() + DEADLINE
    while True:
        r = client.get("/api/v1/keys/self", headers=auth)
        if r.status_code != 200:
            break
        assert time.monotonic() < deadline, "keys still accepted past the bound"
        time.sleep(0.1)
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "revocations_unconfirmed"
    assert int(r.headers["Retry-After"]) >= 1
    assert auth["Authorization"].removeprefix("Bearer ") not in r.text
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "key revocations" in ready.json()["reason"]
    search = client.post("/api/v1/search", json={"collection": "none"}, headers=auth)
    assert search.status_code == 503
    assert search.json()["error"]["code"] == "revocations_unconfirmed"

    assert rt.revocations.refresh()
    assert client.get("/api/v1/keys/self", headers=auth).status_code == 200
    assert client.get("/readyz").status_code == 200
