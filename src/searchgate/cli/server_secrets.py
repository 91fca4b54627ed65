"""``searchgate secrets push``: this node's server secrets into the secret store, once.

Every node then reads them from there at start-up (SEARCHGATE_SERVER_SECRETS_STORE_KIND
and SEARCHGATE_SERVER_SECRETS_STORE_PATH), instead of copies of the secrets folder.
The secrets are never printed: only their fingerprints.

Exit codes: 0 stored (or the store holds these already); 1 the store holds other
server secrets; 2 bad input or a store failure; 78 this node's secrets do not match
the database's.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from searchgate.audit.service import AuditLog
from searchgate.audit.tags import Action
from searchgate.cli.common import EXIT_NO, EXIT_USAGE, DataDir, console, print_error, settings_for
from searchgate.cli.users import cli_actor
from searchgate.runtime import build_services, open_database
from searchgate.secretstores import FieldStore, SecretFields, StoreError, StoreNotFound
from searchgate.server_secrets import (
    AUDIT_KEY,
    KEY_PEPPER,
    SECRETS,
    ServerSecrets,
    load_server_secrets,
    open_fields_store,
)

app = typer.Typer(
    help="The server secrets (key pepper, audit key) shared by every node.",
    no_args_is_help=True,
)


def _describe(fingerprints: dict[str, str]) -> str:
    return ", ".join(f"{s.words} {fingerprints.get(s.field, 'missing')}" for s in SECRETS)


def _fingerprints(current: SecretFields) -> dict[str, str]:
    return {
        s.field: s.fingerprint(current.values[s.field].encode("utf-8"))
        for s in SECRETS
        if s.field in current.values
    }


@app.command("push")
def push(
    kind: str | None = typer.Option(
        None,
        "--store",
        help="vault, aws or file (default SEARCHGATE_SERVER_SECRETS_STORE_KIND)",
    ),
    path: str | None = typer.Option(
        None,
        "--path",
        help="Vault: mount/path (secret/searchgate/server); AWS: secret name or ARN; file: "
        "a file path (default SEARCHGATE_SERVER_SECRETS_STORE_PATH)",
    ),
    data_dir: Path | None = DataDir,
) -> None:
    """Put this node's key pepper and audit key in the secret store, for every node to
    read at start-up. Writes only where nothing is stored yet; prints fingerprints,
    never the secrets."""
    settings = settings_for(data_dir)
    kind = kind or settings.server_secrets_store_kind
    path = path or settings.server_secrets_store_path
    if not kind or not path:
        print_error(
            "name the store: --store vault --path secret/searchgate/server (or set "
            "SEARCHGATE_SERVER_SECRETS_STORE_KIND and SEARCHGATE_SERVER_SECRETS_STORE_PATH)"
        )
        raise typer.Exit(EXIT_USAGE)
    store = open_fields_store(kind, path)
    db = open_database(settings)
    # This node's own secrets (setting or secrets folder), checked against the
    # database's record like any start: the store is what is being filled.
    secrets: ServerSecrets = load_server_secrets(settings, db, use_store=False)
    services = build_services(settings, db=db, server_secrets=secrets)
    try:
        written, mine = _push(services.audit, store, secrets)
    finally:
        services.db.dispose()
    if written is None:
        return
    console.print(
        f"stored this node's server secrets in {escape(store.location)} as version "
        f"{escape(written.version)} ({_describe(mine)}). On every node set "
        f"SEARCHGATE_SERVER_SECRETS_STORE_KIND={escape(kind)} "
        f"SEARCHGATE_SERVER_SECRETS_STORE_PATH={escape(path)}",
        highlight=False,
        soft_wrap=True,
    )


def _push(
    audit: AuditLog, store: FieldStore, secrets: ServerSecrets
) -> tuple[SecretFields | None, dict[str, str]]:
    """The version written, or None when the store holds these secrets already."""
    mine = secrets.fingerprints()
    try:
        try:
            current: SecretFields | None = store.read_fields()
        except StoreNotFound:
            current = None
        if current is not None:
            theirs = _fingerprints(current)
            if theirs == mine:
                console.print(
                    f"{escape(store.location)} holds this node's server secrets already "
                    f"(version {escape(current.version)}: {_describe(mine)})",
                    highlight=False,
                    soft_wrap=True,
                )
                return None, mine
            print_error(
                f"{store.location} holds other server secrets ({_describe(theirs)}; this node "
                f"has {_describe(mine)}); nothing written. Remove that secret first if no "
                "node uses it, or push to another path"
            )
            raise typer.Exit(EXIT_NO)
        written = store.create_fields(secrets.values())
    except StoreError as exc:
        print_error(exc.message)
        raise typer.Exit(EXIT_USAGE) from None
    audit.record_now(
        cli_actor(),
        Action.SERVER_SECRETS_PUSH,
        target=store.location[:320],
        details={
            KEY_PEPPER: mine[KEY_PEPPER],
            AUDIT_KEY: mine[AUDIT_KEY],
            "version": written.version,
        },
    )
    return written, mine
