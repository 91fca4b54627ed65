"""HashiCorp Vault (or OpenBao) KV version 2 through hvac.

Every write is check-and-set (``cas=0`` when the secret must not exist yet), so two
rotations can never overwrite each other. AppRole and Kubernetes logins are renewed
once when Vault answers 403 for an expired token; a second 403 is a real refusal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import hvac  # type: ignore[import-untyped]
import hvac.exceptions  # type: ignore[import-untyped]
import requests

from searchgate.secretstores.base import (
    FIELD,
    SecretFields,
    SecretVersion,
    StoreConflict,
    StoreError,
    StoreMisconfigured,
    StoreNotFound,
    StorePermissionDenied,
    StoreUnavailable,
    scrub,
)
from searchgate_client.sources import split_vault_path

log = logging.getLogger("searchgate.secretstores")

T = TypeVar("T")

AUTH_METHODS = ("token", "approle", "kubernetes")
K8S_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"

# Server-side failures worth another attempt; every 4xx is final.
_RETRYABLE_HTTP = (
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.VaultDown,
)


@dataclass(frozen=True)
class VaultAuth:
    method: str
    token: str | None = field(default=None, repr=False)
    role_id: str | None = None
    secret_id: str | None = field(default=None, repr=False)
    k8s_role: str | None = None
    jwt_path: str = K8S_JWT_PATH
    mount: str | None = None  # auth mount; defaults to the method's name

    def __post_init__(self) -> None:
        if self.method not in AUTH_METHODS:
            raise StoreMisconfigured(
                f"unknown Vault auth method {self.method!r}: use one of {', '.join(AUTH_METHODS)}"
            )
        if self.method == "token" and not self.token:
            raise StoreMisconfigured(
                "no Vault credentials: set VAULT_TOKEN (or run `vault login`), or "
                "VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole, or VAULT_K8S_ROLE for "
                "Kubernetes auth"
            )
        if self.method == "approle" and not (self.role_id and self.secret_id):
            raise StoreMisconfigured("AppRole auth needs both VAULT_ROLE_ID and VAULT_SECRET_ID")
        if self.method == "kubernetes" and not self.k8s_role:
            raise StoreMisconfigured("Kubernetes auth needs a role: set VAULT_K8S_ROLE")

    @property
    def can_relogin(self) -> bool:
        return self.method != "token"


@dataclass(frozen=True)
class VaultConfig:
    addr: str
    mount: str
    secret_path: str
    auth: VaultAuth
    namespace: str | None = None
    verify: bool | str = True  # False, True, or a CA bundle file/directory
    client_cert: tuple[str, str] | None = None
    timeout: float = 5.0
    retries: int = 2
    backoff: float = 0.2


def split_path(path: str, mount: str | None = None) -> tuple[str, str]:
    """``secret/searchgate/client-key`` -> (``secret``, ``searchgate/client-key``), by the
    client's rule (its Vault key source reads the same paths)."""
    try:
        return split_vault_path(path, mount)
    except ValueError as exc:
        raise StoreMisconfigured(str(exc)) from None


def _created(meta: dict[str, Any]) -> datetime | None:
    raw = meta.get("created_time")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        # Vault prints nanoseconds; fromisoformat keeps microseconds.
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


class _Attempt:
    """Whether a guarded call was retried: a failed attempt may still have reached Vault,
    so a CAS refusal on the retry might be our own earlier write."""

    def __init__(self) -> None:
        self.retried = False


class VaultStore:
    kind = "vault"
    writable = True

    def __init__(self, config: VaultConfig, *, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.mount = config.mount
        self.secret_path = config.secret_path
        self.location = f"vault:{config.mount}/{config.secret_path}"
        self.logins = 0  # AppRole/Kubernetes logins made; visible for diagnostics
        self._sleep = sleep
        self._login_lock = threading.Lock()
        session = requests.Session()
        session.verify = config.verify
        session.cert = config.client_cert
        self._client = hvac.Client(
            url=config.addr,
            token=config.auth.token or "",
            verify=config.verify,
            timeout=config.timeout,
            namespace=config.namespace,
            session=session,
        )
        # hvac would read VAULT_CLIENT_CERT from the process environment when cert is
        # None; the adapter is rebuilt so that only the configuration given here counts.
        self._client.adapter = hvac.adapters.JSONAdapter(
            base_uri=config.addr,
            token=config.auth.token or "",
            cert=config.client_cert,
            verify=config.verify,
            timeout=config.timeout,
            session=session,
            namespace=config.namespace,
        )
        self._logged_in = config.auth.method == "token"

    def __repr__(self) -> str:
        return f"VaultStore({self.location!r}, addr={self.config.addr!r})"

    # --- the protocol -------------------------------------------------------------

    def read(self) -> SecretVersion:
        resp = self._call("read the secret", lambda: self._kv_read(None))
        return self._version_from(resp)

    def read_version(self, version: str) -> SecretVersion:
        number = self._number(version)
        if number is None:
            raise StoreNotFound(f"{self.location}: {version!r} is not a Vault version number")
        try:
            resp = self._call(f"read version {number}", lambda: self._kv_read(number))
        except StoreNotFound:
            raise StoreNotFound(
                f"{self.location}: version {number} does not exist, was deleted or destroyed, "
                "or is older than the mount's max_versions"
            ) from None
        return self._version_from(resp)

    def write(self, value: str, expected_version: str | None) -> SecretVersion:
        if not value:
            raise StoreMisconfigured(f"{self.location}: refusing to write an empty key")
        if expected_version is None:
            cas = 0
        else:
            number = self._number(expected_version)
            if number is None:
                raise StoreConflict(
                    f"{self.location}: expected version {expected_version!r} is not a Vault "
                    "version number, so it cannot be the current one"
                )
            cas = number
        attempt = _Attempt()
        try:
            resp = self._call(
                "write the secret",
                lambda: self._client.secrets.kv.v2.create_or_update_secret(
                    path=self.secret_path,
                    secret={FIELD: value},
                    cas=cas,
                    mount_point=self.mount,
                ),
                secrets=(value,),
                attempt=attempt,
            )
        except StoreConflict:
            if attempt.retried:
                # A timed-out attempt may have been applied: if the current version is
                # exactly the one it would have made, with our value, the write happened.
                current = self.read()
                if current.value == value and current.version == str(cas + 1):
                    return current
            if expected_version is None:
                raise StoreConflict(
                    f"{self.location}: a secret already exists there; read it and pass its "
                    "current version to replace it"
                ) from None
            raise StoreConflict(
                f"{self.location}: the secret is no longer at version {expected_version} "
                "(someone else wrote it); read it again and decide"
            ) from None
        data = resp.get("data") or {}
        return SecretVersion(
            value=value, version=str(data.get("version")), created_at=_created(data)
        )

    def restore(self, version: str, expected_version: str) -> SecretVersion:
        if version == expected_version:
            current = self.read()
            if current.version == version:
                return current
        old = self.read_version(version)
        # KV v2 has no "make version N current": the old value becomes a new version,
        # still guarded by check-and-set against the version the caller saw.
        return self.write(old.value, expected_version)

    def check_writable(self) -> None:
        mount = self._call(
            f"look up the mount {self.mount!r}",
            lambda: self._client.adapter.get(f"/v1/sys/internal/ui/mounts/{self.mount}"),
        )
        data = mount.get("data") or {}
        if (
            data.get("type") not in ("kv", "generic")
            or str((data.get("options") or {}).get("version")) != "2"
        ):
            raise StoreMisconfigured(
                f"{self.location}: the mount {self.mount!r} is not a KV version 2 engine "
                f"(type {data.get('type')!r}, options {data.get('options')!r}); enable one with "
                f"`vault secrets enable -path={self.mount} kv-v2`"
            )
        data_path = f"{self.mount}/data/{self.secret_path}"
        try:
            caps = self._call(
                "check the token's capabilities",
                lambda: self._client.sys.get_capabilities(paths=[data_path]),
            )
        except StorePermissionDenied:
            raise StorePermissionDenied(
                f"{self.location}: the token may not ask Vault for its own capabilities, so "
                "write access cannot be checked; give it the `default` policy or "
                'path "sys/capabilities-self" { capabilities = ["update"] }'
            ) from None
        granted = set((caps.get("data") or caps).get(data_path) or [])
        if "root" in granted:
            return
        missing = [c for c in ("create", "read", "update") if c not in granted]
        if missing or "deny" in granted:
            raise StorePermissionDenied(
                f"{self.location}: the Vault token may not write here (it has "
                f"{sorted(granted) or 'no'} capabilities on {data_path}); its policy needs "
                f'path "{data_path}" {{ capabilities = ["create", "read", "update"] }}'
            )

    # --- several named values (the server secrets) -------------------------------

    def read_fields(self) -> SecretFields:
        resp = self._call("read the secret", lambda: self._kv_read(None))
        body = resp.get("data") or {}
        data = body.get("data") or {}
        meta = body.get("metadata") or {}
        values = {k: v for k, v in data.items() if isinstance(v, str) and v}
        return SecretFields(values=values, version=str(meta.get("version")))

    def create_fields(self, values: Mapping[str, str]) -> SecretFields:
        attempt = _Attempt()
        try:
            resp = self._call(
                "write the secret",
                lambda: self._client.secrets.kv.v2.create_or_update_secret(
                    path=self.secret_path, secret=dict(values), cas=0, mount_point=self.mount
                ),
                secrets=tuple(values.values()),
                attempt=attempt,
            )
        except StoreConflict:
            if attempt.retried:
                # A timed-out first attempt may have been applied.
                current = self.read_fields()
                if dict(current.values) == dict(values) and current.version == "1":
                    return current
            raise StoreConflict(f"{self.location}: a secret already exists there") from None
        data = resp.get("data") or {}
        return SecretFields(values=dict(values), version=str(data.get("version")))

    # --- plumbing -----------------------------------------------------------------

    def _kv_read(self, version: int | None) -> Any:
        return self._client.secrets.kv.v2.read_secret_version(
            path=self.secret_path,
            version=version,
            mount_point=self.mount,
            raise_on_deleted_version=True,
        )

    def _version_from(self, resp: Any) -> SecretVersion:
        body = resp.get("data") or {}
        data = body.get("data") or {}
        meta = body.get("metadata") or {}
        value = data.get(FIELD)
        if not isinstance(value, str) or not value:
            raise StoreMisconfigured(
                f"{self.location}: the secret has no string field {FIELD!r} "
                f"(fields present: {sorted(data)}); write the key under {FIELD!r}"
            )
        return SecretVersion(
            value=value, version=str(meta.get("version")), created_at=_created(meta)
        )

    @staticmethod
    def _number(version: str) -> int | None:
        return int(version) if version.isdigit() and int(version) > 0 else None

    def _known_secrets(self) -> tuple[str | None, ...]:
        auth = self.config.auth
        return (auth.token, auth.secret_id, self._client.token or None)

    def _login(self) -> None:
        auth = self.config.auth
        with self._login_lock:
            # An expired token sent along with a login request can get the login refused.
            self._client.token = ""
            try:
                if auth.method == "approle":
                    self._client.auth.approle.login(
                        role_id=auth.role_id,
                        secret_id=auth.secret_id,
                        mount_point=auth.mount or "approle",
                    )
                else:
                    try:
                        # Projected service-account tokens are rotated by the kubelet:
                        # read the file at every login.
                        jwt = Path(auth.jwt_path).read_text().strip()
                    except OSError as exc:
                        raise StoreMisconfigured(
                            f"cannot read the Kubernetes service-account token "
                            f"{auth.jwt_path}: {exc.strerror}; set VAULT_K8S_JWT_PATH"
                        ) from None
                    self._client.auth.kubernetes.login(
                        role=auth.k8s_role, jwt=jwt, mount_point=auth.mount or "kubernetes"
                    )
            except hvac.exceptions.VaultError as exc:
                if isinstance(exc, _RETRYABLE_HTTP):
                    raise
                detail = scrub("; ".join(exc.errors or []), self._known_secrets())
                raise StorePermissionDenied(
                    f"Vault refused the {auth.method} login at {self.config.addr} "
                    f"(HTTP {_status(exc)}: {detail or 'no detail'}); check the role and its "
                    "credentials"
                ) from None
            self.logins += 1
            self._logged_in = True

    def _call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        secrets: tuple[str, ...] = (),
        attempt: _Attempt | None = None,
    ) -> T:
        """Runs ``fn`` with the adapter's rules: bounded retries with backoff on
        connection errors and 5xx, never on 4xx; one re-login on 403 for AppRole and
        Kubernetes; every failure mapped to a StoreError without secrets and without
        the library's exception chained (its text may quote request or response)."""
        attempt = attempt or _Attempt()
        tries = 0
        relogged = False
        hide = (*secrets, *self._known_secrets())
        where = f"{self.location} at {self.config.addr}"
        while True:
            try:
                if not self._logged_in:
                    self._login()
                return fn()
            except StoreError:
                raise
            except requests.exceptions.SSLError:
                raise StoreMisconfigured(
                    f"{where}: TLS verification failed; point VAULT_CACERT at the CA that "
                    "signed Vault's certificate (VAULT_SKIP_VERIFY only for development)"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                timed_out = isinstance(exc, requests.exceptions.Timeout)
                reason = "timed out" if timed_out else "connection failed"
                if tries < self.config.retries:
                    attempt.retried = True
                    tries += 1
                    self._backoff(what, reason, tries)
                    continue
                raise StoreUnavailable(
                    f"{where}: could not {what}: {reason} after {tries + 1} attempts "
                    f"(timeout {self.config.timeout:g} s); check VAULT_ADDR and that Vault is up"
                ) from None
            except hvac.exceptions.Forbidden as exc:
                if self.config.auth.can_relogin and not relogged:
                    relogged = True
                    log.info("vault answered 403 for %s; logging in again", self.location)
                    self._logged_in = False
                    continue
                detail = scrub("; ".join(exc.errors or []), hide)
                hint = (
                    "the token was renewed by a fresh login and is still refused, so its "
                    "policy lacks access"
                    if relogged
                    else "the token expired, was revoked, or its policy lacks access"
                )
                raise StorePermissionDenied(
                    f"{where}: could not {what}: permission denied ({detail or 'no detail'}); "
                    f"{hint}"
                ) from None
            except _RETRYABLE_HTTP as exc:
                if tries < self.config.retries:
                    attempt.retried = True
                    tries += 1
                    self._backoff(what, f"HTTP {_status(exc)}", tries)
                    continue
                detail = scrub("; ".join(exc.errors or []), hide)
                raise StoreUnavailable(
                    f"{where}: could not {what}: HTTP {_status(exc)} after {tries + 1} attempts "
                    f"({detail or 'no detail'}); Vault may be sealed, overloaded or restarting"
                ) from None
            except hvac.exceptions.VaultError as exc:
                raise self._map_4xx(exc, what, where, hide) from None

    def _map_4xx(self, exc: Any, what: str, where: str, hide: tuple[str | None, ...]) -> StoreError:
        detail = scrub("; ".join(exc.errors or []), hide)
        if isinstance(exc, hvac.exceptions.InvalidPath):
            return StoreNotFound(f"{where}: could not {what}: no secret there")
        if isinstance(exc, hvac.exceptions.InvalidRequest) and "check-and-set" in detail:
            return StoreConflict(f"{where}: could not {what}: {detail}")
        if isinstance(exc, hvac.exceptions.Unauthorized):
            return StorePermissionDenied(f"{where}: could not {what}: unauthorized ({detail})")
        if isinstance(exc, hvac.exceptions.RateLimitExceeded):
            return StoreUnavailable(f"{where}: could not {what}: rate limited by Vault ({detail})")
        if isinstance(exc, hvac.exceptions.PreconditionFailed):
            # A performance standby that has not caught up yet.
            return StoreUnavailable(
                f"{where}: could not {what}: Vault answered 412 (a standby not yet consistent); "
                "try again"
            )
        return StoreError(
            f"{where}: could not {what}: HTTP {_status(exc)} ({detail or 'no detail'})"
        )

    def _backoff(self, what: str, reason: str, tries: int) -> None:
        delay = self.config.backoff * (2 ** (tries - 1))
        log.warning(
            "vault %s: could not %s (%s); retry %d of %d in %.2f s",
            self.location,
            what,
            reason,
            tries,
            self.config.retries,
            delay,
        )
        self._sleep(delay)


_STATUS = {
    "InvalidRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "InvalidPath": 404,
    "PreconditionFailed": 412,
    "RateLimitExceeded": 429,
    "InternalServerError": 500,
    "VaultNotInitialized": 501,
    "BadGateway": 502,
    "VaultDown": 503,
}


def _status(exc: Exception) -> str:
    return str(_STATUS.get(type(exc).__name__, "error"))
