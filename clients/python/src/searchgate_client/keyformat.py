"""The client key format: ``sgk_`` + 32 base62 characters + a 6-character checksum.

The checksum (CRC32 of the random part, in base62) lets a secret scanner recognise a
Searchgate key offline and tell it from random text, without asking any server. The
server makes its keys with this module and the client checks them with it, so the two
agree on the format.
"""

from __future__ import annotations

import re
import secrets
import zlib

PREFIX = "sgk_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_CHARS = 32
CHECKSUM_CHARS = 6
DISPLAY_PREFIX_CHARS = 8
KEY_PATTERN = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{RANDOM_CHARS + CHECKSUM_CHARS}}}$")


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


def checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_CHARS)


def generate_key() -> str:
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    return f"{PREFIX}{random_part}{checksum(random_part)}"


def check_key_format(candidate: str) -> str | None:
    """Returns None for a well-formed key, else the reason it is not one."""
    if not candidate.startswith(PREFIX):
        return f"does not start with {PREFIX!r}"
    # fullmatch: with match() the pattern's $ would also accept a trailing newline.
    if not KEY_PATTERN.fullmatch(candidate):
        return f"expected {PREFIX!r} followed by {RANDOM_CHARS + CHECKSUM_CHARS} base62 characters"
    body = candidate[len(PREFIX) :]
    if checksum(body[:RANDOM_CHARS]) != body[RANDOM_CHARS:]:
        return "checksum does not match (mistyped or not a Searchgate key)"
    return None


def display_prefix(key: str) -> str:
    return key[: len(PREFIX) + DISPLAY_PREFIX_CHARS]
