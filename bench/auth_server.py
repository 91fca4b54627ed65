"""Bench-only launcher of one Searchgate server process for bench/auth_bench.py.

``--auth real`` serves exactly as ``searchgate serve --workers 1`` does (same factory,
same uvicorn options). ``--auth noop`` is the same process with the data-plane
authenticator replaced, here and never in src/, by one that returns the caller of the
first request (checked once for real) for every later request: no key lookup, no
HMAC, no restriction checks, and no usage recording (the recorder only counts requests
the authenticator marked with a key id).

Run ``python -m bench.auth_server --help``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn

from searchgate.api import auth


def install_noop_authenticator() -> int:
    """Replaces ``authenticate`` in every loaded module that imported it; returns how
    many modules were patched."""
    # The app module imports every route module: all of them are patched.
    importlib.import_module("searchgate.api.app")
    real = auth.authenticate
    callers: dict[tuple[Any, str | None], auth.Caller] = {}

    def noop(
        keys: Any,
        request: Any,
        scope: Any,
        body_key: str | None = None,
        collection: str | None = None,
    ) -> auth.Caller:
        hit = callers.get((scope, collection))
        if hit is None:
            hit = callers[(scope, collection)] = real(keys, request, scope, body_key, collection)
        return hit

    patched = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("searchgate.") and getattr(module, "authenticate", None) is real:
            module.authenticate = noop  # type: ignore[attr-defined]
            patched += 1
    return patched


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="One server process, real or no-op authenticator.")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--auth", choices=["real", "noop"], required=True)
    args = p.parse_args(argv)
    if args.auth == "noop":
        patched = install_noop_authenticator()
        if patched < 2:
            print(f"error: patched only {patched} module(s)", file=sys.stderr)
            return 2
        print(f"no-op authenticator installed in {patched} modules", file=sys.stderr)
    # Settings come from the environment, as in the worker processes of `serve`.
    os.environ["SEARCHGATE_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ["SEARCHGATE_HOST"] = "127.0.0.1"
    os.environ["SEARCHGATE_PORT"] = str(args.port)
    uvicorn.run(
        "searchgate.webapp:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
