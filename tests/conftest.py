"""Shared test configuration.

* Tests must not touch NumPy's global random state (use ``np.random.default_rng(seed)``):
  an autouse fixture fails any test that changes it.
* Optional dependencies skip only when ``CIPS_REQUIRE_ALL_DEPS`` is unset.
"""

from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _forbid_global_rng():
    state = np.random.get_state()
    yield
    after = np.random.get_state()
    same = state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    if not same:
        pytest.fail("The test used NumPy's global random state; use np.random.default_rng(seed).")


def importorskip(name: str):
    """Import an optional dependency, or skip — unless CIPS_REQUIRE_ALL_DEPS is set, then fail."""
    if os.environ.get("CIPS_REQUIRE_ALL_DEPS"):
        import importlib

        return importlib.import_module(name)
    return pytest.importorskip(name)
