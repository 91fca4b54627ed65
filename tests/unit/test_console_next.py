"""Where the console sends a person after signing in or confirming it is them: only a
path on this site, whatever a crafted ``next`` parameter holds."""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from searchgate.console.web import safe_next

KEPT = [
    "/",
    "/admin/users",
    "/collections/default?size=50&after=rec%2F1",
    "/search?q=laptop%20bag&area=Production",
    "/admin/keys/key_1#roll",
    "/a/b/../c",
]

# Each of these, followed by a browser, can lead to another host (or run script).
REFUSED = [
    "",
    "//evil.example",
    "//evil.example/",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "\\/evil.example",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r/evil.example/",
    "\t//evil.example",
    " //evil.example",
    "/\x00/evil.example",
    "/%09/evil.example/",
    "/%0a/evil.example/",
    "/%0D/evil.example/",
    "/%2F/evil.example",
    "/%2f/evil.example",
    "/%5C/evil.example",
    "/%5c/evil.example",
    "%2F%2Fevil.example",
    "/%252F/evil.example",
    "/%25%32%46/evil.example",
    "https://evil.example",
    "https:evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "/\uff0f/evil.example",
    "/\u2044evil.example",
    "\uff0f\uff0fevil.example",
    "/\u3002/evil.example",
    "/admin/users\u2028",
    "/" + "a" * 5000,
]


@pytest.mark.parametrize("value", KEPT)
def test_a_path_on_this_site_is_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize("value", REFUSED)
def test_anything_else_becomes_the_overview(value: str) -> None:
    assert safe_next(value) == "/"


def _as_browsers_read_it(value: str) -> str:
    """What a browser makes of a Location before resolving it: leading and trailing
    spaces and control characters go, tabs and newlines anywhere go, and a backslash
    is a slash."""
    value = value.strip("".join(chr(c) for c in range(0x21)))
    value = value.replace("\t", "").replace("\n", "").replace("\r", "")
    return value.replace("\\", "/")


@settings(max_examples=1500, deadline=None)
@given(
    value=st.text()
    | st.text(alphabet="/\\%:.@?#\t\n\r 0123456789abcdefABCDEF:evil", max_size=24)
    | st.builds(
        lambda a, b: a + b,
        st.sampled_from(["/", "//", "/\\", "/%", "%2F", "%5C", "/%2", "\\", "/\t", "https:"]),
        st.text(alphabet="/\\%2F5Cc09aAdD\t\n\r.evil:", max_size=16),
    )
)
def test_whatever_is_kept_stays_on_this_host(value: str) -> None:
    kept = safe_next(value)
    assert kept in (value, "/")
    # Decoded again (a careless later step), and as a browser reads it: still here.
    for form in (kept, unquote(kept), unquote(unquote(kept))):
        resolved = urlsplit(urljoin("http://host/", _as_browsers_read_it(form)))
        assert (resolved.scheme, resolved.netloc) == ("http", "host"), (value, form)
