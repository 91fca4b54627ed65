"""The one settings object. Nothing else in Searchgate reads ``os.environ``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Limits(BaseSettings):
    """Explicit limits; every one of them is documented in docs/api.md."""

    model_config = SettingsConfigDict(env_prefix="SEARCHGATE_LIMIT_", extra="ignore")

    max_body_bytes: int = 64 * 1024 * 1024
    max_records_per_request: int = 100_000
    max_record_bytes: int = 100 * 1024
    max_fields_per_record: int = 256
    max_collections: int = 100
    max_query_chars: int = 512
    max_page_size: int = 1000
    max_skip: int = 100_000
    max_refinements: int = 100
    max_ids: int = 1000
    max_prefilter_chars: int = 2000
    max_navigation_values: int = 10_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEARCHGATE_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"))
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    log_level: str = "info"
    # Server-side secret mixed into every stored key digest; read from the data
    # directory's secrets file when not given, so that a copy of the database alone
    # is not enough to test guessed keys offline.
    key_pepper: str | None = None
    # Peppers being retired (a JSON list): keys stored under them still verify and are
    # re-hashed under the current pepper on first use.
    key_pepper_previous: list[str] = Field(default_factory=list)
    key_cache_seconds: float = 1.0
    # Deleting a key that served a request this recently needs --force (docs/keys.md).
    key_delete_quiet_minutes: float = Field(default=15.0, ge=0)
    # Keys older than this are flagged on the dashboard; `rotate --if-older-than` uses it.
    key_max_age_days: int = Field(default=90, ge=1)
    # How often each server process writes its in-memory key usage counts.
    key_usage_flush_seconds: float = Field(default=2.0, gt=0)
    # The secret store the console's rotation wizard writes the client key to: a kind
    # (vault, aws or file) and its path, as for `searchgate rotate --store --path`. The
    # store's credentials come from its usual variables (VAULT_ADDR, VAULT_TOKEN, the
    # AWS SDK's), never from here. Unset: the wizard explains this, the CLI still works.
    rotation_store_kind: str | None = None
    rotation_store_path: str | None = None
    # Command Center accounts (docs/security.md). The audit key signs the change log's
    # MAC chain; like the pepper it comes from the secrets file when not given, and
    # must never be stored in the database.
    audit_key: str | None = None
    session_idle_minutes: float = Field(default=30.0, gt=0)
    session_absolute_hours: float = Field(default=12.0, gt=0)
    reauth_window_minutes: float = Field(default=5.0, gt=0)
    mfa_required_for_admins: bool = True
    mfa_required_for_all: bool = False
    # The Users page warns when more people than this hold admin rights.
    max_admins: int = Field(default=3, ge=1)
    # argon2id; never below the OWASP minimum (19 MiB, 2 iterations).
    password_memory_kib: int = Field(default=19 * 1024, ge=19 * 1024)
    password_iterations: int = Field(default=2, ge=2)
    token_max_days: int = Field(default=365, ge=1)
    indexer_poll_seconds: float = 0.05
    # Uploads become searchable within this many seconds without ``?wait=true``;
    # a request that waits makes them searchable at once (docs/operations.md).
    index_commit_seconds: float = Field(default=1.0, ge=0, le=60)
    index_writer_heap_bytes: int = 256 * 1024 * 1024
    index_writer_threads: int = 2
    wait_timeout_seconds: float = 120.0
    limits: Limits = Field(default_factory=Limits)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'searchgate.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
