"""The data plane: search, SAYT, records and collections, authenticated by client keys."""
