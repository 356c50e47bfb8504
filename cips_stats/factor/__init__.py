"""Confirmatory and exploratory factor analysis (being implemented)."""
