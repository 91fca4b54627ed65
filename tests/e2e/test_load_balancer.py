"""Two ``searchgate serve`` nodes on one PostgreSQL behind a real nginx, configured with
deploy/nginx/searchgate.conf.template rendered as docs/deployment.md says (envsubst).

nginx reaches the nodes from its own address (127.0.0.3, as a load balancer on another
machine would), and the nodes trust X-Forwarded-For from that address only
(SEARCHGATE_FORWARDED_ALLOW_IPS). Clients come from yet other addresses (127.0.0.5,
127.0.0.6), so a key's IP range can tell the client from nginx.

- searches (POST search and GET SAYT) through nginx keep succeeding while node A is
  stopped with SIGTERM and started again, and A takes requests again afterwards;
- a node marked ``down`` in the site file (docs/deployment.md, to keep a restarting
  node out until it is ready) gets no request until it is put back;
- an upload through nginx is searchable through nginx;
- a key restricted to the client's address works through nginx, from another address
  it does not (whatever X-Forwarded-For that client sends), and a key restricted to
  nginx's own address does not work through it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests import pg
from tests.e2e.cluster import COLLECTION, Cluster, Node, start_cluster, wait_until, word
from tests.e2e.server import stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "searchgate.conf.template"
# The variables docs/deployment.md names to envsubst (nginx's own $variables stay).
VARIABLES = "$SEARCHGATE_LISTEN $SEARCHGATE_LB_ADDRESS $SEARCHGATE_NODE_A $SEARCHGATE_NODE_B"
LB_ADDRESS = "127.0.0.3"  # where nginx connects to the nodes from
CLIENT = "127.0.0.5"  # a shopper's storefront server
OTHER_CLIENT = "127.0.0.6"
NGINX = "/usr/sbin/nginx"
PROPAGATION_DEADLINE = 5.0  # as in tests/e2e/test_multinode.py


def render(listen: str, node_a: str, node_b: str) -> str:
    """The site file, rendered with the command docs/deployment.md shows."""
    envsubst = shutil.which("envsubst")
    assert envsubst, "envsubst not installed (scripts/system-deps installs gettext-base)"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SEARCHGATE_LISTEN": listen,
        "SEARCHGATE_LB_ADDRESS": LB_ADDRESS,
        "SEARCHGATE_NODE_A": node_a,
        "SEARCHGATE_NODE_B": node_b,
    }
    done = subprocess.run(
        [envsubst, VARIABLES],
        input=TEMPLATE.read_text(),
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout


class Nginx:
    """nginx in the foreground with its own prefix: the site file inside the http {}
    block of a small main file, as a distribution's nginx.conf includes conf.d/."""

    def __init__(self, prefix: Path, port: int, site: str) -> None:
        self.prefix = prefix
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "searchgate.conf").write_text(site)
        # Workers of an nginx started as root would run as nobody, who cannot write to
        # the test's private temporary folder.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temps = "".join(
            f"{kind}_temp_path {prefix / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "log_format upstreams '$request_method $uri $status $upstream_addr';\n"
            f"access_log {prefix / 'access.log'} upstreams;\n"
            f"{temps}include {prefix / 'searchgate.conf'};\n"
            "}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = str(self.prefix / "nginx.conf")
        base = [NGINX, "-e", str(self.prefix / "error.log"), "-p", str(self.prefix), "-c", conf]
        check = subprocess.run([*base, "-t"], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            [*base, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def answers() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.error_log()
            try:
                httpx.get(self.url + "/healthz", timeout=5)
            except httpx.TransportError:
                return False
            return True

        wait_until(answers, 30, "nginx answers")

    def reload(self, site: str) -> None:
        """A changed site file, taken up as an operator's ``nginx -s reload`` does."""
        (self.prefix / "searchgate.conf").write_text(site)
        conf = str(self.prefix / "nginx.conf")
        base = [NGINX, "-e", str(self.prefix / "error.log"), "-p", str(self.prefix), "-c", conf]
        done = subprocess.run([*base, "-s", "reload"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def upstreams(self) -> list[str]:
        """The node address of every request nginx passed on, in order (a retried
        request names both, comma-separated)."""
        # The last line may be half written while requests go on: complete lines only.
        lines = (self.prefix / "access.log").read_text().split("\n")[:-1]
        return [line.split(" ", 3)[3] for line in lines]

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Setup:
    cluster: Cluster
    nginx: Nginx


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    if not pg.available():
        pytest.skip("PostgreSQL 15 is not installed (scripts/system-deps installs it)")
    if not os.path.exists(NGINX):
        message = "nginx is not installed (scripts/system-deps installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    base = tmp_path_factory.mktemp("lb")
    cluster = start_cluster(base, count=2, extra={"SEARCHGATE_FORWARDED_ALLOW_IPS": LB_ADDRESS})
    a, b = cluster.nodes
    port = pg.free_port()
    site = render(f"127.0.0.1:{port}", f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}")
    nginx = Nginx(base / "nginx", port, site)
    try:
        nginx.start()
        yield Setup(cluster, nginx)
    finally:
        nginx.stop()
        cluster.stop()
        cluster.server.stop()


def client(source: str) -> httpx.Client:
    """A client whose connections come from ``source``."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30)


@dataclass
class Shoppers:
    """Searches through nginx without pause (POST search and GET SAYT, in turn), in a
    few threads, recording every status (0: no answer)."""

    url: str
    auth: dict[str, str]
    threads: int = 3
    statuses: list[tuple[str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        with client(CLIENT) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    if n % 2:
                        r = http.post(
                            self.url + "/api/v1/search",
                            json={"collection": COLLECTION, "query": "lamp", "pageSize": 5},
                            headers=self.auth,
                        )
                    else:
                        r = http.get(
                            self.url + "/api/v1/sayt/search",
                            params={"collection": COLLECTION, "query": "la"},
                            headers=self.auth,
                        )
                    self.statuses.append((r.request.method, r.status_code))
                except httpx.HTTPError:
                    self.statuses.append(("?", 0))
                self.stop.wait(0.01)

    def __enter__(self) -> Shoppers:
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def wait_for(self, more: int) -> None:
        target = len(self.statuses) + more
        wait_until(lambda: len(self.statuses) >= target, 60, f"{more} more searches")


def upload_through(setup: Setup, records: list[dict[str, str]]) -> None:
    with client(CLIENT) as http:
        r = http.post(
            f"{setup.nginx.url}/api/v1/collections/{COLLECTION}/records?wait=true",
            json=records,
            headers=setup.cluster.auth,
        )
    assert r.status_code == 200, r.text


def count_through(setup: Setup, query: str) -> int:
    with client(CLIENT) as http:
        r = http.post(
            f"{setup.nginx.url}/api/v1/search",
            json={"collection": COLLECTION, "query": query, "pageSize": 0},
            headers=setup.cluster.auth,
        )
    assert r.status_code == 200, r.text
    total: int = r.json()["totalRecordCount"]
    return total


def test_an_upload_through_nginx_is_searchable_through_nginx(setup: Setup) -> None:
    unique = word("balanced", 1)
    upload_through(setup, [{"id": "lb-1", "title": f"{unique} lamp"}])
    # Round robin: consecutive searches reach both nodes. ``?wait=true`` is meant to
    # answer once every live node has it; a bound here keeps this test about nginx.
    wait_until(
        lambda: [count_through(setup, unique) for _ in range(4)] == [1] * 4,
        PROPAGATION_DEADLINE,
        "the upload searchable through nginx on both nodes",
    )
    nodes = set(setup.nginx.upstreams()[-4:])
    assert len(nodes) == 2, nodes


def test_searches_go_on_while_a_node_is_stopped_and_started(setup: Setup) -> None:
    a: Node = setup.cluster.nodes[0]
    a_addr = f"127.0.0.1:{a.port}"
    with Shoppers(setup.nginx.url, setup.cluster.auth) as shoppers:
        shoppers.wait_for(30)
        a.stop()  # SIGTERM: uvicorn finishes what it has, then closes
        shoppers.wait_for(60)
        a.start()
        a.wait_ready(timeout=90)
        mark = len(setup.nginx.upstreams())

        def a_serves_again() -> bool:
            return any(u == a_addr for u in setup.nginx.upstreams()[mark:])

        # nginx tries a failed node again after fail_timeout (10 s).
        wait_until(a_serves_again, 40, "node A takes requests again")
        shoppers.wait_for(30)
    failed = [(m, s) for m, s in shoppers.statuses if s != 200]
    assert failed == [], failed[:20]
    methods = {m for m, _ in shoppers.statuses}
    assert methods == {"POST", "GET"}


def key_with_ip_range(setup: Setup, ip_range: str) -> dict[str, str]:
    a = setup.cluster.nodes[0]
    out = a.cli(
        "keys",
        "create",
        "--name",
        f"ip {ip_range}",
        "--scope",
        "search",
        "--ip",
        ip_range,
        "--json",
    )
    return {"Authorization": f"Bearer {json.loads(out)['secret']}"}


def keys_self(source: str, url: str, headers: dict[str, str]) -> httpx.Response:
    with client(source) as http:
        return http.get(url + "/api/v1/keys/self", headers=headers)


def test_a_keys_ip_range_sees_the_client_through_nginx_not_nginx(setup: Setup) -> None:
    url = setup.nginx.url
    mine = key_with_ip_range(setup, f"{CLIENT}/32")
    for _ in range(2):  # both nodes, in turn
        r = keys_self(CLIENT, url, mine)
        assert r.status_code == 200, r.text
    refused = keys_self(OTHER_CLIENT, url, mine)
    assert refused.status_code in (401, 403), refused.text
    # A client cannot claim another address: nginx replaces X-Forwarded-For.
    spoofed = keys_self(OTHER_CLIENT, url, {**mine, "X-Forwarded-For": CLIENT})
    assert spoofed.status_code == refused.status_code, spoofed.text
    # nginx's own address is not the client's.
    theirs = key_with_ip_range(setup, f"{LB_ADDRESS}/32")
    r = keys_self(CLIENT, url, theirs)
    assert r.status_code == refused.status_code, r.text


def test_bodies_over_searchgates_limits_are_refused_by_nginx_with_its_error_body(
    setup: Setup,
) -> None:
    with client(CLIENT) as http:
        r = http.post(
            f"{setup.nginx.url}/api/v1/search",
            content=b'{"query": "' + b"x" * 70_000 + b'"}',
            headers={**setup.cluster.auth, "Content-Type": "application/json"},
        )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"


def test_a_node_marked_down_gets_no_request_until_it_is_put_back(setup: Setup) -> None:
    a = setup.cluster.nodes[0]
    a_addr = f"127.0.0.1:{a.port}"
    site = (setup.nginx.prefix / "searchgate.conf").read_text()
    down = site.replace(f"server {a_addr} ", f"server {a_addr} down ")
    assert down != site
    nginx = setup.nginx
    with Shoppers(nginx.url, setup.cluster.auth) as shoppers:
        shoppers.wait_for(10)
        nginx.reload(down)

        def only_b(mark: int) -> bool:
            shoppers.wait_for(20)
            return a_addr not in " ".join(nginx.upstreams()[mark:])

        # The workers that read the old file finish their connections first.
        wait_until(lambda: only_b(len(nginx.upstreams())), 30, "A marked down")
        mark = len(nginx.upstreams())
        a.stop()
        a.start()
        a.wait_ready(timeout=90)
        assert a_addr not in " ".join(nginx.upstreams()[mark:])
        nginx.reload(site)
        wait_until(lambda: a_addr in " ".join(nginx.upstreams()[mark:]), 30, "A back in nginx")
    failed = [(m, st) for m, st in shoppers.statuses if st != 200]
    assert failed == [], failed[:20]
