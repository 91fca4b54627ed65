"""open_store: the settings Vault and AWS users already know, and refusals that say what
to fix. Nothing here needs a server: opening a store makes no network call."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchgate.secretstores import SecretStore, SecretVersion, StoreMisconfigured, open_store
from searchgate.secretstores.file import FileStore
from searchgate.secretstores.vault import VaultStore

PATH = "secret/searchgate/client-key"


def vault(env: dict[str, str], **options: object) -> VaultStore:
    store = open_store("vault", PATH, env=env, **options)
    assert isinstance(store, VaultStore)
    return store


def test_every_kind_satisfies_the_protocol(tmp_path: Path) -> None:
    stores = [
        vault({"VAULT_TOKEN": "t"}),
        open_store("aws", "k", env={"AWS_REGION": "us-east-1"}),
        open_store("file", str(tmp_path / "k.json")),
        open_store("env", "", env={}),
    ]
    assert [s.kind for s in stores] == ["vault", "aws", "file", "env"]
    assert all(isinstance(s, SecretStore) for s in stores)


def test_unknown_kinds_and_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured) as kind:
        open_store("consul", "x", env={})
    assert "vault, aws, file, env" in kind.value.message
    with pytest.raises(StoreMisconfigured) as typo:
        open_store("file", str(tmp_path / "k"), max_version=3)
    assert "max_version" in typo.value.message and "max_versions" in typo.value.message
    # None means "not given", so callers can pass unset CLI flags straight through.
    assert isinstance(open_store("file", str(tmp_path / "k"), max_versions=None), FileStore)


def test_vault_settings_from_the_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    store = vault(
        {
            "VAULT_ADDR": "https://vault.example:8200/",
            "VAULT_TOKEN": "hvs.secret-token",
            "VAULT_NAMESPACE": "team-a",
            "VAULT_CACERT": str(ca),
            "VAULT_CLIENT_TIMEOUT": "7s",
        }
    )
    c = store.config
    assert (c.addr, c.namespace, c.verify, c.timeout) == (
        "https://vault.example:8200",
        "team-a",
        str(ca),
        7.0,
    )
    assert (c.auth.method, c.auth.token, c.retries) == ("token", "hvs.secret-token", 2)
    assert "hvs.secret-token" not in repr(c)
    # Options win over the environment.
    assert vault({"VAULT_TOKEN": "t"}, addr="http://127.0.0.1:1", timeout=2).config.timeout == 2
    assert vault({"VAULT_TOKEN": "t"}).config.addr == "https://127.0.0.1:8200"


@pytest.mark.parametrize(
    ("raw", "verify"), [("true", False), ("1", False), ("false", True), ("", True)]
)
def test_vault_skip_verify_parses_like_vault(raw: str, verify: bool) -> None:
    assert vault({"VAULT_TOKEN": "t", "VAULT_SKIP_VERIFY": raw}).config.verify is verify


def test_vault_refusals_name_the_setting(tmp_path: Path) -> None:
    cases = [
        ({}, "VAULT_TOKEN"),
        ({"VAULT_TOKEN": "t", "VAULT_SKIP_VERIFY": "maybe"}, "VAULT_SKIP_VERIFY"),
        ({"VAULT_TOKEN": "t", "VAULT_CACERT": str(tmp_path / "none.pem")}, "VAULT_CACERT"),
        ({"VAULT_TOKEN": "t", "VAULT_ADDR": "vault:8200"}, "VAULT_ADDR"),
        ({"VAULT_ROLE_ID": "r"}, "VAULT_SECRET_ID"),
        ({"VAULT_TOKEN": "t", "VAULT_CLIENT_CERT": "c.pem"}, "VAULT_CLIENT_KEY"),
        ({"VAULT_TOKEN": "t", "SEARCHGATE_VAULT_AUTH": "ldap"}, "ldap"),
        ({"VAULT_TOKEN": "t", "VAULT_CLIENT_TIMEOUT": "soon"}, "VAULT_CLIENT_TIMEOUT"),
    ]
    for env, named in cases:
        with pytest.raises(StoreMisconfigured) as refused:
            open_store("vault", PATH, env=env)
        assert named in refused.value.message, env
    for path in ("secret", "", "secret//x", "secret/../x"):
        with pytest.raises(StoreMisconfigured):
            open_store("vault", path, env={"VAULT_TOKEN": "t"})
    with pytest.raises(StoreMisconfigured) as bounded:
        open_store("vault", PATH, env={"VAULT_TOKEN": "t"}, retries=5)
    assert "0 to 2" in bounded.value.message


def test_vault_auth_method_is_chosen_from_what_is_set(tmp_path: Path) -> None:
    both = {"VAULT_TOKEN": "t", "VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s"}
    assert vault(both).config.auth.method == "approle"
    assert vault(both).config.auth.token is None  # the token is not used behind AppRole
    assert vault(both, auth="token").config.auth.method == "token"
    assert vault({**both, "VAULT_APPROLE_MOUNT": "ci"}).config.auth.mount == "ci"
    # `vault login` leaves the token in ~/.vault-token.
    (tmp_path / ".vault-token").write_text("hvs.from-file\n")
    assert vault({"HOME": str(tmp_path)}).config.auth.token == "hvs.from-file"


def test_vault_mount_with_slashes() -> None:
    with pytest.raises(StoreMisconfigured) as outside:
        open_store("vault", PATH, env={"VAULT_TOKEN": "t"}, mount="team/kv")
    assert "not under the mount" in outside.value.message
    store = open_store("vault", "team/kv/searchgate/key", env={"VAULT_TOKEN": "t"}, mount="team/kv")
    assert isinstance(store, VaultStore)
    assert (store.mount, store.secret_path) == ("team/kv", "searchgate/key")


def test_secret_version_never_shows_the_value() -> None:
    v = SecretVersion("sgk_supersecretvalue", "3", None)
    for text in (repr(v), str(v), f"{v}", f"{v!r}", str([v])):
        assert "supersecret" not in text and "'3'" in text
