"""Encoding of log fields for text outputs (CSV export, log lines).

Values are stored exactly as given; on the way out every control character (C0, DEL,
C1), the Unicode line and paragraph separators and the bidirectional overrides are
written as visible escapes, and backslashes are doubled. So a display name holding
``\\r\\n2026-01-01,admin,...`` cannot start a new line in an export or a log, an ANSI
escape cannot recolour a terminal, and a right-to-left override cannot disguise a
name. Encoding is reversible: nothing is lost for an investigator.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@")


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def encode_field(value: object) -> str:
    """One line of printable text for any value; None becomes the empty string."""
    if value is None:
        return ""
    return _UNSAFE.sub(_escape, str(value))


def csv_cell(value: object) -> str:
    """``encode_field`` plus a leading apostrophe on anything a spreadsheet would run."""
    text = encode_field(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text
