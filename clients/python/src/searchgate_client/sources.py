"""Key sources: where a ``CachedKey`` reads the current client key.

A source is any function without arguments that returns the key. These read the places
the server's rotation writes to (``searchgate rotate --store vault|aws|file``): the key
lives under the field ``client_key`` of a Vault KV v2 secret, of an AWS Secrets Manager
secret (``SecretString`` JSON) or of the versioned secret file. Vault needs the
``vault`` extra (hvac), AWS the ``aws`` extra (boto3); both are imported only when such
a source is made. Reading only: rotating the key is the server's ``searchgate rotate``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

KeySource = Callable[[], str]

FIELD = "client_key"
"""The field that holds the key in every store (Vault data, AWS SecretString JSON, file)."""

# The versioned secret file that ``searchgate store write --store file`` keeps.
FILE_FORMAT = 1


class _SecretVersion(Protocol):
    @property
    def value(self) -> str: ...


class _ReadableStore(Protocol):
    def read(self) -> _SecretVersion: ...


def from_store(store: _ReadableStore) -> KeySource:
    """A key source reading the current version of a secret store: anything with a
    ``read()`` returning an object with a ``value``, as the server's
    ``searchgate.secretstores`` adapters do."""

    def read_current() -> str:
        return store.read().value

    return read_current


def from_env(variable: str = "SEARCHGATE_CLIENT_KEY") -> KeySource:
    """The key in an environment variable, read at every refresh."""
    if not variable or not variable.replace("_", "").isalnum() or variable[0].isdigit():
        raise ValueError(f"{variable!r} is not an environment variable name")

    def read_env() -> str:
        value = os.environ.get(variable, "")
        if not value.strip():
            raise LookupError(f"the environment variable {variable} is not set or empty")
        return value

    return read_env


def from_file(path: str | os.PathLike[str]) -> KeySource:
    """The key in a file: either the versioned secret file of ``--store file`` (JSON,
    the current version is read) or a file that holds only the key (a mounted
    Kubernetes secret, a Vault Agent template, a systemd credential)."""
    where = Path(path).expanduser()

    def read_file() -> str:
        text = where.read_text(encoding="utf-8")
        if not text.lstrip().startswith("{"):
            return text
        return current_in_secret_file(json.loads(text))

    return read_file


def current_in_secret_file(doc: Any) -> str:
    """The current key of a parsed versioned secret file; ValueError when ``doc`` is not
    one."""
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise ValueError(f"not a Searchgate secret file (format {FILE_FORMAT})")
    current = doc.get("current")
    versions = doc.get("versions")
    for entry in versions if isinstance(versions, list) else []:
        if isinstance(entry, dict) and entry.get("version") == current:
            return key_field(entry)
    raise ValueError("the secret file names a current version it does not hold")


def key_field(data: Any) -> str:
    """The key under ``client_key`` of a secret's data; ValueError naming the fields
    present (never their values) when it is missing."""
    value = data.get(FIELD) if isinstance(data, Mapping) else None
    if not isinstance(value, str) or not value:
        present = sorted(str(k) for k in data) if isinstance(data, Mapping) else []
        raise ValueError(f"the secret has no string field {FIELD!r} (fields present: {present})")
    return value


def split_vault_path(path: str, mount: str | None = None) -> tuple[str, str]:
    """``secret/searchgate/client-key`` -> (``secret``, ``searchgate/client-key``). A mount
    with slashes (``team/kv``) is given as ``mount``, and ``path`` must start with it.
    Raises ValueError saying what is wrong."""
    clean = path.strip().strip("/")
    parts = clean.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid Vault path {path!r}: expected MOUNT/PATH/TO/SECRET")
    if mount:
        mount = mount.strip("/")
        if not clean.startswith(mount + "/"):
            raise ValueError(f"Vault path {path!r} is not under the mount {mount!r}")
        rest = clean[len(mount) + 1 :]
    else:
        mount, rest = parts[0], "/".join(parts[1:])
    if not rest:
        raise ValueError(
            f"Vault path {path!r} names only a mount: expected MOUNT/PATH/TO/SECRET, "
            "for example secret/searchgate/client-key"
        )
    return mount, rest


def _missing_extra(extra: str, package: str) -> ImportError:
    return ImportError(f'this key source needs {package}: pip install "searchgate-client[{extra}]"')


def from_vault(
    path: str,
    *,
    mount: str | None = None,
    client: Any = None,
    url: str | None = None,
    token: str | None = None,
    namespace: str | None = None,
    verify: bool | str = True,
    timeout: float = 5.0,
) -> KeySource:
    """The key in a Vault (or OpenBao) KV v2 secret, ``path`` as given to
    ``searchgate rotate --store vault --path``. Without ``client``, hvac connects to
    ``url`` (else ``VAULT_ADDR``) with ``token`` (else ``VAULT_TOKEN`` or
    ``~/.vault-token``); pass a logged-in ``hvac.Client`` for AppRole or Kubernetes
    logins (keeping its token valid is then the caller's)."""
    try:
        import hvac  # type: ignore[import-untyped]
    except ImportError:
        raise _missing_extra("vault", "hvac") from None
    kv_mount, secret_path = split_vault_path(path, mount)
    vault = client or hvac.Client(
        url=url, token=token, namespace=namespace, verify=verify, timeout=timeout
    )

    def read_vault() -> str:
        answer = vault.secrets.kv.v2.read_secret_version(
            path=secret_path, mount_point=kv_mount, raise_on_deleted_version=True
        )
        return key_field(((answer or {}).get("data") or {}).get("data"))

    return read_vault


def region_from_arn(secret_id: str) -> str | None:
    """The region named in a secret's ARN, or None for a name or an ARN without one."""
    parts = secret_id.split(":")
    if secret_id.startswith("arn:") and len(parts) > 3 and parts[3]:
        return parts[3]
    return None


def from_aws(secret_id: str, *, region: str | None = None, client: Any = None) -> KeySource:
    """The key in an AWS Secrets Manager secret (name or ARN), its ``AWSCURRENT``
    version. Without ``client``, boto3's own configuration applies (environment,
    profile, instance role); ``region`` defaults to the ARN's."""
    try:
        import boto3  # type: ignore[import-untyped]
    except ImportError:
        raise _missing_extra("aws", "boto3") from None
    if not secret_id.strip():
        raise ValueError("secret_id is a secret name or ARN")
    manager = client or boto3.client(
        "secretsmanager", region_name=region or region_from_arn(secret_id)
    )

    def read_aws() -> str:
        answer = manager.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
        raw = answer.get("SecretString")
        if not isinstance(raw, str):
            raise ValueError(f"the secret has no SecretString holding {FIELD!r}")
        return key_field(json.loads(raw))

    return read_aws
