"""Turning service errors into messages shown next to the form field they concern."""

from __future__ import annotations

from collections.abc import Mapping

from searchgate.errors import ReauthenticationRequired, SearchgateError

Errors = dict[str, str]
REAUTH_FIELD = "reauth"


def errors_of(
    exc: SearchgateError,
    fields: Mapping[str, str],
    fallback: str,
    reauth_error: str | None = None,
    reauth_field: str = REAUTH_FIELD,
) -> Errors:
    """Maps the service's field name to the form's; an unknown field goes to ``fallback``.

    A missing re-authentication is shown at the password field of the form, with the
    reason the password or code given there was refused, when one was given.
    """
    if isinstance(exc, ReauthenticationRequired):
        return {reauth_field: reauth_error or "Enter your password or a code to confirm"}
    name = fields.get(exc.field or "", fallback)
    return {name: sentence(exc.message)}


def sentence(message: str) -> str:
    return message[:1].upper() + message[1:] if message else message
