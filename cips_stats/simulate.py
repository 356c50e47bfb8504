"""Synthetic CIPS surveys with known truth (being implemented)."""

from __future__ import annotations

from typing import Any

__all__ = ["simulate"]


def simulate(seed: int = 1, **kwargs: Any):
    """Simulate a CIPS-like survey (placeholder while the generator is written)."""
    raise NotImplementedError("cips_stats.simulate is being implemented.")
