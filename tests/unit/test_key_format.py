"""The client key format: prefix, length, alphabet and the offline checksum."""

from __future__ import annotations

import zlib

import pytest

from searchgate_client.keyformat import (
    ALPHABET,
    CHECKSUM_CHARS,
    PREFIX,
    RANDOM_CHARS,
    check_key_format,
    checksum,
    display_prefix,
    generate_key,
)


def test_generated_keys_are_well_formed_and_distinct() -> None:
    keys = [generate_key() for _ in range(500)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert check_key_format(key) is None, key
        assert key.startswith(PREFIX)
        assert len(key) == len(PREFIX) + RANDOM_CHARS + CHECKSUM_CHARS == 42
        assert set(key[len(PREFIX) :]) <= set(ALPHABET)


def test_the_checksum_is_the_base62_crc32_of_the_random_part() -> None:
    key = generate_key()
    body = key[len(PREFIX) :]
    random_part, check = body[:RANDOM_CHARS], body[RANDOM_CHARS:]
    value = 0
    for c in check:
        value = value * 62 + ALPHABET.index(c)
    assert value == zlib.crc32(random_part.encode())
    assert checksum(random_part) == check
    assert checksum("0" * RANDOM_CHARS) == checksum("0" * RANDOM_CHARS)  # deterministic


@pytest.mark.parametrize("seed", range(3))
def test_any_one_character_change_fails_the_checksum(seed: int) -> None:
    key = generate_key()
    changed = 0
    for i in range(len(PREFIX), len(key)):
        for c in ALPHABET:
            if c == key[i]:
                continue
            mutated = key[:i] + c + key[i + 1 :]
            reason = check_key_format(mutated)
            assert reason is not None and "checksum" in reason, (i, c)
            changed += 1
    assert changed == (RANDOM_CHARS + CHECKSUM_CHARS) * 61


def test_two_swapped_characters_fail_the_checksum() -> None:
    key = generate_key()
    body = key[len(PREFIX) :]
    for i in range(RANDOM_CHARS - 1):
        if body[i] != body[i + 1]:
            swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
            assert check_key_format(PREFIX + swapped) is not None


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("", "does not start with"),
        ("sgk", "does not start with"),
        ("SGK_" + "a" * 38, "does not start with"),
        ("sk_" + "a" * 38, "does not start with"),
        ("xsgk_" + "a" * 38, "does not start with"),
        ("sgk_", "38 base62"),
        ("sgk_" + "a" * 37, "38 base62"),
        ("sgk_" + "a" * 39, "38 base62"),
        ("sgk_" + "a" * 36 + "-_", "38 base62"),
        ("sgk_" + "a" * 37 + "é", "38 base62"),
        ("sgk_" + "a" * 38 + "\n", "38 base62"),
        (" sgk_" + "a" * 38, "does not start with"),
    ],
)
def test_prefix_length_and_alphabet_errors_say_what_is_wrong(candidate: str, expected: str) -> None:
    reason = check_key_format(candidate)
    assert reason is not None and expected in reason


def test_a_valid_key_with_anything_around_it_is_refused() -> None:
    key = generate_key()
    for candidate in (key + "\n", key + " ", "\t" + key, key + "0", key[:-1]):
        assert check_key_format(candidate) is not None, repr(candidate)


def test_a_right_shape_with_a_wrong_checksum_is_refused() -> None:
    reason = check_key_format("sgk_" + "a" * 38)
    assert reason is not None and "checksum" in reason


def test_the_display_prefix_shows_only_eight_random_characters() -> None:
    key = generate_key()
    shown = display_prefix(key)
    assert shown == key[:12] and shown.startswith(PREFIX)
    assert len(shown) - len(PREFIX) == 8 < RANDOM_CHARS
