"""The house rules (CONTRIBUTING.md), checked over every public function of every public module.

One test per function (parametrized), so a failure names the function and lists every rule
it breaks: the vocabulary (``weight=``, ``seed=`` defaulting to ``None``, ``ci=`` a level,
``significance=`` for tests, ``by=`` for cells, ``n_boot=``...), no private (leading
underscore) parameters in public signatures, and numpydoc docstrings with Parameters,
Returns and Examples sections.  Public modules: ``cips_stats`` and the modules and
subpackages below it (with their non-underscore submodules); public functions: the
functions named in each module's ``__all__``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

MODULES = tuple(sorted({
    "cips_stats", "cips_stats.reliability", "cips_stats.factor", "cips_stats.estimate",
    "cips_stats.weighting", "cips_stats.scores", "cips_stats.change", "cips_stats.claims",
    "cips_stats.power", "cips_stats.disclosure", "cips_stats.data", "cips_stats.instrument",
    "cips_stats.simulate", "cips_stats.plotting", "cips_stats.report", "cips_stats.thresholds",
    "cips_stats.results", "cips_stats.errors",
    *(f"cips_stats.{m}" for m in importlib.import_module("cips_stats")._LAZY_MODULES),
}))

#: Parameter names that must not appear, with the house word to use instead.
FORBIDDEN = {
    "weights": "weight", "sampling_weights": "weight", "level": "ci (a confidence level) or a specific name",
    "conf": "ci", "conf_level": "ci", "confidence": "ci", "alpha": "significance (alpha is Cronbach's here)",
    "type": "a specific name (e.g. se=, method=)", "groupby": "by", "cells": "by", "B": "n_boot",
    "reps": "n_boot", "n_reps": "n_boot", "rng": "seed", "random_state": "seed",
}
SECTIONS = ("Parameters", "Returns", "Examples")


def _walk(name: str) -> list[str]:
    """The module and, for a package, its public submodules (recursively)."""
    mod = importlib.import_module(name)
    out = [name]
    if hasattr(mod, "__path__"):
        for info in pkgutil.iter_modules(mod.__path__):
            if not info.name.startswith("_") and name != "cips_stats":
                out += _walk(f"{name}.{info.name}")
    return out


def _collect() -> list[tuple[str, object]]:
    cases, seen = [], set()
    for top in MODULES:
        try:
            names = _walk(top)
        except Exception as exc:                        # reported as a failing case, not skipped
            cases.append((f"{top} (import)", exc))
            continue
        for modname in names:
            mod = importlib.import_module(modname)
            for attr in getattr(mod, "__all__", ()):
                obj = getattr(mod, attr, None)
                if obj is None:
                    cases.append((f"{modname}.{attr} (missing)", AttributeError(f"{modname}.__all__ names {attr!r}")))
                    continue
                if inspect.isfunction(obj) and id(obj) not in seen:
                    seen.add(id(obj))
                    cases.append((f"{modname}.{attr}", obj))
    return cases


CASES = _collect()


def violations(func) -> list[str]:
    """Every house rule ``func`` breaks (empty when it keeps them all)."""
    out = []
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for p in params:
        if p.name in FORBIDDEN:
            out.append(f"parameter {p.name}= (use {FORBIDDEN[p.name]})")
        if p.name.startswith("_"):
            out.append(f"private parameter {p.name}= in a public signature")
        if p.name == "seed" and p.default is p.empty:
            out.append("seed= is required; give it the default None (draw and record it: results.resolve_seed)")
        elif p.name == "seed" and p.default is not None:
            out.append(f"seed= defaults to {p.default!r}, not None (draw and record it: results.resolve_seed)")
        if p.name == "ci" and p.default is not p.empty and not (
                isinstance(p.default, float) and 0.0 < p.default < 1.0):
            out.append(f"ci= defaults to {p.default!r}; it is a confidence level in (0, 1)")
        if p.name == "significance" and p.default is not p.empty and not (
                isinstance(p.default, float) and 0.0 < p.default < 1.0):
            out.append(f"significance= defaults to {p.default!r}; it is a test level in (0, 1)")
    doc = inspect.getdoc(func) or ""
    if not doc:
        out.append("no docstring")
    else:
        for sec in SECTIONS:
            if sec == "Parameters" and not params:
                continue
            if not re.search(rf"^{sec}\n-{{3,}}$", doc, flags=re.M):
                out.append(f"docstring has no numpydoc {sec} section")
        if re.search(r"^Examples\n-{3,}$", doc, flags=re.M) and ">>>" not in doc.split("Examples", 1)[1]:
            out.append("Examples section without a runnable example")
    return out


def test_the_walk_found_the_public_api():
    names = {n for n, _ in CASES}
    for expected in ("cips_stats.reliability.cronbach_alpha", "cips_stats.reliability.by_cell",
                     "cips_stats.factor.cfa", "cips_stats.thresholds.judge_fit"):
        assert expected in names
    assert len(CASES) > 40


@pytest.mark.parametrize("name,func", CASES, ids=[n for n, _ in CASES])
def test_public_function_keeps_the_house_rules(name, func):
    if isinstance(func, BaseException):
        pytest.fail(f"{name}: {type(func).__name__}: {func}")
    broken = violations(func)
    assert not broken, f"{name}{inspect.signature(func)}:\n  - " + "\n  - ".join(broken)


def test_the_checker_catches_violations():
    def bad(x, weights=None, *, level=0.95, seed=1, _private=False, ci=95):
        """Nothing."""

    found = violations(bad)
    assert len(found) == 8, found       # weights, level, seed, _private, ci, 3 missing sections

    def good(x, *, weight=None, ci=0.95, seed=None):
        """Do it.

        Parameters
        ----------
        x : int

        Returns
        -------
        int

        Examples
        --------
        >>> 1
        1
        """

    assert violations(good) == []


def test_result_base_gives_every_result_the_contract():
    """to_frame (a ``table`` field, else one row of scalars with _low/_high pairs), to_dict, summary, flags."""
    from dataclasses import dataclass, field

    import numpy as np
    import pandas as pd

    from cips_stats.errors import Flag
    from cips_stats.results import Provenance, Result

    @dataclass(frozen=True)
    class Tabled(Result):
        table: pd.DataFrame = field(default_factory=pd.DataFrame)

    @dataclass(frozen=True)
    class Scalar(Result):
        estimate: float = 0.0
        interval: tuple = (0.0, 0.0)

    t = Tabled(table=pd.DataFrame({"x": [1.0, np.nan]}), flags=(Flag("f", "Something.", "caution"),),
               provenance=Provenance.build(method="demo", seed=3))
    frame = t.to_frame()
    assert frame.equals(t.table) and frame is not t.table
    d = t.to_dict()
    assert d["kind"] == "Tabled" and d["table"]["data"] == [[1.0], [None]] and d["provenance"]["seed"] == 3
    assert d["flags"][0]["code"] == "f" and "Something." in str(t.summary())
    s = Scalar(estimate=1.5, interval=(1.0, 2.0))
    assert s.to_frame().to_dict("records") == [{"estimate": 1.5, "interval_low": 1.0, "interval_high": 2.0}]
    assert s.flags == () and s.provenance is None
