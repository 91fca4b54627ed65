from __future__ import annotations
import collections
import pytest
from hypothesis.stateful import run_state_machine_as_test
from searchgate.keys import service as svc
from tests.unit.test_key_lifecycle_state import KeyLifecycle, MACHINE_SETTINGS, backend  # noqa

@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cov(backend, monkeypatch):
    counts = collections.Counter()
    for name in ["create","new_primary","make_primary","disable","enable","roll","delete","update","record_use"]:
        f = getattr(svc.KeyService, name)
        def wrap(self, *a, __f=f, __n=name, **k):
            try:
                r = __f(self, *a, **k)
            except Exception as e:
                counts[(__n, type(e).__name__)] += 1
                raise
            counts[(__n, "ok")] += 1
            if __n == "delete" and not self.list(): counts["deleted-last"] += 1
            return r
        monkeypatch.setattr(svc.KeyService, name, wrap)
    KeyLifecycle.backend = backend
    run_state_machine_as_test(KeyLifecycle, settings=MACHINE_SETTINGS)
    for k, v in sorted(counts.items(), key=str): print(k, v)
