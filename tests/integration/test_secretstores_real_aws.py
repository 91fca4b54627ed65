"""The AWS adapter against real AWS Secrets Manager, where moto's gaps do not apply.

Runs only when SEARCHGATE_TEST_AWS_SECRET_ID names a secret this test may write (it is
created if missing) and boto3 finds credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...);
AWS_REGION or an ARN gives the region. The secret is left with its original value
current again (one more version in its history)."""

from __future__ import annotations

import os
import secrets

import boto3
import pytest

from searchgate.secretstores import StoreConflict, StoreNotFound, open_store

SECRET_ID = os.environ.get("SEARCHGATE_TEST_AWS_SECRET_ID", "")


def _skip_reason() -> str | None:
    if not SECRET_ID:
        return "real AWS test: set SEARCHGATE_TEST_AWS_SECRET_ID (and AWS credentials) to run"
    if boto3.session.Session().get_credentials() is None:
        return "real AWS test: SEARCHGATE_TEST_AWS_SECRET_ID is set but boto3 finds no credentials"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_real_secrets_manager_round_trip_and_rollback() -> None:
    store = open_store("aws", SECRET_ID)
    store.check_writable()
    try:
        original = store.read()
    except StoreNotFound:
        original = store.write("sgk_" + secrets.token_hex(20), None)
    new = store.write("sgk_" + secrets.token_hex(20), original.version)
    try:
        assert store.read() == new
        assert store.read_version(original.version).value == original.value
        with pytest.raises(StoreConflict):
            store.write("sgk_" + secrets.token_hex(20), original.version)
    finally:
        restored = store.restore(original.version, store.read().version)
    assert restored.version == original.version
    assert store.read().value == original.value
