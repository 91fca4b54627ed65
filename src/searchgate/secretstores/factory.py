"""``open_store``: a store from a kind, a path, and the settings its users already know
(Vault's VAULT_* variables, the AWS SDK's environment and profiles). Explicit options
win over the environment; unknown options are refused, so a typo cannot silently fall
back to a default."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from searchgate.durations import parse_duration
from searchgate.errors import InvalidInput
from searchgate.secretstores.aws import AwsConfig, AwsSecretsManagerStore
from searchgate.secretstores.base import SecretStore, StoreMisconfigured
from searchgate.secretstores.env import EnvStore
from searchgate.secretstores.file import FileStore
from searchgate.secretstores.vault import (
    AUTH_METHODS,
    K8S_JWT_PATH,
    VaultAuth,
    VaultConfig,
    VaultStore,
    split_path,
)

log = logging.getLogger("searchgate.secretstores")

KINDS = ("vault", "aws", "file", "env")
VAULT_DEFAULT_ADDR = "https://127.0.0.1:8200"  # the Vault CLI's default
MAX_RETRIES = 2

_OPTIONS: dict[str, frozenset[str]] = {
    "vault": frozenset(
        {
            "addr",
            "token",
            "namespace",
            "ca_cert",
            "ca_path",
            "client_cert",
            "client_key",
            "skip_verify",
            "auth",
            "role_id",
            "secret_id",
            "approle_mount",
            "k8s_role",
            "k8s_jwt_path",
            "k8s_mount",
            "mount",
            "timeout",
            "retries",
            "backoff",
        }
    ),
    "aws": frozenset({"region", "profile", "endpoint_url", "timeout", "retries"}),
    "file": frozenset({"max_versions", "lock_timeout"}),
    "env": frozenset(),
}


def open_store(
    kind: str, path: str, *, env: Mapping[str, str] | None = None, **options: Any
) -> SecretStore:
    """The store of ``kind`` at ``path``: a Vault path (``secret/searchgate/client-key``:
    mount, then path), an AWS secret name or ARN, a file path, or a variable name.

    ``env`` stands for the process environment (``os.environ`` when None). Options given
    as None count as not given. Raises StoreMisconfigured for anything that cannot work;
    nothing here talks to the network (``check_writable`` does that)."""
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise StoreMisconfigured(f"unknown store kind {kind!r}: use one of {', '.join(KINDS)}")
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - _OPTIONS[kind])
    if unknown:
        raise StoreMisconfigured(
            f"unknown option(s) for a {kind} store: {', '.join(unknown)}; known: "
            f"{', '.join(sorted(_OPTIONS[kind])) or 'none'}"
        )
    environ: Mapping[str, str] = os.environ if env is None else env
    if kind == "vault":
        return VaultStore(vault_config(path, environ, given))
    if kind == "aws":
        return AwsSecretsManagerStore(
            aws_config(path, environ, given, explicit_env=env is not None)
        )
    if kind == "file":
        return FileStore(
            path,
            max_versions=int(given.get("max_versions", 10)),
            lock_timeout=_positive(given.get("lock_timeout", 10.0), "lock_timeout"),
        )
    return EnvStore(path, environ)


def vault_config(path: str, env: Mapping[str, str], opts: Mapping[str, Any]) -> VaultConfig:
    def pick(option: str, variable: str | None) -> str | None:
        value = opts.get(option)
        if value is None and variable is not None:
            value = env.get(variable) or None
        return None if value is None else str(value)

    addr = (pick("addr", "VAULT_ADDR") or VAULT_DEFAULT_ADDR).rstrip("/")
    parts = urlsplit(addr)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StoreMisconfigured(f"VAULT_ADDR {addr!r} is not an http(s) URL")
    mount, secret_path = split_path(path, pick("mount", None))

    role_id = pick("role_id", "VAULT_ROLE_ID")
    k8s_role = pick("k8s_role", "VAULT_K8S_ROLE")
    method = pick("auth", "SEARCHGATE_VAULT_AUTH")
    if method is None:
        method = "approle" if role_id else "kubernetes" if k8s_role else "token"
    method = method.lower()
    if method not in AUTH_METHODS:
        raise StoreMisconfigured(
            f"unknown Vault auth method {method!r}: use one of {', '.join(AUTH_METHODS)}"
        )
    token = pick("token", "VAULT_TOKEN")
    if method == "token" and token is None and env.get("HOME"):
        # Where `vault login` leaves the token.
        token_file = Path(env["HOME"]) / ".vault-token"
        if token_file.is_file():
            token = token_file.read_text().strip() or None
    auth = VaultAuth(
        method=method,
        token=token if method == "token" else None,
        role_id=role_id,
        secret_id=pick("secret_id", "VAULT_SECRET_ID"),
        k8s_role=k8s_role,
        jwt_path=pick("k8s_jwt_path", "VAULT_K8S_JWT_PATH") or K8S_JWT_PATH,
        mount=pick("approle_mount" if method == "approle" else "k8s_mount", None)
        or env.get("VAULT_APPROLE_MOUNT" if method == "approle" else "VAULT_K8S_MOUNT")
        or None,
    )

    skip = opts.get("skip_verify")
    skip_verify = (
        _parse_bool(env.get("VAULT_SKIP_VERIFY", ""), "VAULT_SKIP_VERIFY")
        if (skip is None)
        else bool(skip)
    )
    verify: bool | str = True
    ca_cert, ca_path = pick("ca_cert", "VAULT_CACERT"), pick("ca_path", "VAULT_CAPATH")
    if skip_verify:
        log.warning("vault: TLS verification is off (VAULT_SKIP_VERIFY); development only")
        verify = False
    elif ca_cert:  # Vault: VAULT_CACERT takes precedence over VAULT_CAPATH
        if not Path(ca_cert).is_file():
            raise StoreMisconfigured(f"VAULT_CACERT {ca_cert!r} is not a readable file")
        verify = ca_cert
    elif ca_path:
        if not Path(ca_path).is_dir():
            raise StoreMisconfigured(f"VAULT_CAPATH {ca_path!r} is not a directory")
        verify = ca_path
    cert, key = pick("client_cert", "VAULT_CLIENT_CERT"), pick("client_key", "VAULT_CLIENT_KEY")
    if bool(cert) != bool(key):
        raise StoreMisconfigured("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY go together")

    timeout = opts.get("timeout")
    if timeout is None and env.get("VAULT_CLIENT_TIMEOUT"):
        timeout = _parse_duration(env["VAULT_CLIENT_TIMEOUT"], "VAULT_CLIENT_TIMEOUT")
    return VaultConfig(
        addr=addr,
        mount=mount,
        secret_path=secret_path,
        auth=auth,
        namespace=pick("namespace", "VAULT_NAMESPACE"),
        verify=verify,
        client_cert=(cert, key) if cert and key else None,
        timeout=_positive(5.0 if timeout is None else timeout, "timeout"),
        retries=_retries(opts.get("retries", MAX_RETRIES)),
        backoff=_positive(opts.get("backoff", 0.2), "backoff", allow_zero=True),
    )


def aws_config(
    path: str, env: Mapping[str, str], opts: Mapping[str, Any], *, explicit_env: bool
) -> AwsConfig:
    region = opts.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    endpoint = (
        opts.get("endpoint_url")
        or env.get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        or env.get("AWS_ENDPOINT_URL")
    )
    profile = opts.get("profile")
    creds: dict[str, str | None] = {}
    if explicit_env:
        # The process environment is read by boto3 itself; a mapping given here has to
        # be handed over, or its profile and keys would be ignored.
        profile = profile or env.get("AWS_PROFILE") or None
        creds = {
            "access_key_id": env.get("AWS_ACCESS_KEY_ID") or None,
            "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
            "session_token": env.get("AWS_SESSION_TOKEN") or None,
        }
    return AwsConfig(
        secret_id=path.strip(),
        region=region or None,
        profile=profile,
        endpoint_url=endpoint or None,
        timeout=_positive(opts.get("timeout", 5.0), "timeout"),
        retries=_retries(opts.get("retries", MAX_RETRIES)),
        **creds,
    )


def _parse_bool(raw: str, name: str) -> bool:
    # Go's strconv.ParseBool, which Vault uses for its variables.
    if raw in ("", "0", "f", "F", "FALSE", "false", "False"):
        return False
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    raise StoreMisconfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def _parse_duration(raw: str, name: str) -> float:
    try:
        return parse_duration(raw, name, bare_seconds=True).total_seconds()
    except InvalidInput:
        raise StoreMisconfigured(f"{name}={raw!r} is not a duration (like 5s)") from None


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StoreMisconfigured(f"{name} must be a number of seconds") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise StoreMisconfigured(f"{name} must be positive")
    return number


def _retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise StoreMisconfigured(
            f"retries must be an integer from 0 to {MAX_RETRIES}: a store that is down is "
            "reported, not waited for"
        )
    return value
