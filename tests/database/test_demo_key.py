from __future__ import annotations

import pytest

from searchgate.cli.main import DEMO_ADMIN_EMAIL, _demo_admin
from searchgate.cli.users import cli_actor
from searchgate.config import Settings
from searchgate.runtime import Services


def test_demo_admin_is_created_once_with_a_random_password(
    services: Services, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _demo_admin(services, settings)
    first = capsys.readouterr().err
    _demo_admin(services, settings)
    again = capsys.readouterr().err
    users = services.users.list(cli_actor())
    assert [u.email for u in users] == [DEMO_ADMIN_EMAIL]
    assert users[0].is_admin
    password = first.split("(shown once):")[1].split()[0]
    assert len(password) >= 20 and password not in again
    result = services.auth.sign_in(DEMO_ADMIN_EMAIL, password, ip="127.0.0.1", user_agent="t")
    assert result.mfa_enrolment_required
