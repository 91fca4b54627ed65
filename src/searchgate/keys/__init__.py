"""Client keys: format, hashing, scopes and verification."""
