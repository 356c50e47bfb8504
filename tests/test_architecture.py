"""The house has no upward import (issue 12): dependencies point down the layers of ARCHITECTURE.md.

``cli``/``report``/``pipeline`` -> ``power`` -> ``claims`` -> ``change`` -> ``estimate`` (indicators, mean,
quantile) -> ``weighting`` -> ``estimate.design`` (and the design kernels: intervals,
replicates, linearization) -> ``scores``/``simulate``/``disclosure``/``plotting``,
``reliability``/``factor`` -> ``data`` -> ``instrument`` -> the core (``errors``, ``results``,
``thresholds``, I/O helpers).  A module may import its own layer or any layer below; every
import of a ``cips_stats`` module is checked, including the ones inside functions.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "cips_stats"

#: Layer of each module (longest matching prefix wins); higher layers may import lower ones.
LAYERS = {
    "cips_stats": 0, "cips_stats.errors": 0, "cips_stats.results": 0, "cips_stats.thresholds": 0,
    "cips_stats._io": 0, "cips_stats._xlsx": 0, "cips_stats._parse": 0, "cips_stats.output": 0,
    "cips_stats._blas": 0,
    "cips_stats.instrument": 1,
    "cips_stats.data": 2,
    "cips_stats.scores": 3, "cips_stats.simulate": 3, "cips_stats.disclosure": 3, "cips_stats.plotting": 3,
    "cips_stats.reliability": 3, "cips_stats.factor": 3,
    "cips_stats.estimate.design": 4, "cips_stats.estimate.intervals": 4, "cips_stats.estimate.replicates": 4,
    "cips_stats.estimate.linearization": 4,
    "cips_stats.weighting": 5,
    "cips_stats.estimate": 6, "cips_stats.replicates": 6,
    "cips_stats.change": 7,
    "cips_stats.claims": 8,
    "cips_stats.power": 9,
    "cips_stats.report": 10, "cips_stats.cli": 10, "cips_stats.pipeline": 10,
}
#: The top: the only modules that may import the report.
TOP = (["cips_stats", "cli"], ["cips_stats", "report"], ["cips_stats", "pipeline"])


def layer(module: str) -> int | None:
    """The module's layer: its own entry or its package's (the package root only for itself)."""
    parts = module.split(".")
    for k in range(len(parts), 1, -1):
        key = ".".join(parts[:k])
        if key in LAYERS:
            return LAYERS[key]
    return LAYERS["cips_stats"] if module == "cips_stats" else None


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (ROOT.parent / rel).with_suffix(".py").is_file() or (ROOT.parent / rel / "__init__.py").is_file()


@functools.lru_cache(maxsize=1)
def imports() -> dict[str, set[str]]:
    """Every cips_stats module and the cips_stats modules it imports (existing ones only)."""
    out: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        mod = _name(path)
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                if t.startswith("cips_stats") and _exists(t):
                    found.add(t)
        out[mod] = found - {mod}
    return out


def test_every_module_has_a_layer():
    unplaced = [m for m in imports() if layer(m) is None]
    assert not unplaced, f"modules without a layer in tests/test_architecture.py: {unplaced}"


def test_no_upward_import():
    upward = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
              for m, targets in imports().items() for t in sorted(targets)
              if layer(m) is not None and layer(t) is not None and layer(t) > layer(m)]
    assert not upward, "upward imports:\n  " + "\n  ".join(upward)


def test_nothing_imports_the_cli_or_the_report():
    bad = [f"{m} imports {t}" for m, targets in imports().items() for t in targets
           if t.split(".")[:2] in TOP[:2] and m.split(".")[:2] not in TOP]
    assert not bad, bad


def test_the_checker_sees_an_upward_import():
    assert layer("cips_stats.estimate.indicators") == 6 and layer("cips_stats.estimate.design") == 4
    assert layer("cips_stats.factor.cfa") == 3 and layer("cips_stats.report._sections") == 10
    assert layer("cips_stats") == 0 and layer("cips_stats.somewhere_new") is None
    assert "cips_stats.estimate.design" in imports()["cips_stats.weighting"]
