"""The AWS Secrets Manager adapter against moto's server: version stages, the
check-and-set on the AWSCURRENT move, IAM refusals, retries and timeouts."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from searchgate.secretstores import (
    StoreConflict,
    StoreMisconfigured,
    StorePermissionDenied,
    StoreUnavailable,
    open_store,
)
from searchgate.secretstores.aws import AwsSecretsManagerStore
from tests.pg import free_port
from tests.stores import BlackHole, FaultyServer, MotoServer, unique_path


def new_key() -> str:
    return "sgk_" + secrets.token_hex(20)


def aws(moto: MotoServer, name: str | None = None, **env: str) -> AwsSecretsManagerStore:
    store = open_store("aws", name or unique_path(), env={**moto.env, **env})
    assert isinstance(store, AwsSecretsManagerStore)
    return store


def stages(moto: MotoServer, name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = moto.client().describe_secret(SecretId=name)["VersionIdsToStages"]
    return {v: sorted(s) for v, s in found.items() if s}


def test_writes_move_awscurrent_and_keep_awsprevious(moto_server: MotoServer) -> None:
    store = aws(moto_server)
    first = store.write(new_key(), None)
    assert stages(moto_server, store.secret_id) == {first.version: ["AWSCURRENT"]}
    second = store.write(new_key(), first.version)
    assert stages(moto_server, store.secret_id) == {
        first.version: ["AWSPREVIOUS"],
        second.version: ["AWSCURRENT"],  # AWSPENDING removed once promoted
    }
    stored = moto_server.client().get_secret_value(
        SecretId=store.secret_id, VersionStage="AWSCURRENT"
    )
    assert json.loads(stored["SecretString"]) == {"client_key": second.value}
    restored = store.restore(first.version, second.version)
    assert restored.version == first.version  # AWS moves the label; no new version
    assert stages(moto_server, store.secret_id) == {
        first.version: ["AWSCURRENT"],
        second.version: ["AWSPREVIOUS"],
    }
    assert store.read().value == first.value


class RacingStore(AwsSecretsManagerStore):
    """Lets another writer promote its own version between our check and our move."""

    def _promote(self, new_id: str, current: str) -> None:
        other = open_store("aws", self.secret_id, env=self.racer_env)
        other.write(new_key(), current)
        super()._promote(new_id, current)


def test_the_awscurrent_move_is_the_check_and_set(moto_server: MotoServer) -> None:
    name = unique_path()
    first = aws(moto_server, name).write(new_key(), None)
    store = RacingStore(aws(moto_server, name).config)
    store.racer_env = moto_server.env  # type: ignore[attr-defined]
    mine = new_key()
    with pytest.raises(StoreConflict) as lost:
        store.write(mine, first.version)
    assert mine not in lost.value.message
    current = aws(moto_server, name).read()
    assert current.value != mine and current.version != first.version
    # The orphaned version keeps no label: nothing looks like a rotation in progress.
    labels = stages(moto_server, name)
    assert sorted(labels.values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]


def test_a_secret_that_is_not_client_key_json_is_misconfigured(moto_server: MotoServer) -> None:
    name = unique_path()
    moto_server.client().create_secret(Name=name, SecretString="plain-secret-text")
    with pytest.raises(StoreMisconfigured) as bad:
        aws(moto_server, name).read()
    assert "plain-secret-text" not in bad.value.message and "client_key" in bad.value.message


def test_check_writable_refuses_a_secret_scheduled_for_deletion(moto_server: MotoServer) -> None:
    store = aws(moto_server)
    store.write(new_key(), None)
    moto_server.client().delete_secret(SecretId=store.secret_id, RecoveryWindowInDays=7)
    with pytest.raises(StoreMisconfigured) as doomed:
        store.check_writable()
    assert "restore-secret" in doomed.value.message


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[tuple[str, dict[str, str], str]]:
    """A moto server that enforces IAM, with a user allowed to read one secret but not
    write it. Yields (endpoint, that user's environment, secret name)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # moto enforces IAM after this many unauthenticated calls: exactly the set-up below.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{url}/moto-api/", timeout=1)
                break
            assert time.monotonic() < deadline, "moto did not start"
            time.sleep(0.1)
        admin: dict[str, Any] = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        allow = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        iam.put_user_policy(
            UserName="reader",
            PolicyName="read-only",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": allow, "Resource": "*"}],
                }
            ),
        )
        name = "searchgate/iam"
        boto3.client("secretsmanager", **admin).create_secret(
            Name=name, SecretString=json.dumps({"client_key": "sgk_original"})
        )
        user_env = {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
        yield url, user_env, name
    finally:
        proc.terminate()
        proc.wait(10)


def test_iam_refusal_is_permission_denied(iam_moto: tuple[str, dict[str, str], str]) -> None:
    _, env, name = iam_moto
    store = open_store("aws", name, env=env)
    current = store.read()
    assert current.value == "sgk_original"
    store.check_writable()  # reads may be proved; writes only by writing
    key = new_key()
    with pytest.raises(StorePermissionDenied) as refused:
        store.write(key, current.version)
    message = refused.value.message
    assert "PutSecretValue" in message and key not in message
    assert env["AWS_SECRET_ACCESS_KEY"] not in message
    assert store.read() == current


def test_5xx_is_retried_twice_and_4xx_never(moto_server: MotoServer) -> None:
    with FaultyServer([500] * 5) as failing:
        store = aws(moto_server, AWS_ENDPOINT_URL_SECRETS_MANAGER=failing.url)
        with pytest.raises(StoreUnavailable):
            store.read()
    assert failing.requests == 3
    denied = b'{"__type": "AccessDeniedException", "message": "not allowed"}'
    with FaultyServer([400] * 5, body=denied) as refusing:
        store = aws(moto_server, AWS_ENDPOINT_URL_SECRETS_MANAGER=refusing.url)
        with pytest.raises(StorePermissionDenied):
            store.read()
    assert refusing.requests == 1


def test_one_5xx_then_success(moto_server: MotoServer) -> None:
    store = aws(moto_server)
    written = store.write(new_key(), None)
    with FaultyServer([503], upstream=moto_server.endpoint_url) as flaky:
        via = aws(moto_server, store.secret_id, AWS_ENDPOINT_URL_SECRETS_MANAGER=flaky.url)
        assert via.read() == written
    assert flaky.requests == 2


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_times_out(moto_server: MotoServer) -> None:
    with BlackHole() as hole:
        store = open_store(
            "aws",
            unique_path(),
            env={**moto_server.env, "AWS_ENDPOINT_URL_SECRETS_MANAGER": hole.url},
            timeout=0.5,
        )
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as slow:
            store.read()
    assert "timed out" in slow.value.message
    assert time.monotonic() - started < 15  # 3 attempts of 0.5 s plus backoff


def test_configuration_from_the_environment(moto_server: MotoServer) -> None:
    with pytest.raises(StoreMisconfigured) as no_region:
        open_store("aws", "searchgate/key", env={"AWS_ACCESS_KEY_ID": "a"}, region=None)
    assert "AWS_REGION" in no_region.value.message
    arn = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:searchgate/key-AbCdEf"
    by_arn = open_store("aws", arn, env={})
    assert isinstance(by_arn, AwsSecretsManagerStore) and by_arn.region == "eu-west-3"
    legacy = open_store("aws", "k", env={"AWS_DEFAULT_REGION": "ap-south-1"})
    assert isinstance(legacy, AwsSecretsManagerStore) and legacy.region == "ap-south-1"
    with pytest.raises(StoreMisconfigured) as no_profile:
        open_store("aws", "k", env={"AWS_PROFILE": f"absent-{secrets.token_hex(3)}"})
    assert "AWS_PROFILE" in no_profile.value.message
    store = aws(moto_server)
    assert store.location == f"aws:{store.secret_id}"
    assert moto_server.env["AWS_SECRET_ACCESS_KEY"] not in repr(store.config)
