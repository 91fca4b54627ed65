from __future__ import annotations

import pytest

from searchgate.cli.main import DEMO_ADMIN_EMAIL, _demo_admin, _demo_key
from searchgate.cli.users import cli_actor
from searchgate.config import Settings
from searchgate.runtime import Services
from tests.keyhelp import SYSTEM


def test_demo_key_is_saved_once_and_replaced_after_deletion(
    services: Services, settings: Settings
) -> None:
    path = settings.secrets_dir / "demo-client-key"
    _demo_key(services, settings)
    first = path.read_text().strip()
    assert services.keys.verify(first) is not None
    assert path.stat().st_mode & 0o777 == 0o600
    _demo_key(services, settings)
    assert path.read_text().strip() == first  # kept, not re-issued on every start
    services.keys.delete(SYSTEM, "demo", "demo", force=True)
    _demo_key(services, settings)
    second = path.read_text().strip()
    assert second != first
    info = services.keys.verify(second)
    assert info is not None and info.usable and info.name == "demo-2"


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
