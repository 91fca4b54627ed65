"""The client's key sources read what the server's stores write: a real OpenBao dev
server, moto's Secrets Manager over HTTP, the secret file, the environment. Each source
follows a rotation (a check-and-set write by the server's adapter)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from searchgate.secretstores import open_store
from searchgate_client import CachedKey, KeySourceError, from_aws, from_env, from_file, from_vault
from searchgate_client.keyformat import generate_key
from searchgate_client.sources import current_in_secret_file, split_vault_path
from tests.stores import BaoServer, MotoServer, unique_path


def test_from_vault_reads_the_current_version_the_store_wrote(bao_server: BaoServer) -> None:
    path = "secret/" + unique_path()
    store = open_store("vault", path, env=bao_server.env)
    first, second = generate_key(), generate_key()
    written = store.write(first, None)
    source = from_vault(path, url=bao_server.addr, token=bao_server.root_token)
    assert source() == first
    store.write(second, written.version)
    assert source() == second
    # A logged-in hvac client given by the caller is used as it is.
    assert from_vault(path, client=bao_server.client())() == second


def test_from_vault_names_a_missing_field_but_never_a_value(bao_server: BaoServer) -> None:
    path = unique_path()
    secret = generate_key()
    bao_server.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret={"key": secret}, mount_point="secret"
    )
    key = CachedKey(from_vault(f"secret/{path}", client=bao_server.client()))
    with pytest.raises(KeySourceError) as info:
        key.get()
    cause = str(info.value.__cause__)
    assert "'client_key'" in cause and "['key']" in cause
    assert secret not in cause and secret not in str(info.value)


def test_from_aws_reads_the_current_version_the_store_wrote(moto_server: MotoServer) -> None:
    name = unique_path()
    store = open_store("aws", name, env=moto_server.env)
    first, second = generate_key(), generate_key()
    written = store.write(first, None)
    source = from_aws(name, client=moto_server.client())
    assert source() == first
    store.write(second, written.version)
    assert source() == second


def test_from_file_reads_the_secret_file_and_plain_key_files(tmp_path: Path) -> None:
    path = tmp_path / "client-key.json"
    store = open_store("file", str(path))
    first, second = generate_key(), generate_key()
    written = store.write(first, None)
    source = from_file(path)
    assert source() == first
    store.write(second, written.version)
    assert source() == second

    plain = tmp_path / "mounted-key"
    plain.write_text(first + "\n")
    assert CachedKey(from_file(plain)).get() == first

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": 2, "current": "1", "versions": []}))
    with pytest.raises(KeySourceError) as info:
        CachedKey(from_file(other)).get()
    assert "not a Searchgate secret file" in str(info.value.__cause__)


def test_from_env_reads_the_variable_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = generate_key(), generate_key()
    monkeypatch.setenv("SG_TEST_CLIENT_KEY", first)
    source = from_env("SG_TEST_CLIENT_KEY")
    assert source() == first
    monkeypatch.setenv("SG_TEST_CLIENT_KEY", second)
    assert source() == second
    monkeypatch.delenv("SG_TEST_CLIENT_KEY")
    with pytest.raises(LookupError, match="not set"):
        source()
    with pytest.raises(ValueError, match="environment variable name"):
        from_env("1-not a name")


def test_vault_paths_follow_the_servers_rule() -> None:
    assert split_vault_path("secret/searchgate/client-key") == ("secret", "searchgate/client-key")
    assert split_vault_path("team/kv/app/key", mount="team/kv") == ("team/kv", "app/key")
    for bad in ("secret", "secret//x", "secret/../x"):
        with pytest.raises(ValueError, match="Vault path"):
            split_vault_path(bad)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["format", "current", "versions", "version", "client_key", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(JSON)
def test_any_json_is_a_key_or_a_value_error(doc: object) -> None:
    with contextlib.suppress(ValueError):
        assert isinstance(current_in_secret_file(doc), str)
