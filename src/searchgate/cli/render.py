"""What ``searchgate store render`` does besides reading the store: render a template
into a private file, derive browser tokens for it, run a command after each change,
and watch the store with a floor on the interval and backoff on failures."""

from __future__ import annotations

import os
import random
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

from jinja2 import Environment, StrictUndefined, TemplateError
from rich.markup import escape

from searchgate.cli.common import console
from searchgate.durations import format_duration, parse_duration
from searchgate.errors import SearchgateError
from searchgate.secretstores import SecretStore, StoreError, StoreNotFound
from searchgate_client.browser_tokens import derive_browser_token

# A watch reads the store at most this often, and after failures backs off to at most
# one read per cap: a store that is down is not hammered by every host that renders.
WATCH_FLOOR_SECONDS = 0.5
WATCH_MAX_SECONDS = 86_400.0
ERROR_BACKOFF_CAP_SECONDS = 300.0
EXEC_TIMEOUT_SECONDS = 60.0


class RenderFailed(Exception):
    """The template cannot be rendered (an unknown variable, a bad browser token
    request); the message never holds the key."""


@dataclass(frozen=True)
class Rendered:
    changed: bool
    # Seconds after which the file must be rendered again even if the key did not
    # change: half the shortest lifetime of a browser token in it (None: no token).
    refresh_after: float | None


def _names(value: str | Sequence[str], what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise RenderFailed(f"browser_token: {what} is a string or a list of strings")


def _ttl(value: str | float) -> timedelta:
    if isinstance(value, str):
        try:
            return parse_duration(value, "ttl")
        except SearchgateError as exc:
            raise RenderFailed(f"browser_token: {exc.message}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise RenderFailed("browser_token: ttl is a duration (30m) or a number of seconds")


def render_template(template: str, key: str, out: Path) -> Rendered:
    """Renders ``template`` with ``client_key`` and the ``browser_token(...)`` helper,
    and writes ``out`` atomically (mode 0600) when its content changed."""
    lifetimes: list[timedelta] = []

    def browser_token(
        collection: str | Sequence[str],
        origin: str | Sequence[str],
        ttl: str | float = "1h",
        scope: str | Sequence[str] = ("search", "sayt"),
        filter: str | None = None,
    ) -> str:
        lifetime = _ttl(ttl)
        try:
            token = derive_browser_token(
                key,
                collections=_names(collection, "collection"),
                origins=_names(origin, "origin"),
                ttl=lifetime,
                scopes=_names(scope, "scope"),
                filter=filter,
            )
        except ValueError as exc:
            # derive_browser_token names the offending value, never the client key.
            raise RenderFailed(f"browser_token: {exc}") from None
        lifetimes.append(lifetime)
        return token

    env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701 - config files, not HTML
    try:
        text = env.from_string(template).render(client_key=key, browser_token=browser_token)
    except TemplateError as exc:
        raise RenderFailed(str(exc)) from None
    refresh = min(lifetimes).total_seconds() / 2 if lifetimes else None
    if out.exists() and out.read_text() == text:
        return Rendered(False, refresh)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Rendered(True, refresh)


def run_command(command: list[str], timeout: float = EXEC_TIMEOUT_SECONDS) -> bool:
    """Runs ``--exec``'s command (no shell; its output goes where ours goes); False,
    with the reason printed, when it could not run, failed or ran too long."""
    name = escape(shlex.join(command[:1]))
    try:
        done = subprocess.run(command, timeout=timeout, check=False)
    except OSError as exc:
        console.print(f"[red]--exec: could not run {name}: {escape(str(exc.strerror))}[/red]")
        return False
    except subprocess.TimeoutExpired:
        console.print(f"[red]--exec: {name} did not finish within {timeout:g} s; killed[/red]")
        return False
    if done.returncode != 0:
        console.print(f"[red]--exec: {name} exited with {done.returncode}[/red]")
        return False
    return True


def retry_delay(interval: float, failures: int, rand: Callable[[], float]) -> float:
    """The wait after the ``failures``-th failed read in a row (from 1): the interval
    doubled per failure up to a cap, then a random point between half of it and all of
    it, so that the many watchers of one store that failed together do not all retry
    together."""
    base = min(
        ERROR_BACKOFF_CAP_SECONDS, max(interval, WATCH_FLOOR_SECONDS) * 2.0 ** min(failures, 30)
    )
    return base / 2 + base / 2 * rand()


def watch_store(
    store: SecretStore,
    on_change: Callable[[str, str], float | None],
    interval: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    monotonic: Callable[[], float] = time.monotonic,
) -> NoReturn:
    """Reads the store every ``interval`` seconds (at least the floor) and calls
    ``on_change(value, version)`` for each new version, and again when the seconds it
    returned have passed (browser tokens about to expire). Failed reads (store down,
    key missing) are reported and retried with backoff. Runs until interrupted."""
    interval = max(interval, WATCH_FLOOR_SECONDS)
    seen: str | None = None
    due: float | None = None
    failures = 0
    while True:
        try:
            current = store.read()
        except StoreError as exc:
            failures += 1
            delay = retry_delay(interval, failures, rand)
            colour = "yellow" if isinstance(exc, StoreNotFound) else "red"
            console.print(
                f"[{colour}]{escape(exc.message)}[/{colour}]; next read in {format_duration(delay)}"
            )
            sleep(delay)
            continue
        failures = 0
        now = monotonic()
        if current.version != seen or (due is not None and now >= due):
            refresh = on_change(current.value, current.version)
            seen = current.version
            due = now + max(refresh, WATCH_FLOOR_SECONDS) if refresh is not None else None
        wait = interval if due is None else min(interval, max(due - now, WATCH_FLOOR_SECONDS))
        sleep(wait)
