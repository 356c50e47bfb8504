"""HTML report and table exports (being implemented)."""
