"""The client distribution in a fresh interpreter: each public name imports on its own,
a star import gets them all, and importing it loads no server module."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.test_sdk_keys import PUBLIC_API


def _python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_each_public_name_imports_alone_and_a_star_import_gets_them_all() -> None:
    code = (
        "import sys\n"
        "for name in sys.argv[1:]:\n"
        "    exec(f'from searchgate_client import {name}')\n"
        "namespace = {}\n"
        "exec('from searchgate_client import *', namespace)\n"
        "print(sorted(n for n in namespace if n != '__builtins__'))\n"
    )
    assert _python(code, *PUBLIC_API).strip() == str(sorted(PUBLIC_API))


def test_the_sdk_imports_without_any_server_module() -> None:
    code = (
        "import sys, searchgate_client\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('searchgate', 'searchgate_client', 'fastapi', 'starlette', 'sqlalchemy', "
        "'pydantic', 'alembic', 'tantivy', 'hvac', 'boto3', 'uvicorn', 'jinja2', 'typer'))))\n"
    )
    assert set(_python(code).split()) == {
        "searchgate_client",
        "searchgate_client._client",
        "searchgate_client._errors",
        "searchgate_client._keys",
        "searchgate_client._types",
        "searchgate_client._version",
        "searchgate_client.browser_tokens",
        "searchgate_client.keyformat",
        "searchgate_client.sources",
    }
