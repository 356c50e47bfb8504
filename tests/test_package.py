"""The package's public faces: every name in ``__all__`` resolves, and the import stays light."""

from __future__ import annotations

import subprocess
import sys

import cips_stats as cs


def test_every_public_name_resolves():
    for name in cs.__all__:
        assert getattr(cs, name) is not None, name


def test_star_import_works():
    namespace: dict = {}
    exec("from cips_stats import *", namespace)
    assert "simulate" in namespace and callable(namespace["simulate"])
    assert "reliability" in namespace


def test_import_is_light():
    code = ("import sys, cips_stats; heavy = [m for m in ('pymc', 'pytensor', 'semopy', 'matplotlib', 'arviz') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
