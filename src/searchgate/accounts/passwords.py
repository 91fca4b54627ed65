"""Password hashing with argon2id (argon2-cffi).

The floor is the OWASP / ASVS minimum for argon2id: 19 MiB of memory, 2 iterations,
1 lane. Settings may raise the parameters; a stored hash made with lower ones is
replaced at the next successful sign-in.
"""

from __future__ import annotations

import functools
import secrets
import threading

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from searchgate.errors import InvalidInput

MIN_MEMORY_KIB = 19 * 1024
MIN_ITERATIONS = 2
PARALLELISM = 1
MIN_LENGTH = 12
MAX_LENGTH = 256


def check_password_policy(password: str, email: str | None = None) -> None:
    """Length is what matters (NIST 800-63B, ASVS 2.1): 12 to 256 characters, any
    characters, no composition rules; the email address itself is refused."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"a password has at least {MIN_LENGTH} characters", field="password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"a password has at most {MAX_LENGTH} characters", field="password")
    if not password.strip():
        raise InvalidInput("a password cannot be only spaces", field="password")
    if email and password.strip().lower() == email.strip().lower():
        raise InvalidInput("the password cannot be the email address", field="password")


@functools.cache
def _dummy_hash(memory_kib: int, iterations: int) -> str:
    """One per parameter set and process: hashing costs as much as a sign-in, and every
    hasher of a process (one per set of services) can share it."""
    hasher = argon2.PasswordHasher(
        time_cost=iterations, memory_cost=memory_kib, parallelism=PARALLELISM, type=argon2.Type.ID
    )
    return hasher.hash(secrets.token_urlsafe(16))


class PasswordHasher:
    def __init__(self, memory_kib: int = MIN_MEMORY_KIB, iterations: int = MIN_ITERATIONS) -> None:
        if memory_kib < MIN_MEMORY_KIB or iterations < MIN_ITERATIONS:
            raise ValueError(
                f"argon2id needs at least {MIN_MEMORY_KIB} KiB and {MIN_ITERATIONS} "
                "iterations (OWASP minimum)"
            )
        self._hasher = argon2.PasswordHasher(
            time_cost=iterations,
            memory_cost=memory_kib,
            parallelism=PARALLELISM,
            type=argon2.Type.ID,
        )
        # An unknown email is checked against this, so that it costs the same work
        # as a known one and the response time does not tell them apart.
        self._dummy_hash = _dummy_hash(memory_kib, iterations)
        self._lock = threading.Lock()
        # How many argon2 verifications ran: evidence (without timing) that every
        # sign-in path pays for one.
        self.verifications = 0

    @property
    def memory_kib(self) -> int:
        return self._hasher.memory_cost

    @property
    def iterations(self) -> int:
        return self._hasher.time_cost

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with ``stored_hash`` None (no such user)
        the same work is done against a dummy hash and the answer is False."""
        with self._lock:
            self.verifications += 1
        target = stored_hash if stored_hash is not None else self._dummy_hash
        try:
            ok = self._hasher.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with weaker parameters than the current ones."""
        try:
            params = argon2.extract_parameters(stored_hash)
        except InvalidHashError:
            return True
        return (
            params.type is not argon2.Type.ID
            or params.memory_cost < self.memory_kib
            or params.time_cost < self.iterations
        )
