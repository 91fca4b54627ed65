"""Browser tokens: derivation, verification, and every way a token must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from searchgate_client.browser_tokens import (
    MAX_TTL,
    BrowserTokenError,
    derive_browser_token,
    derive_keypair,
    looks_like_browser_token,
    normalize_origin,
    public_key_id,
    verify_browser_token,
)
from searchgate_client.keyformat import generate_key

NOW = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
KEY = generate_key()
OTHER_KEY = generate_key()
PRIVATE, PUBLIC = derive_keypair(KEY)
KID = public_key_id(PUBLIC)


def lookup(*keys: str) -> Callable[[str], bytes | None]:
    """The server's view: public halves by kid, for the given client keys."""
    table = {public_key_id(pub): pub for pub in (derive_keypair(k)[1] for k in keys)}
    return table.get


def token(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "collections": ["shop"],
        "origins": ["https://shop.example"],
        "ttl": timedelta(minutes=10),
        "now": NOW,
    }
    args.update(overrides)
    return derive_browser_token(KEY, **args)


def refused(tok: str, code: str = "token_invalid", **kwargs: Any) -> BrowserTokenError:
    kwargs.setdefault("now", NOW + timedelta(minutes=1))
    kwargs.setdefault("public_key_for", lookup(KEY))
    with pytest.raises(BrowserTokenError) as info:
        verify_browser_token(tok, **kwargs)
    assert info.value.code == code, info.value.message
    assert not tok or tok not in info.value.message
    assert KEY not in info.value.message
    return info.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def payload_of(tok: str) -> dict[str, Any]:
    part = tok.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def signed(payload: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    """A token signed with the right private key but with claims derive() never makes."""
    return jwt.encode(
        payload,
        PRIVATE,
        algorithm="EdDSA",
        headers=headers if headers is not None else {"kid": KID, "typ": "sg-browser+jwt"},
    )


# --- derivation ------------------------------------------------------------------------


def test_derivation_is_deterministic_and_differs_per_key() -> None:
    private, public = derive_keypair(KEY)
    assert public == PUBLIC
    assert len(public) == 32
    assert private.private_bytes_raw() == PRIVATE.private_bytes_raw()
    assert private.public_key().public_bytes_raw() == public
    other_private, other_public = derive_keypair(OTHER_KEY)
    assert other_public != PUBLIC
    assert other_private.private_bytes_raw() != PRIVATE.private_bytes_raw()
    # The seed is not the key material itself, nor a plain hash of it.
    assert PRIVATE.private_bytes_raw() != hashlib.sha256(KEY.encode()).digest()


def test_public_key_id_is_a_fingerprint_of_the_public_half() -> None:
    assert "bk_" + hashlib.sha256(PUBLIC).hexdigest()[:16] == KID
    assert len(KID) == 19
    assert public_key_id(derive_keypair(OTHER_KEY)[1]) != KID
    with pytest.raises(ValueError, match="32 bytes"):
        public_key_id(b"short")


def test_a_token_verifies_with_the_right_public_key() -> None:
    tok = token(
        collections=["shop", "outlet", "shop"],
        origins=["https://Shop.Example:443", "http://localhost:8080", "http://[0:0::1]:80"],
        filter='brand:"Bose" AND inStock:true',
        scopes=["search"],
    )
    assert looks_like_browser_token(tok)
    claims = verify_browser_token(tok, lookup(OTHER_KEY, KEY), now=NOW)
    assert claims.kid == KID
    assert claims.scopes == frozenset({"search"})
    assert claims.collections == frozenset({"shop", "outlet"})
    assert claims.origins == frozenset(
        {"https://shop.example", "http://localhost:8080", "http://[::1]"}
    )
    assert claims.filter == 'brand:"Bose" AND inStock:true'
    assert claims.issued_at == NOW
    assert claims.expires_at == NOW + timedelta(minutes=10)
    header = jwt.get_unverified_header(tok)
    assert header == {"alg": "EdDSA", "kid": KID, "typ": "sg-browser+jwt"}


def test_defaults_are_search_and_sayt_without_a_filter_and_each_token_is_unique() -> None:
    first, second = token(), token()
    assert first != second  # a random jti
    claims = verify_browser_token(first, lookup(KEY), now=NOW)
    assert claims.scopes == frozenset({"search", "sayt"})
    assert claims.filter is None
    assert "flt" not in payload_of(first)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scopes": ["search", "records:write"]}, "'records:write'"),
        ({"scopes": ["collections:delete"]}, "'collections:delete'"),
        ({"scopes": []}, "at least one scope"),
        ({"scopes": "search"}, "not one string"),
        ({"collections": []}, "at least one collection"),
        ({"collections": ["shop", "../etc"]}, "'../etc'"),
        ({"collections": "shop"}, "not one string"),
        ({"origins": []}, "at least one allowed origin"),
        ({"origins": ["shop.example"]}, "scheme"),
        ({"origins": ["ftp://shop.example"]}, "scheme"),
        ({"origins": ["https://shop.example/"]}, "no path"),
        ({"origins": ["https://shop.example/cart"]}, "no path"),
        ({"origins": ["https://shop.example?x=1"]}, "no path"),
        ({"origins": ["https://*.shop.example"]}, "wildcards"),
        ({"origins": ["*"]}, "wildcards"),
        ({"origins": ["https://user@shop.example"]}, "user name"),
        ({"origins": ["https://shop_example.com"]}, "host"),
        ({"origins": ["https://shop.example:99999"]}, "origin"),
        ({"origins": ["null"]}, "scheme"),
        ({"origins": [" https://shop.example"]}, "without spaces"),
        ({"filter": "x" * 2_001}, "2,000"),
        ({"filter": "  "}, "non-empty"),
        ({"ttl": timedelta(0)}, "at least one second"),
        ({"ttl": timedelta(seconds=-5)}, "at least one second"),
        ({"ttl": MAX_TTL + timedelta(seconds=1)}, "at most 24 hours"),
        ({"now": datetime(2026, 3, 2, 9, 0)}, "timezone-aware"),
        ({"collections": [f"c{i}" for i in range(101)]}, "at most 100 collections"),
        ({"origins": [f"https://s{i}.example" for i in range(21)]}, "at most 20 origins"),
        ({"filter": '"' * 2_000, "collections": [f"c{i:03}" for i in range(100)]}, "6,144"),
    ],
)
def test_bad_restrictions_are_refused_at_derive_time(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        token(**overrides)
    assert KEY not in str(info.value)


def test_a_full_ttl_token_is_accepted_until_it_expires() -> None:
    tok = token(ttl=MAX_TTL)
    assert verify_browser_token(tok, lookup(KEY), now=NOW + MAX_TTL - timedelta(seconds=1))
    refused(tok, "token_expired", now=NOW + MAX_TTL + timedelta(seconds=31))


# Ids by hand: values with a random key in them would give each xdist worker other ids.
@pytest.mark.parametrize(
    "bad",
    ["sgk_short", "", "not a key", KEY + "x", KEY[:-1] + ("1" if KEY.endswith("0") else "0")],
    ids=["short", "empty", "words", "one-too-long", "wrong-checksum"],
)
def test_a_malformed_client_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Searchgate client key") as info:
        derive_browser_token(bad, collections=["shop"], origins=["https://a.b"], ttl=MAX_TTL)
    if bad:
        assert bad not in str(info.value)


def test_normalize_origin_matches_what_browsers_send() -> None:
    assert normalize_origin("HTTPS://Shop.Example") == "https://shop.example"
    assert normalize_origin("https://shop.example:8443") == "https://shop.example:8443"
    assert normalize_origin("http://shop.example:80") == "http://shop.example"
    assert normalize_origin("https://127.0.0.1:443") == "https://127.0.0.1"
    assert normalize_origin("https://xn--bcher-kva.example") == "https://xn--bcher-kva.example"


# --- refusals --------------------------------------------------------------------------


def test_expiry_honours_thirty_seconds_of_leeway_and_no_more() -> None:
    tok = token(ttl=timedelta(minutes=5))
    end = NOW + timedelta(minutes=5)
    assert verify_browser_token(tok, lookup(KEY), now=end + timedelta(seconds=29))
    error = refused(tok, "token_expired", now=end + timedelta(seconds=30))
    assert error.message == "the browser token has expired"


def test_a_token_from_the_future_is_refused_beyond_the_leeway() -> None:
    tok = token()
    assert verify_browser_token(tok, lookup(KEY), now=NOW - timedelta(seconds=29))
    assert "future" in refused(tok, now=NOW - timedelta(seconds=31)).message
    claims = payload_of(tok)
    claims["nbf"] = claims["iat"] + 120
    assert "not valid yet" in refused(signed(claims)).message


def test_a_tampered_payload_is_refused() -> None:
    tok = token()
    header, _, signature = tok.split(".")
    claims = payload_of(tok)
    claims["col"] = ["shop", "private-prices"]
    forged = ".".join([header, b64(json.dumps(claims).encode()), signature])
    assert "signature" in refused(forged).message
    # The same claims re-serialised (other spacing) no longer match the signature either.
    claims = payload_of(tok)
    refused(".".join([header, b64(json.dumps(claims, indent=1).encode()), signature]))


def test_removing_the_forced_filter_breaks_the_signature() -> None:
    tok = token(filter='brand:"Bose"')
    header, _, signature = tok.split(".")
    claims = payload_of(tok)
    del claims["flt"]
    refused(".".join([header, b64(json.dumps(claims).encode()), signature]))


def test_a_tampered_header_is_refused() -> None:
    tok = token()
    _, payload, signature = tok.split(".")
    other_kid = public_key_id(derive_keypair(OTHER_KEY)[1])
    for header in (
        {"alg": "EdDSA", "kid": other_kid, "typ": "sg-browser+jwt"},
        {"alg": "EdDSA", "kid": KID, "typ": "JWT"},
        {"alg": "EdDSA", "kid": KID, "typ": "sg-browser+jwt", "jku": "https://evil.example"},
        {"alg": "EdDSA", "typ": "sg-browser+jwt"},
        {"alg": "EdDSA", "kid": 7, "typ": "sg-browser+jwt"},
    ):
        forged = ".".join([b64(json.dumps(header).encode()), payload, signature])
        refused(forged, public_key_for=lookup(KEY, OTHER_KEY))


def test_a_tampered_signature_is_refused() -> None:
    tok = token()
    header, payload, signature = tok.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    assert "signature" in refused(".".join([header, payload, b64(bytes(raw))])).message
    refused(".".join([header, payload, b64(bytes(raw[:32]))]))
    # A valid signature by another key, presented under this key's kid.
    other_private, _ = derive_keypair(OTHER_KEY)
    stolen = jwt.encode(
        payload_of(tok),
        other_private,
        algorithm="EdDSA",
        headers={"kid": KID, "typ": "sg-browser+jwt"},
    )
    refused(stolen)


def test_alg_none_is_refused() -> None:
    claims = payload_of(token())
    unsigned = jwt.encode(
        claims, "", algorithm="none", headers={"kid": KID, "typ": "sg-browser+jwt"}
    )
    refused(unsigned)
    # The same with a dummy signature segment, so the shape test alone cannot save us.
    header = b64(json.dumps({"alg": "none", "kid": KID, "typ": "sg-browser+jwt"}).encode())
    body = b64(json.dumps(claims).encode())
    assert "algorithm" in refused(f"{header}.{body}.{b64(bytes(64))}").message


@pytest.mark.parametrize(
    "secret",
    [
        PUBLIC,
        Ed25519PrivateKey.from_private_bytes(PRIVATE.private_bytes_raw())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        KID.encode(),
    ],
    ids=["raw", "pem", "kid"],
)
def test_hs256_keyed_with_public_material_is_refused(secret: bytes) -> None:
    """The classic algorithm confusion: an attacker who knows the public key makes an
    HMAC token with it as the secret."""
    header = b64(json.dumps({"alg": "HS256", "kid": KID, "typ": "sg-browser+jwt"}).encode())
    body = b64(json.dumps(payload_of(token())).encode())
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert "algorithm" in refused(f"{header}.{body}.{b64(mac)}").message


def test_a_lifetime_over_the_maximum_is_refused_even_when_correctly_signed() -> None:
    claims = payload_of(token())
    claims["exp"] = claims["iat"] + int(MAX_TTL.total_seconds()) + 1
    assert "lifetime" in refused(signed(claims)).message
    claims["exp"] = claims["iat"]
    refused(signed(claims))


@pytest.mark.parametrize(
    "change",
    [
        {"scp": ["search", "records:write"]},
        {"scp": []},
        {"col": []},
        {"col": "shop"},
        {"org": ["https://Shop.example"]},
        {"org": []},
        {"flt": ""},
        {"iat": "2026-03-02"},
        {"exp": True},
        {"jti": "x"},
        {"adm": True},
        {"aud": "someone"},
    ],
)
def test_claims_a_deriver_never_makes_are_refused(change: dict[str, Any]) -> None:
    claims = payload_of(token())
    claims.update(change)
    refused(signed(claims))


def test_missing_claims_are_refused() -> None:
    for name in ("iat", "exp", "scp", "col", "org", "jti"):
        claims = payload_of(token())
        del claims[name]
        assert "missing" in refused(signed(claims)).message


def test_an_unknown_or_deleted_parent_key_is_refused() -> None:
    tok = token()
    error = refused(tok, public_key_for=lookup(OTHER_KEY))
    assert "unknown or deleted" in error.message
    refused(tok, public_key_for=lambda kid: None)


def test_a_lookup_returning_the_wrong_public_key_is_refused() -> None:
    other_public = derive_keypair(OTHER_KEY)[1]
    refused(token(), public_key_for=lambda kid: other_public)
    refused(token(), public_key_for=lambda kid: b"\x00" * 31)


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        KEY,
        "a.b.c",
        "eyJ.abc",
        "eyJhb.abc.",
        "eyJhb.ab c.de",
        "eyJ" + "a" * 7_000 + ".b.c",
        "x.y.z.w",
    ],
    ids=["empty", "key", "dots", "short", "dot-at-end", "space", "huge", "four-parts"],
)
def test_garbage_is_refused_and_not_taken_for_a_token(candidate: str) -> None:
    assert not looks_like_browser_token(candidate)
    refused(candidate)


def test_a_shaped_but_broken_token_is_refused() -> None:
    for candidate in ("eyJhbGci.eyJ.sig", "eyJ9.eyJ9.AAAA", b64(b'{"alg":') + ".e30.AAAA"):
        assert looks_like_browser_token(candidate)
        refused(candidate)


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_browser_token(token(), lookup(KEY), now=datetime(2026, 3, 2, 9, 1))


FIXED = token(filter='brand:"Bose"', origins=["https://shop.example", "https://m.shop.example"])
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é\x00"


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_single_character_change_fails_verification(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(FIXED) - 1), label="index")
    replacement = data.draw(
        st.sampled_from(ALPHABET).filter(lambda c: c != FIXED[index]), label="replacement"
    )
    changed = FIXED[:index] + replacement + FIXED[index + 1 :]
    with pytest.raises(BrowserTokenError) as info:
        verify_browser_token(changed, lookup(KEY), now=NOW + timedelta(minutes=1))
    assert info.value.code == "token_invalid"
    assert changed not in info.value.message


def test_the_unchanged_fixed_token_verifies() -> None:
    """The property above is only meaningful if the original passes."""
    assert verify_browser_token(FIXED, lookup(KEY), now=NOW + timedelta(minutes=1))
