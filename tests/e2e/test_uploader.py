"""``searchgate-upload`` against a real ``searchgate serve`` process: the three file
formats, the report of refused records and the exit codes, kills at random moments and
re-runs, a storm of 429s, and a key rotated (the old key deleted) while it runs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ServerProcess, create_key, run_cli

pytestmark = pytest.mark.e2e

UPLOADER = [sys.executable, "-m", "searchgate_client.upload"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("uploader")
    srv = ServerProcess(root / "data")
    srv.data_dir.mkdir(parents=True)
    # The first key is the primary: the keys the tests delete are ordinary ones.
    srv.primary = create_key(srv.data_dir, None, "primary")  # type: ignore[attr-defined]
    srv.start()
    srv.wait_ready()
    yield srv
    srv.stop()


def key_of(server: ServerProcess) -> str:
    key: str = server.primary  # type: ignore[attr-defined]
    return key


def upload(
    server: ServerProcess,
    file: Path,
    *args: str,
    key: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], str]:
    """Runs the uploader to its end: exit code, JSON report, standard error."""
    environ = {**os.environ, "SEARCHGATE_CLIENT_KEY": key or key_of(server), **(env or {})}
    done = subprocess.run(
        [*UPLOADER, str(file), "--server", server.url, "--json", "--quiet", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"no report (exit {done.returncode}):\n{done.stderr}") from None
    return done.returncode, report, done.stderr


def api(server: ServerProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key_of(server)}"}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def record(server: ServerProcess, collection: str, rid: str) -> dict[str, Any]:
    r = api(server, "GET", f"/api/v1/collections/{collection}/records/{rid}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def count(server: ServerProcess, collection: str) -> int:
    r = api(server, "GET", f"/api/v1/collections/{collection}")
    assert r.status_code == 200, r.text
    n: int = r.json()["recordCount"]
    return n


def searchable_ids(server: ServerProcess, collection: str, expected: list[str]) -> list[str]:
    """The ids of ``expected`` that search finds, once the collection's searchable
    total is checked to be exactly theirs (search pages stop at skip + pageSize 10,000:
    the ids are looked for 1,000 at a time instead)."""
    body: dict[str, Any] = {"collection": collection, "pageSize": 0}
    r = api(server, "POST", "/api/v1/search", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["totalRecordCount"] == len(expected)
    ids: list[str] = []
    for i in range(0, len(expected), 1000):
        batch = expected[i : i + 1000]
        body = {
            "collection": collection,
            "pageSize": 1000,
            "fields": ["id"],
            "biasing": {"restrictToIds": batch},
        }
        r = api(server, "POST", "/api/v1/search", json=body)
        assert r.status_code == 200, r.text
        ids.extend(rec["_id"] for rec in r.json()["records"])
    return ids


def write_ndjson(path: Path, n: int, start: int = 0) -> list[dict[str, Any]]:
    records = [
        {"id": f"p{i}", "title": f"Product {i}", "price": i % 97 + 0.5, "brand": f"b{i % 7}"}
        for i in range(start, start + n)
    ]
    with path.open("w") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    return records


def test_uploads_csv_json_and_ndjson(server: ServerProcess, tmp_path: Path) -> None:
    csv_file = tmp_path / "lamps.csv"
    csv_file.write_text(
        "id,title,price,tags,code\n"
        "1,Desk lamp,19.5,office|desk,007\n"
        '2,"Floor lamp, tall","120",living,010\n'
        '3,"Lamp with a\nlong name",7,,\n'
    )
    code, report, err = upload(server, csv_file, "--collection", "csvshop", "--wait")
    assert code == 0, err
    assert (report["records"], report["upserted"], report["invalidRecordCount"]) == (3, 3, 0)
    assert record(server, "csvshop", "1") == {
        "id": 1,
        "title": "Desk lamp",
        "price": 19.5,
        "tags": ["office", "desk"],
        "code": "007",
    }
    assert record(server, "csvshop", "3")["title"] == "Lamp with a\nlong name"

    json_file = tmp_path / "shop.json"
    pretty = [{"id": f"j{i}", "title": f"Chair {i}", "size": {"w": i}} for i in range(25)]
    json_file.write_text(json.dumps(pretty, indent=2))
    code, report, err = upload(
        server, json_file, "--collection", "jsonshop", "--batch-records", "7", "--wait"
    )
    assert code == 0, err
    assert (report["records"], report["upserted"], report["batches"]) == (25, 25, 4)
    assert record(server, "jsonshop", "j24") == pretty[24]
    assert count(server, "jsonshop") == 25

    nd_file = tmp_path / "shop.ndjson"
    records = write_ndjson(nd_file, 120)
    code, report, err = upload(
        server, nd_file, "--collection", "ndshop", "--batch-records", "50", "--wait"
    )
    assert code == 0, err
    assert (report["records"], report["upserted"], report["batches"]) == (120, 120, 3)
    expected = [r["id"] for r in records]
    assert sorted(searchable_ids(server, "ndshop", expected)) == sorted(expected)
    assert record(server, "ndshop", "p77") == records[77]


def test_refused_records_are_reported_with_line_and_field(
    server: ServerProcess, tmp_path: Path
) -> None:
    nd_file = tmp_path / "mixed.ndjson"
    deep: Any = 1
    for _ in range(40):
        deep = {"d": deep}
    lines = [
        json.dumps({"id": "a1", "title": "Good"}),
        json.dumps({"id": "a2", "title": "Good too"}),
        "{not json",
        "",
        json.dumps({"title": "no id"}),
        json.dumps({"id": "a3", "title": "Deep", "extra": deep}),
        json.dumps({"id": "a4", "title": "Last"}),
    ]
    nd_file.write_text("\n".join(lines) + "\n")
    code, report, err = upload(
        server, nd_file, "--collection", "mixed", "--batch-records", "2", "--wait"
    )
    assert code == 3, err
    assert report["upserted"] == 3
    assert report["invalidRecordCount"] == 3
    by_line = {d["line"]: d for d in report["invalidRecords"]}
    assert sorted(by_line) == [3, 5, 6]
    assert "JSON" in by_line[3]["reason"]
    assert by_line[5]["field"] == "id"
    assert by_line[6]["field"].startswith("extra")
    assert by_line[6]["id"] == "a3"

    # The text report names them too, line and field.
    done = subprocess.run(
        [*UPLOADER, str(nd_file), "--server", server.url, "--collection", "mixed", "--quiet"],
        env={**os.environ, "SEARCHGATE_CLIENT_KEY": key_of(server)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3
    assert "line 5: field id:" in done.stdout

    csv_file = tmp_path / "mixed.csv"
    csv_file.write_text("id,title\n1,One\n2,Two,extra\n\n3,Three\n")
    code, report, err = upload(server, csv_file, "--collection", "mixedcsv", "--batch-records", "2")
    assert code == 3, err
    assert [(d["line"], d["reason"]) for d in report["invalidRecords"]] == [
        (3, "expected 2 columns, found 3")
    ]
    assert report["upserted"] == 2

    json_file = tmp_path / "mixed.json"
    json_file.write_text('[\n {"id": "x1"},\n {"name": "no id"},\n {"id": "x2"}\n]\n')
    code, report, err = upload(server, json_file, "--collection", "mixedjson")
    assert code == 3, err
    assert [(d["line"], d["index"], d["field"]) for d in report["invalidRecords"]] == [(3, 1, "id")]

    broken = tmp_path / "broken.json"
    broken.write_text('[\n {"id": "y1"},\n {"id": "y2",,}\n]\n')
    code, report, err = upload(server, broken, "--collection", "broken")
    assert code == 1
    assert report["error"].startswith("line 3:")


def checkpoint_batches(state: Path) -> int:
    files = list(state.glob("*.jsonl"))
    if not files:
        return 0
    return max(0, files[0].read_bytes().count(b"\n") - 1)


def start_upload(
    url: str, file: Path, state: Path, *args: str, env: dict[str, str]
) -> subprocess.Popen[str]:
    """The uploader as its own process with a JSON report, left running."""
    return subprocess.Popen(
        [*UPLOADER, str(file), "--server", url, "--state", str(state), "--json", "--quiet", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_batches(proc: subprocess.Popen[str], state: Path, batches: int) -> None:
    """Until the checkpoint holds ``batches`` acknowledged batches, the upload still running."""
    deadline = time.monotonic() + 120
    while checkpoint_batches(state) < batches:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_killed_three_times_and_rerun_uploads_exactly_the_file(
    server: ServerProcess, tmp_path: Path
) -> None:
    big = tmp_path / "big.ndjson"
    records = write_ndjson(big, 50_000)
    state = tmp_path / "state"
    args = [
        *UPLOADER,
        str(big),
        "--server",
        server.url,
        "--collection",
        "big",
        "--batch-records",
        "1000",
        "--state",
        str(state),
        "--quiet",
    ]
    env = {**os.environ, "SEARCHGATE_CLIENT_KEY": key_of(server)}
    rng = random.Random()
    # At least 15 of the 50 batches left after the last target: the kill must find the
    # uploader still running (6 batches take under 0.3 s on a quiet machine).
    targets = sorted(rng.sample(range(1, 36), 3))
    for target in targets:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while checkpoint_batches(state) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "the uploader made no progress"
            time.sleep(0.02)
        # Anywhere in the send/acknowledge/checkpoint cycle, not just after a write.
        time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    before = checkpoint_batches(state)
    assert before >= targets[-1]

    code, report, err = upload(
        server,
        big,
        "--collection",
        "big",
        "--batch-records",
        "1000",
        "--state",
        str(state),
        "--wait",
    )
    assert code == 0, err
    assert report["resumedBatches"] == before
    assert (report["records"], report["upserted"], report["batches"]) == (50_000, 50_000, 50)
    assert count(server, "big") == 50_000
    ids = searchable_ids(server, "big", [r["id"] for r in records])
    assert len(ids) == 50_000
    assert set(ids) == {r["id"] for r in records}
    for i in rng.sample(range(50_000), 20):
        assert record(server, "big", f"p{i}") == records[i]

    # Once done, the same command sends nothing.
    code, again, err = upload(
        server, big, "--collection", "big", "--batch-records", "1000", "--state", str(state)
    )
    assert code == 0, err
    assert (again["resumedBatches"], again["records"]) == (50, 50_000)


def test_a_429_storm_is_ridden_out(server: ServerProcess, tmp_path: Path) -> None:
    out = run_cli(
        server.data_dir,
        None,
        "keys",
        "create",
        "--name",
        "storm",
        "--all-scopes",
        "--rate",
        "120/min",
        "--json",
    )
    limited = json.loads(out)["secret"]
    nd_file = tmp_path / "storm.ndjson"
    records = write_ndjson(nd_file, 1500)
    code, report, err = upload(
        server,
        nd_file,
        "--collection",
        "storm",
        "--batch-records",
        "10",
        "--system",
        "catalog-feed",
        key=limited,
    )
    assert code == 0, err
    assert report["retries"]["429"] > 0
    assert (report["records"], report["upserted"]) == (1500, 1500)
    assert count(server, "storm") == len(records)

    # --system was sent with every call: the key's usage names it.
    deadline = time.monotonic() + 60
    while True:
        usage = json.loads(run_cli(server.data_dir, None, "keys", "usage", "storm", "--json"))
        systems = {s["system"]: s["requests"] for s in usage["systems"]}
        if systems.get("catalog-feed", 0) >= 150:
            break
        assert time.monotonic() < deadline, systems
        time.sleep(0.5)
    assert set(systems) == {"catalog-feed"}


def test_a_401_after_the_key_is_rotated_rereads_the_key_file_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    old = json.loads(
        run_cli(
            server.data_dir, None, "keys", "create", "--name", "feed-old", "--all-scopes", "--json"
        )
    )["secret"]
    key_file = tmp_path / "client-key"
    key_file.write_text(old + "\n")
    nd_file = tmp_path / "rotated.ndjson"
    records = write_ndjson(nd_file, 5000)
    state = tmp_path / "state"
    proc = start_upload(
        server.url,
        nd_file,
        state,
        *("--collection", "rotated", "--batch-records", "100"),
        *("--store", "file", "--path", str(key_file)),
        env={k: v for k, v in os.environ.items() if k != "SEARCHGATE_CLIENT_KEY"},
    )
    try:
        wait_for_batches(proc, state, 2)
        proc.send_signal(signal.SIGSTOP)
        new = json.loads(
            run_cli(
                server.data_dir,
                None,
                "keys",
                "create",
                "--name",
                "feed-new",
                "--all-scopes",
                "--json",
            )
        )["secret"]
        key_file.write_text(new + "\n")
        run_cli(
            server.data_dir, None, "keys", "delete", "feed-old", "--confirm", "feed-old", "--force"
        )
        deadline = time.monotonic() + 30
        while (
            httpx.get(
                server.url + "/api/v1/keys/self", headers={"Authorization": f"Bearer {old}"}
            ).status_code
            != 401
        ):
            assert time.monotonic() < deadline, "the deleted key is still accepted"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGCONT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    report = json.loads(stdout)
    # Read at the start, and once more at the 401.
    assert report["keyReads"] == 2
    assert (report["records"], report["upserted"]) == (5000, 5000)
    assert count(server, "rotated") == len(records)


def staged_batches(state: Path) -> int:
    """Batches a --replace run's checkpoint holds (its replacement's line aside)."""
    files = list(state.glob("*.jsonl"))
    if not files:
        return 0
    return files[0].read_bytes().count(b'"batch":')


def search_ids(
    srv: ServerProcess, key: str, collection: str, query: str = ""
) -> tuple[int, set[str]]:
    body = {"collection": collection, "query": query, "pageSize": 1000, "fields": ["id"]}
    r = httpx.post(
        f"{srv.url}/api/v1/search",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return int(r.json()["totalRecordCount"]), {rec["_id"] for rec in r.json()["records"]}


def test_replace_of_a_file_larger_than_a_request_killed_and_rerun(tmp_path: Path) -> None:
    limit = 256 * 1024
    srv = ServerProcess(tmp_path / "data", env={"SEARCHGATE_LIMIT_MAX_BODY_BYTES": str(limit)})
    srv.data_dir.mkdir(parents=True)
    key = create_key(srv.data_dir, None, "replacer")
    srv.start()
    try:
        srv.wait_ready()
        env = {**os.environ, "SEARCHGATE_CLIENT_KEY": key}
        old = tmp_path / "old.ndjson"
        old_records = write_ndjson(old, 800)
        done = subprocess.run(
            [*UPLOADER, str(old), "--server", srv.url, "--collection", "swap", "--wait", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        old_ids = {r["id"] for r in old_records}

        new = tmp_path / "new.ndjson"
        # Below the search's result window (10,000), so that every id can be read back.
        new_records = write_ndjson(new, 9_600, start=100_000)
        assert new.stat().st_size > 2 * limit
        # One request cannot carry it: the server refuses the single-request replace.
        r = httpx.post(
            f"{srv.url}/api/v1/collections/swap/records?mode=replace",
            content=new.read_bytes(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
            timeout=60,
        )
        assert r.status_code == 413, r.text

        state = tmp_path / "state"
        # Small batches, so that the kills fall well before the commit.
        args = ["--collection", "swap", "--replace", "--batch-records", "100"]
        rng = random.Random()
        open_at_kill = []
        for target in sorted(rng.sample(range(1, 40), 2)):
            proc = start_upload(srv.url, new, state, *args, env=env)
            deadline = time.monotonic() + 300
            while staged_batches(state) < target and proc.poll() is None:
                assert time.monotonic() < deadline, "the uploader made no progress"
                time.sleep(0.02)
            # Anywhere in the stage/acknowledge/checkpoint cycle; stopped first, so that
            # what the server holds at the kill can be looked at.
            time.sleep(rng.uniform(0, 0.05))
            proc.send_signal(signal.SIGSTOP)
            head = next(state.glob(".*.jsonl")).read_bytes().split(b"\n")[1]
            rid = json.loads(head)["replacement"]
            r = httpx.get(
                f"{srv.url}/api/v1/collections/swap/replacements/{rid}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            open_at_kill.append(r.json()["state"] == "open")
            if open_at_kill[-1]:
                # Searches during the replace see the old catalog, whole.
                assert search_ids(srv, key, "swap") == (len(old_ids), old_ids)
            proc.send_signal(signal.SIGKILL)
            # A run that committed before it was stopped may have ended already.
            assert proc.wait(timeout=30) == -signal.SIGKILL or not open_at_kill[-1]
        # Stopped at most 39 of 96 batches in: still staging.
        assert open_at_kill[0]
        before = staged_batches(state)

        proc = start_upload(srv.url, new, state, *args, "--wait", env=env)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        report = json.loads(stdout)
        assert report["resumedBatches"] == before
        assert report["committed"] is True
        assert (report["records"], report["upserted"], report["batches"]) == (9_600, 9_600, 96)
        r = httpx.get(
            f"{srv.url}/api/v1/collections/swap",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert r.json()["recordCount"] == 9_600
        ids: list[str] = []
        for skip in range(0, 9_600, 1000):
            body = {"collection": "swap", "pageSize": 1000, "skip": skip, "fields": ["id"]}
            r = httpx.post(
                f"{srv.url}/api/v1/search",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            ids.extend(rec["_id"] for rec in r.json()["records"])
        assert len(ids) == 9_600
        assert set(ids) == {rec["id"] for rec in new_records}

        # Re-running the finished replace sends and commits nothing again.
        proc = start_upload(srv.url, new, state, *args, env=env)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert json.loads(stdout)["resumedBatches"] == 96
    finally:
        srv.stop()


def test_replace_restart_aborts_the_earlier_replacement_and_a_lost_one_is_named(
    server: ServerProcess, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.ndjson"
    records = write_ndjson(feed, 6000)
    state = tmp_path / "state"
    args = ["--collection", "restarted", "--replace", "--batch-records", "100"]
    env = {**os.environ, "SEARCHGATE_CLIENT_KEY": key_of(server)}
    proc = start_upload(server.url, feed, state, *args, env=env)
    while staged_batches(state) < 2:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    first = json.loads(next(state.glob(".*.jsonl")).read_bytes().split(b"\n")[1])["replacement"]

    # Its checkpoint lost: the open replacement is named, nothing is sent.
    code, report, _ = upload(server, feed, *args, "--state", str(tmp_path / "elsewhere"))
    assert code == 1
    assert first in report["error"]

    # --restart aborts it and replaces the collection from the whole file.
    code, report, err = upload(server, feed, *args, "--state", str(state), "--restart", "--wait")
    assert code == 0, err
    assert (report["resumedBatches"], report["upserted"], report["committed"]) == (0, 6000, True)
    assert report["replacement"] != first
    assert (
        api(server, "GET", f"/api/v1/collections/restarted/replacements/{first}").status_code == 404
    )
    assert count(server, "restarted") == len(records)


def test_replace_refuses_an_empty_file(server: ServerProcess, tmp_path: Path) -> None:
    first = tmp_path / "v1.ndjson"
    write_ndjson(first, 300)
    code, _, err = upload(server, first, "--collection", "keep")
    assert code == 0, err
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    code, report, _ = upload(server, empty, "--collection", "keep", "--replace")
    assert code == 1
    assert "holds no records" in report["error"]
    assert count(server, "keep") == 300


def test_a_server_killed_mid_upload_is_waited_for(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data")
    srv.data_dir.mkdir(parents=True)
    key = create_key(srv.data_dir, None, "crash")
    srv.start()
    try:
        srv.wait_ready()
        nd_file = tmp_path / "crash.ndjson"
        records = write_ndjson(nd_file, 20_000)
        state = tmp_path / "state"
        proc = start_upload(
            srv.url,
            nd_file,
            state,
            *("--collection", "crash", "--batch-records", "200"),
            env={**os.environ, "SEARCHGATE_CLIENT_KEY": key},
        )
        wait_for_batches(proc, state, 5)
        # A crash with a batch in flight: committed or not, it is sent again.
        srv.kill()
        srv.start()
        srv.wait_ready()
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        report = json.loads(stdout)
        assert report["retries"]["network"] + report["retries"]["5xx"] > 0
        assert (report["records"], report["upserted"], report["resumedBatches"]) == (
            20_000,
            20_000,
            0,
        )
        r = httpx.get(
            f"{srv.url}/api/v1/collections/crash",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert r.json()["recordCount"] == len(records)
    finally:
        srv.stop()


def test_one_run_of_an_upload_at_a_time_and_a_changed_file_starts_anew(
    server: ServerProcess, tmp_path: Path
) -> None:
    nd_file = tmp_path / "feed.ndjson"
    write_ndjson(nd_file, 3000)
    state = tmp_path / "state"
    args = ["--collection", "feed", "--batch-records", "100"]
    first = start_upload(
        server.url,
        nd_file,
        state,
        *args,
        env={**os.environ, "SEARCHGATE_CLIENT_KEY": key_of(server)},
    )
    args += ["--state", str(state)]
    try:
        wait_for_batches(first, state, 1)
        first.send_signal(signal.SIGSTOP)
        code, report, _ = upload(server, nd_file, *args)
        assert code == 1
        assert "another run of this upload" in report["error"]
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, _ = first.communicate(timeout=300)
    assert first.returncode == 0
    assert json.loads(stdout)["records"] == 3000
    old_checkpoint = next(state.glob("*.jsonl"))

    # A new export under the same name: a new upload, and the old checkpoint goes.
    write_ndjson(nd_file, 500, start=5000)
    code, report, err = upload(server, nd_file, *args)
    assert code == 0, err
    assert (report["resumedBatches"], report["records"]) == (0, 500)
    assert [p.name for p in state.glob("*.jsonl")] == [Path(report["state"]).name]
    assert not old_checkpoint.exists()
    assert count(server, "feed") == 3500
