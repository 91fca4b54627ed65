"""What narrows a client key beyond its scopes: collections, expiry, client IPs,
browser origins and a request rate.

Each restriction is checked on every request with the parsed form kept here, so the
per-request cost is a few set lookups and, when IP ranges are set, one address parse.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from searchgate.errors import InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_COLLECTIONS = 100
MAX_IP_RANGES = 100
MAX_ORIGINS = 50
MAX_RATE_PER_MINUTE = 1_000_000
_COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, the form browsers send in ``Origin``."""
    raw = value.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"origin {raw!r} must look like https://shop.example (scheme and host)",
            field="origins",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise InvalidInput(
            f"origin {raw!r} must be scheme://host[:port] only, without a path", field="origins"
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"origin {raw!r} has an invalid port", field="origins") from None
    default = {"http": 80, "https": 443}[parts.scheme]
    suffix = f":{port}" if port is not None and port != default else ""
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address keeps its brackets, as browsers send it
    return f"{parts.scheme}://{host}{suffix}"


def _parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    out: list[Network] = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise InvalidInput(
                f"{v!r} is not an IP range in CIDR form (for example 203.0.113.0/24 or "
                "2001:db8::/32)",
                field="ipRanges",
            ) from None
    if len(out) > MAX_IP_RANGES:
        raise InvalidInput(f"at most {MAX_IP_RANGES} IP ranges", field="ipRanges")
    return tuple(out)


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"expiresAt {value!r} is not an ISO 8601 time (2027-01-31T00:00:00Z)",
                field="expiresAt",
            ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _str_list(d: Mapping[str, Any], name: str) -> list[str] | None:
    value = d.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{name} must be a list of strings", field=name)
    return value


@dataclass(frozen=True)
class Restrictions:
    collections: frozenset[str] | None = None
    expires_at: datetime | None = None
    ip_ranges: tuple[Network, ...] = ()
    origins: frozenset[str] = field(default_factory=frozenset)
    rate_limit_per_minute: int | None = None

    def __post_init__(self) -> None:
        if self.collections is not None:
            if not self.collections:
                raise InvalidInput(
                    "collections must name at least one collection (omit it for all)",
                    field="collections",
                )
            if len(self.collections) > MAX_COLLECTIONS:
                raise InvalidInput(f"at most {MAX_COLLECTIONS} collections", field="collections")
            bad = sorted(c for c in self.collections if not _COLLECTION.match(c))
            if bad:
                raise InvalidInput(f"{bad[0]!r} is not a collection name", field="collections")
        if len(self.origins) > MAX_ORIGINS:
            raise InvalidInput(f"at most {MAX_ORIGINS} origins", field="origins")
        rate = self.rate_limit_per_minute
        if rate is not None and not (1 <= rate <= MAX_RATE_PER_MINUTE):
            raise InvalidInput(
                f"rateLimitPerMinute must be between 1 and {MAX_RATE_PER_MINUTE}",
                field="rateLimitPerMinute",
            )

    @classmethod
    def build(
        cls,
        *,
        collections: Iterable[str] | None = None,
        expires_at: datetime | str | None = None,
        ip_ranges: Iterable[str] = (),
        origins: Iterable[str] = (),
        rate_limit_per_minute: int | None = None,
    ) -> Restrictions:
        """From user input: every value validated, with the field named on error."""
        return cls(
            collections=frozenset(c.strip() for c in collections)
            if collections is not None
            else None,
            expires_at=_parse_time(expires_at),
            ip_ranges=_parse_networks(ip_ranges),
            origins=frozenset(normalize_origin(o) for o in origins),
            rate_limit_per_minute=rate_limit_per_minute,
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Restrictions:
        rate = d.get("rateLimitPerMinute")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int)):
            raise InvalidInput(
                "rateLimitPerMinute must be a whole number", field="rateLimitPerMinute"
            )
        return cls.build(
            collections=_str_list(d, "collections"),
            expires_at=d.get("expiresAt"),
            ip_ranges=_str_list(d, "ipRanges") or (),
            origins=_str_list(d, "origins") or (),
            rate_limit_per_minute=rate,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "collections": sorted(self.collections) if self.collections is not None else None,
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
            "ipRanges": [str(n) for n in self.ip_ranges],
            "origins": sorted(self.origins),
            "rateLimitPerMinute": self.rate_limit_per_minute,
        }

    def merged(self, changes: Mapping[str, Any]) -> Restrictions:
        """These restrictions with the fields present in ``changes`` replaced."""
        current = self.to_dict()
        current.update({k: v for k, v in changes.items() if k in current})
        return Restrictions.from_dict(current)

    # --- checks on each request ----------------------------------------------------

    def allows_collection(self, name: str) -> bool:
        return self.collections is None or name in self.collections

    def allows_ip(self, ip: str | None) -> bool:
        if not self.ip_ranges:
            return True
        if ip is None:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.ip_ranges)

    def allows_origin(self, origin: str | None) -> bool:
        """Requests without ``Origin`` come from servers, not browsers: the origin rule
        is about which web pages may use the key, so it applies when a browser says."""
        if not self.origins or origin is None:
            return True
        try:
            return normalize_origin(origin) in self.origins
        except InvalidInput:
            return False

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at
