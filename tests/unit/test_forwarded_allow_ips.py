"""Which proxies the server believes about the client's address (``X-Forwarded-For``):
SEARCHGATE_FORWARDED_ALLOW_IPS, docs/deployment.md. A mistyped entry would trust no one
without a word (uvicorn keeps it as a literal that matches nothing), so it is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from searchgate.config import Settings


def test_the_default_trusts_this_machine_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEARCHGATE_FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert Settings().forwarded_allow_ips == "127.0.0.1,::1"


def test_addresses_and_networks_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEARCHGATE_FORWARDED_ALLOW_IPS", " 10.0.0.10, 10.1.0.0/24 ,fd00::/64")
    assert Settings().forwarded_allow_ips == "10.0.0.10,10.1.0.0/24,fd00::/64"


def test_uvicorns_own_variable_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEARCHGATE_FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.10")
    assert Settings().forwarded_allow_ips == "10.0.0.10"


def test_every_proxy_may_be_trusted_on_purpose() -> None:
    assert Settings(forwarded_allow_ips="*").forwarded_allow_ips == "*"


@pytest.mark.parametrize("value", ["10.0.0.300", "10.0.0.0/33", "lb.example.com", "", "10.0.0.1,"])
def test_a_mistyped_entry_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        Settings(forwarded_allow_ips=value)
