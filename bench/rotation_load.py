"""Storefront-like load for a key rotation: SDK clients that read the client key from a
secret store and search without pause, recording which key served every request.

Each client is one "system" (``X-Searchgate-System``) with its own ``CachedKey`` over
its own store connection, exactly as a customer's system would run the SDK: the key is
re-read when the cached copy is ``max_age`` old, and at once when the server answers
401 (the SDK then retries the request once). The SDK call is what a system sees, so a
call that the SDK recovered by refreshing is "refreshed", not "failed".

Used by tests/e2e/test_rotation_under_load.py, and on its own against a staging
deployment while someone rotates the key there:

    VAULT_ADDR=... VAULT_TOKEN=... python -m bench.rotation_load \\
        --server https://search.staging.example --store vault \\
        --path secret/searchgate/client-key --clients 4 --seconds 600

(Ctrl-C ends it early.) It prints the calls per key, failures, refreshes and the
latency percentiles, and writes them as JSON with --out.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import console, fmt, machine, percentile, table, write_result
from searchgate.secretstores import open_store
from searchgate_client import CachedKey, SearchgateClient, SearchgateError, from_store
from searchgate_client.keyformat import display_prefix

QUERIES = ("tv", "lamp", "speaker", "camera", "laptop", "black", "")


@dataclass(frozen=True)
class Attempt:
    """One HTTP exchange inside an SDK call (two when the SDK refreshed on a 401)."""

    key_prefix: str  # the key's display prefix: which key was sent, never the key
    status: int
    sent_at: float  # wall clock (epoch seconds): comparable with the server's times
    done_at: float


@dataclass(frozen=True)
class Call:
    """One SDK call as the calling system sees it."""

    system: str
    started_at: float  # wall clock
    latency_s: float
    status: int  # the final HTTP status; 0 when no answer came
    error: str | None  # "code: message" of the SearchgateError, if the call failed
    attempts: tuple[Attempt, ...]

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def refreshed(self) -> bool:
        """The server refused the cached key (401), the SDK re-read the store and the
        retry was answered: the system noticed nothing."""
        return (
            len(self.attempts) >= 2
            and self.attempts[0].status == 401
            and self.attempts[-1].status < 400
        )

    @property
    def served_by(self) -> str | None:
        """The display prefix of the key that got the successful answer."""
        return self.attempts[-1].key_prefix if self.ok and self.attempts else None


class RecordingClient(SearchgateClient):
    """The SDK's client, noting every exchange's key and status: the SDK itself decides
    which key to send and when to refresh; this only watches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts: list[Attempt] = []

    def _send(self, call: Any, key: str) -> httpx.Response:
        sent = time.time()
        status = 0
        try:
            response = super()._send(call, key)
            status = response.status_code
            return response
        finally:
            self.attempts.append(Attempt(display_prefix(key), status, sent, time.time()))


class LoadClient:
    """One system: ``once()`` makes one search call and records it; ``run()`` searches
    in a loop until ``stop`` is set."""

    def __init__(
        self,
        system: str,
        base_url: str,
        key: CachedKey,
        *,
        collection: str = "default",
        pause_seconds: float = 0.01,
        timeout: float = 30.0,
    ) -> None:
        self.system = system
        self.key = key
        self.collection = collection
        self.pause_seconds = pause_seconds
        self.calls: list[Call] = []
        self._queries = itertools.cycle(QUERIES)
        self._client = RecordingClient(base_url, key, system=system, timeout=timeout)

    def once(self) -> Call:
        client = self._client
        client.attempts = []
        body = {"collection": self.collection, "query": next(self._queries), "pageSize": 10}
        started, t0 = time.time(), time.perf_counter()
        error: str | None = None
        try:
            client.search(body)
        except SearchgateError as exc:
            error = f"{exc.code}: {exc.message}"[:300]
        except Exception as exc:  # a load client must report, not die quietly
            error = f"unexpected: {type(exc).__name__}"
        attempts = tuple(client.attempts)
        status = attempts[-1].status if attempts else 0
        call = Call(self.system, started, time.perf_counter() - t0, status, error, attempts)
        self.calls.append(call)
        return call

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.once()
                if self.pause_seconds:
                    stop.wait(self.pause_seconds)
        finally:
            self.close()

    def close(self) -> None:
        self._client.close()


class RotationLoad:
    """``clients`` systems named ``<prefix>-1`` ... searching in threads. ``make_source``
    builds one key source per client (one store connection each)."""

    def __init__(
        self,
        base_url: str,
        make_source: Callable[[], Callable[[], str]],
        *,
        clients: int = 4,
        max_age_seconds: float = 2.0,
        system_prefix: str = "storefront",
        collection: str = "default",
        pause_seconds: float = 0.01,
    ) -> None:
        self.clients = [
            LoadClient(
                f"{system_prefix}-{n}",
                base_url,
                CachedKey(make_source(), max_age_seconds=max_age_seconds),
                collection=collection,
                pause_seconds=pause_seconds,
            )
            for n in range(1, clients + 1)
        ]
        self.max_age_seconds = max_age_seconds
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=c.run, args=(self._stop,), name=c.system, daemon=True)
            for c in self.clients
        ]

    def start(self) -> RotationLoad:
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=timeout)
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            raise RuntimeError(f"load clients did not stop within {timeout} s: {stuck}")

    @property
    def calls(self) -> list[Call]:
        # list() of a list another thread appends to is safe under the GIL.
        return sorted(
            (call for c in self.clients for call in list(c.calls)), key=lambda c: c.started_at
        )

    def wait_for_calls(self, per_client: int, timeout: float) -> None:
        """Until every client made ``per_client`` successful calls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(sum(1 for x in list(c.calls) if x.ok) >= per_client for c in self.clients):
                return
            time.sleep(0.1)
        counts = {c.system: sum(1 for x in list(c.calls) if x.ok) for c in self.clients}
        errors = [x.error for c in self.clients for x in list(c.calls) if x.error][:3]
        raise TimeoutError(f"the load did not get going in {timeout} s: {counts} {errors}")

    def __enter__(self) -> RotationLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            with contextlib.suppress(RuntimeError):
                self.stop()


# --- the figures -------------------------------------------------------------------


def _latency(calls: Sequence[Call]) -> dict[str, float | int]:
    ordered = sorted(c.latency_s for c in calls)
    return {
        "requests": len(ordered),
        "p50_ms": round(percentile(ordered, 50) * 1000, 2),
        "p99_ms": round(percentile(ordered, 99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else 0.0,
    }


def summarize(
    calls: Sequence[Call],
    *,
    labels: Mapping[str, str] | None = None,
    rotation_started: float | None = None,
    rotation_ended: float | None = None,
    old_prefix: str | None = None,
    old_disabled_at: float | None = None,
    old_deleted_at: float | None = None,
) -> dict[str, Any]:
    """The figures of a run. ``labels`` names key prefixes ("old", "new"); times are
    wall-clock epoch seconds. "Served by the old key after its deletion" counts calls
    answered 2xx with the old key whose answer arrived after the deletion, so a call
    authenticated just before it counts too: the count errs on the strict side."""
    labels = labels or {}

    def label(prefix: str | None) -> str:
        return labels.get(prefix or "", prefix or "-")

    failed = [c for c in calls if not c.ok]
    refreshed = [c for c in calls if c.refreshed]
    phases: dict[str, list[Call]] = {"before": [], "during": [], "after": [], "all": []}
    for c in calls:
        if rotation_started is None and rotation_ended is None:
            phases["all"].append(c)
        elif rotation_started is not None and c.started_at < rotation_started:
            phases["before"].append(c)
        elif rotation_ended is not None and c.started_at >= rotation_ended:
            phases["after"].append(c)
        else:
            phases["during"].append(c)

    def old_after(moment: float | None) -> int | None:
        if old_prefix is None or moment is None:
            return None
        return sum(
            1
            for c in calls
            for a in c.attempts
            if a.key_prefix == old_prefix and 200 <= a.status < 300 and a.done_at > moment
        )

    per_system: dict[str, dict[str, Any]] = {}
    for system in sorted({c.system for c in calls}):
        mine = [c for c in calls if c.system == system]
        served = Counter(label(c.served_by) for c in mine if c.ok)
        first_new = next((c.started_at for c in mine if c.ok and label(c.served_by) == "new"), None)
        per_system[system] = {
            "requests": len(mine),
            "failed": sum(1 for c in mine if not c.ok),
            "refreshed": sum(1 for c in mine if c.refreshed),
            "servedBy": dict(served),
            "firstNewKeyAt": first_new,
        }
    return {
        "requests": len(calls),
        "failed": len(failed),
        "refreshed": len(refreshed),
        "servedBy": dict(Counter(label(c.served_by) for c in calls if c.ok)),
        "oldKeyServedAfterDisable": old_after(old_disabled_at),
        "oldKeyServedAfterDeletion": old_after(old_deleted_at),
        "latency": {name: _latency(group) for name, group in phases.items() if group},
        "systems": per_system,
        "failures": [f"{c.system} {c.status} {c.error}" for c in failed[:20]],
    }


def figures_table(figures: Mapping[str, Any], title: str) -> Any:
    rows: list[tuple[str, Any]] = [
        ("requests (SDK calls)", figures["requests"]),
        ("failed", figures["failed"]),
        ("refreshed on 401 (recovered)", figures["refreshed"]),
    ]
    for name, text in (
        ("oldKeyServedAfterDeletion", "2xx with the old key after its deletion"),
        ("oldKeyServedAfterDisable", "2xx with the old key after it was disabled"),
    ):
        if figures.get(name) is not None:  # known only when the times were given
            rows.append((text, figures[name]))
    for key, n in sorted(figures["servedBy"].items()):
        rows.append((f"served by the {key} key", n))
    for phase, lat in figures["latency"].items():
        rows.append((f"{phase}: requests", lat["requests"]))
        rows.append(
            (
                f"{phase}: p50 / p99 / max ms",
                f"{fmt(lat['p50_ms'])} / {fmt(lat['p99_ms'])} / {fmt(lat['max_ms'])}",
            )
        )
    return table(title, ("figure", "value"), rows)


# --- on its own ----------------------------------------------------------------------


def _store_source(kind: str, path: str) -> Callable[[], Callable[[], str]]:
    def make() -> Callable[[], str]:
        return from_store(open_store(kind, path))

    return make


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--server", required=True, help="the Searchgate server's URL")
    parser.add_argument("--store", required=True, help="vault, aws, file or env")
    parser.add_argument("--path", required=True, help="where the key lives in the store")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--max-age", type=float, default=30.0, help="the SDK's key cache")
    parser.add_argument("--collection", default="default")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    load = RotationLoad(
        args.server,
        _store_source(args.store, args.path),
        clients=args.clients,
        max_age_seconds=args.max_age,
        collection=args.collection,
    )
    started = time.time()
    deadline = time.monotonic() + args.seconds
    with load:
        try:
            while time.monotonic() < deadline:
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
                calls = load.calls
                console.print(
                    f"{time.time() - started:6.0f} s  {len(calls)} calls, "
                    f"{sum(1 for c in calls if not c.ok)} failed, "
                    f"{sum(1 for c in calls if c.refreshed)} refreshed, served by "
                    f"{dict(Counter(c.served_by for c in calls if c.ok))}",
                    highlight=False,
                )
        except KeyboardInterrupt:
            console.print("interrupted: stopping the clients")
        load.stop()
    figures = summarize(load.calls)
    figures["machine"] = machine()
    console.print(figures_table(figures, f"{args.clients} clients on {args.server}"))
    if args.out:
        console.print(f"written to {write_result('rotation-load', figures, args.out)}")


if __name__ == "__main__":
    main()
