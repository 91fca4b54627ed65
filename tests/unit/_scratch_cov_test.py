from __future__ import annotations
import collections
import pytest
from hypothesis.stateful import run_state_machine_as_test
from searchgate.keys import service as svc
from tests.unit.test_key_lifecycle_state import KeyLifecycle, MACHINE_SETTINGS, backend  # noqa

@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cov(backend, monkeypatch):
    counts = collections.Counter()
    f = svc.KeyService.delete
    def wrap(self, actor, key, confirm, force=False):
        p = self.primary()
        n = len(self.list())
        try:
            f(self, actor, key, confirm, force)
            r = "ok"
        except Exception as e:
            r = type(e).__name__
            raise
        finally:
            counts[("primary" if p and p.id == key else "other", n > 1, force, r)] += 1
    monkeypatch.setattr(svc.KeyService, "delete", wrap)
    KeyLifecycle.backend = backend
    run_state_machine_as_test(KeyLifecycle, settings=MACHINE_SETTINGS)
    for k, v in sorted(counts.items(), key=str): print(k, v)
