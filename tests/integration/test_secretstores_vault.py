"""The Vault adapter against a real OpenBao dev server: policies, AppRole re-login,
retries, timeouts and TLS. Kubernetes auth is checked for configuration only (no
Kubernetes API server here)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from searchgate.secretstores import (
    StoreConflict,
    StoreError,
    StoreMisconfigured,
    StoreNotFound,
    StorePermissionDenied,
    StoreUnavailable,
    open_store,
)
from searchgate.secretstores.vault import VaultStore
from tests.stores import BaoServer, BlackHole, FaultyServer, closed_url, running_bao, unique_path


def new_key() -> str:
    return "sgk_" + secrets.token_hex(20)


def policy(path: str, *caps: str) -> str:
    mount, rest = path.split("/", 1)
    return f'path "{mount}/data/{rest}" {{ capabilities = {list(caps)!r} }}'.replace("'", '"')


def vault(bao: BaoServer, path: str | None = None, **env: str) -> VaultStore:
    store = open_store("vault", path or "secret/" + unique_path(), env={**bao.env, **env})
    assert isinstance(store, VaultStore)
    return store


def test_location_and_path_split(bao_server: BaoServer) -> None:
    store = vault(bao_server, "secret/searchgate/client-key")
    assert store.location == "vault:secret/searchgate/client-key"
    assert (store.mount, store.secret_path) == ("secret", "searchgate/client-key")
    assert bao_server.root_token not in repr(store) and bao_server.root_token not in repr(
        store.config
    )


def test_every_write_is_check_and_set(bao_server: BaoServer) -> None:
    store = vault(bao_server)
    first = store.write(new_key(), None)
    # A writer that does not use CAS at all (a person with the vault CLI) moves it on.
    root = bao_server.client()
    root.secrets.kv.v2.create_or_update_secret(
        path=store.secret_path, secret={"client_key": "sgk_other"}, mount_point="secret"
    )
    with pytest.raises(StoreConflict):
        store.write(new_key(), first.version)
    assert store.read().value == "sgk_other"
    assert store.read().version == "2"


def test_a_secret_without_the_field_is_misconfigured(bao_server: BaoServer) -> None:
    store = vault(bao_server)
    bao_server.client().secrets.kv.v2.create_or_update_secret(
        path=store.secret_path, secret={"password": "hunter2-secret"}, mount_point="secret"
    )
    with pytest.raises(StoreMisconfigured) as bad:
        store.read()
    assert "client_key" in bad.value.message and "hunter2-secret" not in bad.value.message


def test_deleted_version_is_not_found(bao_server: BaoServer) -> None:
    store = vault(bao_server)
    first = store.write(new_key(), None)
    store.write(new_key(), first.version)
    bao_server.client().secrets.kv.v2.delete_secret_versions(
        path=store.secret_path, versions=[1], mount_point="secret"
    )
    with pytest.raises(StoreNotFound) as gone:
        store.read_version("1")
    assert "deleted" in gone.value.message
    with pytest.raises(StoreNotFound):
        store.read_version("not-a-number")


def test_deny_policy_is_permission_denied_without_the_token(bao_server: BaoServer) -> None:
    path = "secret/" + unique_path()
    vault(bao_server, path).write(new_key(), None)
    token = bao_server.token_with_policy(policy(path, "deny"))
    store = vault(bao_server, path, VAULT_TOKEN=token)
    for op in (store.read, lambda: store.write(new_key(), "1"), store.check_writable):
        with pytest.raises(StorePermissionDenied) as denied:
            op()
        assert token not in denied.value.message
        assert denied.value.code == "store_permission_denied"
    assert store.logins == 0  # token auth cannot log in again


def test_check_writable_names_the_missing_capabilities(bao_server: BaoServer) -> None:
    path = "secret/" + unique_path()
    owner = vault(bao_server, path)
    owner.write(new_key(), None)
    reader = vault(bao_server, path, VAULT_TOKEN=bao_server.token_with_policy(policy(path, "read")))
    assert reader.read().version == "1"
    with pytest.raises(StorePermissionDenied) as refused:
        reader.check_writable()
    assert '"create", "read", "update"' in refused.value.message
    writer = vault(
        bao_server,
        path,
        VAULT_TOKEN=bao_server.token_with_policy(policy(path, "create", "read", "update")),
    )
    writer.check_writable()
    assert writer.write(new_key(), "1").version == "2"
    bare = bao_server.token_with_policy(
        policy(path, "create", "read", "update"), default_policy=False
    )
    with pytest.raises(StorePermissionDenied) as unknowable:
        vault(bao_server, path, VAULT_TOKEN=bare).check_writable()
    assert "sys/capabilities-self" in unknowable.value.message


def test_check_writable_refuses_a_kv_version_1_mount(bao_server: BaoServer) -> None:
    mount = f"kv1-{secrets.token_hex(3)}"
    bao_server.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    with pytest.raises(StoreMisconfigured) as wrong:
        vault(bao_server, f"{mount}/searchgate/client-key").check_writable()
    assert "KV version 2" in wrong.value.message and "kv-v2" in wrong.value.message


def test_expired_token_auth_fails_loudly(bao_server: BaoServer) -> None:
    path = "secret/" + unique_path()
    vault(bao_server, path).write(new_key(), None)
    token = bao_server.token_with_policy(policy(path, "read"), ttl="1s")
    store = vault(bao_server, path, VAULT_TOKEN=token)
    assert store.read().version == "1"
    time.sleep(2)
    with pytest.raises(StorePermissionDenied) as expired:
        store.read()
    assert "expired" in expired.value.message and token not in expired.value.message


@pytest.mark.timeout(60)
def test_approle_logs_in_again_when_the_token_expires(bao_server: BaoServer) -> None:
    path = "secret/" + unique_path()
    vault(bao_server, path).write(new_key(), None)
    creds = bao_server.approle(policy(path, "create", "read", "update"), ttl="2s")
    env = {"VAULT_ADDR": bao_server.addr, "VAULT_ROLE_ID": creds.role_id}
    store = open_store("vault", path, env={**env, "VAULT_SECRET_ID": creds.secret_id})
    assert isinstance(store, VaultStore) and store.config.auth.method == "approle"
    first = store.read()
    assert store.logins == 1
    time.sleep(3)  # the AppRole token's TTL is 2 s; revocation runs on a timer
    assert store.read() == first
    assert store.logins == 2
    assert store.write(new_key(), first.version).version == "2"


@pytest.mark.timeout(60)
def test_approle_relogin_failure_is_loud(bao_server: BaoServer) -> None:
    path = "secret/" + unique_path()
    vault(bao_server, path).write(new_key(), None)
    # The secret id works once: the re-login after expiry is refused.
    creds = bao_server.approle(policy(path, "read"), ttl="2s", secret_id_num_uses=1)
    env = {
        "VAULT_ADDR": bao_server.addr,
        "VAULT_ROLE_ID": creds.role_id,
        "VAULT_SECRET_ID": creds.secret_id,
    }
    store = open_store("vault", path, env=env)
    store.read()
    time.sleep(3)
    with pytest.raises(StorePermissionDenied) as refused:
        store.read()
    assert "approle login" in refused.value.message
    assert creds.secret_id not in refused.value.message


def test_approle_with_a_policy_that_denies_is_refused_after_one_relogin(
    bao_server: BaoServer,
) -> None:
    path = "secret/" + unique_path()
    vault(bao_server, path).write(new_key(), None)
    creds = bao_server.approle(policy(path, "deny"))
    store = open_store(
        "vault",
        path,
        env={
            "VAULT_ADDR": bao_server.addr,
            "VAULT_ROLE_ID": creds.role_id,
            "VAULT_SECRET_ID": creds.secret_id,
        },
    )
    with pytest.raises(StorePermissionDenied) as refused:
        store.read()
    assert "still refused" in refused.value.message
    assert store.logins == 2  # the first login, then exactly one more


def test_kubernetes_auth_configuration(tmp_path: Path) -> None:
    env = {"VAULT_ADDR": "https://vault.example:8200", "VAULT_K8S_ROLE": "searchgate"}
    store = open_store("vault", "secret/searchgate/client-key", env=env)
    assert isinstance(store, VaultStore)
    auth = store.config.auth
    assert (auth.method, auth.k8s_role) == ("kubernetes", "searchgate")
    assert auth.jwt_path == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    jwt = tmp_path / "token"
    env |= {"VAULT_K8S_JWT_PATH": str(jwt), "VAULT_K8S_MOUNT": "k8s-prod"}
    store = open_store("vault", "secret/searchgate/client-key", env=env)
    assert isinstance(store, VaultStore)
    assert (store.config.auth.jwt_path, store.config.auth.mount) == (str(jwt), "k8s-prod")
    # The JWT file is read at login, before any network call: a missing one is named.
    with pytest.raises(StoreMisconfigured) as missing:
        store.read()
    assert str(jwt) in missing.value.message and "VAULT_K8S_JWT_PATH" in missing.value.message
    with pytest.raises(StoreMisconfigured):
        open_store("vault", "secret/x", env={"SEARCHGATE_VAULT_AUTH": "kubernetes"})


@pytest.mark.timeout(60)
def test_connection_refused_is_retried_twice_then_unavailable(bao_server: BaoServer) -> None:
    delays: list[float] = []
    store = open_store("vault", "secret/x/y", env={"VAULT_ADDR": closed_url(), "VAULT_TOKEN": "t"})
    assert isinstance(store, VaultStore)
    store._sleep = delays.append  # record the backoff instead of waiting
    with pytest.raises(StoreUnavailable) as down:
        store.read()
    assert delays == [0.2, 0.4]
    assert "3 attempts" in down.value.message and "VAULT_ADDR" in down.value.message


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_times_out(bao_server: BaoServer) -> None:
    with BlackHole() as hole:
        store = open_store(
            "vault", "secret/x/y", env={"VAULT_ADDR": hole.url, "VAULT_TOKEN": "t"}, timeout=0.5
        )
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as slow:
            store.read()
    assert "timed out" in slow.value.message
    assert time.monotonic() - started < 10  # 3 attempts of 0.5 s plus 0.6 s of backoff


@pytest.mark.parametrize(
    ("statuses", "expected", "requests_made"),
    [
        ([500, 500, 500, 500], StoreUnavailable, 3),
        ([503, 503, 503], StoreUnavailable, 3),
        ([502], None, 2),  # one failure, then the real server answers
        ([403, 403], StorePermissionDenied, 1),  # 4xx: never retried (token auth)
        ([400], StoreError, 1),
        ([429], StoreUnavailable, 1),
    ],
)
def test_retries_only_connection_errors_and_5xx(
    bao_server: BaoServer, statuses: list[int], expected: type[Exception] | None, requests_made: int
) -> None:
    path = "secret/" + unique_path()
    key = new_key()
    vault(bao_server, path).write(key, None)
    with FaultyServer(statuses, upstream=bao_server.addr) as proxy:
        store = vault(bao_server, path, VAULT_ADDR=proxy.url)
        store._sleep = lambda _: None
        if expected is None:
            assert store.read().value == key
        else:
            with pytest.raises(expected) as failed:
                store.read()
            assert type(failed.value) is expected
            assert key not in str(failed.value)
    assert proxy.requests == requests_made


def test_a_write_retried_after_a_lost_answer_is_not_a_conflict(bao_server: BaoServer) -> None:
    """The first attempt reaches Vault but its answer is lost (502 from a proxy after the
    write): the retry meets check-and-set, and the adapter recognises its own write."""
    path = "secret/" + unique_path()
    first = vault(bao_server, path).write(new_key(), None)
    key = new_key()
    # Apply the write for real, then let the proxy fail the adapter's first attempt.
    bao_server.client().secrets.kv.v2.create_or_update_secret(
        path=path.split("/", 1)[1], secret={"client_key": key}, cas=1, mount_point="secret"
    )
    with FaultyServer([502], upstream=bao_server.addr) as proxy:
        store = vault(bao_server, path, VAULT_ADDR=proxy.url)
        store._sleep = lambda _: None
        written = store.write(key, first.version)
    assert written.version == "2" and written.value == key
    # Without a retry, the same situation is a true conflict.
    with pytest.raises(StoreConflict):
        vault(bao_server, path).write(key, first.version)


@pytest.fixture(scope="module")
def tls_bao() -> Iterator[BaoServer]:
    with running_bao(tls=True) as server:
        yield server


def test_tls_with_the_ca_certificate(tls_bao: BaoServer) -> None:
    assert tls_bao.addr.startswith("https://") and tls_bao.ca_cert is not None
    store = open_store("vault", "secret/" + unique_path(), env=tls_bao.env)
    key = new_key()
    assert store.read_version(store.write(key, None).version).value == key


def test_tls_without_the_ca_is_refused_and_skip_verify_works(tls_bao: BaoServer) -> None:
    env = {"VAULT_ADDR": tls_bao.addr, "VAULT_TOKEN": tls_bao.root_token}
    with pytest.raises(StoreMisconfigured) as untrusted:
        open_store("vault", "secret/" + unique_path(), env=env).read()
    assert "VAULT_CACERT" in untrusted.value.message
    insecure = open_store(
        "vault", "secret/" + unique_path(), env={**env, "VAULT_SKIP_VERIFY": "true"}
    )
    with pytest.raises(StoreNotFound):
        insecure.read()  # reached the server: nothing there yet
