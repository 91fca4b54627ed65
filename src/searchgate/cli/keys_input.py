"""Parsing what people type at ``searchgate keys``: durations, expiries, rates, scopes,
and the client key for ``derive`` (never from an argument)."""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime
from pathlib import Path

import typer

from searchgate.durations import looks_like_duration, parse_duration
from searchgate.errors import InvalidInput
from searchgate.keys.restrictions import Restrictions
from searchgate.keys.scopes import Scope

CLIENT_KEY_ENV = "SEARCHGATE_CLIENT_KEY"
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(min|m|s))?\s*$")


def parse_expiry(text: str, now: datetime) -> datetime:
    """An ISO 8601 time, or a duration from now."""
    if looks_like_duration(text):
        return now + parse_duration(text, "expires")
    at = Restrictions.build(expires_at=text).expires_at
    assert at is not None
    return at


def parse_rate(text: str) -> int:
    """Requests per minute from ``600``, ``600/min`` or ``10/s``."""
    m = _RATE.match(text)
    if not m:
        raise InvalidInput(
            f"{text!r} is not a rate: write N/min (or N/s), like 600/min", field="rate"
        )
    # Restrictions checks the range; this only keeps the number a sane size.
    return min(int(m.group(1)[:12]), 10**12) * (60 if m.group(2) == "s" else 1)


def parse_scopes(names: list[str]) -> frozenset[Scope]:
    known = {s.value: s for s in Scope}
    for n in names:
        if n not in known:
            raise InvalidInput(f"unknown scope {n!r} (scopes: {', '.join(known)})", field="scope")
    return frozenset(known[n] for n in names)


def read_client_key(key_file: Path | None) -> str:
    if key_file is not None:
        try:
            lines = key_file.read_text().splitlines()
        except OSError as exc:
            raise InvalidInput(
                f"cannot read --key-file {str(key_file)!r}: {exc.strerror}", field="keyFile"
            ) from None
        return lines[0].strip() if lines else ""
    from_env = os.environ.get(CLIENT_KEY_ENV, "").strip()
    if from_env:
        return from_env
    if sys.stdin.isatty():
        return str(typer.prompt("Client key", hide_input=True, err=True)).strip()
    return sys.stdin.readline().strip()
