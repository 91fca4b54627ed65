"""The one settings object. Nothing else in Searchgate reads ``os.environ``."""

from __future__ import annotations

from functools import cached_property
from ipaddress import ip_address, ip_network
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from searchgate.storage import directory_fault, probe


class Limits(BaseSettings):
    """Explicit limits; every one of them is documented in docs/api.md."""

    model_config = SettingsConfigDict(env_prefix="SEARCHGATE_LIMIT_", extra="ignore")

    max_body_bytes: int = 64 * 1024 * 1024
    # Search and refinements bodies: a search request is a few hundred bytes, and one
    # that names a client key in the body is read this far before the key is checked.
    max_search_body_bytes: int = 64 * 1024
    # Admin API bodies (keys, users, rotation): a few hundred bytes each.
    max_admin_body_bytes: int = 1024 * 1024
    max_records_per_request: int = 100_000
    max_record_bytes: int = 100 * 1024
    max_fields_per_record: int = 256
    max_collections: int = 100
    max_query_chars: int = 512
    max_page_size: int = 1000
    max_skip: int = 100_000
    # Deep paging: skip + pageSize (as Elasticsearch's max_result_window). A page that
    # deep makes the engine rank every record before it.
    max_result_window: int = 10_000
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
    # The proxies (addresses or networks, comma-separated; "*" for any) whose
    # X-Forwarded-For and X-Forwarded-Proto the server believes: the client address
    # that key IP ranges and sign-in throttling see (docs/deployment.md). uvicorn's own
    # FORWARDED_ALLOW_IPS is read too.
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        validation_alias=AliasChoices(
            "forwarded_allow_ips", "SEARCHGATE_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"
        ),
    )
    # Server-side secret mixed into every stored key digest; read from the data
    # directory's secrets file when not given, so that a copy of the database alone
    # is not enough to test guessed keys offline.
    key_pepper: str | None = None
    # Peppers being retired (a JSON list): keys stored under them still verify and are
    # re-hashed under the current pepper on first use.
    key_pepper_previous: list[str] = Field(default_factory=list)
    key_cache_seconds: float = 1.0
    # A serving process refuses client keys (503 revocations_unconfirmed) once it has
    # not confirmed with the database for this long that no key was disabled or
    # deleted. Longer rides out longer database outages on cached keys, at the price of
    # a revoked key working that much longer on a node cut off from the database
    # (docs/operations.md, "Several nodes").
    key_revocation_staleness_seconds: float = Field(default=5.0, gt=0, le=3600)
    # Deleting a key that served a request this recently needs --force (docs/keys.md).
    key_delete_quiet_minutes: float = Field(default=15.0, ge=0)
    # Keys older than this are flagged on the dashboard; `rotate --if-older-than` uses it.
    key_max_age_days: int = Field(default=90, ge=1)
    # How often each server process writes its in-memory key usage counts.
    key_usage_flush_seconds: float = Field(default=2.0, gt=0)
    # Days of search analytics kept (searches per day, top and zero-result queries):
    # each server process deletes older days in the background (docs/operations.md).
    analytics_retention_days: int = Field(default=90, ge=1, le=3650)
    # Off: searches are not counted for analytics (the Analytics page shows what was
    # counted before). SAYT still learns popular queries from searches that found
    # something: suggestions are part of search, not a report (docs/operations.md).
    analytics_enabled: bool = True
    # The secret store the console's rotation wizard writes the client key to: a kind
    # (vault, aws or file) and its path, as for `searchgate rotate --store --path`. The
    # store's credentials come from its usual variables (VAULT_ADDR, VAULT_TOKEN, the
    # AWS SDK's), never from here. Unset: the wizard explains this, the CLI still works.
    rotation_store_kind: str | None = None
    rotation_store_path: str | None = None
    # The secret store every node reads the server secrets from at start-up: a kind
    # (vault, aws or file) and the path of one secret with the fields key_pepper and
    # audit_key (`searchgate secrets push` puts a running node's there). Credentials
    # as for the rotation store. SEARCHGATE_KEY_PEPPER and SEARCHGATE_AUDIT_KEY still
    # win; unset: the data directory's secrets folder (docs/operations.md).
    server_secrets_store_kind: str | None = None
    server_secrets_store_path: str | None = None
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
    # On PostgreSQL every committed change wakes the indexers (NOTIFY): their poll is
    # only the fallback for a notification lost with a connection, and slower.
    indexer_fallback_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Uploads become searchable once no further change came for the idle delay, and
    # under a steady stream of uploads within the commit interval; a request that
    # waits (``?wait=true``) makes them searchable at once (docs/operations.md).
    index_commit_seconds: float = Field(default=1.0, ge=0, le=60)
    index_commit_idle_seconds: float = Field(default=0.15, ge=0, le=60)
    index_writer_heap_bytes: int = 256 * 1024 * 1024
    index_writer_threads: int = 2
    wait_timeout_seconds: float = 120.0
    # A staged replacement that receives no batch for this long expires and its staged
    # records are removed (docs/api.md, "Staged replacements").
    replacement_ttl_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    # Searches and refinements run in a pool of threads, off the event loop (the engine
    # releases the interpreter while it searches), so that a slow search holds up no
    # other request (docs/operations.md, "Load shedding").
    search_threads: int = Field(default=4, ge=1, le=64)
    # Searches admitted beyond the running ones wait here; past it: 503 overloaded.
    search_queue: int = Field(default=64, ge=0, le=10_000)
    # Threads one caller (a client key; a browser token per client address) may hold at
    # once: the others stay free for everyone else, whatever one caller sends.
    search_caller_threads: int = Field(default=2, ge=1, le=64)
    # Searches one caller may have in flight (running or waiting); past it: 429
    # too_many_concurrent.
    search_caller_concurrency: int = Field(default=16, ge=1, le=10_000)
    # A search not answered within this many seconds of its arrival (waiting included)
    # is answered 503 time_budget_exceeded.
    search_time_budget_seconds: float = Field(default=2.0, gt=0, le=600)
    # Default request rates per client address, for callers without a key of their own:
    # public SAYT (no key) and browser tokens (public, in every page). 0: no limit.
    public_sayt_rate_per_minute: int = Field(default=1200, ge=0, le=1_000_000)
    browser_token_rate_per_minute: int = Field(default=1200, ge=0, le=1_000_000)
    limits: Limits = Field(default_factory=Limits)
    # The merchant's time zone (an IANA name): the Command Center shows the times that
    # decide what shoppers see (a rule's active window) in it beside UTC.
    merchant_time_zone: str = "UTC"

    @field_validator("merchant_time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(
                f"merchant_time_zone: {value!r} is not a time zone (an IANA name such as "
                "Europe/Berlin or America/New_York)"
            ) from None
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str) -> str:
        # uvicorn keeps an entry it cannot parse as a name that no address matches:
        # a typo would quietly make every request seem to come from the proxy.
        entries = [entry.strip() for entry in value.split(",")]
        if entries == ["*"]:
            return "*"
        for entry in entries:
            try:
                ip_network(entry) if "/" in entry else ip_address(entry)
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips: {entry!r} is not an IP address or network "
                    "(comma-separated, for example 10.0.0.10,10.1.0.0/24; or *)"
                ) from None
        return ",".join(entries)

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
        """Creates the data directory and checks that it takes writes: a read-only or
        full one raises ``StorageUnavailable`` saying so, before anything else fails
        on it in a less clear way."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fault = probe(self.data_dir, at_start=True)
        except OSError as exc:
            fault = directory_fault(self.data_dir, exc, at_start=True)
            if fault is None:
                raise
            raise fault from None
        if fault is not None:
            raise fault
