"""Searchgate: self-hosted commerce search with carefully handled client keys."""

__version__ = "0.1.0"
