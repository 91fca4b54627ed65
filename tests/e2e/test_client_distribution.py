"""``searchgate-client`` on its own: installed alone into a fresh virtual environment
(pip fetches httpx from the package index), it talks to a real ``searchgate serve``
process without any of the server's dependencies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess, create_key

pytestmark = pytest.mark.e2e

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "python"
SERVER_ONLY = ("searchgate", "tantivy", "fastapi", "starlette", "sqlalchemy", "boto3", "hvac")

# Runs inside the fresh environment: everything it does goes through searchgate_client.
SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from datetime import timedelta

    import httpx
    from searchgate_client import (
        AsyncSearchgateClient, CachedKey, SearchgateClient, SearchgateError,
        derive_browser_token, from_env,
    )

    url = os.environ["SG_URL"]
    key = CachedKey(from_env("SG_KEY"))
    out = {}
    with SearchgateClient(url, key, system="venv-check") as sg:
        records = [{"id": "1", "title": "Desk lamp", "brand": "Lumo"},
                   {"id": "2", "title": "Lamp shade", "brand": "Shadey"}]
        out["upserted"] = sg.upload_records("shop", records, wait=True)["upserted"]
        out["found"] = sg.search({"collection": "shop", "query": "lamp"})["totalRecordCount"]
        out["self"] = sg.self_info()["name"]
        try:
            sg.search({"collection": "no-such-collection"})
        except SearchgateError as exc:
            out["error"] = [exc.status, exc.code]

    async def typed():
        async with AsyncSearchgateClient(url, key, system="venv-check") as sg:
            sayt = await sg.sayt("shop", "des", productItems=2, searchItems=0)
            return [p["allMeta"]["title"] for p in sayt["result"]["products"]]
    out["sayt"] = asyncio.run(typed())

    token = derive_browser_token(
        key.get(), collections=["shop"], origins=["https://shop.example"],
        ttl=timedelta(minutes=5), scopes=["search"], filter='brand:"Lumo"',
    )
    page = {"Authorization": "Bearer " + token, "Origin": "https://shop.example"}
    r = httpx.post(url + "/api/v1/search", json={"collection": "shop"}, headers=page)
    out["token"] = [r.status_code, r.json().get("totalRecordCount")]
    print(json.dumps(out))
    """
)

# Whether each module imports in the environment, as {name: true|false}.
PROBE = (
    "import importlib.util, json, sys\n"
    "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))\n"
)

NO_TOKENS = textwrap.dedent(
    """
    from datetime import timedelta
    import searchgate_client
    from searchgate_client import derive_browser_token
    from searchgate_client.keyformat import generate_key
    try:
        derive_browser_token(generate_key(), collections=["shop"],
                             origins=["https://shop.example"], ttl=timedelta(minutes=5))
    except ImportError as exc:
        print(exc)
    """
)


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _run(python: Path, code: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(python), "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        # Not the repository: its src/ must not be importable by accident.
        cwd=Path(python).parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "data")
    srv.start()
    yield srv
    srv.stop()


def test_the_client_installs_alone_and_works_against_a_real_server(
    tmp_path: Path, server: ServerProcess
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"

    # A copy: building a wheel writes build/ and *.egg-info/ next to the sources.
    source = tmp_path / "client-src"
    shutil.copytree(
        CLIENT_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    _pip(python, str(source))
    present = json.loads(_run(python, PROBE, "searchgate_client", "httpx", *SERVER_ONLY))
    assert present == {"searchgate_client": True, "httpx": True} | dict.fromkeys(SERVER_ONLY, False)
    # Without the browser-tokens extra the client works, and token derivation says what
    # to install.
    assert "searchgate-client[browser-tokens]" in _run(python, NO_TOKENS)

    _pip(python, f"{source}[browser-tokens]")
    assert json.loads(_run(python, PROBE, *SERVER_ONLY)) == dict.fromkeys(SERVER_ONLY, False)

    server.wait_ready()
    key = create_key(server.data_dir, None, name="venv-client")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"SG_URL": server.url, "SG_KEY": key}
    result = json.loads(_run(python, SCRIPT, env=env))
    assert result == {
        "upserted": 2,
        "found": 2,
        "self": "venv-client",
        "error": [404, "not_found"],
        "sayt": ["Desk lamp"],
        "token": [200, 1],
    }
