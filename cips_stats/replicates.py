"""Replicate weights (Rao–Wu bootstrap, jackknife): moved to :mod:`cips_stats.estimate.replicates`.

This module re-exports its public names so that ``cips_stats.replicates.rao_wu_weights``
and ``cs.replicates.*`` keep working.

Examples
--------
>>> import cips_stats as cs
>>> cs.replicates.rao_wu_scale(101)
0.01
"""

from .estimate.replicates import (  # noqa: F401
    JackknifeWeights,
    RaoWuPlan,
    default_chunk_size,
    jackknife_weights,
    rao_wu_scale,
    rao_wu_weights,
    replicate_variance,
)

__all__ = ["RaoWuPlan", "rao_wu_weights", "rao_wu_scale", "jackknife_weights", "JackknifeWeights",
           "replicate_variance", "default_chunk_size"]
