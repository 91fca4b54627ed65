"""The Searchgate Python SDK.

Depends on httpx, the standard library and two stdlib/cryptography-only modules of
searchgate.keys (the key format and browser tokens): it imports without the server's
dependencies.

    from searchgate.client import CachedKey, SearchgateClient, from_store

    key = CachedKey(from_store(store), max_age_seconds=300)
    with SearchgateClient("https://search.example", key, system="storefront-eu") as sg:
        sg.search({"collection": "shop", "query": "lamp"})
"""

from searchgate.client._client import USER_AGENT, SearchgateClient
from searchgate.client._errors import KeySourceError, SearchgateConnectionError, SearchgateError
from searchgate.client._keys import CachedKey, KeySource, from_store
from searchgate.keys.browser_tokens import MAX_TTL, derive_browser_token

__all__ = [
    "MAX_TTL",
    "USER_AGENT",
    "CachedKey",
    "KeySource",
    "KeySourceError",
    "SearchgateClient",
    "SearchgateConnectionError",
    "SearchgateError",
    "derive_browser_token",
    "from_store",
]
