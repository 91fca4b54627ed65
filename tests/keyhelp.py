"""Shared helpers for tests that manage client keys directly through the service."""

from __future__ import annotations

from searchgate.permissions import Actor

# The CLI operator: holds every permission, so service calls are never refused for it.
SYSTEM = Actor.system("tests")
