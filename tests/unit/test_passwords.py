"""argon2id password hashing: parameters, verification, rehash, policy."""

from __future__ import annotations

import argon2
import pytest

from searchgate.accounts.passwords import (
    MIN_ITERATIONS,
    MIN_MEMORY_KIB,
    PasswordHasher,
    check_password_policy,
)
from searchgate.errors import InvalidInput


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


def test_hashes_are_argon2id_at_no_less_than_the_owasp_minimum(hasher: PasswordHasher) -> None:
    stored = hasher.hash("a long enough passphrase")
    params = argon2.extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19 * 1024 == MIN_MEMORY_KIB
    assert params.time_cost >= 2 == MIN_ITERATIONS
    assert "a long enough passphrase" not in stored
    # Salted: the same password never gives the same hash twice.
    assert hasher.hash("a long enough passphrase") != stored


def test_verify_accepts_the_password_and_nothing_else(hasher: PasswordHasher) -> None:
    stored = hasher.hash("tr0ub4dor&3 but longer")
    assert hasher.verify(stored, "tr0ub4dor&3 but longer")
    assert not hasher.verify(stored, "tr0ub4dor&3 but longer ")
    assert not hasher.verify(stored, "")
    assert not hasher.verify("not a hash at all", "tr0ub4dor&3 but longer")


def test_an_unknown_user_costs_one_full_verification_and_never_succeeds(
    hasher: PasswordHasher,
) -> None:
    before = hasher.verifications
    assert hasher.verify(None, "whatever the attacker typed") is False
    assert hasher.verifications == before + 1


def test_parameters_below_the_minimum_are_refused() -> None:
    with pytest.raises(ValueError, match="OWASP"):
        PasswordHasher(memory_kib=MIN_MEMORY_KIB - 1)
    with pytest.raises(ValueError, match="OWASP"):
        PasswordHasher(iterations=1)


def test_rehash_is_needed_only_when_the_parameters_rise(hasher: PasswordHasher) -> None:
    weak = argon2.PasswordHasher(memory_cost=8 * 1024, time_cost=1, parallelism=1).hash("pw")
    assert hasher.needs_rehash(weak)
    current = hasher.hash("pw")
    assert not hasher.needs_rehash(current)
    stronger = PasswordHasher(memory_kib=MIN_MEMORY_KIB + 1024, iterations=3)
    assert stronger.needs_rehash(current)
    # A hash stronger than the settings is kept (never rehashed down).
    assert not hasher.needs_rehash(stronger.hash("pw"))
    argon2i = argon2.PasswordHasher(
        memory_cost=MIN_MEMORY_KIB, time_cost=2, parallelism=1, type=argon2.Type.I
    ).hash("pw")
    assert hasher.needs_rehash(argon2i)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 12"),
        ("x" * 257, "at most 256"),
        (" " * 20, "only spaces"),
        ("Ann@Example.com", "email"),
    ],
)
def test_policy_refuses_weak_passwords(password: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as exc:
        check_password_policy(password, "ann@example.com")
    assert exc.value.field == "password"
    assert password.strip() not in exc.value.message or len(password.strip()) == 0


def test_policy_accepts_any_characters_without_composition_rules() -> None:
    check_password_policy("all lowercase words are fine", "ann@example.com")
    check_password_policy("パスワードはとても長いです!!", None)
