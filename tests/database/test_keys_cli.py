"""``searchgate keys ...`` driven through typer's CliRunner on a temporary data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from searchgate.cli.main import app
from searchgate.config import Settings
from searchgate.keys.scopes import Scope
from searchgate.keys.usage import UsageTracker
from searchgate.permissions import Actor
from searchgate.runtime import Services, build_services
from searchgate_client.browser_tokens import verify_browser_token
from searchgate_client.keyformat import generate_key

runner = CliRunner()
ALL = sorted(s.value for s in Scope)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Every command must honour --data-dir, whatever the environment says.
    monkeypatch.delenv("SEARCHGATE_DATABASE_URL", raising=False)
    monkeypatch.delenv("SEARCHGATE_CLIENT_KEY", raising=False)
    monkeypatch.setenv("SEARCHGATE_DATA_DIR", str(tmp_path / "elsewhere"))
    return tmp_path / "data"


def keys(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["keys", *args, "--data-dir", str(data_dir)], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def run_json(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, Any]:
    code, out, err = keys(data_dir, *args, "--json", stdin=stdin)
    # CliRunner echoes a typed answer on stdout (a terminal echoes it itself).
    return code, json.loads(out[out.index("{") :]) if "{" in out else err


def create(data_dir: Path, name: str, *args: str) -> dict[str, Any]:
    code, body = run_json(data_dir, "create", "--name", name, *(args or ("--all-scopes",)))
    assert code == 0, body
    assert isinstance(body, dict)
    return body


def services_of(data_dir: Path) -> Services:
    return build_services(Settings(data_dir=data_dir))


def use(data_dir: Path, key_id: str, system: str) -> None:
    """One request of the key as a server process would count it."""
    services = services_of(data_dir)
    tracker = UsageTracker(services.db, services.keys)
    tracker.record(key_id, system, "success", "203.0.113.9")
    tracker.flush()
    services.db.dispose()


# --- create ----------------------------------------------------------------------------


def test_create_prints_the_key_once_and_only_the_key_on_stdout(data_dir: Path) -> None:
    code, out, err = keys(data_dir, "create", "--name", "storefront", "--scope", "search")
    assert code == 0, err
    secret = out.strip()
    assert out == secret + "\n"  # `KEY=$(searchgate keys create ...)` gets just the key
    assert "shown this once" in err and "storefront" in err and "primary" in err
    info = services_of(data_dir).keys.verify(secret)
    assert info is not None and info.name == "storefront" and info.scopes == {Scope.SEARCH}
    assert (data_dir / "searchgate.db").is_file()
    assert not (data_dir.parent / "elsewhere").exists()  # --data-dir wins over the env


def test_create_needs_scopes_named_or_all_scopes_asked_for(data_dir: Path) -> None:
    code, body = run_json(data_dir, "create", "--name", "x")
    assert code == 2 and body["error"]["field"] == "scope"
    assert "--all-scopes" in body["error"]["message"]
    code, body = run_json(data_dir, "create", "--name", "x", "--all-scopes", "--scope", "sayt")
    assert code == 2 and body["error"]["field"] == "scope"
    assert services_of(data_dir).keys.list() == []
    classic = create(data_dir, "classic")
    assert classic["key"]["scopes"] == ALL
    narrow = create(data_dir, "narrow", "--scope", "sayt", "--scope", "search")
    assert narrow["key"]["scopes"] == ["sayt", "search"]


def test_create_json_carries_the_secret_and_the_restrictions(data_dir: Path) -> None:
    first = create(data_dir, "first")
    assert first["key"]["primary"] is True and first["replaced"] is None
    before = datetime.now(UTC)
    body = create(
        data_dir,
        "web",
        "--scope",
        "search",
        "--collection",
        "shoes",
        "--collection",
        "hats",
        "--allow-unknown",
        "--expires",
        "90d",
        "--ip",
        "203.0.113.0/24",
        "--origin",
        "https://Shop.example",
        "--rate",
        "10/s",
        "--primary",
    )
    key = body["key"]
    assert set(body) == {"key", "secret", "replaced", "warnings"}
    assert body["secret"].startswith(key["prefix"]) and key["state"] == "active"
    assert key["collections"] == ["hats", "shoes"] and key["ipRanges"] == ["203.0.113.0/24"]
    assert key["origins"] == ["https://shop.example"] and key["rateLimitPerMinute"] == 600
    expires = datetime.fromisoformat(key["expiresAt"])
    assert before + timedelta(days=90) <= expires <= datetime.now(UTC) + timedelta(days=90)
    assert key["primary"] is True and body["replaced"]["id"] == first["key"]["id"]
    at = create(data_dir, "dated", "--scope", "search", "--expires", "2031-05-01T12:00:00Z")
    assert at["key"]["expiresAt"] == "2031-05-01T12:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--name", "x", "--scope", "admin"], "scope"),
        (["--name", "   ", "--scope", "search"], "name"),
        (["--name", "n" * 129, "--scope", "search"], "name"),
        (["--name", "key_0123456789abcdef", "--scope", "search"], "name"),
        (["--name", "x", "--scope", "search", "--expires", "soon"], "expiresAt"),
        (["--name", "x", "--scope", "search", "--expires", "99999999999d"], "expires"),
        (["--name", "x", "--scope", "search", "--expires", "2020-01-01T00:00:00Z"], "expiresAt"),
        (["--name", "x", "--scope", "search", "--expires", "0s"], "expiresAt"),
        (["--name", "x", "--scope", "search", "--ip", "10.0.0.0/33"], "ipRanges"),
        (["--name", "x", "--scope", "search", "--origin", "shop.example"], "origins"),
        (["--name", "x", "--scope", "search", "--rate", "lots"], "rate"),
        (["--name", "x", "--scope", "search", "--rate", "0/min"], "rateLimitPerMinute"),
        (["--name", "x", "--scope", "search", "--collection", "a b"], "collections"),
    ],
)
def test_create_refuses_bad_input_with_exit_2(data_dir: Path, args: list[str], field: str) -> None:
    code, body = run_json(data_dir, "create", *args)
    assert code == 2, body
    assert body["error"]["field"] == field


def test_names_are_unique_even_after_deletion(data_dir: Path) -> None:
    create(data_dir, "dup")
    code, body = run_json(data_dir, "create", "--name", "dup", "--scope", "sayt")
    assert code == 2 and body["error"]["code"] == "conflict"
    assert keys(data_dir, "delete", "dup", "--confirm", "dup")[0] == 0
    code, _, err = keys(data_dir, "create", "--name", "dup", "--scope", "sayt")
    assert code == 2 and "deleted" in err


# --- list, show, usage -----------------------------------------------------------------


def test_list_and_show_never_print_a_secret(data_dir: Path) -> None:
    a, b = create(data_dir, "alpha"), create(data_dir, "beta", "--scope", "sayt")
    code, listed = run_json(data_dir, "list")
    assert code == 0
    assert [k["name"] for k in listed["keys"]] == ["alpha", "beta"]
    assert listed["keys"][0]["primary"] is True and listed["keys"][1]["primary"] is False
    assert all("secret" not in k for k in listed["keys"])
    code, table, err = keys(data_dir, "list")
    assert code == 0 and "alpha" in table and b["key"]["id"] in table and "primary" in table
    code, shown, _ = keys(data_dir, "show", "beta")
    assert code == 0 and b["key"]["id"] in shown and "sayt" in shown
    code, shown_json = run_json(data_dir, "show", a["key"]["id"])
    assert code == 0 and shown_json["key"]["name"] == "alpha" and shown_json["systems"] == []
    texts = (json.dumps(listed), table, err, shown, json.dumps(shown_json))
    for secret in (a["secret"], b["secret"]):
        for text in texts:
            assert secret not in text and secret[12:20] not in text
    assert keys(data_dir, "show", "nobody")[0] == 1


def test_show_and_usage_name_the_systems_that_use_a_key(data_dir: Path) -> None:
    key_id = create(data_dir, "feed")["key"]["id"]
    use(data_dir, key_id, "feed-importer")
    use(data_dir, key_id, "feed-importer")
    use(data_dir, key_id, "nightly-export")
    code, shown = run_json(data_dir, "show", "feed")
    assert code == 0
    assert {u["system"]: u["requests"] for u in shown["systems"]} == {
        "feed-importer": 2,
        "nightly-export": 1,
    }
    assert shown["key"]["lastIp"] == "203.0.113.9"
    code, body = run_json(data_dir, "usage", "feed", "--days", "2")
    assert code == 0
    assert sum(h["count"] for h in body["hourly"]) == 3
    assert {h["outcome"] for h in body["hourly"]} == {"success"}
    code, out, _ = keys(data_dir, "usage", "feed")
    assert code == 0 and "feed-importer" in out and "nightly-export" in out
    code, body = run_json(data_dir, "usage", "feed", "--days", "31")
    assert code == 2 and body["error"]["field"] == "days"


# --- the primary key, rolling, disabling ---------------------------------------------


def test_new_primary_roll_and_make_primary(data_dir: Path) -> None:
    first = create(data_dir, "main", "--scope", "search", "--origin", "https://shop.example")
    code, out, err = keys(data_dir, "new-primary")
    assert code == 0, err
    second_secret = out.strip()
    assert out == second_secret + "\n" and "retire" in err
    services = services_of(data_dir)
    second = services.keys.verify(second_secret)
    assert second is not None and second.primary and second.scopes == {Scope.SEARCH}
    assert second.restrictions.origins == {"https://shop.example"}
    old = services.keys.get("main")
    assert not old.primary and old.retiring_since is not None
    before = datetime.now(UTC)
    code, rolled = run_json(data_dir, "roll", second.id, "--expires-in", "2h", "--name", "main-3")
    assert code == 0, rolled
    assert rolled["key"]["name"] == "main-3" and rolled["key"]["primary"] is True
    expires = datetime.fromisoformat(rolled["replaced"]["expiresAt"])
    assert before + timedelta(hours=2) <= expires <= datetime.now(UTC) + timedelta(hours=2)
    for bad in ("31d", "two hours", "-1h"):
        code, body = run_json(data_dir, "roll", "main-3", "--expires-in", bad)
        assert code == 2, (bad, body)
    code, body = run_json(data_dir, "make-primary", "main")
    assert code == 0 and body["key"]["primary"] is True
    primaries = [k.name for k in services_of(data_dir).keys.list() if k.primary]
    assert primaries == ["main"]
    assert first["secret"] not in json.dumps(rolled)


def test_disable_and_enable(data_dir: Path) -> None:
    secret = create(data_dir, "batch")["secret"]
    code, body = run_json(data_dir, "disable", "batch", "--reason", "suspicious")
    assert code == 0 and body["key"]["state"] == "disabled"
    assert body["key"]["disabledReason"] == "suspicious"
    info = services_of(data_dir).keys.verify(secret)
    assert info is not None and not info.usable(datetime.now(UTC))
    code, _, err = keys(data_dir, "enable", "batch")
    assert code == 0 and "active" in err
    info = services_of(data_dir).keys.verify(secret)
    assert info is not None and info.usable(datetime.now(UTC))
    assert keys(data_dir, "disable", "nobody")[0] == 1


# --- delete ----------------------------------------------------------------------------


def test_delete_needs_the_name_typed_out(data_dir: Path) -> None:
    create(data_dir, "main")
    a, b = create(data_dir, "alpha"), create(data_dir, "beta")
    code, body = run_json(data_dir, "delete", "alpha", "--confirm", "Alpha")
    assert code == 2 and body["error"]["field"] == "confirmName"
    code, _, err = keys(data_dir, "delete", "alpha", stdin="\n")
    assert code == 1 and "Type the key's name" in err and "not deleted" in err
    code, _, err = keys(data_dir, "delete", "alpha", stdin="beta\n")
    assert code == 2 and "exactly" in err
    code, body = run_json(data_dir, "delete", "alpha", stdin="alpha\n")
    assert code == 0 and body["key"]["state"] == "deleted"
    code, body = run_json(data_dir, "delete", b["key"]["id"], "--confirm", "beta")
    assert code == 0 and body["key"]["name"] == "beta"
    services = services_of(data_dir)
    for secret in (a["secret"], b["secret"]):
        info = services.keys.verify(secret)
        assert info is not None and info.deleted
    assert [k["name"] for k in run_json(data_dir, "list")[1]["keys"]] == ["main"]
    listed = run_json(data_dir, "list", "--all")[1]["keys"]
    assert {k["name"]: k["state"] for k in listed} == {
        "main": "active",
        "alpha": "deleted",
        "beta": "deleted",
    }


def test_delete_refuses_a_key_in_use_and_names_the_systems(data_dir: Path) -> None:
    create(data_dir, "main")
    feed = create(data_dir, "feed")
    use(data_dir, feed["key"]["id"], "feed-importer")
    use(data_dir, feed["key"]["id"], "nightly-export")
    code, _, err = keys(data_dir, "delete", "feed", "--confirm", "feed")
    assert code == 1
    assert "still used by: feed-importer" in err and "still used by: nightly-export" in err
    code, body = run_json(data_dir, "delete", "feed", "--confirm", "feed")
    assert code == 1 and body["error"]["code"] == "key_in_use"
    assert set(body["error"]["systems"]) == {"feed-importer", "nightly-export"}
    code, body = run_json(data_dir, "delete", "feed", "--confirm", "feed", "--force")
    assert code == 0 and body["key"]["state"] == "deleted"


def test_the_primary_key_is_deleted_last(data_dir: Path) -> None:
    create(data_dir, "main")
    create(data_dir, "other")
    code, body = run_json(data_dir, "delete", "main", "--confirm", "main")
    assert code == 1 and "primary" in body["error"]["message"]
    assert keys(data_dir, "delete", "other", "--confirm", "other")[0] == 0
    assert keys(data_dir, "delete", "main", "--confirm", "main")[0] == 0


def test_deleting_an_unknown_key_exits_1(data_dir: Path) -> None:
    code, body = run_json(data_dir, "delete", "nobody", "--confirm", "nobody")
    assert code == 1 and body["error"]["code"] == "not_found"
    code, _, err = keys(data_dir, "delete", "nobody", "--confirm", "nobody")
    assert code == 1 and "nobody" in err


# --- check and derive (offline) --------------------------------------------------------


def test_check_exit_codes(data_dir: Path) -> None:
    main = create(data_dir, "main")["secret"]
    secret = create(data_dir, "checked")["secret"]
    result = runner.invoke(app, ["keys", "check", secret])
    assert result.exit_code == 0 and "checksum matches" in result.stderr
    tampered = secret[:-1] + ("x" if secret[-1] != "x" else "y")
    result = runner.invoke(app, ["keys", "check", tampered, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "valid": False,
        "reason": "checksum does not match (mistyped or not a Searchgate key)",
        "id": None,
    }
    assert runner.invoke(app, ["keys", "check", "hello"]).exit_code == 1
    # From stdin, so that the key stays out of shell history and the process list.
    assert runner.invoke(app, ["keys", "check", "-"], input=secret + "\n").exit_code == 0
    # --known: also an active key of this deployment.
    assert keys(data_dir, "check", secret, "--known")[0] == 0
    code, out, _ = keys(data_dir, "check", generate_key(), "--known", "--json")
    assert code == 1 and "not a key of this deployment" in json.loads(out)["reason"]
    assert keys(data_dir, "disable", "checked")[0] == 0
    code, out, _ = keys(data_dir, "check", secret, "--known", "--json")
    assert code == 1 and "disabled" in json.loads(out)["reason"]
    assert keys(data_dir, "delete", "checked", "--confirm", "checked")[0] == 0
    code, out, _ = keys(data_dir, "check", secret, "--known", "--json")
    assert code == 1 and "deleted" in json.loads(out)["reason"]
    assert keys(data_dir, "check", main, "--known")[0] == 0


def derive(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["keys", "derive", *args], input=stdin, env=env)


SHOP = "https://shop.example"


def test_derive_makes_a_browser_token_offline(data_dir: Path, tmp_path: Path) -> None:
    created = create(data_dir, "web")
    secret = created["secret"]
    services = services_of(data_dir)

    def public_key(kid: str) -> bytes | None:
        parent = services.keys.by_public_key_id(kid)
        return parent.public_key if parent is not None else None

    base = ("--collection", "shoes", "--origin", SHOP)
    # From stdin.
    result = derive(*base, "--ttl", "2h", "--filter", 'brand:"Acme"', stdin=secret + "\n")
    assert result.exit_code == 0, result.stderr
    token = result.stdout.strip()
    claims = verify_browser_token(token, public_key)
    assert claims.kid == created["key"]["browserTokenKeyId"]
    assert claims.collections == {"shoes"} and claims.origins == {SHOP}
    assert claims.filter == 'brand:"Acme"' and claims.scopes == {"search", "sayt"}
    assert claims.expires_at - claims.issued_at == timedelta(hours=2)
    # From the environment, with one scope.
    result = derive(*base, "--scope", "sayt", "--json", env={"SEARCHGATE_CLIENT_KEY": secret})
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert verify_browser_token(body["token"], public_key).scopes == {"sayt"}
    assert body["scopes"] == ["sayt"] and body["keyId"] == claims.kid
    # From a file.
    key_file = tmp_path / "client-key"
    key_file.write_text(secret + "\n")
    result = derive(*base, "--key-file", str(key_file))
    assert result.exit_code == 0 and verify_browser_token(result.stdout.strip(), public_key)
    for output in (result.stdout, result.stderr, json.dumps(body)):
        assert secret not in output
    # Offline: no database was opened or created for it.
    assert not (data_dir.parent / "elsewhere").exists()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--collection", "shoes", "--origin", SHOP), "", "no client key"),
        (("--collection", "shoes", "--origin", SHOP), "sgk_nope\n", "not a Searchgate client key"),
        (("--collection", "shoes", "--origin", SHOP, "--ttl", "2d"), None, "at most 24 hours"),
        (("--collection", "shoes", "--origin", SHOP, "--ttl", "soon"), None, "duration"),
        (("--collection", "shoes", "--origin", "shop.example"), None, "scheme"),
        (("--collection", "shoes", "--origin", SHOP, "--scope", "records:write"), None, "scope"),
    ],
)
def test_derive_refuses_bad_input_without_echoing_the_key(
    data_dir: Path, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    secret = generate_key()
    result = derive(*args, stdin=secret + "\n" if stdin is None else stdin)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert secret not in result.stdout + result.stderr


def test_derive_help_says_the_longest_lifetime_in_words() -> None:
    result = runner.invoke(app, ["keys", "derive", "--help"])
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "at most 24 hours" in text and "0:00:00" not in text


def test_derive_never_takes_the_key_as_an_argument() -> None:
    secret = generate_key()
    result = derive("--collection", "shoes", "--origin", SHOP, secret)
    assert result.exit_code == 2
    assert runner.invoke(app, ["keys", "derive", "--key", secret]).exit_code == 2


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["keys"],
        *(
            ["keys", c]
            for c in (
                "create",
                "list",
                "show",
                "new-primary",
                "make-primary",
                "disable",
                "enable",
                "roll",
                "delete",
                "check",
                "derive",
                "usage",
                "expiry",
            )
        ),
    ],
)
def test_every_keys_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout and "--help" in result.stdout


def test_unknown_collections_are_refused_unless_allowed(data_dir: Path) -> None:
    code, body = run_json(
        data_dir, "create", "--name", "feed", "--all-scopes", "--collection", "defualt"
    )
    assert code == 2, body
    assert body["error"]["code"] == "unknown_collection"
    assert body["error"]["unknown"] == ["defualt"]
    code, _out, err = keys(
        data_dir, "create", "--name", "feed", "--all-scopes", "--collection", "defualt"
    )
    assert code == 2 and "defualt" in err and "--allow-unknown" in err
    body = create(data_dir, "feed", "--all-scopes", "--collection", "defualt", "--allow-unknown")
    assert body["key"]["collections"] == ["defualt"]
    assert body["warnings"] == [
        "no collection is named 'defualt' yet: the key works there once it exists"
    ]
    code, _out, err = keys(
        data_dir,
        "create",
        "--name",
        "feed-2",
        "--all-scopes",
        "--collection",
        "x",
        "--allow-unknown",
    )
    assert code == 0 and "warning: no collection is named 'x' yet" in err


def test_the_expiry_a_roll_set_can_be_moved_or_cancelled(data_dir: Path) -> None:
    old = create(data_dir, "shop")
    code, body = run_json(data_dir, "roll", "shop", "--expires-in", "1h")
    assert code == 0 and body["replaced"]["expiresAt"] is not None
    code, body = run_json(data_dir, "expiry", "shop", "--at", "3d")
    assert code == 0, body
    moved = datetime.fromisoformat(body["key"]["expiresAt"])
    assert moved > datetime.now(UTC) + timedelta(days=2, hours=23)
    code, _out, err = keys(data_dir, "expiry", "shop", "--never")
    assert code == 0 and "never expires" in err, err
    code, body = run_json(data_dir, "show", "shop")
    assert body["key"]["expiresAt"] is None and body["key"]["state"] == "active"
    for args in ((), ("--at", "3d", "--never"), ("--at", "2001-01-01T00:00:00Z")):
        code, body = run_json(data_dir, "expiry", "shop", *args)
        assert code == 2 and body["error"]["field"] == "expiresAt", (args, body)
    events = services_of(data_dir).audit.query(Actor.system(), limit=50).events
    assert [e.target for e in events if e.action == "admin:keys:expiry"] == [old["key"]["id"]] * 2


@pytest.mark.parametrize("name", ["[bold]nokey[/bold]", "[/x]", "a[red]b"])
def test_an_error_quoting_square_brackets_prints_them_as_typed(data_dir: Path, name: str) -> None:
    # Text in square brackets is rich markup unless escaped: it vanished, or a stray
    # closing tag made the error message itself fail to print.
    code, _, err = keys(data_dir, "show", name)
    assert code == 1
    assert f"no key with id or name {name!r}" in err
