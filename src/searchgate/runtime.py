"""The composition root: builds the database, services, engine and indexer once."""

from __future__ import annotations

import gc
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from searchgate.accounts import (
    AuthService,
    MfaPolicy,
    MfaService,
    PasswordHasher,
    RoleService,
    SessionPolicy,
    SessionService,
    Throttle,
    TokenService,
    UserService,
)
from searchgate.accounts.invitations import InvitationService
from searchgate.audit import AuditLog
from searchgate.authorizer import Authorizer
from searchgate.catalog.admin import CollectionAdmin
from searchgate.catalog.areas import AreaService
from searchgate.catalog.models import IndexNodeRow
from searchgate.catalog.replacements import ReplacementService
from searchgate.catalog.service import CatalogReader, CatalogService, WriteListener
from searchgate.clock import Clock, Monotonic, utc_now
from searchgate.config import Settings
from searchgate.db import Database
from searchgate.engines.tantivy.engine import TantivyEngine
from searchgate.engines.tantivy.store import SlotLock
from searchgate.indexer import NODE_LIVE_SECONDS, Indexer
from searchgate.keys.ratelimit import CachedCount, ClientRates, RateLimiter
from searchgate.keys.revocations import RevocationWatch
from searchgate.keys.service import KeyService
from searchgate.keys.usage import UsageQueries, UsageTracker
from searchgate.merchandising.live import MerchandisingLookup
from searchgate.merchandising.service import MerchandisingService
from searchgate.migrations import upgrade
from searchgate.notify import CHANGES, KEYS, WAITING, Listener, ask_commit
from searchgate.rotation.jobs import RotationJobs
from searchgate.rotation.service import RotationService
from searchgate.search.analytics import SearchAnalytics
from searchgate.search.pool import PoolLimits, SearchPool
from searchgate.search.querylog import QueryLog
from searchgate.search.sayt import SaytService
from searchgate.search.service import SearchService
from searchgate.server_secrets import ServerSecrets, load_server_secrets, record_server_secrets

# Allocations between two young-generation collections (the default is 700).
GC_THRESHOLD = 20_000


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: CatalogService
    areas: AreaService
    keys: KeyService
    audit: AuditLog
    authorizer: Authorizer
    passwords: PasswordHasher
    roles: RoleService
    users: UserService
    sessions: SessionService
    mfa: MfaService
    tokens: TokenService
    auth: AuthService
    collections: CollectionAdmin
    invitations: InvitationService
    usage: UsageQueries
    rotations: RotationService
    # Counts searches for SAYT's popular queries and for search analytics; the
    # runtime starts its flusher.
    query_log: QueryLog
    analytics: SearchAnalytics
    replacements: ReplacementService
    merchandising: MerchandisingService


def open_database(settings: Settings, migrate: bool = True) -> Database:
    settings.ensure_dirs()
    url = settings.resolved_database_url
    if migrate:
        upgrade(url)
    return Database(url)


def build_services(
    settings: Settings,
    migrate: bool = True,
    clock: Clock = utc_now,
    *,
    db: Database | None = None,
    index_listener: WriteListener | None = None,
    limiter: RateLimiter | None = None,
    monotonic: Monotonic = time.monotonic,
    server_secrets: ServerSecrets | None = None,
) -> Services:
    """``clock``: tests pass one they can move, to test lifetimes without sleeping;
    ``monotonic`` likewise for the key cache's expiry.
    ``db``: one opened by ``open_database`` (the runtime's indexer is built on it
    first, to be the catalog's ``index_listener``). ``limiter``: the server's, which
    shares each key's rate among the live processes (else this process has it all).
    ``server_secrets``: loaded by the caller already (see ``load_server_secrets``);
    either way they are checked against the database's record before anything is
    written, and a node whose secrets differ raises ServerSecretsError."""
    if db is None:
        db = open_database(settings, migrate)
    secrets = server_secrets or load_server_secrets(settings, db)
    pepper = secrets.pepper
    audit = AuditLog(db, secrets.audit_key, clock)
    record_server_secrets(db, audit, secrets, clock)
    authorizer = Authorizer(audit, clock, timedelta(minutes=settings.reauth_window_minutes))
    passwords = PasswordHasher(settings.password_memory_kib, settings.password_iterations)
    mfa_policy = MfaPolicy(settings.mfa_required_for_admins, settings.mfa_required_for_all)
    session_policy = SessionPolicy(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_absolute_hours),
    )
    roles = RoleService(db, audit, authorizer, clock)
    if migrate:
        roles.ensure_builtin()
    sessions = SessionService(db, audit, authorizer, pepper, session_policy, mfa_policy, clock)
    mfa = MfaService(db, audit, authorizer, pepper, clock)
    catalog = CatalogService(db, settings.limits, audit, index_listener)
    usage = UsageQueries(db, clock)
    limiter = limiter or RateLimiter()
    keys = KeyService(
        db,
        pepper,
        audit,
        authorizer,
        clock,
        collection_names=catalog.collection_names,
        recent_systems=usage.recent_systems,
        limiter=limiter,
        token_rates=ClientRates(
            limiter.sibling(),
            settings.browser_token_rate_per_minute,
            "a browser token",
            "SEARCHGATE_BROWSER_TOKEN_RATE_PER_MINUTE",
        ),
        cache_seconds=settings.key_cache_seconds,
        delete_quiet=timedelta(minutes=settings.key_delete_quiet_minutes),
        previous_peppers=secrets.previous_peppers,
        monotonic=monotonic,
    )
    rotations = RotationService(
        db,
        keys,
        audit,
        authorizer,
        usage,
        clock,
        usage_flush_seconds=settings.key_usage_flush_seconds,
        key_cache_seconds=settings.key_cache_seconds,
        max_key_age_days=settings.key_max_age_days,
    )
    areas = AreaService(
        db,
        audit,
        authorizer,
        on_rename=rename_area,
        on_delete=MerchandisingService.forget_area,
    )
    return Services(
        settings=settings,
        db=db,
        catalog=catalog,
        areas=areas,
        keys=keys,
        audit=audit,
        authorizer=authorizer,
        passwords=passwords,
        roles=roles,
        users=UserService(db, audit, authorizer, passwords, clock, settings.max_admins),
        sessions=sessions,
        mfa=mfa,
        tokens=TokenService(
            db, audit, authorizer, pepper, clock, timedelta(days=settings.token_max_days)
        ),
        auth=AuthService(db, audit, passwords, sessions, mfa, Throttle(), clock),
        collections=CollectionAdmin(db, catalog, audit, authorizer),
        invitations=InvitationService(db, audit, authorizer, passwords, pepper, mfa_policy, clock),
        usage=usage,
        rotations=rotations,
        query_log=QueryLog(
            db,
            clock=clock,
            retention_days=settings.analytics_retention_days,
            analytics=settings.analytics_enabled,
        ),
        analytics=SearchAnalytics(
            db, clock, settings.analytics_retention_days, settings.analytics_enabled
        ),
        replacements=ReplacementService(
            catalog, audit, clock, timedelta(seconds=settings.replacement_ttl_seconds)
        ),
        merchandising=MerchandisingService(
            db, audit, authorizer, areas, clock, monotonic=monotonic
        ),
    )


def rename_area(s: Session, old: str, new: str) -> None:
    """What names an area follows its rename, in the rename's transaction."""
    RoleService.rename_area(s, old, new)
    MerchandisingService.rename_area(s, old, new)


@dataclass
class Runtime:
    """Everything one server process runs: services plus its own index copy."""

    services: Services
    engine: TantivyEngine
    indexer: Indexer
    search: SearchService
    sayt: SaytService
    query_log: QueryLog
    # The Command Center's search preview: the same search, minus query recording
    # (previews must not feed the popular queries SAYT suggests to shoppers).
    preview: SearchService
    slot_lock: SlotLock
    usage: UsageTracker
    rotation_jobs: RotationJobs
    revocations: RevocationWatch
    # Searches and refinements run here, off the event loop (search/pool.py).
    search_pool: SearchPool
    # Public SAYT's default rate per client address.
    public_sayt_rates: ClientRates
    # PostgreSQL only: wakes the indexer and the key cache when another process commits.
    listener: Listener | None = None
    started: bool = field(default=False)

    def start(self) -> None:
        tune_gc()
        if self.listener is not None:
            self.listener.start()
        self.revocations.start()
        self.indexer.start()
        self.query_log.start()
        self.usage.start()
        self.started = True

    def wait_searchable(self, seq: int, timeout: float) -> bool:
        """True once this process and every other live one have indexed ``seq``."""
        deadline = time.monotonic() + timeout
        if not self.indexer.wait_for(seq, timeout):
            return False
        asked = False
        while True:
            behind = count_live_nodes(self.services.db, IndexNodeRow.applied_seq < seq)
            if not behind:
                return True
            if not asked:
                # The others would make it searchable at their next timed commit.
                ask_commit(self.services.db, seq)
                asked = True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def stop(self) -> None:
        # The rotation run first: it uses the services until its next pause.
        self.rotation_jobs.stop()
        self.search_pool.stop()
        self.usage.stop()
        self.query_log.stop()
        self.revocations.stop()
        if self.listener is not None:
            self.listener.stop()
        self.indexer.stop()
        self.engine.close()
        self.slot_lock.release()
        self.services.db.dispose()


def tune_gc() -> None:
    """Collector settings for a process that takes bulk uploads.

    An upload of 10,000 records keeps about 100,000 new objects alive until it is
    indexed; with the default thresholds (700, 10, 10) the collector walked the whole
    heap again and again meanwhile, which nearly doubled the cost of validating and
    indexing. What exists once the process has started (modules, settings, the
    schema) is moved out of the collector's sight for good.
    """
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def count_live_nodes(db: Database, *where: ColumnElement[bool]) -> int:
    """Server processes that heartbeated recently (and match ``where``)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=NODE_LIVE_SECONDS)
    with db.read() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(IndexNodeRow)
                .where(IndexNodeRow.heartbeat_at >= cutoff, *where)
            )
            or 0
        )


def live_processes(db: Database) -> int:
    """Each live process enforces its share of a key's rate limit."""
    return max(1, count_live_nodes(db))


def build_runtime(
    settings: Settings,
    migrate: bool = True,
    clock: Clock = utc_now,
    monotonic: Monotonic = time.monotonic,
) -> Runtime:
    """``clock`` and ``monotonic``: the services' time (see ``build_services``) and
    the SAYT settings cache's and indexer's timed commit; tests pass a clock they move."""
    db = open_database(settings, migrate)
    # Before the index slot is taken: a node that may not start writes nothing.
    secrets = load_server_secrets(settings, db)
    lock = SlotLock(settings.index_dir)
    slot = lock.acquire()
    engine = TantivyEngine(slot, settings.index_writer_heap_bytes, settings.index_writer_threads)
    node = f"{socket.gethostname()}:{os.getpid()}:{slot.name}"
    indexer = Indexer(
        db,
        CatalogReader(db),
        engine,
        node,
        settings.indexer_poll_seconds if db.is_sqlite else settings.indexer_fallback_poll_seconds,
        settings.index_commit_seconds,
        settings.index_commit_idle_seconds,
        monotonic,
    )
    limiter = RateLimiter(CachedCount(lambda: live_processes(db)))
    services = build_services(
        settings,
        migrate=migrate,
        clock=clock,
        db=db,
        index_listener=indexer,
        limiter=limiter,
        monotonic=monotonic,
        server_secrets=secrets,
    )
    revocations = RevocationWatch(
        db, services.keys.forget_cache, settings.key_revocation_staleness_seconds
    )
    services.keys.watch_revocations(revocations)
    listener = (
        None
        if db.is_sqlite
        else Listener(
            db.url,
            {CHANGES: indexer.notify, KEYS: revocations.wake, WAITING: indexer.want_payload},
        )
    )
    query_log = services.query_log
    # One compiled copy of each area's published merchandising, shared by search and SAYT.
    merchandising = MerchandisingLookup(services.merchandising)
    search = SearchService(
        engine,
        services.catalog,
        services.areas,
        settings.limits,
        engine.settings_of,
        query_log.count_search,
        merchandising,
        clock,
    )
    sayt = SaytService(
        engine,
        services.catalog,
        services.areas,
        query_log,
        settings.limits,
        monotonic,
        merchandising,
        clock,
    )
    return Runtime(
        services=services,
        engine=engine,
        indexer=indexer,
        search=search,
        sayt=sayt,
        query_log=query_log,
        preview=SearchService(
            engine,
            services.catalog,
            services.areas,
            settings.limits,
            engine.settings_of,
            None,
            merchandising,
            clock,
        ),
        slot_lock=lock,
        usage=UsageTracker(services.db, services.keys, settings.key_usage_flush_seconds),
        rotation_jobs=RotationJobs(clock),
        revocations=revocations,
        search_pool=SearchPool(
            PoolLimits(
                threads=settings.search_threads,
                queue=settings.search_queue,
                caller_threads=settings.search_caller_threads,
                caller_concurrency=settings.search_caller_concurrency,
                budget_seconds=settings.search_time_budget_seconds,
            )
        ),
        public_sayt_rates=ClientRates(
            limiter.sibling(),
            settings.public_sayt_rate_per_minute,
            "public SAYT",
            "SEARCHGATE_PUBLIC_SAYT_RATE_PER_MINUTE",
        ),
        listener=listener,
    )
