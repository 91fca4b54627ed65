"""The composition root builds each service once, with its dependencies passed in, and
the runtime owns what runs in the background (the rotation run included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchgate.config import Settings
from searchgate.errors import Conflict
from searchgate.rotation.jobs import JobMode
from searchgate.rotation.local_backend import LocalBackend
from searchgate.rotation.runner import RunOptions
from searchgate.runtime import Runtime, build_runtime
from searchgate.secretstores.file import FileStore
from tests.keyhelp import SYSTEM


def test_services_get_their_dependencies_from_the_composition_root(runtime: Runtime) -> None:
    services = runtime.services
    # The deletion guard reads the usage the runtime counts, through the one query object.
    assert services.keys.recent_systems.__self__ is services.usage  # type: ignore[attr-defined]
    assert services.rotations.keys is services.keys
    assert services.rotations.usage is services.usage
    assert LocalBackend(services, runtime.search, SYSTEM).rotations is services.rotations
    assert runtime.query_log is services.query_log
    assert services.merchandising.areas is services.areas
    assert services.merchandising.audit is services.audit


def test_the_runtime_holds_the_rotation_run_and_stops_it(
    settings: Settings, tmp_path: Path
) -> None:
    rt = build_runtime(settings)
    rt.start()
    jobs = rt.rotation_jobs
    assert jobs.view() is None
    rt.stop()
    # Stopped with the runtime, not with a web app: no run starts any more.
    with pytest.raises(Conflict, match="stopping"):
        jobs.launch(
            JobMode.RUN,
            SYSTEM,
            LocalBackend(rt.services, rt.search, SYSTEM),
            FileStore(tmp_path / "key.json"),
            RunOptions(),
        )
