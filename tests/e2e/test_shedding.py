"""Load shedding with a real server process: expensive searches from one key do not
hold up /healthz or another key's searches, and a large body is refused without being
read. No answer here is timed: each is awaited (with a generous deadline) and checked."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import orjson
import pytest

from searchgate.demo import demo_settings, generate
from tests.e2e.server import ServerProcess, create_key

pytestmark = pytest.mark.e2e

RECORDS = 12_000
CONNECTIONS = 16
EXPENSIVE = {"query": "", "pageSize": 1000, "sort": [{"field": "title"}], "skip": 8500}
CHEAP = {"query": "headphones", "pageSize": 10}
DEADLINE = 60.0


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str]]:
    server = ServerProcess(tmp_path_factory.mktemp("shedding") / "data")
    server.start()
    try:
        server.wait_ready()
        heavy = create_key(server.data_dir, None, "heavy")
        light = create_key(server.data_dir, None, "light")
        auth = {"Authorization": f"Bearer {light}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=120) as c:
            r = c.put("/api/v1/collections/default", json=demo_settings())
            assert r.status_code in (200, 201), r.text
            products = list(generate(RECORDS))
            for i in range(0, RECORDS, 4000):
                last = i + 4000 >= RECORDS
                r = c.post(
                    "/api/v1/collections/default/records" + ("?wait=true" if last else ""),
                    content=orjson.dumps(products[i : i + 4000]),
                )
                assert r.status_code == 200, r.text
        yield server, heavy, light
    finally:
        server.stop()


def test_expensive_searches_of_one_key_hold_up_no_one_else(
    shop: tuple[ServerProcess, str, str],
) -> None:
    server, heavy, light = shop
    stop = threading.Event()
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def flood() -> None:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {heavy}"}, timeout=120
        ) as c:
            while not stop.is_set():
                r = c.post("/api/v1/search", json=EXPENSIVE)
                code = "ok" if r.status_code == 200 else r.json()["error"]["code"]
                with lock:
                    answers[f"{r.status_code} {code}"] += 1

    threads = [threading.Thread(target=flood) for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    try:
        # The server answers /metrics while expensive searches run (and others wait):
        # they run off the event loop. Polled until seen, with a deadline.
        deadline = time.monotonic() + DEADLINE
        while not searches_in_flight(server):
            assert time.monotonic() < deadline, f"no search seen running; answers: {answers}"
            time.sleep(0.05)
        with httpx.Client(base_url=server.url, timeout=DEADLINE) as c:
            for _ in range(20):
                assert c.get("/healthz").status_code == 200
                r = c.post(
                    "/api/v1/search", json=CHEAP, headers={"Authorization": f"Bearer {light}"}
                )
                assert r.status_code == 200, r.text
                assert r.json()["totalRecordCount"] > 0
    finally:
        stop.set()
        for t in threads:
            t.join(DEADLINE * 2)
    # Each of the heavy key's searches was answered, or refused with a code saying why.
    assert sum(answers.values()) >= CONNECTIONS, answers
    assert set(answers) <= {
        "200 ok",
        "429 too_many_concurrent",
        "503 overloaded",
        "503 time_budget_exceeded",
    }, answers


def searches_in_flight(server: ServerProcess) -> bool:
    r = httpx.get(server.url + "/metrics", timeout=DEADLINE)
    assert r.status_code == 200
    gauges = dict(
        line.rsplit(" ", 1)
        for line in r.text.splitlines()
        if line.startswith("searchgate_searches{")
    )
    running = float(gauges.get('searchgate_searches{state="running"}', 0))
    waiting = float(gauges.get('searchgate_searches{state="waiting"}', 0))
    return running >= 1 and waiting >= 1


def raw_post(server: ServerProcess, headers: dict[str, str], declared: int, send: int) -> bytes:
    """Sends the headers of a POST declaring ``declared`` bytes and ``send`` bytes of
    the body, then reads the answer (the rest of the body is never sent)."""
    lines = [
        "POST /api/v1/search HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {declared}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        if send:
            s.sendall(b'{"pad": "' + b"x" * send)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_a_bad_header_key_is_refused_before_the_body_is_sent(
    shop: tuple[ServerProcess, str, str],
) -> None:
    server, _heavy, _light = shop
    answer = raw_post(
        server, {"Authorization": "Bearer sgk_" + "0" * 38}, declared=60 * 2**20, send=0
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_a_keyless_body_is_refused_once_past_the_search_limit(
    shop: tuple[ServerProcess, str, str],
) -> None:
    server, _heavy, _light = shop
    # Within the server's whole-body limit as declared, past the search limit as sent:
    # the answer comes while the client still owes most of the body.
    answer = raw_post(server, {}, declared=2**20, send=100 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()


def test_a_declared_length_past_the_search_limit_is_refused_unread(
    shop: tuple[ServerProcess, str, str],
) -> None:
    server, _heavy, light = shop
    answer = raw_post(server, {"Authorization": f"Bearer {light}"}, declared=2**20, send=0)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
