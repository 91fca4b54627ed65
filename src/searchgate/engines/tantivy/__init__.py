"""The embedded tantivy engine: one index per collection, one copy per server process."""

from searchgate.engines.tantivy.engine import TantivyEngine

__all__ = ["TantivyEngine"]
