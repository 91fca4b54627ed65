"""The request context the HTTP layer reads once for the key check: any header values
give a context (never an error), and the same values always the same context."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from searchgate.api.auth import request_context
from searchgate.errors import InvalidInput
from searchgate.keys.check import OPAQUE_ORIGIN
from searchgate.keys.restrictions import normalize_origin

# What a header can carry: latin-1 text without line breaks.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)


def request(headers: dict[str, str], path: str = "/api/v1/search") -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": path,
            "query_string": b"",
            "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers.items()],
            "client": ("203.0.113.5", 1234),
        }
    )


@given(origin=header_text, referer=header_text, agent=header_text)
def test_any_origin_referer_and_agent_give_a_context(origin: str, referer: str, agent: str) -> None:
    headers = {"origin": origin, "referer": referer, "user-agent": agent}
    first = request_context(request(headers))
    assert first == request_context(request(headers))
    assert first.origin is None or first.origin == OPAQUE_ORIGIN or "://" in first.origin
    if origin and origin != OPAQUE_ORIGIN:
        try:
            expected = normalize_origin(origin)
        except InvalidInput:
            expected = OPAQUE_ORIGIN
        assert first.origin == expected
    assert first.ip == "203.0.113.5" and 1 <= len(first.system) <= 64


def test_browser_tokens_are_taken_on_search_sayt_and_key_self_only() -> None:
    for path, taken in (
        ("/api/v1/search", True),
        ("/api/v1/sayt/search", True),
        ("/api/v1/keys/self", True),
        ("/api/v1/collections/shop/records", False),
    ):
        assert request_context(request({}, path)).browser_tokens is taken, path
    assert request_context(request({})).origin is None  # no page: a server
