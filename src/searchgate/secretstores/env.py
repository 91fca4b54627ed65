"""A key handed to the process by its platform in an environment variable: read-only."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from searchgate.secretstores.base import SecretVersion, StoreMisconfigured, StoreNotFound

DEFAULT_VARIABLE = "SEARCHGATE_CLIENT_KEY"


class EnvStore:
    kind = "env"
    writable = False

    def __init__(self, variable: str = DEFAULT_VARIABLE, env: Mapping[str, str] | None = None):
        variable = variable.strip() or DEFAULT_VARIABLE
        if not variable.replace("_", "").isalnum() or variable[0].isdigit():
            raise StoreMisconfigured(f"{variable!r} is not an environment variable name")
        self.variable = variable
        self.location = f"env:{variable}"
        self._env = os.environ if env is None else env

    def __repr__(self) -> str:
        return f"EnvStore({self.location!r})"

    def read(self) -> SecretVersion:
        value = (self._env.get(self.variable) or "").strip()
        if not value:
            raise StoreNotFound(f"{self.location}: the variable is not set or empty")
        # No history here; a fingerprint of the value stands in for a version, so that a
        # caller can still tell that the key it holds has changed.
        digest = hashlib.sha256(value.encode()).hexdigest()[:12]
        return SecretVersion(value=value, version=f"sha256:{digest}", created_at=None)

    def read_version(self, version: str) -> SecretVersion:
        current = self.read()
        if current.version != version:
            raise StoreNotFound(
                f"{self.location}: an environment variable keeps no history; only the current "
                f"version ({current.version}) can be read"
            )
        return current

    def write(self, value: str, expected_version: str | None) -> SecretVersion:
        raise self._read_only()

    def restore(self, version: str, expected_version: str) -> SecretVersion:
        raise self._read_only()

    def check_writable(self) -> None:
        raise self._read_only()

    def _read_only(self) -> StoreMisconfigured:
        return StoreMisconfigured(
            f"{self.location} is a read-only store: the platform that sets the variable owns "
            "the key; rotate with a vault, aws or file store"
        )
