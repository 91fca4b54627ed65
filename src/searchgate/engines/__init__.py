"""Search engines, reached through the ``SearchEngine`` protocol."""
