"""Collections, records and the ordered change log that feeds the search indexes."""
