"""The Searchgate Python client (``pip install searchgate-client``).

Depends on httpx only; offline browser tokens need the ``browser-tokens`` extra, key
sources in Vault or AWS Secrets Manager the ``vault`` or ``aws`` extra.

    from searchgate_client import CachedKey, SearchgateClient, from_vault

    key = CachedKey(from_vault("secret/searchgate/client-key"), max_age_seconds=300)
    with SearchgateClient("https://search.example", key, system="storefront-eu") as sg:
        sg.search({"collection": "shop", "query": "lamp"})
"""

from searchgate_client._client import USER_AGENT, AsyncSearchgateClient, SearchgateClient
from searchgate_client._errors import (
    KeySourceError,
    SearchgateConnectionError,
    SearchgateError,
)
from searchgate_client._keys import CachedKey
from searchgate_client._types import (
    BrowserTokenInfo,
    InvalidRecord,
    KeySelf,
    Navigation,
    PageInfo,
    Record,
    Refinement,
    RefinementsResponse,
    ReplacementAbortResponse,
    ReplacementCommitResponse,
    ReplacementInfo,
    SaytNavigation,
    SaytResponse,
    SaytResult,
    SaytSearchTerm,
    SearchResponse,
    StagedBatchResponse,
    UploadResponse,
)
from searchgate_client._version import __version__ as __version__
from searchgate_client.browser_tokens import MAX_TTL, derive_browser_token
from searchgate_client.sources import (
    KeySource,
    from_aws,
    from_env,
    from_file,
    from_store,
    from_vault,
)

__all__ = [
    "MAX_TTL",
    "USER_AGENT",
    "AsyncSearchgateClient",
    "BrowserTokenInfo",
    "CachedKey",
    "InvalidRecord",
    "KeySelf",
    "KeySource",
    "KeySourceError",
    "Navigation",
    "PageInfo",
    "Record",
    "Refinement",
    "RefinementsResponse",
    "ReplacementAbortResponse",
    "ReplacementCommitResponse",
    "ReplacementInfo",
    "SaytNavigation",
    "SaytResponse",
    "SaytResult",
    "SaytSearchTerm",
    "SearchResponse",
    "SearchgateClient",
    "SearchgateConnectionError",
    "SearchgateError",
    "StagedBatchResponse",
    "UploadResponse",
    "derive_browser_token",
    "from_aws",
    "from_env",
    "from_file",
    "from_store",
    "from_vault",
]
