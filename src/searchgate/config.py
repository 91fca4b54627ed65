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
    key_cache_seconds: float = 1.0
    indexer_poll_seconds: float = 0.05
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
