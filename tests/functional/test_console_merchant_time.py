"""The merchant's time zone: a rule's active window shown in it beside UTC."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from searchgate.config import Settings
from searchgate.merchandising.document import MerchandisingDocument
from searchgate.permissions import Actor
from searchgate.runtime import Runtime
from tests.conftest import make_user
from tests.functional.console_support import sign_in, use_https


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"merchant_time_zone": "America/New_York"})


def test_a_rules_window_shows_in_the_merchants_time_zone(client: TestClient, rt: Runtime) -> None:
    doc = MerchandisingDocument.model_validate(
        {
            "rules": [
                {
                    "name": "new year",
                    "triggers": [{"type": "queryEquals", "value": "tv"}],
                    "redirect": "/sale",
                    "activeFrom": "2026-07-01T12:00:00Z",
                    "activeTo": "2027-01-01T00:00:00Z",
                }
            ]
        }
    )
    rt.services.merchandising.save_draft(Actor.system(), "Production", doc)
    use_https(client)
    make_user(rt.services, "val@example.com", "viewer")
    sign_in(client, "val@example.com")
    page = client.get("/areas/Production/merchandising").text
    # Summer time and winter time: the offset is the zone's on that day.
    assert "2026-07-01 12:00 UTC" in page
    assert "2026-07-01 08:00 America/New_York (UTC-04:00)" in page
    assert "2027-01-01 00:00 UTC" in page
    assert "2026-12-31 19:00 America/New_York (UTC-05:00)" in page


def test_an_unknown_time_zone_is_refused_with_what_to_write() -> None:
    with pytest.raises(ValueError, match="an IANA name such as Europe/Berlin"):
        Settings(merchant_time_zone="Mars/Olympus")
