"""Browser tokens: short-lived, restricted search tokens that need no shared secret.

The holder of a client key derives an Ed25519 key pair from it (HKDF-SHA256) and signs
compact JWTs (alg EdDSA) with the private half, offline. The server stores only the
public half, recorded when the key was created, so it checks these tokens without ever
holding the parent secret (other products keep the parent key in plain text for that).

The server imports this module too (it verifies what the client derives), so the two
cannot disagree on the format. It needs ``cryptography`` and ``PyJWT``, which the
``browser-tokens`` extra installs; without them the module imports, and deriving or
verifying a token raises ImportError saying what to install.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from searchgate_client.keyformat import check_key_format

try:
    import jwt
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError:
    # A client that only searches needs no signatures: the extra is optional.
    _CRYPTO_MISSING = True
else:
    _CRYPTO_MISSING = False

MAX_TTL = timedelta(hours=24)
MAX_TTL_TEXT = "24 hours"  # MAX_TTL in words, for messages and help
# Clocks of the storefront back end and of the server disagree a little; more than half
# a minute is a misconfigured host, not drift.
LEEWAY = timedelta(seconds=30)
ALGORITHM = "EdDSA"
JWT_TYPE = "sg-browser+jwt"
ALLOWED_SCOPES = frozenset({"search", "sayt"})
MAX_COLLECTIONS = 100
MAX_ORIGINS = 20
MAX_FILTER_CHARS = 2_000
# Tokens travel in an Authorization header: servers and proxies commonly cap a header
# line at 8 KiB, so a token must fit well inside one.
MAX_TOKEN_CHARS = 6_144

# Domain separation: the same client key must never yield a key for another purpose.
_HKDF_SALT = b"searchgate/browser-token/v1"
_HKDF_INFO = b"ed25519"
_KID = re.compile(r"^bk_[0-9a-f]{16}$")
# The collection name rule of the catalog, repeated here because the client cannot
# import server code.
_COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
_JTI = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HEADER_FIELDS = frozenset({"alg", "typ", "kid"})
_REQUIRED_CLAIMS = frozenset({"iat", "exp", "scp", "col", "org", "jti"})
_OPTIONAL_CLAIMS = frozenset({"nbf", "flt"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class BrowserTokenError(Exception):
    """A token that must be refused. ``message`` never contains the token."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BrowserClaims:
    kid: str
    scopes: frozenset[str]
    collections: frozenset[str]
    origins: frozenset[str]
    filter: str | None
    issued_at: datetime
    expires_at: datetime


def _need_crypto() -> None:
    if _CRYPTO_MISSING:
        raise ImportError(
            "browser tokens need cryptography and PyJWT: "
            'pip install "searchgate-client[browser-tokens]"'
        )


def derive_keypair(client_key: str) -> tuple[Ed25519PrivateKey, bytes]:
    """The Ed25519 key pair of a client key: the same key always gives the same pair."""
    _need_crypto()
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        client_key.encode("utf-8")
    )
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
    return private, public


def public_key_id(public_key: bytes) -> str:
    """The fingerprint that names a public key in a token's ``kid`` header."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return "bk_" + hashlib.sha256(public_key).hexdigest()[:16]


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` as a browser sends it in ``Origin``: lower case, no
    default port. Raises ValueError naming what is wrong."""
    if not isinstance(origin, str) or not origin or origin != origin.strip():
        raise ValueError("an origin is a non-empty string without spaces")
    if "*" in origin:
        raise ValueError(f"origin {origin!r}: wildcards are not allowed, list exact origins")
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"origin {origin!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"origin {origin!r}: the scheme must be https or http")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"origin {origin!r}: an origin has no user name or password")
    if parts.path or parts.query or parts.fragment or origin.endswith(("?", "#")):
        raise ValueError(
            f"origin {origin!r}: an origin has no path, query or fragment "
            "(write it as https://shop.example or https://shop.example:8443)"
        )
    host = (parts.hostname or "").lower()
    if ":" in host:
        # An IPv6 literal (urlsplit dropped its brackets): browsers send it compressed.
        try:
            host_text = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise ValueError(f"origin {origin!r}: not an IPv6 address") from None
    elif _HOST.fullmatch(host):
        host_text = host
    else:
        raise ValueError(
            f"origin {origin!r}: the host must be a DNS name or an IP address "
            "(internationalised names in their xn-- form)"
        )
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host_text}"
    if port == 0:
        raise ValueError(f"origin {origin!r}: port 0 is not a port")
    return f"{scheme}://{host_text}:{port}"


def _scopes(values: Sequence[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ValueError("scopes is a list of scope names, not one string")
    out = set()
    for value in values:
        if not isinstance(value, str) or value not in ALLOWED_SCOPES:
            raise ValueError(
                f"scope {value!r} cannot be given to a browser token "
                f"(allowed: {', '.join(sorted(ALLOWED_SCOPES))})"
            )
        out.add(str(value))
    if not out:
        raise ValueError("a browser token needs at least one scope (search or sayt)")
    return frozenset(out)


def _collections(values: Sequence[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ValueError("collections is a list of collection names, not one string")
    out = set()
    for value in values:
        if not isinstance(value, str) or not _COLLECTION.fullmatch(value):
            raise ValueError(
                f"collection {value!r} is not a collection name "
                "(letters, digits, _ and -, at most 64 characters)"
            )
        out.add(value)
    if not out:
        raise ValueError("a browser token needs at least one collection")
    if len(out) > MAX_COLLECTIONS:
        raise ValueError(f"a browser token names at most {MAX_COLLECTIONS} collections")
    return frozenset(out)


def _origins(values: Sequence[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ValueError("origins is a list of origins, not one string")
    out = {normalize_origin(value) for value in values}
    if not out:
        raise ValueError("a browser token needs at least one allowed origin")
    if len(out) > MAX_ORIGINS:
        raise ValueError(f"a browser token names at most {MAX_ORIGINS} origins")
    return frozenset(out)


def _filter(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError("filter is a non-empty pre-filter expression, or None")
    if len(value) > MAX_FILTER_CHARS:
        raise ValueError(f"filter has at most {MAX_FILTER_CHARS:,} characters")
    return value


def _seconds(moment: datetime, name: str) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return int(moment.timestamp())


def derive_browser_token(
    client_key: str,
    *,
    collections: Sequence[str],
    origins: Sequence[str],
    ttl: timedelta,
    scopes: Sequence[str] = ("search", "sayt"),
    filter: str | None = None,
    now: datetime | None = None,
) -> str:
    """A compact JWT that lets a browser search ``collections`` from ``origins`` until
    ``now + ttl``, always under ``filter``. Offline: no server is called.

    Raises ValueError for a malformed client key or restriction; the message names the
    offending value but never the client key."""
    _need_crypto()
    problem = check_key_format(client_key) if isinstance(client_key, str) else "not a string"
    if problem is not None:
        raise ValueError(f"client_key is not a Searchgate client key: {problem}")
    if not isinstance(ttl, timedelta) or ttl < timedelta(seconds=1):
        raise ValueError("ttl must be at least one second")
    if ttl > MAX_TTL:
        raise ValueError(f"ttl may be at most {MAX_TTL_TEXT} (browser tokens are short-lived)")
    claims_scopes = _scopes(scopes)
    claims_collections = _collections(collections)
    claims_origins = _origins(origins)
    claims_filter = _filter(filter)
    issued = _seconds(now or datetime.now(UTC), "now")
    payload: dict[str, Any] = {
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
        "scp": sorted(claims_scopes),
        "col": sorted(claims_collections),
        "org": sorted(claims_origins),
        "jti": secrets.token_urlsafe(16),
    }
    if claims_filter is not None:
        payload["flt"] = claims_filter
    private, public = derive_keypair(client_key)
    token = jwt.encode(
        payload,
        private,
        algorithm=ALGORITHM,
        headers={"kid": public_key_id(public), "typ": JWT_TYPE},
    )
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(
            f"the token would have {len(token):,} characters, over {MAX_TOKEN_CHARS:,}: "
            "name fewer collections or origins, or use a shorter filter"
        )
    return token


def looks_like_browser_token(candidate: str) -> bool:
    """A cheap shape test (no decoding) so that the auth layer can tell a presented
    browser token from a client key."""
    if not isinstance(candidate, str) or len(candidate) > MAX_TOKEN_CHARS:
        return False
    segments = candidate.split(".")
    return (
        len(segments) == 3
        and segments[0].startswith("eyJ")
        and all(_SEGMENT.fullmatch(s) for s in segments)
    )


def _invalid(reason: str) -> BrowserTokenError:
    return BrowserTokenError("token_invalid", f"the browser token is invalid: {reason}")


def _decode_segment(segment: str) -> bytes:
    """Strict base64url: the last character of a segment has spare bits that a lax
    decoder ignores, so two different strings would carry the same token. Only the
    canonical spelling is accepted."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise _invalid("not canonical base64url")
    return raw


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _invalid(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise _invalid(f"the {what} is not a JSON object")
    return value


def _int_claim(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    # bool is an int in Python, never a time.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid(f"claim {name!r} is not a time in seconds")
    return value


def _string_list(payload: Mapping[str, Any], name: str) -> list[str]:
    value = payload.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"claim {name!r} is not a list of strings")
    return value


def _read_header(token: str) -> tuple[str, list[str]]:
    if not looks_like_browser_token(token):
        raise _invalid(f"not a compact JWT of at most {MAX_TOKEN_CHARS:,} characters")
    segments = token.split(".")
    header = _json_object(_decode_segment(segments[0]), "header")
    _decode_segment(segments[1])
    signature = _decode_segment(segments[2])
    unknown = set(header) - _HEADER_FIELDS
    if unknown:
        raise _invalid(f"unexpected header fields {sorted(unknown)}")
    # Checked before any key is touched: "none", HS256 keyed with the public key, or any
    # other algorithm is refused here, and PyJWT is told to accept EdDSA only as well.
    if header.get("alg") != ALGORITHM:
        raise _invalid(f"the algorithm must be {ALGORITHM}")
    if header.get("typ") != JWT_TYPE:
        raise _invalid(f"the token type must be {JWT_TYPE}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise _invalid("the kid header is not a browser key id (bk_ + 16 hex digits)")
    if len(signature) != 64:
        raise _invalid("an Ed25519 signature has 64 bytes")
    return kid, segments


def _check_times(payload: Mapping[str, Any], now: datetime) -> tuple[int, int]:
    issued = _int_claim(payload, "iat")
    expires = _int_claim(payload, "exp")
    lifetime = expires - issued
    if lifetime <= 0:
        raise _invalid("it expires before it was issued")
    if lifetime > MAX_TTL.total_seconds():
        raise _invalid(f"its lifetime is longer than {MAX_TTL_TEXT}")
    current = now.timestamp()
    leeway = LEEWAY.total_seconds()
    if issued > current + leeway:
        raise _invalid("it was issued in the future (check the clock of the issuing host)")
    if "nbf" in payload and _int_claim(payload, "nbf") > current + leeway:
        raise _invalid("it is not valid yet")
    if current >= expires + leeway:
        raise BrowserTokenError("token_expired", "the browser token has expired")
    return issued, expires


def verify_browser_token(
    token: str,
    public_key_for: Callable[[str], bytes | None],
    now: datetime | None = None,
) -> BrowserClaims:
    """The claims of a token signed by the key whose public half ``public_key_for(kid)``
    returns. ``public_key_for`` returns None for an unknown or deleted parent key; the
    caller still checks that the parent key is usable (not disabled or expired).

    Raises BrowserTokenError with code ``token_invalid`` or ``token_expired``."""
    _need_crypto()
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    kid, _ = _read_header(token)
    public = public_key_for(kid)
    if public is None:
        raise _invalid("the client key it was derived from is unknown or deleted")
    try:
        key = Ed25519PublicKey.from_public_bytes(public)
    except ValueError:
        raise _invalid("the parent key's public half is not an Ed25519 key") from None
    # The kid is only a lookup hint until the signature is checked; the fingerprint check
    # catches a caller whose lookup returned some other key.
    if public_key_id(public) != kid:
        raise _invalid("the public key found does not match the kid header")
    try:
        payload = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            options={
                "verify_signature": True,
                # Times are checked below against ``now``, which PyJWT cannot be given.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise _invalid("the signature does not match") from None
    except jwt.InvalidTokenError:
        raise _invalid("it cannot be decoded") from None
    missing = _REQUIRED_CLAIMS - set(payload)
    if missing:
        raise _invalid(f"claims {sorted(missing)} are missing")
    # An unknown claim could be a restriction added by a newer issuer: refuse rather
    # than honour the token with that restriction silently dropped.
    unknown = set(payload) - _REQUIRED_CLAIMS - _OPTIONAL_CLAIMS
    if unknown:
        raise _invalid(f"unexpected claims {sorted(unknown)}")
    issued, expires = _check_times(payload, now)
    jti = payload.get("jti")
    if not isinstance(jti, str) or not _JTI.fullmatch(jti):
        raise _invalid("claim 'jti' is not a token id")
    try:
        scopes = _scopes(_string_list(payload, "scp"))
        collections = _collections(_string_list(payload, "col"))
        origins = _string_list(payload, "org")
        if any(normalize_origin(o) != o for o in origins):
            raise ValueError("an origin is not in its canonical form")
        canonical_origins = _origins(origins)
        flt = _filter(payload.get("flt"))
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    return BrowserClaims(
        kid=kid,
        scopes=scopes,
        collections=collections,
        origins=canonical_origins,
        filter=flt,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
    )
