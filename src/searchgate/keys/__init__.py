"""Client keys: hashing, scopes and verification. The key format and browser tokens are
the client library's (searchgate_client.keyformat, searchgate_client.browser_tokens),
shared with it."""
