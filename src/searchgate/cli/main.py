"""``searchgate``: serve, migrate, demo, reindex and keys."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer
import uvicorn
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from uvicorn.supervisors import Multiprocess

from searchgate.catalog import changelog
from searchgate.catalog.service import parse_settings
from searchgate.cli import audit as audit_cli
from searchgate.cli import keys as keys_cli
from searchgate.cli import merch as merch_cli
from searchgate.cli import rotate as rotate_cli
from searchgate.cli import server_secrets as server_secrets_cli
from searchgate.cli import store as store_cli
from searchgate.cli import users as users_cli
from searchgate.cli.common import DataDir, SearchgateApp, console, print_error, settings_for
from searchgate.config import Settings
from searchgate.demo import DEMO_QUERIES, demo_settings, generate
from searchgate.engines.tantivy.engine import TantivyEngine
from searchgate.engines.tantivy.store import SlotLock
from searchgate.errors import SearchgateError
from searchgate.indexer import Indexer
from searchgate.keys.scopes import ALL_SCOPES
from searchgate.migrations import upgrade
from searchgate.permissions import Actor
from searchgate.runtime import Services, build_services
from searchgate.secretstores import SecretVersion, StoreNotFound, open_store

app = SearchgateApp(
    help="Searchgate: self-hosted commerce search with carefully handled client keys.",
    no_args_is_help=True,
)
app.add_typer(keys_cli.app, name="keys")
app.add_typer(store_cli.app, name="store")
app.add_typer(users_cli.app, name="users")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(server_secrets_cli.app, name="secrets")
app.add_typer(merch_cli.app, name="merch")
app.command("rotate")(rotate_cli.rotate)

DEMO_KEY_NAME = "demo"
DEMO_ADMIN_EMAIL = "admin@demo.example"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def load_demo(services: Services, count: int, collection: str = "default") -> int:
    """Writes the generated catalog (in batches, each acknowledged once committed)."""
    catalog = services.catalog
    if catalog.settings_of(collection) is None:
        catalog.put_settings(collection, parse_settings(demo_settings()))
    batch: list[dict[str, object]] = []
    written = 0
    with _progress() as progress:
        task = progress.add_task(f"writing {count} demo products", total=count)
        for record in generate(count):
            batch.append(record)
            if len(batch) == 5000:
                written += catalog.write_records(collection, batch).upserted
                progress.advance(task, len(batch))
                batch = []
        if batch:
            written += catalog.write_records(collection, batch).upserted
            progress.advance(task, len(batch))
    services.query_log.add_counts(collection, DEMO_QUERIES)
    return written


def demo_store_path(settings: Settings) -> Path:
    return settings.secrets_dir / "client-key.json"


def _demo_key(services: Services, settings: Settings) -> None:
    """The demo's client key lives in a local versioned secret store (the file store),
    the way production keeps it in Vault or AWS: systems read it from there."""
    path = demo_store_path(settings)
    store = open_store("file", str(path))
    read = "searchgate store read --store file --path " + str(path)
    try:
        current: SecretVersion | None = store.read()
    except StoreNotFound:
        current = None
    if current is not None:
        info = services.keys.verify(current.value)
        if info is not None and info.usable(datetime.now(UTC)):
            console.print(f"Demo client key: in the file secret store {path} (`{read}`).")
            return
    # Deleted keys keep their names on their tombstones, so a replacement gets a new one.
    taken = {k.name for k in services.keys.list(include_deleted=True)}
    name = next(
        n
        for n in (DEMO_KEY_NAME, *(f"{DEMO_KEY_NAME}-{i}" for i in range(2, 1000)))
        if n not in taken
    )
    created = services.keys.create(Actor.system("demo"), name, ALL_SCOPES, primary=True)
    store.write(created.secret, current.version if current is not None else None)
    console.print(
        f"[bold]Demo client key[/bold] (shown once; kept in the file secret store {path}, "
        "mode 0600):"
    )
    console.print(f"  {created.secret}")
    console.print(
        f"Try: curl -s http://{settings.host}:{settings.port}/api/v1/search "
        f'-H "Authorization: Bearer $({read})" -d \'{{"query": "macbook"}}\''
    )


def _demo_admin(services: Services, settings: Settings) -> None:
    """The demo's first admin, with a random password printed once (never a default)."""
    from searchgate.cli.users import cli_actor

    actor = cli_actor()
    if services.users.list(actor):
        console.print(
            "Command Center: sign in with an existing account (`searchgate users create` adds one)."
        )
        return
    password = secrets.token_urlsafe(15)
    services.users.create(actor, DEMO_ADMIN_EMAIL, password, "admin", "Demo Admin")
    console.print(
        f"[bold]Command Center[/bold]: http://{settings.host}:{settings.port}/  "
        f"sign in as {DEMO_ADMIN_EMAIL} with the password (shown once):"
    )
    console.print(f"  {password}")
    console.print("Admins enrol in MFA (a TOTP app) at their first sign-in.")


@app.command()
def serve(
    host: str = typer.Option(None, "--host", help="Listen address (default 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="Port (default 8080)"),
    data_dir: Path | None = DataDir,
    workers: int = typer.Option(None, "--workers", help="Server processes (default 1)"),
    demo: bool = typer.Option(False, "--demo", help="Load the demo catalog when empty"),
    demo_count: int = typer.Option(10_000, "--demo-count", help="Products in the demo catalog"),
) -> None:
    """Apply pending migrations and serve the data plane."""
    overrides: dict[str, object] = {}
    for name, value in (
        ("host", host),
        ("port", port),
        ("data_dir", data_dir),
        ("workers", workers),
    ):
        if value is not None:
            overrides[name] = value
    settings = Settings(**overrides)  # type: ignore[arg-type]
    services = build_services(settings)
    if demo:
        if services.catalog.settings_of("default") is None:
            n = load_demo(services, demo_count)
            console.print(f"Loaded {n} demo products into collection 'default'.")
        _demo_key(services, settings)
        _demo_admin(services, settings)
        if settings.rotation_store_kind is None:
            # The demo's key lives in the file store, so the rotation wizard uses it.
            os.environ["SEARCHGATE_ROTATION_STORE_KIND"] = "file"
            os.environ["SEARCHGATE_ROTATION_STORE_PATH"] = str(demo_store_path(settings).resolve())
    services.db.dispose()
    # Worker processes read their settings from the environment, like any deployment.
    os.environ["SEARCHGATE_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["SEARCHGATE_HOST"] = settings.host
    os.environ["SEARCHGATE_PORT"] = str(settings.port)
    if settings.database_url:
        os.environ["SEARCHGATE_DATABASE_URL"] = settings.database_url
    config = uvicorn.Config(
        "searchgate.webapp:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    sock = _listen(settings.host, settings.port, config.backlog)
    display = f"[{settings.host}]" if ":" in settings.host else settings.host
    console.print(
        f"Searchgate listening on http://{escape(display)}:{sock.getsockname()[1]}",
        highlight=False,
        soft_wrap=True,
    )
    server = uvicorn.Server(config)
    if config.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(3)


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """The listening socket, bound before anything says the server listens; a port
    that cannot be had is one line and exit 1, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        reason = {
            errno.EADDRINUSE: "the address is in use (is another server running? choose "
            "another --port)",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
            errno.EADDRNOTAVAIL: "this host has no such address (check --host)",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        console.print(
            f"[red]error:[/red] cannot listen on {escape(host)}:{port}: {escape(reason)}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    sock.set_inheritable(True)
    return sock


@app.command()
def migrate(data_dir: Path | None = DataDir) -> None:
    """Apply pending database migrations."""
    settings = settings_for(data_dir)
    settings.ensure_dirs()
    upgrade(settings.resolved_database_url)
    console.print("database is up to date")


@app.command()
def demo(
    count: int = typer.Option(10_000, "--count", help="How many products"),
    collection: str = typer.Option("default", "--collection"),
    data_dir: Path | None = DataDir,
) -> None:
    """Write a realistic generated electronics catalog into a collection."""
    services = build_services(settings_for(data_dir))
    try:
        n = load_demo(services, count, collection)
    except SearchgateError as exc:
        print_error(exc.message)
        raise typer.Exit(2) from None
    console.print(f"wrote {n} products into {collection!r}")


@app.command()
def reindex(
    collection: list[str] = typer.Option(None, "--collection", help="Only these (repeatable)"),
    data_dir: Path | None = DataDir,
) -> None:
    """Rebuild search indexes from the records in the database.

    Running servers rebuild their own copies when they read the request from the change
    log; copies that no server holds are rebuilt here, with progress.
    """
    settings = settings_for(data_dir)
    services = build_services(settings)
    names = collection or [c.name for c in services.catalog.list_collections()]
    known = {c.name for c in services.catalog.list_collections()}
    for name in names:
        if name not in known:
            print_error(f"collection {name!r} does not exist")
            raise typer.Exit(2)
    with services.db.write() as s:
        for name in names:
            changelog.append(s, name, [(changelog.OP_REBUILD, None)])
    free = SlotLock.free_slots(settings.index_dir) or [0]
    for n in free:
        lock = SlotLock(settings.index_dir)
        try:
            slot = lock.acquire(only=n)
        except RuntimeError:
            continue
        try:
            engine = TantivyEngine(
                slot, settings.index_writer_heap_bytes, settings.index_writer_threads
            )
            indexer = Indexer(services.db, services.catalog, engine, f"reindex:{slot.name}")
            with _progress() as progress:
                task = progress.add_task(
                    f"{slot.name}: rebuilding {len(names)} collection(s)", total=None
                )

                def report(done: int, total: int, task: TaskID = task) -> None:
                    progress.update(task, completed=done, total=total)

                indexer.repair(report)
                indexer.catch_up(report)
            engine.close()
        finally:
            lock.release()
    console.print(f"reindexed {', '.join(names) or 'nothing'}")


@app.command("settings")
def show_settings(data_dir: Path | None = DataDir) -> None:
    """Print the effective settings (without secrets)."""
    settings = settings_for(data_dir)
    data = settings.model_dump(
        mode="json", exclude={"key_pepper", "key_pepper_previous", "audit_key"}
    )
    data["database_url"] = settings.resolved_database_url.split("@")[-1]
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    app()
