"""One table from service errors to status codes, read by class ancestry."""

from __future__ import annotations

import pytest

from searchgate import errors
from searchgate.api.errors import AuthError
from searchgate.api.errors import status_of as api_status_of
from searchgate.console import web
from searchgate.error_status import STATUS, status_of
from searchgate.keys.service import KeyInUse
from searchgate.rotation.state import RotationBusy


@pytest.mark.parametrize("exc", [KeyInUse("in use"), RotationBusy("busy")])
def test_a_subclass_answers_as_its_nearest_ancestor(exc: errors.SearchgateError) -> None:
    # The console used to look the exact class up and showed these 409s as 400s.
    assert status_of(exc) == 409
    assert api_status_of(exc) == 409
    assert web.status_of is status_of


def test_every_error_class_in_the_table_keeps_its_status_everywhere() -> None:
    for cls, status in STATUS.items():
        exc = cls("x")
        assert status_of(exc) == status
        assert api_status_of(exc) == status
    assert api_status_of(AuthError(401, "unauthenticated", "no key")) == 401
    assert status_of(errors.SearchgateError("plain")) == 400
