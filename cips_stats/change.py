"""Change across iterations: per-cell change tests and the hierarchical change model (issue 8, in progress)."""
