"""The Command Center: server-rendered pages mounted at ``/`` beside the data plane."""

from searchgate.console.app import ROUTES, install
from searchgate.console.web import PUBLIC, SIGNED_IN, RouteSpec

__all__ = ["PUBLIC", "ROUTES", "SIGNED_IN", "RouteSpec", "install"]
