"""Query planning: GroupBy request -> engine plan -> GroupBy response."""
